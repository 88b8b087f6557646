"""Analyses of section 4.4 of the two-phase paper, on our own data and runs.

- `imbalance_ratios`: the most imbalanced class distribution a classifier
  sees in training (Table 6): smallest class count against the largest, for
  the single-phase baseline (types plus "none"), phase one (entity /
  not-entity, relation / not-relation) and phase two (the types of the gold
  positives). Counted on the candidates the training sampler really draws.
- `entity_f1_by_length`: NER F1 per entity length interval (Fig. 3).
- `relation_f1_by_distance`: strict RE F1 per entity distance interval (Fig. 4).
- `entity_error_profile`, `relation_error_profile`: where the errors come
  from (missed entities, boundary variants, wrong types; relations lost to a
  missed entity or rejected by the relation classifier).
"""
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example

from ..data.stats import entity_distance
from ..model.candidates import training_pairs, training_spans
from ..pipeline.relations import SYMMETRIC_LABELS_KEY
from ..pipeline.scoring import entity_types, relation_keys, symmetric_labels

# (name, lowest, highest), both inclusive; None means unbounded
LENGTH_INTERVALS: Tuple[Tuple[str, int, Optional[int]], ...] = (
    ("1-2", 1, 2), ("3-4", 3, 4), ("5-6", 5, 6), ("7-8", 7, 8), ("9-10", 9, 10),
)
DISTANCE_INTERVALS: Tuple[Tuple[str, int, Optional[int]], ...] = (
    ("0", 0, 0), ("1-3", 1, 3), ("4-6", 4, 6), ("7-9", 7, 9), (">=10", 10, None),
)
ENTITY_ERROR_KINDS = ("gold", "predicted", "correct", "wrong_type", "boundary", "missed", "false_positive_boundary",
                      "false_positive_spurious", "final_period_gold", "final_period_correct")
RELATION_ERROR_KINDS = ("gold", "predicted", "correct", "entity_missed", "wrong_type", "rejected", "false_positive")


def interval_name(value: int, intervals: Sequence[Tuple[str, int, Optional[int]]]) -> Optional[str]:
    """The interval holding `value`, or None when no interval does."""
    for name, low, high in intervals:
        if value >= low and (high is None or value <= high):
            return name
    return None


def entity_f1_by_length(examples: Iterable[Example], spans_key: str = "entities") -> Dict[str, Dict[str, float]]:
    """NER P/R/F per entity length interval (Fig. 3 of the two-phase paper).

    A gold entity counts in the interval of its own length, a predicted one in
    the interval of its own length, so precision and recall are those of the
    entities of that length. Predicted and gold docs must share their tokens.

    examples (Iterable[Example]): Predicted and gold docs.
    spans_key (str): Where the entities are.
    RETURNS (Dict[str, Dict[str, float]]): interval -> {"p", "r", "f", "n_gold"}.
    """
    scores = {name: PRFScore() for name, _, _ in LENGTH_INTERVALS}
    n_gold: Counter = Counter()
    for i, example in enumerate(examples):
        gold = _entities_by_interval(example.reference, spans_key, i)
        pred = _entities_by_interval(example.predicted, spans_key, i)
        for name, score in scores.items():
            score.score_set(pred.get(name, set()), gold.get(name, set()))
            n_gold[name] += len(gold.get(name, set()))
    return {name: dict(score.to_dict(), n_gold=n_gold[name]) for name, score in scores.items()}


def _entities_by_interval(doc: Doc, spans_key: str, doc_index: int) -> Dict[str, set]:
    grouped: Dict[str, set] = {}
    for span in doc.spans.get(spans_key, []):
        name = interval_name(len(span), LENGTH_INTERVALS)
        if name is not None:
            grouped.setdefault(name, set()).add((doc_index, span.start, span.end, span.label_))
    return grouped


