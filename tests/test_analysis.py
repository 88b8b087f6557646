"""Section 4.4 analyses: F1 by entity length and distance, imbalance of the training candidates."""
import pytest
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.vocab import Vocab

from spacy_spanjoint import Relation
from spacy_spanjoint.analysis.breakdown import (
    DISTANCE_INTERVALS,
    LENGTH_INTERVALS,
    entity_error_profile,
    entity_f1_by_length,
    imbalance_ratios,
    interval_name,
    relation_error_profile,
    relation_f1_by_distance,
)

VOCAB = Vocab()
WORDS = "Ann met Bob of the Bank of New York Mellon in the city of Paris today".split()
ANN, BOB, BANK, PARIS = (0, 1), (2, 3), (5, 10), (14, 15)


def make_doc(entities, relations=()):
    doc = Doc(VOCAB, words=WORDS)
    doc.spans["entities"] = [Span(doc, s, e, label=label) for s, e, label in entities]
    doc._.relations = [Relation(*r) for r in relations]
    return doc


GOLD_ENTITIES = [(*ANN, "PER"), (*BOB, "PER"), (*BANK, "ORG"), (*PARIS, "LOC")]
GOLD_RELATIONS = [(BOB, BANK, "Work_For"), (BANK, PARIS, "OrgBased_In")]


@pytest.mark.parametrize(
    "value,intervals,expected",
    [(1, LENGTH_INTERVALS, "1-2"), (5, LENGTH_INTERVALS, "5-6"), (11, LENGTH_INTERVALS, None),
     (0, DISTANCE_INTERVALS, "0"), (3, DISTANCE_INTERVALS, "1-3"), (7, DISTANCE_INTERVALS, "7-9"),
     (25, DISTANCE_INTERVALS, ">=10")],
)
def test_interval_name(value, intervals, expected):
    assert interval_name(value, intervals) == expected


def test_entity_f1_by_length_scores_each_length_on_its_own():
    # the 5-token bank is predicted 4 tokens long: a miss in 5-6, a false positive in 3-4
    predicted = [(*ANN, "PER"), (*BOB, "PER"), (5, 9, "ORG"), (*PARIS, "LOC")]
    scores = entity_f1_by_length([Example(make_doc(predicted), make_doc(GOLD_ENTITIES))])
    assert scores["1-2"]["f"] == pytest.approx(1.0) and scores["1-2"]["n_gold"] == 3
    assert scores["5-6"]["r"] == 0.0 and scores["5-6"]["n_gold"] == 1
    assert scores["3-4"]["p"] == 0.0 and scores["3-4"]["n_gold"] == 0


def test_entity_error_profile_sorts_each_error_into_one_kind():
    # Ann right; Bob typed ORG; the bank predicted 4 tokens long; Paris missed;
    # "the city" spurious
    predicted = [(*ANN, "PER"), (*BOB, "ORG"), (5, 9, "ORG"), (11, 13, "LOC")]
    profile = entity_error_profile([Example(make_doc(predicted), make_doc(GOLD_ENTITIES))])
    assert profile["gold"] == 4 and profile["predicted"] == 4
    assert (profile["correct"], profile["wrong_type"], profile["boundary"], profile["missed"]) == (1, 1, 1, 1)
    assert profile["false_positive_boundary"] == 1 and profile["false_positive_spurious"] == 1
    assert profile["final_period_gold"] == 0


def test_entity_error_profile_counts_entities_ending_on_the_final_period():
    words = "He shot President Kennedy.".split()
    gold, predicted = Doc(VOCAB, words=words), Doc(VOCAB, words=words)
    gold.spans["entities"] = [Span(gold, 2, 4, label="PER")]
    predicted.spans["entities"] = [Span(predicted, 2, 4, label="PER")]
    found = entity_error_profile([Example(predicted, gold)])
    predicted.spans["entities"] = []
    lost = entity_error_profile([Example(predicted, gold)])
    assert (found["final_period_gold"], found["final_period_correct"]) == (1, 1)
    assert (lost["final_period_gold"], lost["final_period_correct"], lost["missed"]) == (1, 0, 1)


def test_relation_error_profile_tells_missed_entities_from_rejected_pairs():
    gold_relations = GOLD_RELATIONS + [(ANN, BOB, "Kill")]
    # Paris missed -> Bank/Paris lost to the entity; Ann/Bob not predicted ->
    # rejected; Bob/Bank with another type; Ann -> Bank invented
    entities = [(*ANN, "PER"), (*BOB, "PER"), (*BANK, "ORG")]
    predicted = [(BOB, BANK, "Live_In"), (ANN, BANK, "Work_For")]
    profile = relation_error_profile(
        [Example(make_doc(entities, predicted), make_doc(GOLD_ENTITIES, gold_relations))]
    )
    assert profile == {"gold": 3, "predicted": 2, "correct": 0, "entity_missed": 1, "wrong_type": 1,
                       "rejected": 1, "false_positive": 2}


def test_relation_f1_by_distance_uses_tokens_between_the_spans():
    # Bob -> Bank: 2 tokens between ("of the"); Bank -> Paris: 4 tokens between ("in the city of")
    predicted = [(BOB, BANK, "Work_For"), (BANK, PARIS, "Located_In")]
    scores = relation_f1_by_distance(
        [Example(make_doc(GOLD_ENTITIES, predicted), make_doc(GOLD_ENTITIES, GOLD_RELATIONS))]
    )
    assert scores["1-3"]["f"] == pytest.approx(1.0) and scores["1-3"]["n_gold"] == 1
    assert scores["4-6"]["f"] == 0.0 and scores["4-6"]["n_gold"] == 1
    assert scores["0"]["n_gold"] == 0


def test_imbalance_ratios_count_the_sampled_candidates():
    doc = make_doc(GOLD_ENTITIES, GOLD_RELATIONS)
    ratios = imbalance_ratios([doc, doc], ["PER", "ORG", "LOC"], ["Work_For", "OrgBased_In"],
                              span_negatives=20, pair_negatives=5)
    ner, re = ratios["ner"], ratios["re"]
    assert ner["counts"] == {"none": 40, "PER": 4, "ORG": 2, "LOC": 2}
    assert ner["baseline"] == pytest.approx(20.0)  # 40 none : 2 ORG
    assert ner["phase_one"] == pytest.approx(5.0)  # 40 negatives : 8 entities
    assert ner["phase_two"] == pytest.approx(2.0)  # 4 PER : 2 ORG
    # 4 entities give 12 ordered pairs, 2 of them related: 5 negatives drawn of the 10 left
    assert re["counts"] == {"none": 10, "Work_For": 2, "OrgBased_In": 2}
    assert re["phase_one"] == pytest.approx(2.5)
    assert re["phase_two"] == pytest.approx(1.0)
