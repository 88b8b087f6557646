"""`python -m spacy_spanjoint predict`: every output format, streaming input
with bad lines, on a tiny pipeline that predicts entities and relations."""
import csv
import json
import subprocess
import sys

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_spanjoint import Relation
from spacy_spanjoint.cli import app
from spacy_spanjoint.data.predict import CSV_HEADER, Writer, predict_file, read_records

TEXTS = ["John Smith lives in New York. Mary works for Acme Corp in Paris.", "Anna married Tom."]


@pytest.fixture
def jsonl_input(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": f"doc{i}", "text": text, "source": "news"}) for i, text in enumerate(TEXTS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def run_cli(*args):
    return CliRunner().invoke(app, ["predict", *map(str, args)])


def test_jsonl_output_has_char_offsets_and_entity_indices(saved_tiny_pipeline, jsonl_input, tmp_path):
    _, model = saved_tiny_pipeline
    output = tmp_path / "out.jsonl"
    result = run_cli(model, jsonl_input, output, "--format", "jsonl", "--batch-size", "1")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text(encoding="utf8").splitlines()]
    assert [r["id"] for r in records] == ["doc0", "doc1"]
    assert all(r["source"] == "news" for r in records)
    for record in records:
        assert record["entities"] and record["relations"]
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
            assert entity["label"] and 0.0 <= entity["score"] <= 1.0
        for relation in record["relations"]:
            assert 0 <= relation["head"] < len(record["entities"])
            assert 0 <= relation["tail"] < len(record["entities"])
            assert relation["head"] != relation["tail"]
            assert relation["label"] and 0.0 <= relation["score"] <= 1.0


def test_csv_output_has_one_triple_a_row(saved_tiny_pipeline, tmp_path):
    nlp, model = saved_tiny_pipeline
    text_input = tmp_path / "in.txt"
    text_input.write_text("\n".join(TEXTS) + "\n\n", encoding="utf8")
    output = tmp_path / "out.csv"
    result = run_cli(model, text_input, output, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(output.open(encoding="utf8", newline="")))
    assert tuple(rows[0]) == CSV_HEADER
    expected = [len(nlp(text)._.relations) for text in TEXTS]
    assert [sum(row["doc_id"] == str(line) for row in rows) for line in (1, 2)] == expected
    sentences = {sent.text for text in TEXTS for sent in nlp(text).sents}
    for row in rows:
        assert row["sentence"] in sentences
        assert row["head"] in row["sentence"] and row["tail"] in row["sentence"]
        assert float(row["relation_score"]) >= 0.0


def test_spert_output_is_a_readable_corpus(saved_tiny_pipeline, jsonl_input, tmp_path):
    _, model = saved_tiny_pipeline
    output = tmp_path / "out.json"
    result = run_cli(model, jsonl_input, output, "--format", "spert")
    assert result.exit_code == 0, result.output
    sentences = json.loads(output.read_text(encoding="utf8"))
    assert [s["orig_id"] for s in sentences] == ["doc0", "doc1"]
    for sentence in sentences:
        assert sentence["tokens"] and sentence["entities"] and sentence["relations"]
        for entity in sentence["entities"]:
            assert 0 <= entity["start"] < entity["end"] <= len(sentence["tokens"])
        for relation in sentence["relations"]:
            assert {relation["head"], relation["tail"]} <= set(range(len(sentence["entities"])))


def test_bad_lines_are_reported_and_skipped(saved_tiny_pipeline, tmp_path):
    _, model = saved_tiny_pipeline
    path = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"text": TEXTS[0]}),
        "{not json",
        json.dumps({"title": "no text"}),
        "",
        json.dumps({"text": 42}),
        json.dumps(["a list"]),
        json.dumps({"text": TEXTS[1]}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    output = tmp_path / "out.jsonl"
    result = run_cli(model, path, output)
    assert result.exit_code == 1
    assert "Skipped 4 bad input line(s)" in result.output
    for number, reason in ((2, "invalid JSON"), (3, "missing 'text'"), (5, "'text' must be a string"), (6, "expected a JSON object")):
        assert f"{path}:{number}: {reason}" in result.output
    written = [json.loads(line) for line in output.read_text(encoding="utf8").splitlines()]
    assert [r["text"] for r in written] == TEXTS


def test_predict_file_collects_problems(saved_tiny_pipeline, tmp_path):
    nlp, _ = saved_tiny_pipeline
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "Anna married Tom."}\n{"text": null}\n', encoding="utf8")
    seen = []
    written, problems = predict_file(nlp, path, tmp_path / "out.jsonl", on_problem=seen.append)
    assert written == 1
    assert [(p.line, p.reason) for p in problems] == [(2, "'text' must be a string, got NoneType")]
    assert seen == problems


