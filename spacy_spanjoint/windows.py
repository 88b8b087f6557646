"""Sentence windows: the transformer's input spans, one per sentence.

Each sentence is its own transformer window, so the window's first row is the
sentence's [CLS] state x0 (Eq. 2 of the two-phase paper) and relations stay
within a sentence. A Doc without sentence boundaries is one sentence; a
sentence longer than `max_tokens` is cut into consecutive windows, so no
window overflows the encoder's 512 word pieces.
"""
from typing import Callable, Iterable, List

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
