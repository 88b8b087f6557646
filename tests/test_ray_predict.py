"""`predict --engine ray`: shards, and Ray Data jobs on a local Ray (2 CPUs)
with the tiny pipeline. Ray starts once for the module; three jobs run in it
(the first shared by several tests), since each costs seconds of actor start-up."""
import json
import os
import shutil
import sys

import pytest
from typer.testing import CliRunner

from extras import require

from spacy_spanjoint.cli import app
from spacy_spanjoint.data.predict import predict_file, read_records
from spacy_spanjoint.scale import Extractor, PlanMismatch, plan_shards, read_output, run_job
from spacy_spanjoint.scale.shards import prepare_output, read_shard, shard_file, write_shard

TEXTS = ["John Smith lives in New York. Mary works for Acme Corp in Paris.", "Anna married Tom.", "Bob visited Rome."]
BAD_LINES = {4: "{not json", 9: json.dumps({"title": "no text"}), 13: json.dumps({"text": 7})}
SHARD_SIZE = 4


def write_jsonl(path, n_lines):
    """JSON Lines with ids, bad lines at `BAD_LINES` and a blank line 6."""
    lines = []
    for number in range(1, n_lines + 1):
        if number in BAD_LINES:
            lines.append(BAD_LINES[number])
        elif number == 6:
            lines.append("")
        else:
            lines.append(json.dumps({"id": f"n{number}", "text": f"{TEXTS[number % 3]} Item {number}.", "source": "news"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf8")


@pytest.fixture(scope="module")
def job_input(tmp_path_factory):
    """A folder of a JSON Lines file (with bad lines), a .txt file and a Parquet file."""
    pa = require("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("ray_input")
    write_jsonl(folder / "a.jsonl", 14)
    (folder / "b.txt").write_text("\n".join(TEXTS * 2) + "\n\n", encoding="utf8")
    table = pa.table({"text": [TEXTS[0], None, TEXTS[2]], "lang": ["en", "en", "fr"]})
    pq.write_table(table, str(folder / "c.parquet"), row_group_size=2)
    return folder


@pytest.fixture(scope="module")
def local_ray():
    ray = require("ray")
    require("ray.data")
    # The test's own classes (a flaky extractor) travel to the workers by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def first_job(local_ray, saved_tiny_pipeline, job_input, tmp_path_factory):
    """One job over the whole input folder: 2 actors, batches of 3, shards of 4."""
    _, model = saved_tiny_pipeline
    output = tmp_path_factory.mktemp("ray_output") / "out"
    summary = run_job(model, job_input, output, actors=2, batch_size=3, shard_size=SHARD_SIZE)
    return output, summary


def without_source(record):
    return {key: value for key, value in record.items() if key not in ("file", "line")}


# Shards, without Ray


def test_shards_cover_every_record_once_and_never_span_files(job_input):
    shards = plan_shards(job_input, SHARD_SIZE)
    assert [(s.name, s.count) for s in shards] == [
        ("a.jsonl", 4), ("a.jsonl", 4), ("a.jsonl", 4), ("a.jsonl", 1), ("b.txt", 4), ("b.txt", 2), ("c.parquet", 3)
    ]
    rows = [row for shard in shards for row in read_shard(shard)]
    expected = [(number, record, problem) for number, record, problem in read_records(job_input / "a.jsonl")]
    jsonl_rows = [row for row in rows if row["file"] == "a.jsonl"]
    assert [row["line"] for row in jsonl_rows] == [number for number, _, _ in expected]
    for row, (_, record, problem) in zip(jsonl_rows, expected):
        assert (json.loads(row["record"]) if row["record"] else None) == record
        assert row["problem"] == (problem.reason if problem else "")
    assert [row["line"] for row in rows if row["file"] == "b.txt"] == [1, 2, 3, 4, 5, 6]
    parquet = [row for row in rows if row["file"] == "c.parquet"]
    assert [row["problem"] for row in parquet] == ["", "'text' must be a string, got NoneType", ""]
    assert json.loads(parquet[2]["record"]) == {"text": TEXTS[2], "lang": "fr"}


def test_an_output_folder_of_another_job_is_refused(job_input, tmp_path):
    shards = plan_shards(job_input, SHARD_SIZE)
    assert prepare_output(tmp_path / "out", shards, "jsonl", SHARD_SIZE) == shards
    with pytest.raises(PlanMismatch):
        prepare_output(tmp_path / "out", plan_shards(job_input, 5), "jsonl", 5)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine", encoding="utf8")
    with pytest.raises(PlanMismatch):
        prepare_output(tmp_path / "other", shards, "jsonl", SHARD_SIZE)


def test_only_complete_shards_count_as_done(job_input, tmp_path):
    shards = plan_shards(job_input, SHARD_SIZE)
    output = tmp_path / "out"
    prepare_output(output, shards, "parquet", SHARD_SIZE)
    write_shard(shard_file(output, shards[1], "parquet"), ['{"id": "x", "entities": []}', '{"file": "f", "line": 2, "error": "bad"}'], "parquet")
    (output / ".part-00002.parquet.tmp").write_bytes(b"half a shard")
    todo = prepare_output(output, shards, "parquet", SHARD_SIZE)
    assert [shard.index for shard in todo] == [0, 2, 3, 4, 5, 6]
    assert not list(output.glob(".*.tmp"))
    assert read_output(output) == [{"id": "x", "entities": []}, {"file": "f", "line": 2, "error": "bad"}]


def test_options_are_checked_before_ray_starts(saved_tiny_pipeline, job_input, tmp_path):
    _, model = saved_tiny_pipeline
    require("ray.data")
    run = CliRunner().invoke
    result = run(app, ["predict", str(model), str(job_input), str(tmp_path / "out"), "--engine", "ray", "--format", "csv"])
    assert result.exit_code == 1 and "for --engine ray" in result.output
    result = run(app, ["predict", str(model), str(job_input), str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1 and "needs --engine ray" in result.output
    assert not (tmp_path / "out").exists()


# Jobs on a local Ray


def test_ray_output_equals_single_process_predict(first_job, saved_tiny_pipeline, job_input, tmp_path):
    nlp, _ = saved_tiny_pipeline
    output, summary = first_job
    good = [r for r in read_output(output) if "error" not in r]
    # The JSON Lines input has ids; the text (whose ids are line numbers) and Parquet records
    # name their file and line too.
    got = {"a.jsonl": [r for r in good if "id" in r and "file" not in r],
           "b.txt": [without_source(r) for r in good if r.get("file") == "b.txt"]}
    for name, records in got.items():
        predict_file(nlp, job_input / name, tmp_path / "expected.jsonl", batch_size=3)
        expected = [json.loads(line) for line in (tmp_path / "expected.jsonl").read_text(encoding="utf8").splitlines()]
        assert records == expected
    records = read_output(output)
    assert [r["line"] for r in records if r.get("file") == "b.txt"] == [1, 2, 3, 4, 5, 6]
    parquet = [r for r in records if r.get("file") == "c.parquet" and "error" not in r]
    assert [(r["line"], r["lang"]) for r in parquet] == [(1, "en"), (3, "fr")]
    assert parquet[0]["entities"] == json.loads(json.dumps(predict_one(nlp, TEXTS[0])))["entities"]
    assert summary["shards_written"] == summary["shards"] == 7 and summary["shards_skipped"] == 0
    assert json.loads((output / "_summary.json").read_text(encoding="utf8")) == summary


def predict_one(nlp, text):
    from spacy_spanjoint.data.predict import doc_to_record, spans_key_of

    return doc_to_record(nlp(text), {"text": text}, spans_key_of(nlp))


def test_bad_records_become_error_records_and_nothing_is_lost(first_job):
    output, summary = first_job
    records = read_output(output)
    errors = [r for r in records if "error" in r]
    assert [(r["file"], r["line"]) for r in errors] == [("a.jsonl", 4), ("a.jsonl", 9), ("a.jsonl", 13), ("c.parquet", 2)]
    assert "invalid JSON" in errors[0]["error"] and "missing 'text'" in errors[1]["error"]
    # Every non-blank line of the input exactly once: 13 + 6 + 3.
    keys = [(r["file"], r["line"]) if "file" in r else r["id"] for r in records]
    assert len(keys) == len(set(keys)) == summary["documents"] == 22
    assert summary["errors"] == 4


def test_restarted_job_skips_complete_shards(first_job, saved_tiny_pipeline, job_input, tmp_path):
    _, model = saved_tiny_pipeline
    complete, _ = first_job
    output = tmp_path / "out"
    shutil.copytree(complete, output)
    # A run stopped while writing shard 2: its temporary file, and no shard file.
    (output / "part-00002.jsonl").rename(output / ".part-00002.jsonl.tmp")
    kept = {path.name: path.stat().st_mtime_ns for path in output.glob("part-*")}
    result = CliRunner().invoke(
        app, ["predict", str(model), str(job_input), str(output), "--engine", "ray", "--shard-size", str(SHARD_SIZE), "--batch-size", "3"]
    )
    assert result.exit_code == 1, result.output  # the input has bad records
    printed = " ".join(result.output.split())
    assert "Wrote 1 shard(s)" in printed and "(6 of 7 already complete)" in printed
    assert {name: (output / name).stat().st_mtime_ns for name in kept} == kept
    assert not list(output.glob(".*.tmp"))
    assert read_output(output) == read_output(complete)
    summary = json.loads((output / "_summary.json").read_text(encoding="utf8"))
    assert (summary["shards_skipped"], summary["shards_written"], summary["documents"]) == (6, 1, 4)


class ExplodingPipeline:
    """A pipeline that fails on any text with 'BOOM' in it, in a batch or alone."""

    def __init__(self, nlp):
        self.nlp = nlp

    def pipe(self, texts, **kwargs):
        texts = list(texts)
        if any("BOOM" in text for text in texts):
            raise ValueError("cannot read BOOM")
        return self.nlp.pipe(texts, **kwargs)

    def __call__(self, text):
        if "BOOM" in text:
            raise ValueError("cannot read BOOM")
        return self.nlp(text)


class DyingExtractor(Extractor):
    """Kills its own process on its first batch with line 5, once per job (`marker` records it)."""

    marker = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.nlp = ExplodingPipeline(self.nlp)

    def __call__(self, batch):
        if 5 in batch["line"].tolist() and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().__call__(batch)


def test_killed_actor_is_retried_without_loss_or_duplicates(local_ray, first_job, saved_tiny_pipeline, tmp_path):
    _, model = saved_tiny_pipeline
    path = tmp_path / "in.jsonl"
    write_jsonl(path, 14)
    lines = path.read_text(encoding="utf8").splitlines()
    lines[9] = json.dumps({"id": "n10", "text": "A BOOM here."})
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    extractor = type("Dying", (DyingExtractor,), {"marker": str(tmp_path / "died")})
    output = tmp_path / "out"
    summary = run_job(model, path, output, output_format="parquet", actors=2, batch_size=2, shard_size=SHARD_SIZE, extractor=extractor)
    assert (tmp_path / "died").exists()
    records = read_output(output)
    assert sorted(p.name for p in output.glob("part-*")) == [f"part-0000{i}.parquet" for i in range(4)]
    boom = [r for r in records if r.get("id") == "n10"]
    assert boom == [{"id": "n10", "file": "in.jsonl", "line": 10, "error": "ValueError: cannot read BOOM"}]
    # Nothing lost and nothing twice: the other records as in the first job.
    first = [r for r in read_output(first_job[0])
             if "id" in r and "file" not in r and "error" not in r and r["id"] != "n10"]
    assert [r for r in records if "error" not in r] == first
    assert [(r["line"], r["error"][:12]) for r in records if "error" in r] == [
        (4, "invalid JSON"), (9, "missing 'tex"), (10, "ValueError: "), (13, "'text' must ")
    ]
    assert (summary["documents"], summary["errors"]) == (13, 4)
