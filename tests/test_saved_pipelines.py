"""Pipelines saved by earlier code (`saved_pipelines.py`) load and predict what they predicted when saved."""
import json
import shutil
from pathlib import Path

import pytest
import spacy

from saved_pipelines import CONFIGS, TEXTS, predictions

FIXTURES = Path(__file__).parent / "fixtures" / "saved_pipelines"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_saved_pipeline_predicts_as_when_saved(name, tmp_path):
    # a copy, so that loading can never write into the fixture
    folder = shutil.copytree(FIXTURES / name, tmp_path / name)
    expected = json.loads((folder / "expected.json").read_text())
    nlp = spacy.load(folder)
    got = predictions(nlp, TEXTS)
    assert [doc["text"] for doc in got] == TEXTS
    assert any(doc["relations"] for doc in expected), "the fixture predicts relations"
    for doc, want in zip(got, expected):
        assert [e[:3] for e in doc["entities"]] == [e[:3] for e in want["entities"]], doc["text"]
        assert [r[:3] for r in doc["relations"]] == [r[:3] for r in want["relations"]], doc["text"]
        assert [e[3] for e in doc["entities"]] == pytest.approx([e[3] for e in want["entities"]], abs=1e-5)
        assert [r[3] for r in doc["relations"]] == pytest.approx([r[3] for r in want["relations"]], abs=1e-5)
