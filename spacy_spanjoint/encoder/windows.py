"""Sentence windows: the transformer's input spans, one per sentence.

Each sentence is its own transformer window, so the window's first row is the
sentence's [CLS] state x0 (Eq. 2 of the two-phase paper) and relations stay
within a sentence. A Doc without sentence boundaries is one sentence; a
sentence longer than `max_tokens` is cut into consecutive windows.

Tokens are not word pieces: 128 tokens of URLs, long numbers or CJK text can
make thousands of pieces. The encoder (`transformer.BoundedTransformerModel`)
therefore cuts every window that exceeds its word-piece limit once more, by
word pieces, with `fit_windows`.
"""
from typing import Callable, Iterable, List, Optional, Sequence

import numpy

from spacy.tokens import Doc, Span
from spacy.util import registry


def get_sentence_windows(doc: Doc, max_tokens: int) -> List[Span]:
    """Split one Doc into sentence windows of at most `max_tokens` tokens.

    doc (Doc): The Doc; its sentence boundaries are used when set.
    max_tokens (int): The largest window, in tokens.
    RETURNS (List[Span]): Consecutive, non-overlapping windows covering the Doc.
    """
    if len(doc) == 0:
        return []
    sentences = doc.sents if doc.has_annotation("SENT_START") else [doc[:]]
    windows = []
    for sentence in sentences:
        for start in range(sentence.start, sentence.end, max_tokens):
            windows.append(doc[start : min(start + max_tokens, sentence.end)])
    return windows


def split_by_pieces(window: Span, piece_counts: Sequence[int], max_pieces: int) -> List[Span]:
    """Cut a window into consecutive windows of at most `max_pieces` word pieces.

    Cuts fall on token boundaries, as late as possible. A single token with
    more than `max_pieces` pieces becomes a window of its own (the encoder
    keeps its first pieces).

    window (Span): The window.
    piece_counts (Sequence[int]): Word pieces of each token of the window.
    max_pieces (int): Word-piece budget of a window, special tokens excluded.
    RETURNS (List[Span]): Consecutive windows covering `window`.
    """
    if len(piece_counts) != len(window):
        raise ValueError(f"split_by_pieces: {len(piece_counts)} piece counts for a window of {len(window)} tokens")
    if max_pieces < 1:
        raise ValueError(f"split_by_pieces: max_pieces must be >= 1, got {max_pieces}")
    doc = window.doc
    cuts, used = [], 0
    for i, count in enumerate(numpy.asarray(piece_counts, dtype="int64").tolist()):
        if used + count > max_pieces and used > 0:
            cuts.append(window.start + i)
            used = 0
        used += count
    bounds = [window.start] + cuts + [window.end]
    return [doc[start:end] for start, end in zip(bounds, bounds[1:])]


def fit_windows(windows: List[Span], piece_counts: List[Optional[Sequence[int]]], max_pieces: int) -> List[Span]:
    """Cut the windows that have piece counts (the oversize ones) by word pieces.

    windows (List[Span]): The windows of one Doc.
    piece_counts (List[Optional[Sequence[int]]]): Per window, the word pieces
        of each of its tokens, or None to keep the window as it is.
    max_pieces (int): Word-piece budget of a window, special tokens excluded.
    RETURNS (List[Span]): The windows, oversize ones replaced by their parts.
    """
    fitted = []
    for window, counts in zip(windows, piece_counts):
        fitted.extend([window] if counts is None else split_by_pieces(window, counts, max_pieces))
    return fitted


@registry.misc("spacy-spanjoint.sentence_windows.v1")
def configure_sentence_windows(max_tokens: int = 128) -> Callable[[Iterable[Doc]], List[List[Span]]]:
    """Span getter for spacy-transformers: one window per sentence.

    max_tokens (int): Sentences longer than this are cut into several windows.
        128 tokens stay below 512 word pieces for ordinary text.
    RETURNS (Callable): Maps a batch of Docs to the windows of each Doc.
    """
    if max_tokens < 1:
        raise ValueError(f"sentence_windows: max_tokens must be >= 1, got {max_tokens}")

    def get_windows(docs: Iterable[Doc]) -> List[List[Span]]:
        return [get_sentence_windows(doc, max_tokens) for doc in docs]

    return get_windows
