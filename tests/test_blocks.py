"""`SpanJointModel.v2` (composed from registered blocks) builds the model `SpanJointModel.v1` builds."""
from pathlib import Path

import pytest
from spacy.util import load_config, registry
from thinc.api import Config

from spacy_spanjoint.layers.blocks import V1_TO_V2, flat_settings, model_setting
from spacy_spanjoint.model.spanjoint import DECODING_SETTINGS

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.cfg"))


def built_attrs(model_block: dict) -> dict:
    model = registry.resolve(Config({"model": model_block}))["model"]
    hyper = {k: v for k, v in model.attrs["hyper"].items() if k not in DECODING_SETTINGS or k == "class_threshold"}
    return {**model.attrs, "hyper": hyper}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_v2_config_builds_the_model_of_its_v1_form(path):
    component = load_config(path)["components"]["spanjoint"]
    assert component["model"]["@architectures"] == "spacy-spanjoint.SpanJointModel.v2"
    flat = flat_settings(component)
    v1 = {"@architectures": "spacy-spanjoint.SpanJointModel.v1", "pooling": component["model"]["pooling"],
          **{k: v for k, v in flat.items() if k not in DECODING_SETTINGS or k == "class_threshold"}}
    assert built_attrs(v1) == built_attrs(component["model"])


def test_every_v1_setting_has_one_place_in_v2():
    targets = list(V1_TO_V2.values())
    assert len(targets) == len(set(targets))
    assert model_setting("two_phase") == "model.classifiers.two_phase"
    assert model_setting("relation_threshold") == "relation_threshold"
    with pytest.raises(KeyError, match="tow_phase"):
        model_setting("tow_phase")


def test_blocks_refuse_settings_without_meaning():
    with pytest.raises(ValueError, match="max_span_width"):
        registry.misc.get("spacy-spanjoint.span_representation.v1")(max_span_width=0)
    with pytest.raises(ValueError, match="dropout"):
        registry.misc.get("spacy-spanjoint.classifiers.v1")(dropout=1.0)
