"""Gradient clipping by the global norm of a model's torch weights, as SpERT trains.

thinc's optimizer clips each weight's gradient on its own (`grad_clip`, the L2
norm of one tensor). SpERT (Eberts and Ulges, 2020) clips the gradient of the
whole model to an L2 norm of 1.0 (`torch.nn.utils.clip_grad_norm_`) before
each step. `clip_gradient_norm` does that for one thinc model: every torch
parameter under its shims is scaled by the same factor, so the direction of
the update is kept. The transformer and the span model are two components,
updated one after the other by spaCy's training loop, so each is clipped to
`max_norm` on its own (SpERT clips both together).
"""
from typing import List, Optional

import torch
from thinc.api import Model

from ..compat import torch_module_of


def torch_parameters(model: Model) -> List[torch.nn.Parameter]:
    """The torch parameters under the shims of a thinc model (none before it is built)."""
    parameters = []
    for node in model.walk():
        for shim in node.shims:
            module = torch_module_of(shim)
            if module is not None:
                parameters.extend(module.parameters())
    return parameters


def clip_gradient_norm(model: Model, max_norm: Optional[float]) -> Optional[float]:
    """Scale the gradients of the model's torch weights to a global L2 norm of at most `max_norm`.

    model (Model): A thinc model with torch shims.
    max_norm (Optional[float]): The largest global norm; None or 0: no clipping.
    RETURNS (Optional[float]): The global norm before clipping (the gradients
        are scaled only when it exceeds `max_norm`); None when clipping is off
        or no weight has a gradient yet.
    """
    if not max_norm:
        return None
    gradients = [p for p in torch_parameters(model) if p.grad is not None]
    if not gradients:
        return None
    return float(torch.nn.utils.clip_grad_norm_(gradients, max_norm))


def check_max_grad_norm(max_grad_norm: Optional[float]) -> None:
    """Raise a ValueError for a negative `max_grad_norm`."""
    if max_grad_norm is not None and max_grad_norm < 0:
        raise ValueError(f"max_grad_norm must be None, 0 (off) or positive, got {max_grad_norm}")
