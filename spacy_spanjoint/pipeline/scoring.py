"""Scoring entities and relations the way SpERT and the papers do.

Entities: spaCy's `Scorer.score_spans` on `doc.spans[key]` (overlap allowed),
plus macro F1. Relations: "strict" (both spans, both entity types and the
relation type match) and "boundaries" (entity types ignored), micro, macro
and per type. A symmetric relation type matches in either direction. Scores
compare the sets of gold and predicted relations, so a gold relation the
model never proposed is a miss.
"""
from typing import Any, Callable, Dict, Iterable, Optional, Set, Tuple

from spacy.scorer import PRFScore, Scorer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .relations import SYMMETRIC_LABELS_KEY

Offsets = Tuple[int, int]


def macro_f(per_type: Dict[str, Dict[str, float]]) -> float:
    """Mean F1 over the types of a `*_per_type` dict (0.0 when empty)."""
    if not per_type:
        return 0.0
    return sum(scores["f"] for scores in per_type.values()) / len(per_type)


def entity_types(doc: Doc, spans_key: str) -> Dict[Offsets, str]:
    """Offsets -> label of the entities in `doc.spans[spans_key]`."""
    return {(span.start, span.end): span.label_ for span in doc.spans.get(spans_key, [])}


def symmetric_labels(example: Example, symmetric_relations: Iterable[str] = ()) -> Set[str]:
    """The relation labels that match in either direction for this example:
    `symmetric_relations` plus those its gold doc carries from its corpus types file."""
    return set(symmetric_relations) | set(example.reference.user_data.get(SYMMETRIC_LABELS_KEY, []))


def relation_keys(
    doc: Doc, spans_key: str, symmetric: Set[str], offsets_map: Optional[Callable[[Offsets], Offsets]] = None
) -> Tuple[Set[tuple], Set[tuple]]:
    """The strict and the boundaries keys of a Doc's relations.

    doc (Doc): A Doc with `doc._.relations` and `doc.spans[spans_key]`.
    spans_key (str): Where the entities are.
    symmetric (Set[str]): Relation labels that hold in either direction; their
        two arguments are put in a fixed order.
    offsets_map (Optional[Callable]): Maps this doc's token offsets to the
        reference tokenization (None: identical tokenization).
    RETURNS (Tuple[Set[tuple], Set[tuple]]): (label, head, head type, tail,
        tail type) keys and (label, head, tail) keys.
    """
    types = entity_types(doc, spans_key)
    strict, boundaries = set(), set()
    for relation in doc._.relations:
        head = (relation.head, types.get(relation.head))
        tail = (relation.tail, types.get(relation.tail))
        if offsets_map is not None:
            head, tail = (offsets_map(head[0]), head[1]), (offsets_map(tail[0]), tail[1])
        if relation.label in symmetric and tail < head:
            head, tail = tail, head
        strict.add((relation.label, head[0], head[1], tail[0], tail[1]))
        boundaries.add((relation.label, head[0], tail[0]))
    return strict, boundaries


def same_tokenization(example: Example) -> bool:
    """Whether the predicted and the gold doc have the same tokens."""
    return [t.text for t in example.predicted] == [t.text for t in example.reference]


def _reference_offsets(example: Example) -> Optional[Callable[[Offsets], Offsets]]:
    """None when both docs share their tokens, else a mapper through the alignment."""
    if same_tokenization(example):
        return None

    def to_reference(offsets: Offsets) -> Offsets:
        spans = example.get_aligned_spans_x2y([example.predicted[offsets[0] : offsets[1]]], allow_overlap=True)
        return (spans[0].start, spans[0].end) if spans else (-1, -1)

    return to_reference


def score_relations(
    examples: Iterable[Example], spans_key: str = "entities", symmetric_relations: Iterable[str] = ()
) -> Dict[str, Any]:
    """Strict and boundaries P/R/F of `doc._.relations`, micro, macro and per type.

    examples (Iterable[Example]): Predicted and gold docs.
    spans_key (str): Where the entities are (for the strict entity types).
    symmetric_relations (Iterable[str]): Symmetric labels, beside those each
        gold doc carries from its corpus types file.
    RETURNS (Dict[str, Any]): `relations_{p,r,f,macro_f,per_type}` and
        `relations_boundaries_{p,r,f,macro_f,per_type}`.
    """
    totals = {"relations": PRFScore(), "relations_boundaries": PRFScore()}
    per_type: Dict[str, Dict[str, PRFScore]] = {name: {} for name in totals}
    for example in examples:
        symmetric = symmetric_labels(example, symmetric_relations)
        gold = relation_keys(example.reference, spans_key, symmetric)
        pred = relation_keys(example.predicted, spans_key, symmetric, _reference_offsets(example))
        for name, gold_keys, pred_keys in zip(totals, gold, pred):
            totals[name].score_set(pred_keys, gold_keys)
            for label in {key[0] for key in gold_keys | pred_keys}:
                score = per_type[name].setdefault(label, PRFScore())
                score.score_set({k for k in pred_keys if k[0] == label}, {k for k in gold_keys if k[0] == label})
    results: Dict[str, Any] = {}
    for name, total in totals.items():
        types = {label: score.to_dict() for label, score in sorted(per_type[name].items())}
        results.update(
            {f"{name}_p": total.precision, f"{name}_r": total.recall, f"{name}_f": total.fscore,
             f"{name}_macro_f": macro_f(types), f"{name}_per_type": types}
        )
    return results


def score_spanjoint(
    examples: Iterable[Example], *, spans_key: str = "entities", symmetric_relations: Iterable[str] = (), **kwargs
) -> Dict[str, Any]:
    """Entity scores (`spans_{key}_*`, with `spans_{key}_macro_f`) and relation scores."""
    examples = list(examples)
    attr = f"spans_{spans_key}"
    scores = Scorer.score_spans(
        examples,
        attr,
        getter=lambda doc, name: doc.spans.get(name[len("spans_"):], []),
        has_annotation=lambda doc: True,
        labeled=True,
        allow_overlap=True,
    )
    scores[f"{attr}_macro_f"] = macro_f(scores.get(f"{attr}_per_type") or {})
    scores.update(score_relations(examples, spans_key, symmetric_relations))
    return scores


@registry.scorers("spacy-spanjoint.spanjoint_scorer.v1")
def make_spanjoint_scorer() -> Callable[..., Dict[str, Any]]:
    """The scorer of the `spanjoint` component (see `score_spanjoint`)."""
    return score_spanjoint
