"""Adam with decoupled weight decay and SpERT's decay groups, and a faster torch path.

SpERT trains with AdamW and leaves the biases and the LayerNorm weights out
of the weight decay. thinc's `Adam.v1` decays every parameter; the optimizer
here skips those whose parameter name contains one of `no_decay`. thinc
hands each update the parameter's key (node id, parameter name), and torch
modules wrapped by `PyTorchWrapper` name their parameters by path
("encoder.layer.0.output.LayerNorm.weight"), so the rule reads as SpERT's.

thinc's optimizer updates one weight at a time in single-threaded loops, a
large share of a training step for a transformer of tens of millions of
weights. `TorchAdamW` keeps thinc's interface and schedules but hands the
weights of each torch module to torch's fused AdamW kernel
(`torch.optim.AdamW(fused=True)`), one call per module; `step_torch_weights`
is the entry point for the components' `finish_update`.
"""
from typing import Dict, List, Sequence, Tuple

import torch
from thinc.api import Model, Optimizer, registry
from thinc.types import FloatsXd

from ..compat import grad_scaler_of, torch_module_of


# an update count at which thinc's bias correction factors, 1 - b^t, are 1
UNCORRECTED_STEP = 10**9


class DecayGroupOptimizer(Optimizer):
    """thinc's Adam whose weight decay (`L2`, decoupled) skips the parameters
    whose name contains one of `no_decay`.

    no_decay (Sequence[str]): Parts of parameter names left undecayed.
    correct_bias (bool): Adam's bias correction of the moments (thinc's);
        False: none, as SpERT's `AdamW(correct_bias=False)`.
    """

    __slots__ = ["no_decay", "correct_bias"]

    def __init__(self, *args, no_decay: Sequence[str] = (), correct_bias: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.no_decay = tuple(no_decay)
        self.correct_bias = correct_bias

    def _adam(self, ops, weights, gradient, lr_scale, key, nr_upd):
        # thinc scales the step by sqrt(1 - b2^t) / (1 - b1^t); at a very large t the factor is 1
        return super()._adam(ops, weights, gradient, lr_scale, key, nr_upd if self.correct_bias else UNCORRECTED_STEP)

    def decays(self, key: Tuple[int, str]) -> bool:
        """Whether the parameter of this key is decayed."""
        name = key[1] if isinstance(key, tuple) and len(key) == 2 else ""
        return not any(part in str(name) for part in self.no_decay)

    def __call__(self, key: Tuple[int, str], weights: FloatsXd, gradient: FloatsXd, *, lr_scale: float = 1.0):
        if self.decays(key):
            return super().__call__(key, weights, gradient, lr_scale=lr_scale)
        decay = self.L2
        self.L2 = 0.0
        try:
            return super().__call__(key, weights, gradient, lr_scale=lr_scale)
        finally:
            self.L2 = decay


@registry.optimizers("spacy-spanjoint.AdamW.v1")
def build_adamw(
    learn_rate=0.001,
    *,
    L2=0.01,
    beta1=0.9,
    beta2=0.999,
    eps=1e-6,
    grad_clip=0.0,
    use_averages: bool = False,
    no_decay: Sequence[str] = ("bias", "LayerNorm.weight"),
    correct_bias: bool = True,
) -> Optimizer:
    """Adam with decoupled weight decay L2 (AdamW), none on the parameters
    named in `no_decay` (SpERT's: biases and LayerNorm weights). The other
    arguments are those of thinc's `Adam.v1`; eps defaults to SpERT's 1e-6.
    correct_bias (bool): False skips Adam's bias correction, as SpERT's
        AdamW does (larger steps over the first few thousand updates).

    RETURNS (Optimizer): The optimizer.
    """
    return DecayGroupOptimizer(
        learn_rate, L2=L2, beta1=beta1, beta2=beta2, eps=eps, grad_clip=grad_clip,
        L2_is_weight_decay=True, use_averages=use_averages, no_decay=no_decay, correct_bias=correct_bias,
    )


class TorchAdamW(DecayGroupOptimizer):
    """`DecayGroupOptimizer` whose torch weights are updated by torch's fused AdamW.

    thinc's schedules still set the learning rate (and the other settings)
    of every step; the weights of thinc layers, if any, take thinc's path.
    The update differs from thinc's Adam in rounding, in where eps enters
    (torch: sqrt(v / (1 - b2^t)) + eps; thinc: (sqrt(v) + eps) / sqrt(1 - b2^t))
    and in decaying the weights before the step rather than after it.
    """

    __slots__ = ["torch_optimizers"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.torch_optimizers: Dict[int, Tuple[torch.optim.Optimizer, List[bool]]] = {}

    def step_shim(self, shim, lr_scale: float = 1.0) -> None:
        """One AdamW step on the weights of a torch shim that have a gradient, then zero the gradients."""
        module = torch_module_of(shim)
        if shim.id not in self.torch_optimizers:
            named = list(module.named_parameters())
            groups = [{"params": [p for n, p in named if self.decays((shim.id, n)) is decays], "decays": decays}
                      for decays in (True, False)]
            groups = [group for group in groups if group["params"]]
            optimizer = torch.optim.AdamW(groups, lr=self.learn_rate, fused=all(
                p.dtype in (torch.float32, torch.float16, torch.bfloat16) for g in groups for p in g["params"]))
            self.torch_optimizers[shim.id] = (optimizer, [group["decays"] for group in groups])
        optimizer, decays = self.torch_optimizers[shim.id]
        scaler = grad_scaler_of(shim)
        if scaler is None or not scaler.found_inf:  # thinc skips a step whose gradient overflowed
            for group, decayed in zip(optimizer.param_groups, decays):
                group.update(lr=self.learn_rate * lr_scale, betas=(self.b1, self.b2), eps=self.eps,
                             weight_decay=self.L2 if decayed else 0.0)
                for param in group["params"]:
                    if param.grad is not None:
                        self.nr_update[(shim.id, "torch")] += 0  # keeps thinc's per-key bookkeeping alive
            optimizer.step()
        optimizer.zero_grad(set_to_none=False)
        if scaler is not None:
            scaler.update()


def step_torch_weights(model: Model, optimizer, lr_scale: float = 1.0) -> bool:
    """Update a thinc model's weights with `TorchAdamW`'s torch path.

    model (Model): A thinc model whose weights live in torch shims (and
        possibly thinc layers, which take thinc's path).
    optimizer: The training's optimizer.
    lr_scale (float): The learning-rate factor of this model.
    RETURNS (bool): False, with nothing done, when the optimizer is not a
        `TorchAdamW`: the caller then runs its usual `finish_update`.
    """
    if not isinstance(optimizer, TorchAdamW):
        return False
    for node in model.walk():
        for shim in node.shims:
            optimizer.step_shim(shim, lr_scale)
        for name in node.param_names:
            if node.has_grad(name):
                param, grad = optimizer((node.id, name), node.get_param(name), node.get_grad(name), lr_scale=lr_scale)
                node.set_param(name, param)
                node.set_grad(name, grad)
    return True


@registry.optimizers("spacy-spanjoint.TorchAdamW.v1")
def build_torch_adamw(
    learn_rate=0.001,
    *,
    L2=0.01,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    grad_clip: float = 0.0,
    use_averages: bool = False,
    L2_is_weight_decay: bool = True,
    no_decay: Sequence[str] = (),
) -> Optimizer:
    """AdamW whose torch weights are updated by torch's fused kernel (see
    `TorchAdamW`): decoupled weight decay L2, none on the parameters named in
    `no_decay` (empty: every weight decays, as thinc's `Adam.v1` with
    `L2_is_weight_decay`). It takes `Adam.v1`'s settings, so a config switches
    by its `@optimizers` name alone; thinc's per-weight `grad_clip`, averaging
    and L2 as a gradient term have no torch path and are refused (clip with
    the models' `max_grad_norm`).

    RETURNS (Optimizer): The optimizer.
    """
    if grad_clip or use_averages or not L2_is_weight_decay:
        raise ValueError("spacy-spanjoint.TorchAdamW.v1 supports grad_clip = 0, use_averages = false and "
                         f"L2_is_weight_decay = true; got grad_clip = {grad_clip}, use_averages = {use_averages}, "
                         f"L2_is_weight_decay = {L2_is_weight_decay}")
    return TorchAdamW(learn_rate, L2=L2, beta1=beta1, beta2=beta2, eps=eps, grad_clip=0.0,
                      L2_is_weight_decay=True, use_averages=False, no_decay=no_decay)
