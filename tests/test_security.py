"""What loading a pipeline folder may do: crafted folders made from the tiny
pipeline must neither write outside the tokenizer's folder nor run stored code."""
import json
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import spacy
import srsly
from typer.testing import CliRunner

from spacy_spanjoint.cli import app
from spacy_spanjoint.encoder.loading import check_file_name


def crafted_pipeline(saved_tiny_pipeline, tmp_path: Path, change) -> Path:
    """A copy of the saved tiny pipeline whose stored encoder data `change` edits."""
    _, source = saved_tiny_pipeline
    path = tmp_path / "crafted"
    shutil.copytree(source, path)
    model_file = path / "transformer" / "model"
    model = srsly.msgpack_loads(model_file.read_bytes())
    for shims in model["shims"]:
        for i, shim_bytes in enumerate(shims):
            shim = srsly.msgpack_loads(shim_bytes)
            change(shim)
            shims[i] = srsly.msgpack_dumps(shim)
    model_file.write_bytes(srsly.msgpack_dumps(model))
    return path


def test_tokenizer_file_named_outside_its_folder_is_refused(saved_tiny_pipeline, tmp_path):
    name = f"spanjoint-escape-{uuid.uuid4().hex}.txt"
    # HFShim writes the files into a folder made by tempfile.mkdtemp().
    target = Path(tempfile.gettempdir()) / name
    path = crafted_pipeline(saved_tiny_pipeline, tmp_path, lambda shim: shim["tokenizer"].update({f"../{name}": b"x"}))
    try:
        with pytest.raises(ValueError, match="not a plain file name"):
            spacy.load(path)
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_stored_remote_code_is_never_run(saved_tiny_pipeline, tmp_path):
    marker = tmp_path / "code-ran"
    module = f"evil_tokenizer_{uuid.uuid4().hex}"

    def add_remote_code(shim):
        tokenizer = shim["tokenizer"]
        tokenizer["kwargs"] = {**tokenizer["kwargs"], "trust_remote_code": True}
        settings = json.loads(tokenizer["tokenizer_config.json"])
        settings["auto_map"] = {"AutoTokenizer": [f"{module}.EvilTokenizer", None]}
        tokenizer["tokenizer_config.json"] = json.dumps(settings).encode("utf8")
        tokenizer[f"{module}.py"] = f"open({str(marker)!r}, 'w').write('ran')\nclass EvilTokenizer: pass\n".encode()

    path = crafted_pipeline(saved_tiny_pipeline, tmp_path, add_remote_code)
    with pytest.raises(ValueError, match="never"):
        spacy.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda shim: shim["tokenizer"]["kwargs"].update(trust_remote_code=True), "trust_remote_code"),
        (lambda shim: shim["config"].update(auto_map={"AutoModel": "evil.Model"}), "auto_map"),
    ],
    ids=["tokenizer settings", "transformer config"],
)
def test_stored_settings_cannot_switch_on_remote_code(saved_tiny_pipeline, tmp_path, change, message):
    path = crafted_pipeline(saved_tiny_pipeline, tmp_path, change)
    with pytest.raises(ValueError, match=message):
        spacy.load(path)


def test_config_cannot_switch_on_remote_code(saved_tiny_pipeline):
    _, path = saved_tiny_pipeline
    overrides = {"components": {"transformer": {"model": {"tokenizer_config": {"trust_remote_code": True}}}}}
    with pytest.raises(ValueError, match="trust_remote_code"):
        spacy.load(path, config=overrides)


def test_untouched_pipeline_still_loads_and_predicts(saved_tiny_pipeline, tmp_path):
    path = crafted_pipeline(saved_tiny_pipeline, tmp_path, lambda shim: None)
    doc = spacy.load(path)("Anna married Tom.")
    assert doc.spans["entities"]


def test_predict_reports_a_refused_pipeline_without_a_traceback(saved_tiny_pipeline, tmp_path):
    path = crafted_pipeline(saved_tiny_pipeline, tmp_path, lambda shim: shim["tokenizer"].update({"a/b.txt": b"x"}))
    text = tmp_path / "in.txt"
    text.write_text("Anna married Tom.\n", encoding="utf8")
    result = CliRunner().invoke(app, ["predict", str(path), str(text), str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "not a plain file name" in result.output
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("name", ["../x.txt", "/etc/x.txt", "a/b.txt", "a\\b.txt", "..", ".", "", "x.py", 3])
def test_stored_file_names_must_be_plain(name):
    with pytest.raises(ValueError):
        check_file_name(name)
