"""Decoding settings and loss weights in the component's config: they change at
load time, without retraining, and override the architecture's values."""
import shutil
from pathlib import Path

import pytest
import spacy
from thinc.api import fix_random_seed

from saved_pipelines import TEXTS, predictions
from test_spanjoint_component import make_examples

FIXTURES = Path(__file__).parent / "fixtures" / "saved_pipelines"


@pytest.fixture
def conll04_pipeline(tmp_path):
    return shutil.copytree(FIXTURES / "conll04", tmp_path / "conll04")


def relation_count(nlp) -> int:
    return sum(len(doc["relations"]) for doc in predictions(nlp, TEXTS))


def test_relation_threshold_changes_at_load_time(conll04_pipeline):
    saved = spacy.load(conll04_pipeline)
    assert saved.get_pipe("spanjoint").decoding_in_effect["relation_threshold"] == 0.0
    strict = spacy.load(conll04_pipeline, config={"components": {"spanjoint": {"relation_threshold": 0.9}}})
    assert strict.get_pipe("spanjoint").decoding_in_effect["relation_threshold"] == 0.9
    # a relation's score is its phase-one probability times its type's, so only the count is checked
    assert 0 < relation_count(strict) < relation_count(saved)


def test_entity_threshold_and_cap_change_at_load_time(conll04_pipeline):
    none = spacy.load(conll04_pipeline, config={"components": {"spanjoint": {"entity_threshold": 1.01}}})
    assert all(not doc["entities"] for doc in predictions(none, TEXTS))
    one = spacy.load(conll04_pipeline, config={"components": {"spanjoint": {"max_entities_per_window": 1}}})
    assert all(len(doc["entities"]) <= 2 for doc in predictions(one, TEXTS))  # at most one per sentence
    assert relation_count(one) == 0


def test_set_decoding_changes_a_loaded_pipeline(conll04_pipeline):
    nlp = spacy.load(conll04_pipeline)
    before = relation_count(nlp)
    nlp.get_pipe("spanjoint").set_decoding(relation_threshold=0.9)
    assert relation_count(nlp) < before
    with pytest.raises(ValueError, match="unknown decoding settings"):
        nlp.get_pipe("spanjoint").set_decoding(relation_treshold=0.5)


def test_class_threshold_needs_ranking_scores(conll04_pipeline):
    with pytest.raises(ValueError, match="class_threshold"):
        spacy.load(conll04_pipeline, config={"components": {"spanjoint": {"class_threshold": 0.85}}})


def test_loss_weights_come_from_the_component(tmp_path):
    folder = shutil.copytree(FIXTURES / "spertmt", tmp_path / "spertmt")
    losses = {}
    for name, weights in {"saved": {}, "zero": {"identification_weight": 0.0, "classification_weight": 0.0}}.items():
        nlp = spacy.load(folder, config={"components": {"spanjoint": weights}})
        losses[name] = nlp.update(make_examples(nlp.vocab), sgd=None, losses={})["spanjoint"]
    assert losses["saved"] > 0
    assert losses["zero"] == 0.0


def test_training_dropout_is_not_read(tmp_path):
    """`[training] dropout` reaches `update` as `drop`; neither component reads it."""
    losses = []
    for drop in (0.0, 0.9):
        nlp = spacy.load(shutil.copytree(FIXTURES / "conll04", tmp_path / f"drop{drop}"))
        examples = make_examples(nlp.vocab)
        optimizer = nlp.resume_training()
        fix_random_seed(0)  # the encoder's own dropout draws from torch's generator
        nlp.update(examples, drop=drop, sgd=optimizer, losses={})
        losses.append(nlp.update(examples, drop=drop, sgd=optimizer, losses={}))
    assert losses[0] == losses[1]
