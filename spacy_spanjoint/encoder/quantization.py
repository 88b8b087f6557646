"""Int8 dynamic quantization of the encoder, for faster prediction on a CPU.

The transformer's forward pass is most of the prediction time (docs/speed.md).
Dynamic quantization stores the weights of its linear layers as int8, one scale per output channel, and
quantizes the activations on the fly, using torch's eager-mode
`quantize_dynamic`; the span model keeps its float weights. Per-channel
scales lost less accuracy than one scale per matrix on CoNLL04
(reports/speed.md).

A quantized pipeline predicts, and nothing else: it cannot be trained (int8
layers have no gradients) or saved (its state no longer matches the
architecture that `spacy.load` builds). The encoder of this package
(`spacy-spanjoint.TransformerEncoder.v1`) refuses both with an error that
says so; load the pipeline again for either.
"""
import warnings

import torch
from spacy.language import Language
from thinc.api import Model

from ..compat import torch_module_of

QUANTIZED_ATTR = "spanjoint_int8"


def quantize_encoder(nlp: Language, transformer_name: str = "transformer") -> Language:
    """Quantize the linear layers of the pipeline's transformer to int8, in place.

    Runs on the CPU only: quantized kernels are CPU kernels.

    nlp (Language): A loaded pipeline with a spacy-transformers component.
    transformer_name (str): The name of that component.
    RETURNS (Language): The same pipeline, for chaining.
    """
    if transformer_name not in nlp.pipe_names:
        raise ValueError(f"quantize_encoder: the pipeline has no component '{transformer_name}' "
                         f"(it has {nlp.pipe_names})")
    model = nlp.get_pipe(transformer_name).model
    if is_quantized(model):
        return nlp
    modules = [torch_module_of(shim) for node in model.walk() for shim in node.shims if torch_module_of(shim) is not None]
    if not modules:
        raise ValueError(f"quantize_encoder: component '{transformer_name}' holds no torch model")
    for module in modules:
        if any(p.is_cuda for p in module.parameters()):
            raise ValueError("quantize_encoder: int8 dynamic quantization runs on the CPU; "
                             "this encoder is on a GPU")
        with warnings.catch_warnings():
            # torch announces the move of eager-mode quantization to torchao; the
            # pinned torch (2.13) still ships it
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions")
            qconfig = {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
            torch.ao.quantization.quantize_dynamic(module, qconfig, dtype=torch.qint8, inplace=True)
    model.attrs[QUANTIZED_ATTR] = True
    return nlp


def is_quantized(model: Model) -> bool:
    """Whether `quantize_encoder` quantized this transformer model."""
    return bool(model.attrs.get(QUANTIZED_ATTR))


def refuse_if_quantized(model: Model, action: str) -> None:
    """Raise a ValueError naming `action` ("trained", "saved") on a quantized model."""
    if is_quantized(model):
        raise ValueError(f"The encoder of this pipeline was quantized to int8 by `quantize_encoder`, for "
                         f"prediction only, so it cannot be {action}. Load the pipeline again (spacy.load) "
                         "to train or save it.")
