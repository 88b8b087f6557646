"""The encoder's precision on a CPU: float32, or bfloat16 autocast.

The transformer's forward pass is most of the prediction time (docs/speed.md).
On processors with native bfloat16 matrix units (Intel AMX or AVX512-BF16),
running it under `torch.autocast` to bfloat16 is much faster (measured in
reports/speed.md), and the hidden states differ from float32 by the rounding
of an 8-bit mantissa. The hidden states are cast back to float32 before pooling, so
the span model always computes in float32. `predict_precision` sets it for
prediction (and the dev evaluation during training); `train_precision` for the
training forward pass, whose backward pass then runs through the autocast
graph while the weights, their gradients and the optimizer stay float32.

Settings (`predict_precision` and `train_precision` of `spacy-spanjoint.TransformerEncoder.v1`):
- "float32": no autocast.
- "bfloat16": autocast to bfloat16 on the CPU. Without native bfloat16 units
  the processor emulates it, usually slower than float32 (not measured here).
- "auto": bfloat16 where the CPU has native bfloat16 units, else float32.

On a GPU the encoder predicts in float32 whatever this setting: thinc's
PyTorch shim switches CUDA autocast off inside its forward pass, so there the
switch is spacy-transformers' own `mixed_precision` (float16 autocast).
"""
from typing import ContextManager

import torch
from thinc.api import Model

from .quantization import is_quantized

PRECISIONS = ("float32", "bfloat16", "auto")


def check_precision(precision: str) -> None:
    """Raise a ValueError naming the setting unless `precision` is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"predict_precision must be one of {', '.join(repr(p) for p in PRECISIONS)}; got {precision!r}"
        )


def has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 matrix products in hardware:
    Intel AMX tiles or AVX512-BF16 (torch's own capability checks)."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def uses_bfloat16(precision: str, device: torch.device) -> bool:
    """Whether prediction with this setting runs the encoder in bfloat16 on `device`
    (never on a GPU, see the module docstring)."""
    check_precision(precision)
    if device.type != "cpu":
        return False
    if precision == "auto":
        return has_native_bfloat16()
    return precision == "bfloat16"


def effective_precision(model: Model) -> str:
    """What a transformer model of this package computes in at prediction:
    "int8" (quantized by `quantize_encoder`, which takes precedence), "bfloat16" or "float32"."""
    if is_quantized(model):
        return "int8"
    precision = getattr(model, "predict_precision", "float32")
    return "bfloat16" if uses_bfloat16(precision, model.transformer.device) else "float32"


def prediction_autocast() -> ContextManager:
    """The bfloat16 autocast context for one prediction forward pass of the encoder on the CPU."""
    return torch.autocast(device_type="cpu", dtype=torch.bfloat16)


def outputs_to_float32(output) -> None:
    """Cast every floating-point tensor of a transformers ModelOutput to float32, in place."""
    for key, value in list(output.items()):
        if torch.is_tensor(value) and value.is_floating_point() and value.dtype != torch.float32:
            output[key] = value.float()
        elif isinstance(value, tuple):  # hidden_states / attentions when requested
            output[key] = tuple(v.float() if torch.is_tensor(v) and v.is_floating_point() else v for v in value)
