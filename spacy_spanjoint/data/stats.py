"""Corpus statistics of Docs with entities and relations.

`corpus_stats` returns a JSON-ready dict: counts per entity and relation type,
overlapping (nested or crossing) entity pairs, sentence lengths, and the
entity-distance distribution of the relations in the buckets of Table 2 of the
two-phase span joint extraction paper ([0-3], [4-7], [8-11], [>11]).

The paper describes entity distance as the word count between the two
entities. Here it is the number of tokens strictly between the head and tail
spans, 0 when they touch or overlap (see `entity_distance`). On CoNLL04's
train+dev split this reproduces the paper's Located_In and OrgBased_In rows
exactly, and the Live_In, Work_For and Kill rows to within 2.5 points (8 of
their 12 cells to within 0.4).
"""

import math
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from ..pipeline.relations import register_extensions
from .corpus import ENTITIES_KEY, entity_spans

DISTANCE_DEFINITION = (
    "number of tokens strictly between the head and tail entity spans "
    "(0 when they touch or overlap)"
)
# (name, lowest, highest) distance of each bucket; None means unbounded.
DISTANCE_BUCKETS: Tuple[Tuple[str, int, Optional[int]], ...] = (
    ("0-3", 0, 3),
    ("4-7", 4, 7),
    ("8-11", 8, 11),
    (">11", 12, None),
)
PERCENTILES = (25, 50, 75, 90, 95, 99)
LENGTH_BIN_WIDTH = 10


def entity_distance(head: Tuple[int, int], tail: Tuple[int, int]) -> int:
    """Number of tokens strictly between two spans.

    head (Tuple[int, int]): Token offsets (start, end) of one span, end exclusive.
    tail (Tuple[int, int]): Token offsets of the other span.
    RETURNS (int): Tokens between them; 0 when they touch or overlap.
    """
    return max(0, max(head[0], tail[0]) - min(head[1], tail[1]))


def distance_bucket(distance: int) -> str:
    """Name of the `DISTANCE_BUCKETS` bucket that holds a distance.

    distance (int): A non-negative entity distance.
    RETURNS (str): The bucket's name, e.g. "4-7".
    """
    for name, low, high in DISTANCE_BUCKETS:
        if distance >= low and (high is None or distance <= high):
            return name
    raise ValueError(f"Negative entity distance: {distance}")


def count_annotations(docs: Iterable[Doc], spans_key: str = ENTITIES_KEY) -> Dict[str, int]:
    """Count docs, entities and relations.

    docs (Iterable[Doc]): The Docs.
    spans_key (str): The `doc.spans` key holding the entities.
    RETURNS (Dict[str, int]): "docs", "entities" and "relations" counts.
    """
    register_extensions()
    counts = Counter()
    for doc in docs:
        counts["docs"] += 1
        counts["entities"] += len(_entities(doc, spans_key))
        counts["relations"] += len(doc._.relations)
    return {key: counts[key] for key in ("docs", "entities", "relations")}


