"""The `en_spanjoint` package: a trained pipeline prepared by
`prepare_pipeline`, built by spaCy's `spacy package`, installed with pip and
loaded by name in a fresh process that never imports spacy_spanjoint."""
import importlib.util
import json
import os
import subprocess
import sys

import srsly
from spacy.cli.package import package

from spacy_spanjoint.data.packaging import prepare_pipeline
from tiny_pipeline import build_tiny_pipeline

TEXT = "John Smith lives in New York. Mary works for Acme Corp in Paris. Anna married Tom."
LOAD_SCRIPT = """
import json, sys
import spacy
imported_before_load = "spacy_spanjoint" in sys.modules
nlp = spacy.load("en_spanjoint")
doc = nlp(sys.argv[1])
print(json.dumps({
    "imported_before_load": imported_before_load,
    "package_file": __import__("en_spanjoint").__file__,
    "pipeline": nlp.pipe_names,
    "sentences": [sent.text for sent in doc.sents],
    "entities": [[span.start, span.end, span.label_] for span in doc.spans["entities"]],
    "scores": list(doc.spans["entities"].attrs["scores"]),
    "relations": [[list(r.head), list(r.tail), r.label, r.score] for r in doc._.relations],
}))
"""


def test_package_loads_by_name_and_reads_raw_text(tiny_encoder_path, tmp_path):
    model = tmp_path / "model-best"
    build_tiny_pipeline(tiny_encoder_path).to_disk(model)
    meta = prepare_pipeline(model, tmp_path / "prepared", name="spanjoint", version="0.0.1")
    assert meta["pipeline"][0] == "sentencizer"
    assert any(req.startswith("spacy-spanjoint>=") for req in meta["requirements"])

    package(tmp_path / "prepared", tmp_path, create_sdist=False, create_wheel=False)
    source = tmp_path / "en_spanjoint-0.0.1"
    assert "spacy-spanjoint" in " ".join(srsly.read_json(source / "meta.json")["requirements"])
    target = tmp_path / "site"
    # Offline with the environment's setuptools; Python >= 3.12 venvs lack it,
    # and pip then fetches it for an isolated build.
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *offline, "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, TEXT], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert not output["imported_before_load"]
    assert output["package_file"].startswith(str(target))
    assert output["pipeline"] == ["sentencizer", "transformer", "spanjoint"]
    assert len(output["sentences"]) == 3
    assert output["entities"] and len(output["scores"]) == len(output["entities"])
    assert output["relations"]
    entities = {(start, end) for start, end, _ in output["entities"]}
    for head, tail, label, score in output["relations"]:
        assert tuple(head) in entities and tuple(tail) in entities


def test_ci_tests_the_installed_package_not_the_checkout():
    """.ci/run sets SPANJOINT_TEST_INSTALLED: the package under test is then the one pip
    installed, not the source folder beside the tests."""
    import pytest

    import spacy_spanjoint

    if os.environ.get("SPANJOINT_TEST_INSTALLED") != "1":
        pytest.skip("only where the installed package is tested (.ci/run)")
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert not os.path.abspath(spacy_spanjoint.__file__).startswith(checkout + os.sep)
    assert "site-packages" in spacy_spanjoint.__file__
