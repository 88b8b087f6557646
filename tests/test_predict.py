"""`python -m spacy_spanjoint predict`: every output format, streaming input
with bad lines, on a tiny pipeline that predicts entities and relations."""
import csv
import json

import pytest
from typer.testing import CliRunner

from spacy_spanjoint.cli import app
from spacy_spanjoint.predict import CSV_HEADER, predict_file, read_records

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
    assert list(read_records(path)) == [(1, {"text": "first"}, None), (4, {"text": "second {not json}"}, None)]


def test_unknown_format_is_an_error(saved_tiny_pipeline, jsonl_input, tmp_path):
    _, model = saved_tiny_pipeline
    result = run_cli(model, jsonl_input, tmp_path / "out.xml", "--format", "xml")
    assert result.exit_code == 1
    assert "Unknown --format 'xml'" in result.output