def corpus_stats(docs: Iterable[Doc], spans_key: str = ENTITIES_KEY) -> Dict[str, Any]:
    """Compute the statistics of a corpus.

    docs (Iterable[Doc]): Gold or predicted Docs with entities in
        `doc.spans[spans_key]` (else `doc.ents`) and relations in `doc._.relations`.
    spans_key (str): The `doc.spans` key holding the entities.
    RETURNS (Dict[str, Any]): JSON-ready statistics with the keys "docs",
        "tokens", "entities", "relations", "entity_types", "relation_types",
        "overlapping_entities", "sentence_length" and "entity_distance".
    """
    register_extensions()
    lengths: List[int] = []
    entity_types: Counter = Counter()
    relation_types: Counter = Counter()
    overlaps: Counter = Counter()
    by_relation: Dict[str, Counter] = {}
    by_typed_relation: Dict[str, Counter] = {}
    for doc in docs:
        lengths.append(len(doc))
        spans = _entities(doc, spans_key)
        entity_types.update(span.label_ for span in spans)
        doc_overlaps = count_overlaps([(span.start, span.end) for span in spans])
        overlaps.update(doc_overlaps)
        overlaps["docs"] += bool(doc_overlaps["pairs"])
        label_at = {}
        for span in spans:
            label_at.setdefault((span.start, span.end), span.label_)
        for relation in doc._.relations:
            relation_types[relation.label] += 1
            bucket = distance_bucket(entity_distance(relation.head, relation.tail))
            typed = (
                f"<{label_at.get(tuple(relation.head), '?')}, "
                f"{label_at.get(tuple(relation.tail), '?')}> {relation.label}"
            )
            by_relation.setdefault(relation.label, Counter())[bucket] += 1
            by_typed_relation.setdefault(typed, Counter())[bucket] += 1
    overall = sum(by_relation.values(), Counter())
    return {
        "docs": len(lengths),
        "tokens": sum(lengths),
        "entities": sum(entity_types.values()),
        "relations": sum(relation_types.values()),
        "entity_types": _by_count(entity_types),
        "relation_types": _by_count(relation_types),
        "overlapping_entities": {
            key: overlaps[key] for key in ("pairs", "nested_pairs", "crossing_pairs", "docs")
        },
        "sentence_length": length_stats(lengths),
        "entity_distance": {
            "definition": DISTANCE_DEFINITION,
            "buckets": [name for name, _, _ in DISTANCE_BUCKETS],
            "all": _distribution(overall),
            "per_relation_type": {
                label: _distribution(by_relation[label]) for label in _by_count(relation_types)
            },
            "per_typed_relation": {
                key: _distribution(by_typed_relation[key]) for key in sorted(by_typed_relation)
            },
        },
    }


def count_overlaps(offsets: Sequence[Tuple[int, int]]) -> Counter:
    """Count the overlapping pairs among the entity spans of one Doc.

    offsets (Sequence[Tuple[int, int]]): (start, end) of each entity.
    RETURNS (Counter): "pairs" of overlapping spans, split into "nested_pairs"
        (one span inside the other) and "crossing_pairs" (neither inside the
        other).
    """
    counts = Counter(pairs=0, nested_pairs=0, crossing_pairs=0)
    for i, (start_a, end_a) in enumerate(offsets):
        for start_b, end_b in offsets[i + 1 :]:
            if start_a < end_b and start_b < end_a:
                counts["pairs"] += 1
                nested = (start_a <= start_b and end_b <= end_a) or (
                    start_b <= start_a and end_a <= end_b
                )
                counts["nested_pairs" if nested else "crossing_pairs"] += 1
    return counts


def length_stats(lengths: Sequence[int]) -> Dict[str, Any]:
    """Summarise sentence lengths.

    lengths (Sequence[int]): Number of tokens of each sentence.
    RETURNS (Dict[str, Any]): "min", "mean" (2 decimals), "max" (None for no
        sentences), "percentiles" ("p50" etc., nearest-rank) and "histogram"
        (sentences per `LENGTH_BIN_WIDTH`-token bin, e.g. "1-10").
    """
    if not lengths:
        return {"min": None, "mean": None, "max": None, "percentiles": {}, "histogram": {}}
    ordered = sorted(lengths)
    bins = Counter((length - 1) // LENGTH_BIN_WIDTH if length else -1 for length in ordered)
    return {
        "min": ordered[0],
        "mean": round(sum(ordered) / len(ordered), 2),
        "max": ordered[-1],
        "percentiles": {
            f"p{p}": ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1] for p in PERCENTILES
        },
        "histogram": {_bin_name(b): bins[b] for b in range(min(bins), max(bins) + 1)},
    }


def _bin_name(index: int) -> str:
    if index < 0:
        return "0"
    return f"{index * LENGTH_BIN_WIDTH + 1}-{(index + 1) * LENGTH_BIN_WIDTH}"


def _distribution(counts: Counter) -> Dict[str, Any]:
    total = sum(counts.values())
    names = [name for name, _, _ in DISTANCE_BUCKETS]
    return {
        "total": total,
        "counts": {name: counts[name] for name in names},
        "percent": {name: round(100 * counts[name] / total, 1) if total else 0.0 for name in names},
    }


def _by_count(counts: Counter) -> Dict[str, int]:
    return {label: n for label, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))}


def _entities(doc: Doc, spans_key: str) -> list:
    return list(entity_spans(doc, spans_key))
