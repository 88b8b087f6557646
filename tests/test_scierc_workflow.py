"""The SciERC workflow (convert-scierc, train-scierc, evaluate-scierc of project.yml) on a tiny
fixture in SciERC's SpERT JSON format: it converts, trains, and scores relations by boundaries."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "scierc"


def project_run(project: Path, command: str, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "spacy", "project", "run", command, str(project), *args],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
def test_scierc_workflow_converts_trains_and_scores_by_boundaries(tiny_encoder_path, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "project.yml", project)
    for folder in ("configs", "scripts"):
        shutil.copytree(ROOT / folder, project / folder)
    shutil.copytree(FIXTURE, project / "assets" / "scierc")

    project_run(project, "convert-scierc")
    assert sorted(p.name for p in (project / "corpus").iterdir()) == [
        "scierc_dev.spacy", "scierc_test.spacy", "scierc_train.spacy"]
    project_run(project, "train-scierc", "--vars.encoder", str(tiny_encoder_path), "--vars.scierc_max_steps", "2")
    project_run(project, "evaluate-scierc")

    metrics = json.loads((project / "metrics" / "scierc_test.json").read_text())
    for key in ("spans_entities_f", "relations_f", "relations_boundaries_f"):
        assert 0.0 <= metrics[key] <= 1.0, key
    config = (project / "training" / "scierc" / "model-best" / "config.cfg").read_text()
    assert "scierc_train.spacy" in config and "relations_boundaries_f = 0.5" in config
    labels = json.loads((project / "training" / "scierc" / "model-best" / "spanjoint" / "cfg").read_text())
    assert labels["symmetric_relations"] == ["Compare", "Conjunction"]
    assert labels["entity_labels"] == ["Generic", "Material", "Method", "Metric", "OtherScientificTerm", "Task"]
