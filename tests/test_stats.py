"""Corpus statistics and the stats command, on a hand-counted fixture.

tests/fixtures/stats.json, with the distance (tokens strictly between head and
tail) of each relation:

    sentence 0 (20 tokens): Person 0-2, Place 2-3, Org 5-8, Place 15-16,
        Person 1-2 (inside Person 0-2), Org 7-10 (crosses Org 5-8)
        Lives_In   0-2 -> 2-3    touching    0   [0-3]
        Works_For  0-2 -> 5-8    5 - 2 =     3   [0-3]
        Lives_In   0-2 -> 15-16  15 - 2 =   13   [>11]
        Works_For  1-2 -> 7-10   7 - 2 =     5   [4-7]
        Based_In   5-8 -> 15-16  15 - 8 =    7   [4-7]
    sentence 1 (30 tokens): Org 0-1, Place 9-10, Place 12-13, Person 20-22,
        Person 25-26
        Based_In   0-1 -> 9-10   9 - 1 =     8   [8-11]
        Based_In   0-1 -> 12-13  12 - 1 =   11   [8-11]
        Lives_In   20-22 -> 12-13  20 - 13 = 7   [4-7]
        Married_To 25-26 -> 20-22  25 - 22 = 3   [0-3]
    sentence 2 (1 token): nothing
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spacy_spanjoint.cli import app
from spacy_spanjoint.data.corpus import read_spert_json, write_docbin
from spacy_spanjoint.data.stats import (
    DISTANCE_DEFINITION,
    corpus_stats,
    count_annotations,
    count_overlaps,
    distance_bucket,
    entity_distance,
)

FIXTURES = Path(__file__).parent / "fixtures"
BUCKETS = ["0-3", "4-7", "8-11", ">11"]


@pytest.fixture
def docs():
    docs, _ = read_spert_json(FIXTURES / "stats.json", FIXTURES / "types.json")
    return docs


def _distribution(*counts):
    total = sum(counts)
    return {
        "total": total,
        "counts": dict(zip(BUCKETS, counts)),
        "percent": {name: round(100 * n / total, 1) for name, n in zip(BUCKETS, counts)},
    }


@pytest.mark.parametrize(
    "head,tail,distance",
    [
        ((0, 2), (2, 3), 0),
        ((2, 3), (0, 2), 0),
        ((0, 3), (1, 2), 0),
        ((0, 2), (3, 5), 1),
        ((9, 10), (0, 1), 8),
    ],
    ids=["touching", "touching reversed", "nested", "one between", "tail first"],
)
def test_entity_distance_counts_tokens_between(head, tail, distance):
    assert entity_distance(head, tail) == distance


@pytest.mark.parametrize(
    "distance,bucket",
    [
        (0, "0-3"),
        (3, "0-3"),
        (4, "4-7"),
        (7, "4-7"),
        (8, "8-11"),
        (11, "8-11"),
        (12, ">11"),
        (40, ">11"),
    ],
)
def test_distance_bucket_edges(distance, bucket):
    assert distance_bucket(distance) == bucket


def test_count_overlaps_splits_nested_and_crossing():
    assert count_overlaps([(0, 2), (2, 3), (1, 2), (5, 8), (7, 10)]) == {
        "pairs": 2,
        "nested_pairs": 1,
        "crossing_pairs": 1,
    }


def test_corpus_stats_on_fixture(docs):
    stats = corpus_stats(docs)
    assert (stats["docs"], stats["tokens"], stats["entities"], stats["relations"]) == (3, 51, 11, 9)
    assert stats["entity_types"] == {"Person": 4, "Place": 4, "Org": 3}
    assert list(stats["relation_types"].items()) == [
        ("Based_In", 3),
        ("Lives_In", 3),
        ("Works_For", 2),
        ("Married_To", 1),
    ]
    assert stats["overlapping_entities"] == {
        "pairs": 2,
        "nested_pairs": 1,
        "crossing_pairs": 1,
        "docs": 1,
    }
    assert stats["sentence_length"] == {
        "min": 1,
        "mean": 17.0,
        "max": 30,
        "percentiles": {"p25": 1, "p50": 20, "p75": 30, "p90": 30, "p95": 30, "p99": 30},
        "histogram": {"1-10": 1, "11-20": 1, "21-30": 1},
    }
    distance = stats["entity_distance"]
    assert distance["definition"] == DISTANCE_DEFINITION
    assert distance["buckets"] == BUCKETS
    assert distance["all"] == _distribution(3, 3, 2, 1)
    assert distance["per_relation_type"] == {
        "Based_In": _distribution(0, 1, 2, 0),
        "Lives_In": _distribution(1, 1, 0, 1),
        "Works_For": _distribution(1, 1, 0, 0),
        "Married_To": _distribution(1, 0, 0, 0),
    }
    assert distance["per_typed_relation"] == {
        "<Org, Place> Based_In": _distribution(0, 1, 2, 0),
        "<Person, Org> Works_For": _distribution(1, 1, 0, 0),
        "<Person, Person> Married_To": _distribution(1, 0, 0, 0),
        "<Person, Place> Lives_In": _distribution(1, 1, 0, 1),
    }
    assert distance["per_relation_type"]["Based_In"]["percent"] == {
        "0-3": 0.0,
        "4-7": 33.3,
        "8-11": 66.7,
        ">11": 0.0,
    }


def test_corpus_stats_of_no_docs():
    stats = corpus_stats([])
    assert (stats["docs"], stats["entities"], stats["relations"]) == (0, 0, 0)
    assert stats["sentence_length"]["min"] is None
    assert stats["entity_distance"]["all"]["total"] == 0


def test_count_annotations(docs):
    assert count_annotations(docs) == {"docs": 3, "entities": 11, "relations": 9}


def test_cli_stats_writes_json_next_to_input(tmp_path, docs):
    spacy_path = tmp_path / "train.spacy"
    write_docbin(docs, spacy_path)
    result = CliRunner().invoke(app, ["stats", str(spacy_path)])
    assert result.exit_code == 0, result.output
    assert "<Person, Place> Lives_In" in result.output
    saved = json.loads((tmp_path / "train.stats.json").read_text())
    assert saved == corpus_stats(docs)


def test_cli_stats_output_option(tmp_path, docs):
    spacy_path = tmp_path / "train.spacy"
    write_docbin(docs, spacy_path)
    output = tmp_path / "out" / "stats.json"
    result = CliRunner().invoke(app, ["stats", str(spacy_path), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert json.loads(output.read_text())["relations"] == 9
    assert not (tmp_path / "train.stats.json").exists()
