"""Thinc glue between the transformer listener and the PyTorch span model.

`spanjoint_forward` flattens the per-doc encoder output into one batch
(token vectors, window contexts, token -> window ids), runs the torch model
through `PyTorchWrapper`, and routes the gradients back per doc. The torch
model is built lazily, once the encoder width and the label counts are known.
At prediction a long batch goes through the torch model in chunks of whole
windows (`PREDICT_CHUNK_TOKENS`), so memory stays bounded on long documents.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy
import torch
from spacy.tokens import Doc
from thinc.api import ArgsKwargs, Model, PyTorchWrapper, torch2xp, xp2torch
from thinc.types import Floats2d

from ..compat import torch_module_of
from ..model import SpanJointModel
from ..model.token_case import case_classes
from ..training.averaging import use_averaged_params

# Tokens per chunk of whole windows at prediction: about 40k candidate spans,
# a few tens of MB of span representations at width 384.
PREDICT_CHUNK_TOKENS = 4096


@dataclass
class GoldBatch:
    """Gold annotations of a batch, in batch-global token offsets.

    spans (numpy.ndarray): (G, 2) entity offsets.
    labels (numpy.ndarray): (G,) entity label ids.
    relations (numpy.ndarray): (R, 3) head, tail (into `spans`), relation label id.
    symmetric (numpy.ndarray): (n_relation_labels,) bool.
    """

    spans: numpy.ndarray
    labels: numpy.ndarray
    relations: numpy.ndarray
    symmetric: numpy.ndarray


@dataclass
class SpanJointOutput:
    """What the thinc model returns: the torch outputs as arrays, and where each doc starts.

    arrays (Dict[str, numpy.ndarray]): Training logits and targets, or predictions.
    doc_starts (numpy.ndarray): (n_docs + 1,) first batch token of each doc.
    """

    arrays: Dict[str, numpy.ndarray]
    doc_starts: numpy.ndarray


def build_torch_head(model: Model) -> Model:
    """Wrap a `SpanJointModel` sized from the dims and attrs of `model`; with
    `use_averages` its averaged weights serve evaluation and saving."""
    hyper = model.attrs["hyper"]
    module = SpanJointModel(model.get_dim("nI"), model.get_dim("nE"), model.get_dim("nR"), **hyper)
    wrapper = PyTorchWrapper(module, convert_inputs=_convert_inputs, convert_outputs=_convert_outputs)
    return use_averaged_params(wrapper)


def torch_span_model(model: Model) -> Optional[SpanJointModel]:
    """The torch `SpanJointModel` inside a span-joint thinc model (None before it is built)."""
    return torch_module_of(model.layers[-1].shims[0]) if len(model.layers) > 1 else None


def _convert_inputs(model: Model, inputs: Tuple, is_train: bool):
    token_vectors, contexts, token_window, token_case, gold = inputs
    device = model.shims[0].device
    float_args = [xp2torch(a, requires_grad=is_train, device=device) for a in (token_vectors, contexts)]
    kwargs = {"token_window": xp2torch(model.ops.asarray(token_window, dtype="int64"), device=device)}
    if token_case is not None:
        kwargs["token_case"] = torch.as_tensor(token_case, dtype=torch.long, device=device)
    if gold is not None:
        kwargs.update(
            gold_spans=torch.as_tensor(gold.spans, dtype=torch.long, device=device).reshape(-1, 2),
            gold_labels=torch.as_tensor(gold.labels, dtype=torch.long, device=device),
            gold_relations=torch.as_tensor(gold.relations, dtype=torch.long, device=device).reshape(-1, 3),
            symmetric=torch.as_tensor(gold.symmetric, dtype=torch.bool, device=device),
        )

    def convert_back(d_inputs: ArgsKwargs):
        # the shim hands back each input's .grad, None where none flowed
        return tuple(None if g is None else torch2xp(g) for g in d_inputs.args)

    return ArgsKwargs(args=tuple(float_args), kwargs=kwargs), convert_back


def _convert_outputs(model: Model, inputs_outputs, is_train: bool):
    _, outputs = inputs_outputs
    arrays = {key: torch2xp(value.detach()) for key, value in outputs.items()}

    def convert_back(d_arrays: Dict[str, Floats2d]) -> ArgsKwargs:
        keys = [k for k in d_arrays if outputs[k].requires_grad]
        return ArgsKwargs(
            args=(tuple(outputs[k] for k in keys),),
            kwargs={"grad_tensors": [xp2torch(d_arrays[k], device=outputs[k].device) for k in keys]},
        )

    return arrays, convert_back


def spanjoint_forward(model: Model, inputs: Tuple[List[Doc], Optional[GoldBatch]], is_train: bool):
    docs, gold = inputs
    encoder, head = model.layers
    (tokens, contexts, windows), backprop_encoder = encoder(docs, is_train)
    width = model.get_dim("nI")
    ops = model.ops
    lengths = [len(t) for t in tokens]
    doc_starts = numpy.concatenate([[0], numpy.cumsum(lengths)]).astype("int64")
    window_counts = [len(c) for c in contexts]
    window_starts = numpy.concatenate([[0], numpy.cumsum(window_counts)])[:-1]
    token_vectors = ops.xp.concatenate(tokens) if sum(lengths) else ops.alloc2f(0, width)
    context_vectors = ops.xp.concatenate(contexts) if sum(window_counts) else ops.alloc2f(0, width)
    token_window = numpy.concatenate(
        [numpy.asarray(w, dtype="int64") + start for w, start in zip(windows, window_starts)]
        or [numpy.zeros((0,), dtype="int64")]
    )
    # the case classes are read off the token texts only for a model that uses them
    token_case = batch_case_classes(docs, lengths) if model.attrs["hyper"].get("token_case_features") else None
    if gold is None and not is_train and len(token_window) > PREDICT_CHUNK_TOKENS:
        arrays = predict_in_chunks(head, token_vectors, context_vectors, token_window, token_case)
        return SpanJointOutput(arrays, doc_starts), _no_backprop
    arrays, backprop_head = head((token_vectors, context_vectors, token_window, token_case, gold), is_train)

    def backprop(d_arrays: Dict[str, Floats2d]):
        d_tokens, d_contexts = backprop_head(d_arrays)
        d_tokens = d_tokens if d_tokens is not None else ops.alloc2f(*token_vectors.shape)
        d_contexts = d_contexts if d_contexts is not None else ops.alloc2f(*context_vectors.shape)
        per_doc_tokens = ops.xp.split(d_tokens, doc_starts[1:-1])
        per_doc_contexts = ops.xp.split(d_contexts, numpy.cumsum(window_counts)[:-1])
        return backprop_encoder((list(per_doc_tokens), list(per_doc_contexts), windows))

    return SpanJointOutput(arrays, doc_starts), backprop


def batch_case_classes(docs: List[Doc], lengths: List[int]) -> numpy.ndarray:
    """Case class of each token of the batch (`model.token_case`), aligned
    with the token vectors: a doc the encoder gave no rows (no word pieces at
    all) contributes none."""
    ids = [case_classes(token.text for token in doc)[:length] for doc, length in zip(docs, lengths)]
    return numpy.asarray([i for doc_ids in ids for i in doc_ids], dtype="int64")


def window_chunks(token_window: numpy.ndarray, max_tokens: int) -> List[Tuple[int, int]]:
    """Cut a batch into consecutive runs of whole windows of about `max_tokens` tokens.

    token_window (numpy.ndarray): (T,) window id of each token, non-decreasing.
    max_tokens (int): Tokens per chunk; a longer window is a chunk of its own.
    RETURNS (List[Tuple[int, int]]): [start, end) token offsets of the chunks.
    """
    if len(token_window) == 0:
        return []
    window_starts = numpy.flatnonzero(numpy.diff(token_window, prepend=token_window[0] - 1))
    bounds = numpy.append(window_starts, len(token_window))
    # greedy: close a chunk before the window that would overflow it
    chunks, start, previous = [], 0, 0
    for end in bounds[1:].tolist():
        if end - start > max_tokens and previous > start:
            chunks.append((start, previous))
            start = previous
        previous = end
    chunks.append((start, len(token_window)))
    return chunks


def predict_in_chunks(head: Model, token_vectors, contexts, token_window: numpy.ndarray,
                      token_case: Optional[numpy.ndarray]) -> Dict[str, numpy.ndarray]:
    """Run the torch model on chunks of whole windows and join the predictions.

    Spans and pairs never cross a window, so the result is the same as one
    pass over the batch; the chunk's token and entity offsets are added back.
    RETURNS (Dict[str, numpy.ndarray]): As `SpanJointModel.predict`.
    """
    parts: List[Dict] = []
    n_entities = 0
    for start, end in window_chunks(token_window, PREDICT_CHUNK_TOKENS):
        first_window = int(token_window[start])
        last_window = int(token_window[end - 1])
        arrays, _ = head(
            (token_vectors[start:end], contexts[first_window : last_window + 1],
             token_window[start:end] - first_window, None if token_case is None else token_case[start:end], None),
            False,
        )
        arrays = dict(arrays)
        arrays["entity_spans"] = arrays["entity_spans"] + start
        arrays["relation_pairs"] = arrays["relation_pairs"] + n_entities
        n_entities += len(arrays["entity_spans"])
        parts.append(arrays)
    xp = head.ops.xp
    return {key: xp.concatenate([part[key] for part in parts]) for key in parts[0]}


def _no_backprop(d_arrays):
    raise ValueError("spanjoint: a chunked prediction has no backward pass; call the model with is_train=True to train")


def spanjoint_init(model: Model, X=None, Y=None) -> Model:
    """Create the torch head once nI (encoder width), nE and nR are set."""
    encoder = model.layers[0]
    if X is not None:
        encoder.initialize(X=X[0] if isinstance(X, tuple) else X)
    if len(model.layers) == 1:
        if not model.has_dim("nI"):
            listener = model.get_ref("listener")
            if not listener.has_dim("nO"):
                raise ValueError(
                    "spanjoint: the encoder width is unknown. The transformer component "
                    "must come before spanjoint in the pipeline and be initialized first."
                )
            model.set_dim("nI", listener.get_dim("nO"))
        model.layers.append(build_torch_head(model))
    return model
