"""The entity and relation scorer on hand-made Examples with known scores."""
import pytest
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry
from spacy.vocab import Vocab

from spacy_spanjoint import Relation
from spacy_spanjoint.pipeline.relations import SYMMETRIC_LABELS_KEY
from spacy_spanjoint.pipeline.scoring import score_relations, score_spanjoint

WORDS = ["Ann", "and", "Bob", "live", "in", "New", "York", "City", "."]
ANN, BOB, NY, NYC = (0, 1), (2, 3), (5, 7), (5, 8)

VOCAB = Vocab()


def make_doc(entities, relations=(), words=WORDS, spaces=None, symmetric=None):
    """A Doc with `doc.spans["entities"]` from (start, end, label) and its relations."""
    doc = Doc(VOCAB, words=words, spaces=spaces)
    doc.spans["entities"] = [Span(doc, s, e, label=label) for s, e, label in entities]
    doc._.relations = [Relation(*r) for r in relations]
    if symmetric is not None:
        doc.user_data[SYMMETRIC_LABELS_KEY] = list(symmetric)
    return doc


GOLD_ENTITIES = [(*ANN, "PER"), (*BOB, "PER"), (*NY, "LOC"), (*NYC, "LOC")]


def example(pred_entities, pred_relations, gold_relations, gold_entities=GOLD_ENTITIES, symmetric=None):
    return Example(
        make_doc(pred_entities, pred_relations),
        make_doc(gold_entities, gold_relations, symmetric=symmetric),
    )


def test_wrong_entity_type_counts_for_boundaries_only():
    pred_entities = [(*ANN, "PER"), (*BOB, "PER"), (*NY, "ORG"), (*NYC, "LOC")]
    gold_relations = [(ANN, NY, "Lives_In"), (BOB, NYC, "Lives_In")]
    scores = score_relations([example(pred_entities, gold_relations, gold_relations)])
    # (Ann, NY) has the right spans but NY is an ORG in the prediction
    assert scores["relations_p"] == pytest.approx(0.5)
    assert scores["relations_r"] == pytest.approx(0.5)
    assert scores["relations_f"] == pytest.approx(0.5)
    assert scores["relations_boundaries_p"] == pytest.approx(1.0)
    assert scores["relations_boundaries_r"] == pytest.approx(1.0)
    assert scores["relations_boundaries_f"] == pytest.approx(1.0)


def test_unpredicted_gold_relation_is_a_miss():
    gold_relations = [(ANN, NY, "Lives_In"), (BOB, NY, "Lives_In"), (ANN, BOB, "Spouse")]
    scores = score_relations([example(GOLD_ENTITIES, gold_relations[:2], gold_relations)])
    assert scores["relations_p"] == pytest.approx(1.0)
    assert scores["relations_r"] == pytest.approx(2 / 3)
    assert scores["relations_f"] == pytest.approx(0.8)
    # a doc where nothing is predicted
    scores = score_relations([example(GOLD_ENTITIES, [], gold_relations)])
    assert scores["relations_r"] == 0.0 and scores["relations_f"] == 0.0


def test_relation_scores_pool_over_examples():
    examples = [
        example(GOLD_ENTITIES, [(ANN, NY, "Lives_In")], [(ANN, NY, "Lives_In")]),
        example(GOLD_ENTITIES, [(BOB, NY, "Lives_In"), (ANN, NYC, "Lives_In")], [(BOB, NY, "Lives_In")]),
    ]
    scores = score_relations(examples)
    assert scores["relations_p"] == pytest.approx(2 / 3)
    assert scores["relations_r"] == pytest.approx(1.0)


def test_symmetric_label_from_gold_doc_matches_either_order():
    scores = score_relations(
        [example(GOLD_ENTITIES, [(BOB, ANN, "Spouse")], [(ANN, BOB, "Spouse")], symmetric=["Spouse"])]
    )
    assert scores["relations_f"] == pytest.approx(1.0)
    assert scores["relations_boundaries_f"] == pytest.approx(1.0)


def test_symmetric_label_from_argument_matches_either_order():
    eg = example(GOLD_ENTITIES, [(BOB, ANN, "Spouse")], [(ANN, BOB, "Spouse")])
    assert score_relations([eg])["relations_f"] == 0.0
    assert score_relations([eg], symmetric_relations=["Spouse"])["relations_f"] == pytest.approx(1.0)
    scores = score_spanjoint([eg], symmetric_relations=["Spouse"])
    assert scores["relations_f"] == pytest.approx(1.0)


def test_non_symmetric_label_reversed_does_not_match():
    # Spouse is symmetric, Lives_In is not
    gold = [(ANN, NY, "Lives_In"), (ANN, BOB, "Spouse")]
    pred = [(NY, ANN, "Lives_In"), (BOB, ANN, "Spouse")]
    scores = score_relations([example(GOLD_ENTITIES, pred, gold, symmetric=["Spouse"])])
    assert scores["relations_p"] == pytest.approx(0.5)
    assert scores["relations_r"] == pytest.approx(0.5)
    assert scores["relations_per_type"]["Lives_In"]["f"] == 0.0
    assert scores["relations_per_type"]["Spouse"]["f"] == pytest.approx(1.0)
    assert scores["relations_boundaries_per_type"]["Lives_In"]["f"] == 0.0


