"""The span model's learn rate: the optimizer's times a constant.

The randomly initialised span model needs larger steps than the pretrained
encoder; `head_learn_rate_scale` of the architecture sets the factor (1 is
SpERT's single learn rate).
"""
from typing import Optional

from thinc.api import Model, Optimizer

from .gradient_clipping import clip_gradient_norm
from .optimizers import step_torch_weights


class ScaledOptimizer:
    """A thinc optimizer whose learn rate is scaled by a constant (thinc's `lr_scale`)."""

    def __init__(self, optimizer: Optimizer, scale: float):
        self.optimizer = optimizer
        self.scale = scale

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.scale)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


def update_scaled(layer: Model, optimizer: Optimizer, scale: float, max_grad_norm: Optional[float]) -> None:
    """Clip the gradient of `layer` to `max_grad_norm` (None: no clipping),
    then update its weights at `scale` times the optimizer's learn rate."""
    clip_gradient_norm(layer, max_grad_norm)
    if not step_torch_weights(layer, optimizer, lr_scale=scale):
        layer.finish_update(ScaledOptimizer(optimizer, scale) if scale != 1.0 else optimizer)
