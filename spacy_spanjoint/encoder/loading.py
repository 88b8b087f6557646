"""Loading a stored encoder without running code from the pipeline folder.

A workaround for spacy-transformers 1.4 (`spacy_transformers/layers/hf_shim.py`
and `transformer_model.py`, checked on 1.4.0) with transformers 4.41 to
4.53: `HFShim.from_bytes` writes the stored tokenizer files into a temporary
folder under their stored names (a name with `../` writes anywhere) and loads
the tokenizer with stored keyword arguments, which may switch on
`trust_remote_code`; with an `auto_map` in the stored settings, transformers
then imports a stored Python module. `init` and the v1.0 folder format load
with the config's `tokenizer_config`, which may do the same.

`use_safe_loading` gives a `TransformerModel`'s shim a `from_bytes` that
first checks what is stored:

- every tokenizer file name is a plain file name (no folder, no `..`, not
  absolute) and not a Python module;
- no stored setting turns on `trust_remote_code`, and no stored config holds
  an `auto_map` (a pointer to code);

and then loads with `trust_remote_code=False` passed to every transformers
loader. A refused pipeline raises `UnsafePipelineError` naming what it found.
The same settings in the config (`tokenizer_config`, `transformer_config`) are
refused when the model is built. Weights are read by `torch.load`, which
loads tensors only (`weights_only`, torch's default since 2.6).
"""
import json
import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Dict

import srsly
from transformers import AutoConfig, AutoModel, AutoTokenizer

from ..compat import HF_INIT_SETTINGS, HFShim, hf_objects_of, swap_class
from ..training.averaging import AveragedHFShim

# What a tokenizer file may be called: a plain name, e.g. "vocab.txt" or "tokenizer.json".
PLAIN_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# Stored JSON files that transformers reads an `auto_map` from.
SETTINGS_FILES = ("tokenizer_config.json", "config.json", "processor_config.json", "preprocessor_config.json")
REMOTE_CODE = "trust_remote_code"


class UnsafePipelineError(ValueError):
    """A stored encoder that would write outside its folder or run stored code."""


class NoRemoteCode:
    """A transformers Auto class whose loaders always get `trust_remote_code=False`."""

    def __init__(self, auto_class: Any) -> None:
        self.auto_class = auto_class

    def from_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        return self.auto_class.from_pretrained(*args, **{**kwargs, REMOTE_CODE: False})

    def from_config(self, *args: Any, **kwargs: Any) -> Any:
        return self.auto_class.from_config(*args, **{**kwargs, REMOTE_CODE: False})


class SafeLoadingMixin:
    """`from_bytes` for an `HFShim` that checks the stored data first."""

    def from_bytes(self, bytes_data: bytes) -> Any:
        msg = srsly.msgpack_loads(bytes_data)
        check_stored_encoder(msg)
        tokenizer = dict(msg.get("tokenizer") or {})
        if tokenizer:
            tokenizer["kwargs"] = {**(tokenizer.get("kwargs") or {}), REMOTE_CODE: False}
            msg["tokenizer"] = tokenizer
        return super().from_bytes(srsly.msgpack_dumps(msg))


class SafeHFShim(SafeLoadingMixin, HFShim):
    """spacy-transformers' `HFShim`, loading only what runs no stored code."""


class SafeAveragedHFShim(SafeLoadingMixin, AveragedHFShim):
    """`AveragedHFShim` (parameter averages), loading only what runs no stored code."""


SAFE_SHIMS = {HFShim: SafeHFShim, AveragedHFShim: SafeAveragedHFShim}


def use_safe_loading(model: Any) -> None:
    """Make a spacy-transformers `TransformerModel` load without stored code.

    model (TransformerModel): The model; its shim (an `HFShim` or an
        `AveragedHFShim`) gets the `SafeLoadingMixin` and its init settings get
        `trust_remote_code=False`.
    RAISES (UnsafePipelineError): If its config turns on `trust_remote_code`.
    """
    shim = model.layers[0].shims[0]
    if not isinstance(shim, SafeLoadingMixin):
        swap_class(shim, SAFE_SHIMS[type(shim)])
    hf_model = hf_objects_of(shim)
    for name in HF_INIT_SETTINGS:
        settings = dict(getattr(hf_model, name) or {})
        _refuse_remote_code(settings, f"the transformer's {name[len('_init_'):]}")
        setattr(hf_model, name, {**settings, REMOTE_CODE: False})
    shim.config_cls = NoRemoteCode(AutoConfig)
    shim.model_cls = NoRemoteCode(AutoModel)
    shim.tokenizer_cls = NoRemoteCode(AutoTokenizer)


def check_stored_encoder(msg: Dict[str, Any]) -> None:
    """Refuse stored encoder data that would write outside its folder or run code.

    msg (Dict[str, Any]): The shim's data, as `HFShim.to_bytes` stores it.
    RAISES (UnsafePipelineError): Naming the first problem found.
    """
    config = msg.get("config") or {}
    _refuse_remote_code(config, "the stored transformer config")
    for name in HF_INIT_SETTINGS:
        _refuse_remote_code(msg.get(name) or {}, f"the stored {name[len('_init_'):]}")
    tokenizer = msg.get("tokenizer") or {}
    if not isinstance(tokenizer, dict):
        raise UnsafePipelineError(f"The stored tokenizer is a {type(tokenizer).__name__}, not a mapping of files")
    for name, content in tokenizer.items():
        if name == "kwargs":
            _refuse_remote_code(content or {}, "the stored tokenizer settings")
            continue
        check_file_name(name)
        if name in SETTINGS_FILES:
            try:
                settings = json.loads(bytes(content).decode("utf8"))
            except (TypeError, ValueError):
                continue  # not ours to judge: the tokenizer reports malformed files itself
            if isinstance(settings, dict):
                _refuse_remote_code(settings, f"the stored tokenizer file {name}")


def check_file_name(name: Any) -> None:
    """Refuse a stored tokenizer file name that is not a plain file name.

    name (Any): The stored name.
    RAISES (UnsafePipelineError): If it names a folder, a path outside the
        folder, an absolute path or a Python module.
    """
    plain = (
        isinstance(name, str)
        and PLAIN_FILE_NAME.match(name) is not None
        and ".." not in name
        and PurePosixPath(name).name == name
        and PureWindowsPath(name).name == name
    )
    if not plain:
        raise UnsafePipelineError(
            f"The stored tokenizer file name {name!r} is not a plain file name: loading it would write "
            "outside the tokenizer's folder. The pipeline folder was not written by spacy-transformers."
        )
    if name.endswith((".py", ".pyc", ".so")):
        raise UnsafePipelineError(f"The stored tokenizer holds code ({name!r}), which spacy-spanjoint never loads")


def _refuse_remote_code(settings: Any, where: str) -> None:
    if not isinstance(settings, dict):
        return
    if settings.get(REMOTE_CODE):
        raise UnsafePipelineError(
            f"{where[0].upper()}{where[1:]} sets trust_remote_code: spacy-spanjoint never runs code "
            "stored with a model"
        )
    if "auto_map" in settings:
        raise UnsafePipelineError(
            f"{where[0].upper()}{where[1:]} has an auto_map (a pointer to code stored with the model): "
            "spacy-spanjoint never runs code stored with a model"
        )