def test_relation_type_must_match():
    scores = score_relations([example(GOLD_ENTITIES, [(ANN, NY, "Work_For")], [(ANN, NY, "Lives_In")])])
    assert scores["relations_f"] == 0.0
    assert scores["relations_boundaries_f"] == 0.0
    assert set(scores["relations_per_type"]) == {"Lives_In", "Work_For"}


def test_relation_macro_f_is_mean_of_per_type_f():
    gold = [(ANN, NY, "Lives_In"), (BOB, NY, "Lives_In"), (ANN, BOB, "Spouse")]
    pred = [(ANN, NY, "Lives_In"), (ANN, BOB, "Spouse"), (BOB, ANN, "Spouse")]
    scores = score_relations([example(GOLD_ENTITIES, pred, gold)])
    lives_in, spouse = scores["relations_per_type"]["Lives_In"], scores["relations_per_type"]["Spouse"]
    assert lives_in == pytest.approx({"p": 1.0, "r": 0.5, "f": 2 / 3})
    assert spouse == pytest.approx({"p": 0.5, "r": 1.0, "f": 2 / 3})
    assert scores["relations_f"] == pytest.approx(2 / 3)
    assert scores["relations_macro_f"] == pytest.approx((lives_in["f"] + spouse["f"]) / 2)
    # unequal per-type F: the macro average is not the micro one
    scores = score_relations([example(GOLD_ENTITIES, pred[:2], gold)])
    per_type = scores["relations_per_type"]
    assert per_type["Lives_In"]["f"] == pytest.approx(2 / 3) and per_type["Spouse"]["f"] == pytest.approx(1.0)
    assert scores["relations_macro_f"] == pytest.approx(5 / 6)
    assert scores["relations_f"] == pytest.approx(0.8)


def test_entity_keys_with_nested_spans():
    pred_entities = [(*ANN, "PER"), (*NY, "LOC"), (*NYC, "ORG"), (5, 6, "LOC")]
    scores = score_spanjoint([example(pred_entities, [], [])])
    for key in ("p", "r", "f", "per_type", "macro_f"):
        assert f"spans_entities_{key}" in scores
    assert scores["spans_entities_p"] == pytest.approx(2 / 4)
    assert scores["spans_entities_r"] == pytest.approx(2 / 4)
    per_type = scores["spans_entities_per_type"]
    assert per_type["PER"] == pytest.approx({"p": 1.0, "r": 0.5, "f": 2 / 3})
    assert per_type["LOC"] == pytest.approx({"p": 0.5, "r": 0.5, "f": 0.5})
    assert per_type["ORG"] == pytest.approx({"p": 0.0, "r": 0.0, "f": 0.0})
    assert scores["spans_entities_macro_f"] == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)
    for key in ("p", "r", "f", "macro_f", "per_type"):
        assert f"relations_{key}" in scores and f"relations_boundaries_{key}" in scores


def test_spans_key_is_configurable():
    gold = make_doc([])
    gold.spans["ents2"] = [Span(gold, 0, 1, label="PER")]
    pred = make_doc([])
    pred.spans["ents2"] = [Span(pred, 0, 1, label="PER")]
    scores = score_spanjoint([Example(pred, gold)], spans_key="ents2")
    assert scores["spans_ents2_f"] == pytest.approx(1.0)


def test_different_tokenization_is_aligned():
    gold_words, gold_spaces = ["Dr", ".", "Ann", "lives", "in", "Oslo"], [False, True, True, True, True, False]
    pred_words, pred_spaces = ["Dr.", "Ann", "lives", "in", "Oslo"], [True, True, True, True, False]
    gold = make_doc([(2, 3, "PER"), (5, 6, "LOC")], [((2, 3), (5, 6), "Lives_In")], gold_words, gold_spaces)
    pred = make_doc([(1, 2, "PER"), (4, 5, "LOC")], [((1, 2), (4, 5), "Lives_In")], pred_words, pred_spaces)
    scores = score_spanjoint([Example(pred, gold)])
    assert scores["spans_entities_f"] == pytest.approx(1.0)
    assert scores["relations_f"] == pytest.approx(1.0)
    # the same offsets without the alignment would be wrong
    shifted = make_doc([(2, 3, "PER"), (4, 5, "LOC")], [((2, 3), (4, 5), "Lives_In")], pred_words, pred_spaces)
    assert score_spanjoint([Example(shifted, gold)])["relations_f"] == 0.0


def test_registered_scorer():
    scorer = registry.scorers.get("spacy-spanjoint.spanjoint_scorer.v1")()
    assert scorer is score_spanjoint
