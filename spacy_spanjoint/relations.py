"""Relations on a Doc: the `doc._.relations` extension and triple access.

A relation is a plain record (`Relation`): the token offsets of its head and
tail entity (`(start, end)`, end exclusive), its label and its score. Records
live in `doc.user_data`, so they travel with `Doc.to_bytes`, `DocBin(
store_user_data=True)`, pickling and `nlp.pipe(n_process=...)`.
"""
from typing import Any, Iterable, Iterator, List, NamedTuple, Tuple

from spacy.tokens import Doc, Span

RELATIONS_ATTR = "relations"
# The key spaCy's Underscore uses for Doc extensions, so the records are
# stored like any other `doc._` value.
RELATIONS_KEY = ("._.", RELATIONS_ATTR, None, None)
# Gold corpora keep the symmetric relation labels of their types file here.
SYMMETRIC_LABELS_KEY = "spanjoint_symmetric_relations"


class Relation(NamedTuple):
    """One directed relation between two entity spans of a Doc.

    head (Tuple[int, int]): Token offsets (start, end) of the head entity.
    tail (Tuple[int, int]): Token offsets (start, end) of the tail entity.
    label (str): The relation type.
    score (float): The model's confidence; 1.0 for gold relations.
    """

    head: Tuple[int, int]
    tail: Tuple[int, int]
    label: str
    score: float = 1.0


def to_relation(record: Any, doc: Doc, index: int) -> Relation:
    """Validate one record and return it as a `Relation`.

    record (Any): A `Relation`, a sequence `(head, tail, label[, score])` (what
        msgpack turns a `Relation` into) or a dict with those keys.
    doc (Doc): The Doc the offsets refer to.
    index (int): Position of the record, for the error message.
    RETURNS (Relation): The normalised record.
    """
    if isinstance(record, dict):
        missing = {"head", "tail", "label"} - set(record)
        if missing:
            raise ValueError(
                f"doc._.relations[{index}]: missing key(s) {sorted(missing)} in {record!r}"
            )
        fields = (record["head"], record["tail"], record["label"], record.get("score", 1.0))
    elif isinstance(record, (list, tuple)) and len(record) in (3, 4):
        fields = tuple(record) if len(record) == 4 else (*record, 1.0)
    else:
        raise ValueError(
            f"doc._.relations[{index}]: expected a Relation(head, tail, label, score), got {record!r}"
        )
    head, tail, label, score = fields
    head = _to_offsets(head, doc, index, "head")
    tail = _to_offsets(tail, doc, index, "tail")
    if not isinstance(label, str) or not label:
        raise ValueError(f"doc._.relations[{index}].label: expected a non-empty str, got {label!r}")
    try:
        score = float(score)
    except (TypeError, ValueError):
        raise ValueError(f"doc._.relations[{index}].score: expected a number, got {score!r}") from None
    return Relation(head, tail, label, score)


def _to_offsets(value: Any, doc: Doc, index: int, field: str) -> Tuple[int, int]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(
            f"doc._.relations[{index}].{field}: expected token offsets (start, end), got {value!r}"
        )
    start, end = value
    if not 0 <= start < end <= len(doc):
        raise ValueError(
            f"doc._.relations[{index}].{field}: offsets ({start}, {end}) are not a "
            f"non-empty span of a doc with {len(doc)} tokens"
        )
    return (start, end)


def get_relations(doc: Doc) -> List[Relation]:
    """Getter of `doc._.relations`: the stored list, so appending to it works.

    Records that came back from msgpack as plain lists are turned back into
    `Relation`s in place.
    """
    records = doc.user_data.get(RELATIONS_KEY)
    if records is None:
        records = doc.user_data[RELATIONS_KEY] = []
    elif not isinstance(records, list):
        records = doc.user_data[RELATIONS_KEY] = list(records)
    for i, record in enumerate(records):
        if not isinstance(record, Relation):
            records[i] = to_relation(record, doc, i)
    return records


def set_relations(doc: Doc, records: Iterable[Any]) -> None:
    """Setter of `doc._.relations`: validates every record against the Doc."""
    doc.user_data[RELATIONS_KEY] = [to_relation(r, doc, i) for i, r in enumerate(records)]


def register_extensions() -> None:
    """Register `Doc._.relations` and `Doc._.orig_id` (idempotent).

    `orig_id` is the sentence id of the corpus a Doc was converted from.
    """
    if not Doc.has_extension(RELATIONS_ATTR):
        Doc.set_extension(RELATIONS_ATTR, getter=get_relations, setter=set_relations)
    if not Doc.has_extension("orig_id"):
        Doc.set_extension("orig_id", default=None)


def triples(doc: Doc) -> Iterator[Tuple[Span, str, Span, float]]:
    """Yield `(head Span, label, tail Span, score)` for each relation of a Doc.

    doc (Doc): A Doc with `doc._.relations` set (by the `spanjoint` component
        or a corpus).
    YIELDS (Tuple[Span, str, Span, float]): The knowledge-graph triples.
    """
    for relation in doc._.relations:
        yield (doc[slice(*relation.head)], relation.label, doc[slice(*relation.tail)], relation.score)
