"""Gate weights of a trained pipeline (`spacy_spanjoint.analysis.gate_profile`)."""
import pytest

from spacy_spanjoint.analysis.gate_profile import gate_profile, span_model

from test_spanjoint_component import make_nlp, words_doc
from tiny_pipeline import PREDICT_EVERYTHING, build_tiny_pipeline

WORDS = [["John", "Smith", "lives", "in", "New", "York", "."], ["Mary", "works", "for", "Acme", "."]]


def span_count(nlp) -> int:
    """Spans of WORDS up to the model's width (Eq. 1): n - k + 1 spans of each width k."""
    width = span_model(nlp).max_span_width
    return sum(len(words) - k + 1 for words in WORDS for k in range(1, min(width, len(words)) + 1))


@pytest.fixture(scope="module")
def tiny_nlp(tiny_encoder_path):
    # every fusion gated, as in the paper (the CoNLL04 config concatenates the relation parts)
    return build_tiny_pipeline(tiny_encoder_path, gated_relations=True)


def test_gate_profile_weights_sum_to_one_per_gate(tiny_nlp):
    profile = gate_profile(tiny_nlp, [words_doc(tiny_nlp, w) for w in WORDS])
    assert set(profile) == {"span", "pair", "type"}
    assert list(profile["span"]["mean"]) == ["tokens", "context", "width"]
    assert list(profile["pair"]["mean"]) == ["head", "tail", "context", "distance"]
    assert list(profile["type"]["mean"]) == ["relation", "type_distance"]
    # 7 + 5 tokens, spans of width <= 2 (the tiny pipeline's): 13 + 9
    assert profile["span"]["items"] == span_count(tiny_nlp) == 22
    assert profile["pair"]["items"] == profile["type"]["items"] > 0
    for gate in profile.values():
        assert sum(gate["mean"].values()) == pytest.approx(1.0, abs=1e-3)
        assert 0.0 <= gate["selective_share"] <= 1.0
    # the hooks are gone afterwards
    model = span_model(tiny_nlp)
    assert not model.spans.fusion._forward_hooks and not model.relations.pair_fusion._forward_hooks


def test_gate_profile_of_the_conll04_config_has_the_span_gate_only(tiny_encoder_path):
    nlp = build_tiny_pipeline(tiny_encoder_path)
    profile = gate_profile(nlp, [words_doc(nlp, w) for w in WORDS])
    assert set(profile) == {"span"}
    assert profile["span"]["items"] == span_count(nlp)


def test_gate_profile_names_the_boundary_tokens(tiny_encoder_path):
    nlp = build_tiny_pipeline(tiny_encoder_path, boundary_tokens=True)
    profile = gate_profile(nlp, [words_doc(nlp, w) for w in WORDS])
    assert list(profile["span"]["mean"]) == ["tokens", "context", "width", "first_token", "last_token"]
    assert sum(profile["span"]["mean"].values()) == pytest.approx(1.0, abs=1e-3)


def test_gate_profile_of_concatenating_and_untrained_models(tiny_encoder_path):
    nlp = make_nlp(tiny_encoder_path, gated=False, **PREDICT_EVERYTHING)
    with pytest.raises(ValueError, match="no span model yet"):
        gate_profile(nlp, [words_doc(nlp, WORDS[0])])
    from test_spanjoint_component import make_examples

    nlp.initialize(lambda: make_examples(nlp.vocab))
    assert gate_profile(nlp, [words_doc(nlp, WORDS[0])]) == {}