def relation_f1_by_distance(
    examples: Iterable[Example], spans_key: str = "entities", symmetric_relations: Iterable[str] = ()
) -> Dict[str, Dict[str, float]]:
    """Strict RE P/R/F per entity distance interval (Fig. 4 of the two-phase paper).

    The distance is the number of tokens strictly between head and tail (as in
    `stats.entity_distance`). Predicted and gold docs must share their tokens.

    examples (Iterable[Example]): Predicted and gold docs.
    spans_key (str): Where the entities are.
    symmetric_relations (Iterable[str]): Labels matched in either direction,
        beside those each gold doc carries.
    RETURNS (Dict[str, Dict[str, float]]): interval -> {"p", "r", "f", "n_gold"}.
    """
    scores = {name: PRFScore() for name, _, _ in DISTANCE_INTERVALS}
    n_gold: Counter = Counter()
    for i, example in enumerate(examples):
        symmetric = symmetric_labels(example, symmetric_relations)
        gold = _relations_by_interval(relation_keys(example.reference, spans_key, symmetric)[0], i)
        pred = _relations_by_interval(relation_keys(example.predicted, spans_key, symmetric)[0], i)
        for name, score in scores.items():
            score.score_set(pred.get(name, set()), gold.get(name, set()))
            n_gold[name] += len(gold.get(name, set()))
    return {name: dict(score.to_dict(), n_gold=n_gold[name]) for name, score in scores.items()}


def _relations_by_interval(keys: Iterable[tuple], doc_index: int) -> Dict[str, set]:
    grouped: Dict[str, set] = {}
    for key in keys:
        name = interval_name(entity_distance(key[1], key[3]), DISTANCE_INTERVALS)
        grouped.setdefault(name, set()).add((doc_index,) + key)
    return grouped


def imbalance_ratios(
    docs: Iterable[Doc],
    entity_labels: List[str],
    relation_labels: List[str],
    *,
    spans_key: str = "entities",
    max_span_width: int = 10,
    span_negatives: int = 100,
    pair_negatives: int = 100,
    seed: int = 0,
) -> Dict[str, Dict[str, object]]:
    """Class counts and the most imbalanced ratio of one epoch of training candidates (Table 6).

    Each Doc is one sampling window, as with sentence windows on single
    sentence corpora. The candidates are drawn by the training sampler itself
    (`training_spans`, `training_pairs`).

    docs (Iterable[Doc]): Gold training docs.
    entity_labels (List[str]): The entity types.
    relation_labels (List[str]): The relation types.
    spans_key (str): Where the entities are.
    max_span_width (int): Width threshold of the negative spans.
    span_negatives (int): Negative spans per window.
    pair_negatives (int): Negative pairs per window.
    seed (int): Seed of the sampler.
    RETURNS (Dict[str, Dict[str, object]]): For "ner" and "re": the counts per
        class ("none" for the negatives) and the ratios (largest / smallest)
        of the baseline (all classes), phase one (positives vs negatives) and
        phase two (types only).
    """
    torch.manual_seed(seed)
    entity_counts: Counter = Counter()
    relation_counts: Counter = Counter()
    for doc in docs:
        entity_targets, relation_targets = _candidate_targets(
            doc, entity_labels, relation_labels, spans_key, max_span_width, span_negatives, pair_negatives
        )
        entity_counts.update(entity_targets)
        relation_counts.update(relation_targets)
    return {
        "ner": _ratios(entity_counts, ["none"] + list(entity_labels)),
        "re": _ratios(relation_counts, ["none"] + list(relation_labels)),
    }


def _candidate_targets(doc, entity_labels, relation_labels, spans_key, max_width, span_negatives, pair_negatives):
    entities = list(doc.spans.get(spans_key, []))
    index = {(span.start, span.end): i for i, span in enumerate(entities)}
    gold_spans = torch.tensor([[s.start, s.end] for s in entities], dtype=torch.long).reshape(-1, 2)
    token_window = torch.zeros(len(doc), dtype=torch.long)
    spans = training_spans(token_window, gold_spans, max_width, span_negatives)
    entity_targets = [entities[i].label_ for i in range(len(entities))] + ["none"] * (spans.shape[0] - len(entities))
    relation_ids = {label: i for i, label in enumerate(relation_labels)}
    symmetric = set(doc.user_data.get(SYMMETRIC_LABELS_KEY, []))
    gold_relations = torch.tensor(
        [[index[r.head], index[r.tail], relation_ids[r.label]] for r in doc._.relations], dtype=torch.long
    ).reshape(-1, 3)
    symmetric_mask = torch.tensor([label in symmetric for label in relation_labels], dtype=torch.bool)
    _, pair_targets = training_pairs(
        torch.zeros(len(entities), dtype=torch.long), gold_relations, symmetric_mask, pair_negatives
    )
    relation_targets = ["none" if t == 0 else relation_labels[t - 1] for t in pair_targets.tolist()]
    return entity_targets, relation_targets


