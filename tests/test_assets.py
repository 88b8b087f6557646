"""Fetching corpora from project.yml: mirror first, sha256 verified, clear errors."""
import hashlib
from pathlib import Path

import pytest
import srsly
from typer.testing import CliRunner

from spacy_spanjoint.data.assets import AssetError, fetch_assets, read_assets
from spacy_spanjoint.cli import app

CONTENT = b'[{"tokens": ["a"], "entities": [], "relations": []}]'
SHA = hashlib.sha256(CONTENT).hexdigest()


def make_project(tmp_path: Path, sha: str = SHA, optional: bool = False) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    asset = {"dest": "assets/corpus/train.json", "url": "http://127.0.0.1:9/train.json", "sha256": sha}
    if optional:
        asset["optional"] = True
    srsly.write_yaml(project / "project.yml", {"title": "t", "assets": [asset]})
    return project / "project.yml"


def make_mirror(tmp_path: Path, content: bytes = CONTENT) -> Path:
    mirror = tmp_path / "mirror"
    (mirror / "corpus").mkdir(parents=True)
    (mirror / "corpus" / "train.json").write_bytes(content)
    return mirror


def test_fetch_copies_from_mirror_and_verifies(tmp_path):
    project_file = make_project(tmp_path)
    results = fetch_assets(project_file, make_mirror(tmp_path))
    dest = project_file.parent / "assets/corpus/train.json"
    assert dest.read_bytes() == CONTENT
    assert results["assets/corpus/train.json"].endswith("train.json")
    # a second run keeps the verified file
    assert fetch_assets(project_file, make_mirror(tmp_path / "again"))["assets/corpus/train.json"] == "present"


def test_corrupt_mirror_copy_names_file_and_both_checksums(tmp_path):
    project_file = make_project(tmp_path)
    bad = b"corrupt"
    with pytest.raises(AssetError) as error:
        fetch_assets(project_file, make_mirror(tmp_path, bad))
    message = str(error.value)
    assert "assets/corpus/train.json" in message
    assert SHA in message and hashlib.sha256(bad).hexdigest() in message
    assert not (project_file.parent / "assets/corpus/train.json").exists()


def test_a_users_edited_copy_is_never_deleted_or_replaced(tmp_path):
    project_file = make_project(tmp_path)
    dest = project_file.parent / "assets/corpus/train.json"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"my edits")
    for mirror in (make_mirror(tmp_path), make_mirror(tmp_path / "bad", b"corrupt")):
        with pytest.raises(AssetError, match="left as it is"):
            fetch_assets(project_file, mirror)
        assert dest.read_bytes() == b"my edits"
    assert [p.name for p in dest.parent.iterdir()] == ["train.json"]


@pytest.mark.parametrize("dest", ["../outside.json", "assets/../../outside.json", "/tmp/spanjoint-outside.json"])
def test_destinations_outside_the_project_are_refused(tmp_path, dest):
    project = tmp_path / "project"
    project.mkdir()
    asset = {"dest": dest, "url": "http://127.0.0.1:9/x.json", "sha256": SHA}
    srsly.write_yaml(project / "project.yml", {"title": "t", "assets": [asset]})
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (tmp_path / "outside.json").write_bytes(CONTENT)  # a mirrored copy for the relative dests
    with pytest.raises(AssetError, match="outside the project folder"):
        fetch_assets(project / "project.yml", mirror)
    assert not Path("/tmp/spanjoint-outside.json").exists()
    assert (tmp_path / "outside.json").read_bytes() == CONTENT


def test_missing_asset_names_file_mirror_and_url(tmp_path):
    project_file = make_project(tmp_path)
    empty_mirror = tmp_path / "empty"
    empty_mirror.mkdir()
    with pytest.raises(AssetError) as error:
        fetch_assets(project_file, empty_mirror)
    message = str(error.value)
    assert "assets/corpus/train.json" in message
    assert str(empty_mirror) in message and "http://127.0.0.1:9/train.json" in message


def test_optional_assets_are_skipped_unless_asked(tmp_path):
    project_file = make_project(tmp_path, optional=True)
    assert fetch_assets(project_file, None) == {}
    with pytest.raises(AssetError):
        fetch_assets(project_file, None, include_optional=True)


def test_cli_exits_non_zero_on_bad_asset(tmp_path):
    project_file = make_project(tmp_path, sha="0" * 64)
    result = CliRunner().invoke(app, ["fetch-assets", str(project_file), "--mirror", str(make_mirror(tmp_path))])
    assert result.exit_code == 1
    assert "0" * 64 in result.output


def test_project_yml_declares_every_corpus_with_sha256():
    project_file = Path(__file__).parent.parent / "project.yml"
    assets = {a.dest: a for a in read_assets(project_file)}
    required = [d for d, a in assets.items() if not a.optional]
    assert {"assets/conll04/conll04_train.json", "assets/conll04/conll04_dev.json",
            "assets/conll04/conll04_test.json", "assets/conll04/conll04_types.json",
            "assets/ade/ade_full.json", "assets/ade/ade_types.json"} <= set(required)
    assert sum(d.startswith("assets/ade/ade_split_") for d in required) == 20
    assert all(len(a.sha256) == 64 and a.url.startswith("https://") for a in assets.values())
    assert any(d.startswith("assets/scierc/") and a.optional for d, a in assets.items())
