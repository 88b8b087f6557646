"""Adam with decoupled weight decay and SpERT's decay groups.

SpERT trains with AdamW and leaves the biases and the LayerNorm weights out
of the weight decay. thinc's `Adam.v1` decays every parameter; the optimizer
here skips those whose parameter name contains one of `no_decay`. thinc
hands each update the parameter's key (node id, parameter name), and torch
modules wrapped by `PyTorchWrapper` name their parameters by path
("encoder.layer.0.output.LayerNorm.weight"), so the rule reads as SpERT's.
"""
from typing import Sequence, Tuple

from thinc.api import Optimizer, registry
from thinc.types import FloatsXd


class DecayGroupOptimizer(Optimizer):
    """thinc's Adam whose weight decay (`L2`, decoupled) skips the parameters
    whose name contains one of `no_decay`.

    no_decay (Sequence[str]): Parts of parameter names left undecayed.
    """

    __slots__ = ["no_decay"]

    def __init__(self, *args, no_decay: Sequence[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.no_decay = tuple(no_decay)

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
) -> Optimizer:
    """Adam with decoupled weight decay L2 (AdamW), none on the parameters
    named in `no_decay` (SpERT's: biases and LayerNorm weights). The other
    arguments are those of thinc's `Adam.v1`; eps defaults to SpERT's 1e-6.

    RETURNS (Optimizer): The optimizer.
    """
    return DecayGroupOptimizer(
        learn_rate, L2=L2, beta1=beta1, beta2=beta2, eps=eps, grad_clip=grad_clip,
        L2_is_weight_decay=True, use_averages=use_averages, no_decay=no_decay,
    )