def _ratios(counts: Counter, classes: List[str]) -> Dict[str, object]:
    counts_by_class = {name: counts.get(name, 0) for name in classes}
    types = [counts_by_class[name] for name in classes[1:]]
    positives = sum(types)

    def ratio(values: List[int]) -> Optional[float]:
        nonzero = [v for v in values if v > 0]
        return round(max(nonzero) / min(nonzero), 1) if nonzero else None

    return {
        "counts": counts_by_class,
        "baseline": ratio(list(counts_by_class.values())),
        "phase_one": ratio([positives, counts_by_class["none"]]),
        "phase_two": ratio(types),
    }


def overlaps(span: Tuple[int, int], others: Iterable[Tuple[int, int]]) -> bool:
    """Whether the token range `span` shares a token with one of `others`."""
    return any(start < span[1] and span[0] < end for start, end in others)


def ends_with_glued_period(doc: Doc, span: Tuple[int, int]) -> bool:
    """Whether the span ends the doc on a word that carries the final period ("Kennedy.")."""
    text = doc[span[1] - 1].text
    return span[1] == len(doc) and len(text) > 1 and text.endswith(".")


def entity_error_profile(examples: Iterable[Example], spans_key: str = "entities") -> Dict[str, int]:
    """Counts of each kind of entity error. Predicted and gold docs must share their tokens.

    Gold entities: "correct" (same span, same type), "wrong_type" (same span),
    "boundary" (no prediction with the same span, one overlapping it) and
    "missed" (no overlapping prediction). Predictions not in the gold:
    "false_positive_boundary" (overlaps a gold entity), "false_positive_spurious"
    (overlaps none). "final_period_gold" / "final_period_correct": the gold
    entities that end the doc on a word carrying its final period, and how
    many of them are correct (a slice where span models lose recall).

    examples (Iterable[Example]): Predicted and gold docs.
    spans_key (str): Where the entities are.
    RETURNS (Dict[str, int]): The counts, "gold" and "predicted" included.
    """
    counts: Counter = Counter()
    for example in examples:
        gold = entity_types(example.reference, spans_key)
        predicted = entity_types(example.predicted, spans_key)
        counts["gold"] += len(gold)
        counts["predicted"] += len(predicted)
        for span, label in gold.items():
            if span in predicted:
                kind = "correct" if predicted[span] == label else "wrong_type"
            else:
                kind = "boundary" if overlaps(span, predicted) else "missed"
            counts[kind] += 1
            if ends_with_glued_period(example.reference, span):
                counts["final_period_gold"] += 1
                counts["final_period_correct"] += kind == "correct"
        for span in predicted:
            if span not in gold:
                counts["false_positive_boundary" if overlaps(span, gold) else "false_positive_spurious"] += 1
    return {key: counts[key] for key in ENTITY_ERROR_KINDS}


def relation_error_profile(
    examples: Iterable[Example], spans_key: str = "entities", symmetric_relations: Iterable[str] = ()
) -> Dict[str, int]:
    """Counts of each kind of relation error (strict matching). Docs must share their tokens.

    Gold relations: "correct"; "entity_missed" (a head or tail entity not
    predicted with its span and type: the relation could not be proposed);
    "wrong_type" (both entities right, the pair predicted with another
    relation type); "rejected" (both entities right, the pair not predicted).
    Predictions not in the gold: "false_positive". Symmetric types match in
    either order.

    examples (Iterable[Example]): Predicted and gold docs.
    spans_key (str): Where the entities are.
    symmetric_relations (Iterable[str]): Symmetric labels beside those each gold doc carries.
    RETURNS (Dict[str, int]): The counts, "gold" and "predicted" included.
    """
    counts: Counter = Counter()
    for example in examples:
        symmetric = symmetric_labels(example, symmetric_relations)
        gold = relation_keys(example.reference, spans_key, symmetric)[0]
        predicted = relation_keys(example.predicted, spans_key, symmetric)[0]
        predicted_entities = set(entity_types(example.predicted, spans_key).items())
        predicted_pairs = {key[1:] for key in predicted}
        counts["gold"] += len(gold)
        counts["predicted"] += len(predicted)
        counts["false_positive"] += len(predicted - gold)
        for key in gold:
            _, head, head_type, tail, tail_type = key
            if key in predicted:
                counts["correct"] += 1
            elif not {(head, head_type), (tail, tail_type)} <= predicted_entities:
                counts["entity_missed"] += 1
            elif key[1:] in predicted_pairs:
                counts["wrong_type"] += 1
            else:
                counts["rejected"] += 1
    return {key: counts[key] for key in RELATION_ERROR_KINDS}