def test_text_lines_keep_their_line_numbers(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("first\n\n  \nsecond {not json}\n", encoding="utf8")
    assert list(read_records(path)) == [
        (1, {"id": 1, "text": "first"}, None),
        (4, {"id": 4, "text": "second {not json}"}, None),
    ]


def test_unknown_format_is_an_error(saved_tiny_pipeline, jsonl_input, tmp_path):
    _, model = saved_tiny_pipeline
    result = run_cli(model, jsonl_input, tmp_path / "out.xml", "--format", "xml")
    assert result.exit_code == 1
    assert "Unknown --format 'xml'" in result.output


def test_output_that_is_the_input_is_refused(saved_tiny_pipeline, tmp_path):
    _, model = saved_tiny_pipeline
    (tmp_path / "sub").mkdir()
    path = tmp_path / "same.txt"
    path.write_text("\n".join(TEXTS) + "\n", encoding="utf8")
    (tmp_path / "link.txt").symlink_to(path)
    for output in (path, tmp_path / "sub" / ".." / "same.txt", tmp_path / "link.txt"):
        result = run_cli(model, path, output)
        assert result.exit_code == 1, result.output
        assert "Refusing to overwrite an input" in result.output
        assert path.read_text(encoding="utf8") == "\n".join(TEXTS) + "\n"


def test_failed_run_leaves_an_existing_output_as_it_was(saved_tiny_pipeline, tmp_path):
    nlp, _ = saved_tiny_pipeline
    output = tmp_path / "out.jsonl"
    output.write_text("earlier results\n", encoding="utf8")
    with pytest.raises(RuntimeError):
        with Writer(output, "jsonl") as writer:
            writer.write(nlp(TEXTS[1]), {"text": TEXTS[1]}, 1)
            raise RuntimeError("stopped halfway")
    assert output.read_text(encoding="utf8") == "earlier results\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_every_kind_of_bad_line_is_reported_and_the_run_goes_on(saved_tiny_pipeline, tmp_path):
    _, model = saved_tiny_pipeline
    path = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"text": TEXTS[0]}).encode(),
        json.dumps({"text": "a " * 500_001}).encode(),  # 1,000,002 characters: over spaCy's max_length
        b'{"text": "lone \\ud800 surrogate"}',
        b'{"text": "Latin-1 caf\xe9"}',
        json.dumps({"text": TEXTS[1]}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    output = tmp_path / "out.jsonl"
    result = run_cli(model, path, output)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Skipped 3 bad input line(s)" in result.output
    assert f"{path}:2: the text has 1000002 characters, more than the pipeline's nlp.max_length" in result.output
    assert f"{path}:3: holds a lone surrogate" in result.output
    assert f"{path}:4: not UTF-8 text (byte 0xe9" in result.output
    written = [json.loads(line) for line in output.read_text(encoding="utf8").splitlines()]
    assert [r["text"] for r in written] == TEXTS


def test_a_pipe_is_read_once(saved_tiny_pipeline, tmp_path):
    _, model = saved_tiny_pipeline
    lines = "".join(json.dumps({"id": f"doc{i}", "text": text}) + "\n" for i, text in enumerate(TEXTS))
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "spacy_spanjoint", "predict", str(model), "/dev/stdin", str(output)]
    result = subprocess.run(command, input=lines, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in output.read_text(encoding="utf8").splitlines()] == ["doc0", "doc1"]


def test_lines_end_only_at_newline_and_a_byte_order_mark_is_ignored(tmp_path):
    text_path = tmp_path / "in.txt"
    text_path.write_bytes("\ufefffirst\rstill first\u2028too\r\nsecond\n".encode("utf8"))
    assert list(read_records(text_path)) == [
        (1, {"id": 1, "text": "first\rstill first\u2028too"}, None),
        (2, {"id": 2, "text": "second"}, None),
    ]
    jsonl_path = tmp_path / "in.jsonl"
    jsonl_path.write_bytes(b'\xef\xbb\xbf{"text": "a"}\n')
    assert list(read_records(jsonl_path)) == [(1, {"text": "a"}, None)]


