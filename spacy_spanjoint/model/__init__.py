"""The PyTorch model: one module per concept of the papers."""
from .spanjoint import SpanJointModel

__all__ = ["SpanJointModel"]
