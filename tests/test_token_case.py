"""The token case feature (`model/token_case.py`): classes, the torch module,
the span model with and without it, and the component on the tiny encoder."""
import pytest
import torch
from spacy.tokens import Doc
from thinc.api import Adam

from spacy_spanjoint.layers.spanjoint import batch_case_classes
from spacy_spanjoint.model import SpanJointModel
from spacy_spanjoint.model.token_case import DIGIT, LOWER, OTHER, TITLE, UPPER, TokenCaseFeature, case_class

from test_spanjoint_component import make_examples, make_nlp, predictions, scores, words_doc


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Apple", TITLE), ("A", TITLE), ("McDonald", TITLE), ("Kennedy.", TITLE), ("apple", LOWER),
        ("iPhone", LOWER), ("IBM", UPPER), ("U.S.", UPPER), ("1990", DIGIT), ("3M", DIGIT), (".", OTHER),
        ("", OTHER), ("東京", OTHER), ("\n", OTHER), ("Éire", TITLE), ("ÉTÉ", UPPER),
    ],
)
def test_case_class(text, expected):
    assert case_class(text) == expected


def test_case_feature_starts_at_zero_and_adds_one_row_per_class():
    feature = TokenCaseFeature(4)
    vectors = torch.randn(3, 4)
    classes = torch.tensor([TITLE, LOWER, TITLE])
    assert torch.equal(feature(vectors, classes), vectors)
    with torch.no_grad():
        feature.embedding.weight[TITLE] = 1.0
    out = feature(vectors, classes)
    assert torch.allclose(out[0], vectors[0] + 1.0) and torch.allclose(out[2], vectors[2] + 1.0)
    assert torch.equal(out[1], vectors[1])
    with pytest.raises(ValueError, match="3 token vectors but 2 case classes"):
        feature(vectors, classes[:2])


def _batch(n_tokens=12, width=8):
    torch.manual_seed(1)
    return torch.randn(n_tokens, width), torch.randn(2, width), torch.tensor([0] * 6 + [1] * 6)


def _model(**kwargs):
    torch.manual_seed(0)
    model = SpanJointModel(8, 3, 2, entity_threshold=0.0, **kwargs)
    return model.eval()


def test_span_model_with_untrained_case_feature_predicts_as_without():
    tokens, contexts, windows = _batch()
    case = torch.tensor([TITLE, LOWER, LOWER, TITLE, OTHER, LOWER] * 2)
    plain = _model()(tokens, contexts, windows)
    with_case = _model(token_case_features=True)
    same = with_case(tokens, contexts, windows, token_case=case)
    for key in plain:
        assert torch.equal(plain[key], same[key]), key
    # a learned row changes the scores of the spans over title-case tokens only
    with torch.no_grad():
        with_case.token_case.embedding.weight[TITLE] = 5.0
    changed = with_case(tokens, contexts, windows, token_case=case)
    assert not torch.allclose(changed["entity_scores"], plain["entity_scores"])
    with pytest.raises(ValueError, match="token_case"):
        with_case(tokens, contexts, windows)


def test_span_model_without_case_feature_ignores_the_classes():
    tokens, contexts, windows = _batch()
    model = _model()
    a = model(tokens, contexts, windows, token_case=torch.zeros(12, dtype=torch.long))
    b = model(tokens, contexts, windows, token_case=torch.full((12,), TITLE))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_batch_case_classes_follow_the_token_vectors(tiny_encoder_path):
    nlp = make_nlp(tiny_encoder_path)
    docs = [Doc(nlp.vocab, words=["John", "lives", "in", "NYC", "."]), Doc(nlp.vocab, words=["1990"])]
    assert batch_case_classes(docs, [5, 1]).tolist() == [TITLE, LOWER, LOWER, UPPER, OTHER, DIGIT]
    # a doc the encoder gave no rows contributes no classes
    assert batch_case_classes(docs, [5, 0]).tolist() == [TITLE, LOWER, LOWER, UPPER, OTHER]


def test_component_learns_the_case_embedding_and_round_trips(tiny_encoder_path, tmp_path):
    nlp = make_nlp(tiny_encoder_path, token_case_features=True)
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("spanjoint").model.layers[-1].shims[0]._model
    assert torch.count_nonzero(head.token_case.embedding.weight) == 0
    optimizer = Adam(0.0003)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer, losses={})
    weight = head.token_case.embedding.weight
    # the fixtures have title-case, lower-case and punctuation tokens, no digits
    for row in (TITLE, LOWER, OTHER):
        assert torch.count_nonzero(weight[row]) > 0
    assert torch.count_nonzero(weight[DIGIT]) == 0
    words = ["Mary", "works", "for", "Acme", "Corp", "in", "Paris", "."]
    doc = nlp(words_doc(nlp, words))
    nlp.to_disk(tmp_path / "pipeline")
    import spacy

    loaded = spacy.load(tmp_path / "pipeline")
    again = loaded(words_doc(loaded, words))
    assert predictions(again) == predictions(doc)
    assert scores(again) == pytest.approx(scores(doc), abs=1e-5)
    # whitespace tokens (no word pieces) and an empty doc still go through
    assert len(list(nlp.pipe([words_doc(nlp, ["John", "\n\n", "lives"]), words_doc(nlp, [])]))) == 2
