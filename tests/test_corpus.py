"""SpERT JSON <-> Doc conversion, validation and the convert/export commands."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_spanjoint import Relation
from spacy_spanjoint.cli import app
from spacy_spanjoint.data.corpus import (
    CorpusError,
    count_dropped,
    docs_to_spert,
    load_types,
    read_docbin,
    read_spert_json,
    write_docbin,
    write_spert_json,
)
from spacy_spanjoint.pipeline.relations import SYMMETRIC_LABELS_KEY
from spacy_spanjoint.data.stats import corpus_stats

FIXTURES = Path(__file__).parent / "fixtures"
VALID = FIXTURES / "valid.json"
INVALID = FIXTURES / "invalid.json"
TYPES = FIXTURES / "types.json"
REAL_CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

# One valid sentence that each bad-input case breaks in one way.
SENTENCE = {
    "tokens": ["Ann", "lives", "in", "Oslo", "."],
    "entities": [{"type": "Person", "start": 0, "end": 1}, {"type": "Place", "start": 3, "end": 4}],
    "relations": [{"type": "Lives_In", "head": 0, "tail": 1}],
    "orig_id": 42,
}


def _round_trip(path: Path, types: Path, tmp_path: Path) -> Path:
    docs, problems = read_spert_json(path, types)
    assert problems == []
    write_docbin(docs, tmp_path / "corpus.spacy")
    output = tmp_path / "corpus.json"
    write_spert_json(docs_to_spert(read_docbin(tmp_path / "corpus.spacy")), output)
    return output


def test_round_trip_is_identical(tmp_path):
    output = _round_trip(VALID, TYPES, tmp_path)
    assert json.loads(output.read_text()) == json.loads(VALID.read_text())
    # Same key order and formatting as SpERT's files, so even the bytes match.
    assert output.read_text() == VALID.read_text()


def test_convert_keeps_order_nested_entities_and_relation_offsets():
    docs, _ = read_spert_json(VALID, TYPES)
    assert len(docs) == 4
    doc = docs[3]
    assert [t.text for t in doc] == ["Zoë", "works", "for", "Ærø", "Bank", "."]
    assert [(s.start, s.end, s.label_) for s in doc.spans["entities"]] == [
        (3, 5, "Org"),
        (0, 1, "Person"),
        (3, 4, "Place"),
    ]
    assert doc._.relations == [
        Relation(head=(0, 1), tail=(3, 5), label="Works_For", score=1.0),
        Relation(head=(3, 5), tail=(3, 4), label="Based_In", score=1.0),
    ]
    assert doc._.orig_id == 7
    assert docs[1]._.orig_id == "s-2"
    assert docs[2]._.orig_id is None


def test_symmetric_labels_are_stored_on_every_doc(tmp_path):
    docs, _ = read_spert_json(VALID, TYPES)
    write_docbin(docs, tmp_path / "valid.spacy")
    for doc in read_docbin(tmp_path / "valid.spacy"):
        assert list(doc.user_data[SYMMETRIC_LABELS_KEY]) == ["Married_To"]


def test_load_types_keeps_file_order():
    types = load_types(TYPES)
    assert types.entities == ("Person", "Place", "Org")
    assert types.relations == ("Lives_In", "Works_For", "Based_In", "Married_To")
    assert types.symmetric == ("Married_To",)


def test_missing_orig_id_is_left_out_on_export():
    docs, _ = read_spert_json(VALID, TYPES)
    sentences = docs_to_spert(docs)
    assert list(sentences[2]) == ["tokens", "entities", "relations"]
    assert list(sentences[0]) == ["tokens", "entities", "relations", "orig_id"]
    assert list(sentences[0]["entities"][0]) == ["type", "start", "end"]
    assert list(sentences[0]["relations"][0]) == ["type", "head", "tail"]


def test_extra_sentence_keys_survive_round_trip(tmp_path):
    sentence = {**SENTENCE, "ltokens": ["Before", "."], "meta": {"source": ["a", 1]}}
    path = tmp_path / "extra.json"
    path.write_text(json.dumps([sentence]))
    output = _round_trip(path, TYPES, tmp_path)
    assert output.read_text() == path.read_text()


def test_export_relation_without_entity_names_doc_and_relation():
    doc = Doc(Vocab(), words=["Ann", "lives", "in", "Oslo"])
    doc.spans["entities"] = [Span(doc, 0, 1, label="Person")]
    doc._.relations = [Relation(head=(0, 1), tail=(3, 4), label="Lives_In")]
    doc._.orig_id = 9
    with pytest.raises(CorpusError) as err:
        docs_to_spert([doc], file="pred.spacy")
    message = str(err.value)
    for part in ("pred.spacy", "sentence 0", "orig_id 9", "relations[0].tail", "'Lives_In'", "3-4"):
        assert part in message
    assert len(err.value.problems) == 1


def _break(change):
    sentence = copy.deepcopy(SENTENCE)
    change(sentence)
    return sentence


# (id, broken sentence, expected (field, reason) of every problem, in order)
BAD_SENTENCES = [
    ("sentence not an object", ["Ann", "lives"], [("", "sentence not an object")]),
    ("missing tokens", _break(lambda s: s.pop("tokens")), [("tokens", "missing key")]),
    ("missing entities", _break(lambda s: s.pop("entities")), [("entities", "missing key")]),
    ("missing relations", _break(lambda s: s.pop("relations")), [("relations", "missing key")]),
    (
        "tokens not a list",
        _break(lambda s: s.update(tokens="Ann lives")),
        [("tokens", "not a list")],
    ),
    ("entities not a list", _break(lambda s: s.update(entities={})), [("entities", "not a list")]),
    (
        "non-string token",
        _break(lambda s: s["tokens"].__setitem__(1, 5)),
        [("tokens[1]", "invalid token")],
    ),
    (
        "empty string token",
        _break(lambda s: s["tokens"].__setitem__(1, "")),
        [("tokens[1]", "invalid token")],
    ),
    (
        "entity not an object",
        _break(lambda s: s["entities"].__setitem__(1, "Oslo")),
        [("entities[1]", "entity not an object"), ("relations[0].tail", "uses an invalid entity")],
    ),
    (
        "entity missing key",
        _break(lambda s: s["entities"][0].pop("end")),
        [("entities[0].end", "missing key"), ("relations[0].head", "uses an invalid entity")],
    ),
    (
        "end out of range",
        _break(lambda s: s["entities"][1].update(end=6)),
        [
            ("entities[1].end", "offsets out of range"),
            ("relations[0].tail", "uses an invalid entity"),
        ],
    ),
    (
        "negative start",
        _break(lambda s: s["entities"][0].update(start=-1)),
        [
            ("entities[0].start", "offsets out of range"),
            ("relations[0].head", "uses an invalid entity"),
        ],
    ),
    (
        "string offset",
        _break(lambda s: s["entities"][1].update(start="3")),
        [("entities[1].start", "non-int offset"), ("relations[0].tail", "uses an invalid entity")],
    ),
    (
        "float offset",
        _break(lambda s: s["entities"][1].update(end=4.0)),
        [("entities[1].end", "non-int offset"), ("relations[0].tail", "uses an invalid entity")],
    ),
    (
        "start equals end",
        _break(lambda s: s["entities"][1].update(start=4, end=4)),
        [("entities[1].start", "empty span"), ("relations[0].tail", "uses an invalid entity")],
    ),
    (
        "start after end",
        _break(lambda s: s["entities"][1].update(start=4, end=3)),
        [("entities[1].start", "empty span"), ("relations[0].tail", "uses an invalid entity")],
    ),
    (
        "unknown entity type",
        _break(lambda s: s["entities"][0].update(type="Animal")),
        [
            ("entities[0].type", "unknown entity type"),
            ("relations[0].head", "uses an invalid entity"),
        ],
    ),
    (
        "duplicate entity",
        _break(lambda s: s["entities"].append({"type": "Place", "start": 0, "end": 1})),
        [("entities[2]", "duplicate entity")],
    ),
    (
        "unknown entity key",
        _break(lambda s: s["entities"][0].update(score=0.9)),
        [("entities[0].score", "unknown key"), ("relations[0].head", "uses an invalid entity")],
    ),
    (
        "relation not an object",
        _break(lambda s: s["relations"].__setitem__(0, [0, 1])),
        [("relations[0]", "relation not an object")],
    ),
    (
        "relation missing key",
        _break(lambda s: s["relations"][0].pop("tail")),
        [("relations[0].tail", "missing key")],
    ),
    (
        "unknown relation key",
        _break(lambda s: s["relations"][0].update(score=0.9)),
        [("relations[0].score", "unknown key")],
    ),
    (
        "head out of range",
        _break(lambda s: s["relations"][0].update(head=2)),
        [("relations[0].head", "invalid entity index")],
    ),
    (
        "tail not an int",
        _break(lambda s: s["relations"][0].update(tail="1")),
        [("relations[0].tail", "invalid entity index")],
    ),
    (
        "self-relation",
        _break(lambda s: s["relations"][0].update(tail=0)),
        [("relations[0]", "self-relation")],
    ),
    (
        "unknown relation type",
        _break(lambda s: s["relations"][0].update(type="Born_In")),
        [("relations[0].type", "unknown relation type")],
    ),
]


@pytest.mark.parametrize(
    "sentence,expected",
    [case[1:] for case in BAD_SENTENCES],
    ids=[case[0] for case in BAD_SENTENCES],
)
def test_bad_input_is_reported_with_location(tmp_path, sentence, expected):
    # The bad sentence comes second, so its index (1) is checked too.
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([SENTENCE, sentence]))
    with pytest.raises(CorpusError) as err:
        read_spert_json(path, TYPES)
    problems = err.value.problems
    assert [(p.field, p.reason) for p in problems] == expected
    orig_id = sentence.get("orig_id") if isinstance(sentence, dict) else None
    for problem in problems:
        assert (problem.file, problem.index, problem.orig_id) == (str(path), 1, orig_id)
        text = str(problem)
        assert text.startswith(f"{path}, sentence 1 (orig_id {orig_id!r})")
        assert problem.field in text
    assert str(err.value).count("\n- ") == len(expected)


def test_skip_invalid_drops_only_the_invalid_items():
    docs, problems = read_spert_json(INVALID, TYPES, skip_invalid=True)
    assert [doc._.orig_id for doc in docs] == [101, 2, 4]
    rex = docs[1]
    assert [(s.start, s.end, s.label_) for s in rex.spans["entities"]] == [(3, 4, "Place")]
    assert rex._.relations == []
    assert docs[2]._.relations == [Relation(head=(0, 1), tail=(3, 4), label="Works_For")]
    assert [(p.index, p.field, p.reason) for p in problems] == [
        (1, "entities[0].type", "unknown entity type"),
        (1, "relations[0].head", "uses an invalid entity"),
        (2, "tokens[1]", "invalid token"),
        (3, "relations[1]", "duplicate relation"),
        (3, "relations[2]", "self-relation"),
    ]
    assert count_dropped(problems) == {"sentence": 1, "entity": 1, "relation": 3}


def test_item_with_two_problems_is_dropped_once(tmp_path):
    sentence = _break(lambda s: s["entities"][1].update(type="Animal", end=9))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([sentence]))
    docs, problems = read_spert_json(path, TYPES, skip_invalid=True)
    assert [p.field for p in problems] == [
        "entities[1].type",
        "entities[1].end",
        "relations[0].tail",
    ]
    assert count_dropped(problems) == {"entity": 1, "relation": 1}
    assert len(docs[0].spans["entities"]) == 1


@pytest.mark.parametrize(
    "text,expected",
    [
        ('[{"tokens": [}]', "malformed JSON at line 1, column 14"),
        (
            '[\n  {"tokens": ["a"],\n   "entities": [] "relations": []}\n]',
            "malformed JSON at line 3, column 19",
        ),
        ('{"tokens": ["a"]}', "expected a list of sentences, got an object"),
    ],
    ids=["malformed JSON", "malformed JSON on line 3", "top level not a list"],
)
def test_bad_corpus_file_is_reported_even_with_skip_invalid(tmp_path, text, expected):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(CorpusError) as err:
        read_spert_json(path, TYPES, skip_invalid=True)
    problem = err.value.problems[0]
    assert str(problem).startswith(f"{path}: {expected}")
    assert (problem.file, problem.index) == (str(path), None)


def test_missing_corpus_file_is_reported(tmp_path):
    with pytest.raises(CorpusError) as err:
        read_spert_json(tmp_path / "nope.json", TYPES)
    assert err.value.problems[0].reason == "unreadable file"
    assert "nope.json" in str(err.value)


@pytest.mark.parametrize(
    "text,field",
    [
        ('{"entities": {', ""),
        ("[]", ""),
        ('{"entities": {"Person": {}}}', "relations"),
        ('{"entities": ["Person"], "relations": {}}', "entities"),
        ('{"entities": {"Person": "Per"}, "relations": {}}', "entities.Person"),
        ('{"entities": {}, "relations": {"Kin": {"symmetric": "yes"}}}', "relations.Kin.symmetric"),
    ],
    ids=[
        "malformed JSON",
        "not an object",
        "no relations",
        "entities a list",
        "entity spec",
        "symmetric flag",
    ],
)
def test_malformed_types_file_is_reported(tmp_path, text, field):
    path = tmp_path / "types.json"
    path.write_text(text)
    with pytest.raises(CorpusError) as err:
        read_spert_json(VALID, path)
    problem = err.value.problems[0]
    assert problem.file == str(path)
    assert problem.field == field
    assert problem.reason in ("malformed JSON", "malformed types file")


def test_cli_convert_and_export_round_trip(tmp_path):
    runner = CliRunner()
    spacy_path = tmp_path / "valid.spacy"
    result = runner.invoke(app, ["convert", str(VALID), str(spacy_path), "--types", str(TYPES)])
    assert result.exit_code == 0, result.output
    assert "Converted 4 docs (8 entities, 5 relations)" in " ".join(result.output.split())
    json_path = tmp_path / "valid.json"
    result = runner.invoke(app, ["export", str(spacy_path), str(json_path)])
    assert result.exit_code == 0, result.output
    assert json_path.read_text() == VALID.read_text()


def test_cli_convert_fails_listing_every_problem(tmp_path):
    output = tmp_path / "invalid.spacy"
    result = CliRunner().invoke(app, ["convert", str(INVALID), str(output), "--types", str(TYPES)])
    assert result.exit_code == 1
    assert "4 problem(s) found" in result.output
    with pytest.raises(CorpusError) as err:
        read_spert_json(INVALID, TYPES)
    for problem in err.value.problems:
        assert f"- {problem}\n" in result.output
    assert not output.exists()


def test_cli_convert_skip_invalid_reports_what_was_dropped(tmp_path):
    output = tmp_path / "invalid.spacy"
    result = CliRunner().invoke(
        app, ["convert", str(INVALID), str(output), "--types", str(TYPES), "--skip-invalid"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Dropped 1 exact duplicate relation(s) (same head, tail and type) in 1 sentence(s): sentence 3 (orig_id 4)" in text
    assert "Dropped 1 sentence, 1 entity, 2 relations with 4 problem(s)" in text
    for reason in (
        "unknown entity type",
        "uses an invalid entity",
        "invalid token",
        "self-relation",
    ):
        assert reason in text
    assert "Converted 3 docs (6 entities, 3 relations)" in text
    assert len(read_docbin(output)) == 3


def test_python_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "spacy_spanjoint", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for command in ("convert", "export", "stats"):
        assert command in result.stdout


@pytest.mark.skipif(
    not REAL_CORPORA.is_dir(), reason="real corpora not found beside the repository"
)
def test_real_corpora_counts_and_round_trip(tmp_path):
    expected = {
        "conll04/conll04_train.json": (922, 3377, 1283),
        "conll04/conll04_dev.json": (231, 893, 343),
        "conll04/conll04_test.json": (288, 1079, 422),
        "ade/ade_full.json": (4272, 10839, 6821),
        "ade/ade_split_0_test.json": (427, 1070, 666),
        "ade/ade_split_9_test.json": (429, 1069, 648),
    }
    for name, counts in expected.items():
        path = REAL_CORPORA / name
        types = path.parent / f"{path.parent.name}_types.json"
        docs, problems = read_spert_json(path, types)
        assert problems == [], name
        stats = corpus_stats(docs)
        assert (stats["docs"], stats["entities"], stats["relations"]) == counts, name
        if name == "ade/ade_full.json":
            assert stats["overlapping_entities"] == {
                "pairs": 120,
                "nested_pairs": 120,
                "crossing_pairs": 0,
                "docs": 119,
            }
        output = _round_trip(path, types, tmp_path)
        assert json.loads(output.read_text()) == json.loads(path.read_text()), name


def _cli(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def test_commands_refuse_to_overwrite_their_input(tmp_path):
    corpus = tmp_path / "in.json"
    corpus.write_bytes(VALID.read_bytes())
    spacy_path = tmp_path / "x.spacy"
    assert _cli("convert", VALID, spacy_path, "--types", TYPES).exit_code == 0
    (tmp_path / "sub").mkdir()
    before = spacy_path.read_bytes()
    for args in (
        ("convert", corpus, corpus, "--types", TYPES),
        ("convert", corpus, tmp_path / "sub" / ".." / "in.json", "--types", TYPES),
        ("export", spacy_path, spacy_path),
        ("stats", spacy_path, "--output", spacy_path),
        ("stats", spacy_path, "-o", tmp_path / "sub" / ".." / "x.spacy"),
    ):
        result = _cli(*args)
        assert result.exit_code == 1, args
        assert "Refusing to overwrite an input" in result.output
    assert corpus.read_bytes() == VALID.read_bytes()
    assert spacy_path.read_bytes() == before


def test_skip_invalid_with_no_valid_sentence_keeps_the_existing_output(tmp_path):
    output = tmp_path / "out.spacy"
    output.write_bytes(b"an earlier corpus")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([_break(lambda s: s.update(tokens=5))] * 2))
    result = _cli("convert", path, output, "--types", TYPES, "--skip-invalid")
    assert result.exit_code == 1
    assert "No valid sentence left" in result.output
    assert output.read_bytes() == b"an earlier corpus"


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CorpusError, match="nested too deeply"):
        read_spert_json(path, TYPES)
    result = _cli("convert", path, tmp_path / "out.spacy", "--types", TYPES)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", ["export", "stats"])
@pytest.mark.parametrize("content", [b"not a DocBin", b"", VALID.read_bytes()], ids=["text", "empty", "json"])
def test_file_that_is_not_a_docbin_is_a_clear_error(tmp_path, command, content):
    path = tmp_path / "x.spacy"
    path.write_bytes(content)
    result = _cli(command, path, *(["--output"] if command == "stats" else []), tmp_path / "out.json")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "not a .spacy file" in result.output
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("command", ["export", "stats"])
def test_corrupt_relation_records_name_the_doc(tmp_path, command):
    from spacy_spanjoint.pipeline.relations import RELATIONS_KEY

    vocab = Vocab()
    good = Doc(vocab, words=["Ann", "lives", "in", "Oslo"])
    bad = Doc(vocab, words=["Bob", "works"])
    bad._.orig_id = "s7"
    bad.user_data[RELATIONS_KEY] = [[[0, 1], [1, 5], "Works_For", 1.0]]
    path = tmp_path / "x.spacy"
    DocBin(docs=[good, bad], store_user_data=True).to_disk(path)
    result = _cli(command, path, *(["--output"] if command == "stats" else []), tmp_path / "out.json")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"{path}, sentence 1 (orig_id 's7'), relations: doc._.relations[0].tail" in result.output


def test_export_and_stats_use_doc_ents_without_the_span_group(tmp_path):
    doc = Doc(Vocab(), words=["Ann", "lives", "in", "Oslo"])
    doc.ents = [Span(doc, 0, 1, label="Person"), Span(doc, 3, 4, label="Place")]
    doc._.relations = [Relation((0, 1), (3, 4), "Lives_In")]
    path = tmp_path / "ner.spacy"
    write_docbin([doc], path)
    result = _cli("export", path, tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    assert "1 of 1 docs have no doc.spans['entities']: their doc.ents were used" in " ".join(result.output.split())
    (sentence,) = json.loads((tmp_path / "out.json").read_text())
    assert sentence["entities"] == [{"type": "Person", "start": 0, "end": 1}, {"type": "Place", "start": 3, "end": 4}]
    assert sentence["relations"] == [{"type": "Lives_In", "head": 0, "tail": 1}]
    result = _cli("stats", path, "--output", tmp_path / "stats.json")
    assert result.exit_code == 0, result.output
    assert "doc.ents were used" in " ".join(result.output.split())
    assert json.loads((tmp_path / "stats.json").read_text())["entity_types"] == {"Person": 1, "Place": 1}


def test_exact_duplicate_relations_are_dropped_with_a_warning(tmp_path):
    duplicated = _break(lambda s: s["relations"].append(dict(s["relations"][0])))
    path = tmp_path / "dup.json"
    path.write_text(json.dumps([SENTENCE, duplicated, duplicated]))
    docs, problems = read_spert_json(path, TYPES)
    assert [len(doc._.relations) for doc in docs] == [1, 1, 1]
    assert [(p.index, p.field, p.reason, p.fatal) for p in problems] == [
        (1, "relations[1]", "duplicate relation", False),
        (2, "relations[1]", "duplicate relation", False),
    ]
    result = _cli("convert", path, tmp_path / "out.spacy", "--types", TYPES)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Dropped 2 exact duplicate relation(s) (same head, tail and type) in 2 sentence(s): " in text
    assert "sentence 1 (orig_id 42), sentence 2 (orig_id 42)" in text
    assert "Converted 3 docs (6 entities, 3 relations)" in text


def test_conflicting_duplicates_stay_errors(tmp_path):
    path = tmp_path / "conflict.json"
    conflict = _break(lambda s: s["entities"].append({"type": "Org", "start": 3, "end": 4}))
    path.write_text(json.dumps([conflict]))
    with pytest.raises(CorpusError, match="duplicate of entities\\[1\\]"):
        read_spert_json(path, TYPES)


def test_empty_sentence_is_an_empty_doc_and_round_trips(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps([SENTENCE, {"tokens": [], "entities": [], "relations": [], "orig_id": "e"}]))
    docs, problems = read_spert_json(path, TYPES)
    assert problems == [] and len(docs[1]) == 0
    output = _round_trip(path, TYPES, tmp_path)
    assert output.read_text() == path.read_text()
