"""Gradient clipping by the global norm of a model's torch weights, as SpERT trains.

thinc's optimizer clips each weight's gradient on its own (`grad_clip`, the L2
norm of one tensor). SpERT (Eberts and Ulges, 2020) clips the gradient of the
whole model to an L2 norm of 1.0 (`torch.nn.utils.clip_grad_norm_`) before
each step. `clip_gradient_norm` does that for one thinc model: every torch
parameter under its shims is scaled by the same factor, so the direction of
the update is kept. The transformer and the span model are two components,
updated one after the other by spaCy's training loop, so each is clipped to
`max_norm` on its own; with the encoder's `clip_with_listener`, its update
waits for the span model's, and both gradients are clipped together to the
span model's norm (`clip_jointly`), as SpERT clips its whole model.
"""
from typing import Dict, List, Optional

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


# Encoders whose update waits for the span model of the same training step, by optimizer
# (both `finish_update` calls of a step get the same optimizer; spaCy calls the encoder's first).
_WAITING: Dict[int, List[Model]] = {}


def defer_to_listener(encoder: Model, optimizer) -> None:
    """Hold back the encoder's update until the component listening to it
    clips both gradients to one norm and updates both (`take_deferred`).

    RAISES (RuntimeError): If an encoder of an earlier step still waits: no
        component took it, so its weights would never change.
    """
    waiting = _WAITING.setdefault(id(optimizer), [])
    if any(model is encoder for model in waiting):
        raise RuntimeError(
            "the transformer's update waits for the spanjoint component (clip_with_listener = true), and no "
            "spanjoint component took the last one: train them together, or set clip_with_listener = false"
        )
    waiting.append(encoder)


def take_deferred(optimizer) -> List[Model]:
    """The encoders waiting for this step's span model (see `defer_to_listener`), now no longer waiting."""
    return _WAITING.pop(id(optimizer), [])


def clip_jointly(models: List[Model], max_norm: Optional[float]) -> Optional[float]:
    """Scale the gradients of all `models` together to one global L2 norm of at
    most `max_norm`, as SpERT clips its whole model (None or 0: no clipping)."""
    if not max_norm:
        return None
    gradients = [p for model in models for p in torch_parameters(model) if p.grad is not None]
    if not gradients:
        return None
    return float(torch.nn.utils.clip_grad_norm_(gradients, max_norm))
