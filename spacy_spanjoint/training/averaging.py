"""Parameter averages (`[training.optimizer] use_averages = true`) for the torch layers.

With `use_averages`, thinc's optimizer keeps a running average of every weight
it updates, and spaCy's training loop evaluates dev and saves `model-best` /
`model-last` inside `nlp.use_params(optimizer.averages)`. The optimizer keys a
torch parameter's average by `(shim.id, parameter name)`, but thinc's
`PyTorchShim.use_params` (thinc 8.3) only reads keys spelled
`"pytorch_{id}_{name}"`, so for torch-backed layers (our span model and the
spacy-transformers encoder) the averages were kept and never used: training
with `use_averages = true` evaluated and saved the current weights.

`use_averaged_params(model)` gives each torch shim of a model a `use_params`
that reads the optimizer's own keys. Parameters without an average yet (no
gradient reached them) and buffers keep their current values.
"""
import contextlib
from typing import Dict, Tuple

from thinc.api import Model, xp2torch

from ..compat import HFShim, PyTorchShim, swap_class, torch_module_of


class AveragedParamsMixin:
    """`use_params` for a PyTorchShim that reads averages keyed `(shim.id, name)`."""

    @contextlib.contextmanager
    def use_params(self, params: Dict[Tuple[int, str], object]):
        names = [] if torch_module_of(self) is None else [name for name, _ in torch_module_of(self).named_parameters()]
        averaged = {name: xp2torch(params[(self.id, name)], device=self.device)
                    for name in names if (self.id, name) in params}
        if not averaged:
            with super().use_params(params):
                yield
            return
        current = {name: value.clone() for name, value in torch_module_of(self).state_dict().items()}
        torch_module_of(self).load_state_dict({**current, **averaged})
        try:
            yield
        finally:
            torch_module_of(self).load_state_dict(current)


class AveragedPyTorchShim(AveragedParamsMixin, PyTorchShim):
    """thinc's PyTorchShim whose `use_params` applies the optimizer's averages."""


class AveragedHFShim(AveragedParamsMixin, HFShim):
    """spacy-transformers' HFShim whose `use_params` applies the optimizer's averages."""


AVERAGED_SHIMS = {PyTorchShim: AveragedPyTorchShim, HFShim: AveragedHFShim}


def use_averaged_params(model: Model) -> Model:
    """Make every torch shim of `model` apply the optimizer's averages in `use_params`.

    model (Model): A thinc model; its shims of exactly `PyTorchShim` or `HFShim`
        get the averaging subclass (same state, one method more).
    RETURNS (Model): The same model.
    """
    for node in model.walk():
        for shim in node.shims:
            averaged_class = AVERAGED_SHIMS.get(type(shim))
            if averaged_class is not None:
                swap_class(shim, averaged_class)
    return model
