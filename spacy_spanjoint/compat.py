"""Every place the package reaches into private parts of spaCy, thinc or
spacy-transformers, in one module.

Each helper names what it relies on. They are written for, and tested with,
the versions in `COVERED` (the dependency pins in pyproject.toml); a release
outside them may rename or drop these internals, and `check_covered_versions`
says so before anything breaks in an obscure way.

- thinc's `PyTorchShim` keeps its torch module in `_model` and its gradient
  scaler in `_grad_scaler` (thinc/shims/pytorch.py).
- spacy-transformers' `HFShim` keeps the Hugging Face objects in `_hfmodel`,
  whose `_init_tokenizer_config` / `_init_transformer_config` are the keyword
  arguments it loads them with (spacy_transformers/layers/hf_shim.py,
  data_classes.py).
- thinc's `Model` runs the function in `_func` (thinc/model.py);
  `BoundedTransformerModel` replaces the forward pass of spacy-transformers'
  `TransformerModel` there, and reuses its module-level helpers
  `huggingface_tokenize` and `set_pytorch_transformer`
  (spacy_transformers/layers/transformer_model.py).
- A shim gets extra behaviour (parameter averages, safe loading) by swapping
  its class for a subclass that adds methods and no state (`swap_class`).
"""
from importlib.metadata import version
from typing import Any, Callable, Dict, Optional, Type

import torch
from spacy_transformers.layers.hf_shim import HFShim
from spacy_transformers.layers.transformer_model import TransformerModel, huggingface_tokenize, set_pytorch_transformer
from thinc.api import Model, PyTorchShim

# distribution -> the release series these workarounds are written for
COVERED: Dict[str, str] = {"spacy": "3.8", "thinc": "8.3", "spacy-transformers": "1.4"}
# what HFShim loads the tokenizer and the transformer with
HF_INIT_SETTINGS = ("_init_tokenizer_config", "_init_transformer_config")

__all__ = [
    "COVERED",
    "HFShim",
    "HF_INIT_SETTINGS",
    "PyTorchShim",
    "TransformerModel",
    "check_covered_versions",
    "grad_scaler_of",
    "hf_objects_of",
    "huggingface_tokenize",
    "replace_forward",
    "set_pytorch_transformer",
    "swap_class",
    "torch_module_of",
]


def uncovered_versions() -> Dict[str, str]:
    """Installed distributions of `COVERED` outside their covered series, with their versions."""
    installed = {name: version(name) for name in COVERED}
    return {name: v for name, v in installed.items() if not (v == COVERED[name] or v.startswith(COVERED[name] + "."))}


def check_covered_versions() -> None:
    """Raise when spaCy, thinc or spacy-transformers is a release these workarounds were not written for."""
    uncovered = uncovered_versions()
    if uncovered:
        found = ", ".join(f"{name} {v} (covered: {COVERED[name]}.x)" for name, v in uncovered.items())
        raise RuntimeError(f"spacy-spanjoint reaches into internals of releases it was not written for: {found}")


def torch_module_of(shim: Any) -> Optional[torch.nn.Module]:
    """The torch module of a thinc `PyTorchShim` (its `_model`), or None for other shims."""
    module = getattr(shim, "_model", None)
    return module if isinstance(module, torch.nn.Module) else None


def grad_scaler_of(shim: Any):
    """The gradient scaler of a thinc `PyTorchShim` (its `_grad_scaler`), or None."""
    return getattr(shim, "_grad_scaler", None)


def hf_objects_of(shim: HFShim):
    """The `HFObjects` (tokenizer, transformer, init settings) of a spacy-transformers `HFShim`."""
    return shim._hfmodel


def replace_forward(model: Model, forward: Callable) -> None:
    """Make `model` run `forward` (thinc keeps a model's forward function in `_func`)."""
    model._func = forward


def forward_of(model: Model) -> Callable:
    """The forward function `model` runs."""
    return model._func


def swap_class(shim: Any, subclass: Type) -> None:
    """Give `shim` a subclass of its class that adds methods but no state."""
    if not issubclass(subclass, type(shim)):
        raise TypeError(f"{subclass.__name__} is not a subclass of {type(shim).__name__}")
    shim.__class__ = subclass