def test_jsonl_output_of_text_input_carries_the_line_number(saved_tiny_pipeline, tmp_path):
    _, model = saved_tiny_pipeline
    path = tmp_path / "in.txt"
    path.write_text(f"\n{TEXTS[1]}\n", encoding="utf8")
    output = tmp_path / "out.jsonl"
    assert run_cli(model, path, output).exit_code == 0
    (record,) = [json.loads(line) for line in output.read_text(encoding="utf8").splitlines()]
    assert record["id"] == 2


def test_spert_output_of_an_empty_text_converts_back(saved_tiny_pipeline, tmp_path):
    _, model = saved_tiny_pipeline
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "empty", "text": ""}) + "\n" + json.dumps({"text": TEXTS[1]}) + "\n", encoding="utf8")
    output = tmp_path / "out.json"
    assert run_cli(model, path, output, "--format", "spert").exit_code == 0
    types = {"entities": {label: {} for label in ("Peop", "Loc", "Org", "Other")}, "relations": {}}
    sentences = json.loads(output.read_text(encoding="utf8"))
    types["entities"].update({e["type"]: {} for s in sentences for e in s["entities"]})
    types["relations"] = {r["type"]: {} for s in sentences for r in s["relations"]}
    types_path = tmp_path / "types.json"
    types_path.write_text(json.dumps(types), encoding="utf8")
    result = CliRunner().invoke(app, ["convert", str(output), str(tmp_path / "out.spacy"), "--types", str(types_path)])
    assert result.exit_code == 0, result.output
    assert sentences[0]["tokens"] == []


def test_csv_neutralises_formulas_and_writes_ids_as_json(tmp_path):
    doc = Doc(Vocab(), words=["=HYPERLINK(1)", "met", "@SUM(2)"], spaces=[True, True, False])
    doc.spans["entities"] = [Span(doc, 0, 1, label="+Peop"), Span(doc, 2, 3, label="Peop")]
    doc._.relations = [Relation((0, 1), (2, 3), "-Met", 0.5)]
    output = tmp_path / "out.csv"
    with Writer(output, "csv") as writer:
        writer.write(doc, {"text": doc.text}, {"source": "news", "n": 1})
        writer.write(doc, {"text": doc.text}, "=doc")
    rows = list(csv.DictReader(output.open(encoding="utf8", newline="")))
    assert [row["doc_id"] for row in rows] == ['{"source": "news", "n": 1}', "'=doc"]
    assert (rows[0]["head"], rows[0]["head_label"], rows[0]["relation"], rows[0]["tail"]) == (
        "'=HYPERLINK(1)", "'+Peop", "'-Met", "'@SUM(2)")
    assert rows[0]["sentence"] == "'=HYPERLINK(1) met @SUM(2)"
    with Writer(output, "csv", escape_formulas=False) as writer:
        writer.write(doc, {"text": doc.text}, 7)
    (row,) = csv.DictReader(output.open(encoding="utf8", newline=""))
    assert (row["doc_id"], row["head"]) == ("7", "=HYPERLINK(1)")


def test_pipeline_without_spanjoint_is_an_error(jsonl_input, tmp_path):
    model = tmp_path / "blank"
    spacy.blank("en").to_disk(model)
    output = tmp_path / "out.jsonl"
    result = run_cli(model, jsonl_input, output)
    assert result.exit_code == 1
    assert "no spanjoint component" in result.output
    assert not output.exists()


@pytest.mark.parametrize("model", ["no_such_pipeline_name", "/no/such/folder"])
def test_missing_model_is_a_clear_error(jsonl_input, tmp_path, model):
    result = run_cli(model, jsonl_input, tmp_path / "out.jsonl")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"Could not load the pipeline '{model}'" in result.output


def test_output_that_cannot_be_written_is_a_clear_error(saved_tiny_pipeline, jsonl_input, tmp_path):
    _, model = saved_tiny_pipeline
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf8")
    result = run_cli(model, jsonl_input, blocker / "out.jsonl")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Could not write" in result.output
