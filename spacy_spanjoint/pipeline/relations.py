"""Relations on a Doc: the `doc._.relations` extension and triple access.

A relation is a plain record (`Relation`): the token offsets of its head and
tail entity (`(start, end)`, end exclusive), its label and its score. Records
live in `doc.user_data`, so they travel with `Doc.to_bytes`, `DocBin(
store_user_data=True)`, pickling and `nlp.pipe(n_process=...)`.

Token offsets go stale when the Doc is retokenized, and spaCy has no hook on
`Doc.retokenize()`. So beside the records the Doc keeps the character
boundaries of its tokens as they were when the relations were set
(`TOKENS_KEY`). Reading `doc._.relations` compares them with the Doc's
tokens: after a retokenization every record is moved to the tokens that
cover the same characters, and a head or tail that no longer starts and ends
on token boundaries (a merge across its edge, a split inside it) is a
`ValueError`. Records carried over to a Doc with another text are an error
too. `Doc.from_docs` and `Span.as_doc` drop the relations (they skip
Doc-level extensions); `concat_docs` and `span_as_doc` keep them.
`docs/relations.md` lists what survives which operation.
"""
import warnings
import zlib
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc, Span

RELATIONS_ATTR = "relations"
# The key spaCy's Underscore uses for Doc extensions, so the records are
# stored like any other `doc._` value.
RELATIONS_KEY = ("._.", RELATIONS_ATTR, None, None)
# The text checksum and token boundaries the relation offsets refer to. A
# Doc-level `._.` key, so spaCy's `from_docs` and `as_doc` drop it with the
# relations.
TOKENS_KEY = ("._.", "spanjoint_relation_tokens", None, None)
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
    return _parse(record, len(doc), index)


def _parse(record: Any, n_tokens: int, index: int) -> Relation:
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
    head = _to_offsets(head, n_tokens, index, "head")
    tail = _to_offsets(tail, n_tokens, index, "tail")
    if not isinstance(label, str) or not label:
        raise ValueError(f"doc._.relations[{index}].label: expected a non-empty str, got {label!r}")
    try:
        score = float(score)
    except (TypeError, ValueError):
        raise ValueError(f"doc._.relations[{index}].score: expected a number, got {score!r}") from None
    return Relation(head, tail, label, score)


def _to_offsets(value: Any, n_tokens: int, index: int, field: str) -> Tuple[int, int]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(
            f"doc._.relations[{index}].{field}: expected token offsets (start, end), got {value!r}"
        )
    start, end = value
    if not 0 <= start < end <= n_tokens:
        raise ValueError(
            f"doc._.relations[{index}].{field}: offsets ({start}, {end}) are not a "
            f"non-empty span of a doc with {n_tokens} tokens"
        )
    return (start, end)


def get_relations(doc: Doc) -> List[Relation]:
    """Getter of `doc._.relations`: the stored list, so appending to it works.

    Records that came back from msgpack as plain lists are turned back into
    `Relation`s in place. Records of a Doc retokenized since they were set
    are moved to the new token offsets, in place (see the module docstring).

    RAISES (ValueError): If a record does not fit the Doc, or a head or tail
        no longer starts and ends on token boundaries.
    """
    records = doc.user_data.get(RELATIONS_KEY)
    if records is None:
        records = doc.user_data[RELATIONS_KEY] = []
    elif not isinstance(records, list):
        records = doc.user_data[RELATIONS_KEY] = list(records)
    if not records:
        return records
    stored = doc.user_data.get(TOKENS_KEY)
    current = token_fingerprint(doc)
    if stored is not None and _as_dict(stored) != current:
        records[:] = _retokenized(doc, records, _as_dict(stored))
    else:
        for i, record in enumerate(records):
            if not isinstance(record, Relation):
                records[i] = to_relation(record, doc, i)
    doc.user_data[TOKENS_KEY] = current
    return records


def set_relations(doc: Doc, records: Iterable[Any]) -> None:
    """Setter of `doc._.relations`: validates every record against the Doc."""
    relations = [to_relation(r, doc, i) for i, r in enumerate(records)]
    doc.user_data[RELATIONS_KEY] = relations
    if relations:
        doc.user_data[TOKENS_KEY] = token_fingerprint(doc)
    else:
        doc.user_data.pop(TOKENS_KEY, None)


def token_fingerprint(doc: Doc) -> Dict[str, Any]:
    """The text checksum and token boundaries that relation offsets refer to.

    doc (Doc): The Doc.
    RETURNS (Dict[str, Any]): "text" (CRC-32 of the text) and "tokens" (start
        and end character of each token, flat), plain data for msgpack.
    """
    bounds = doc.to_array([IDX, LENGTH]).astype("int64")
    bounds[:, 1] += bounds[:, 0]
    return {"text": zlib.crc32(doc.text.encode("utf8", "surrogatepass")), "tokens": bounds.reshape(-1).tolist()}


def _as_dict(stored: Any) -> Dict[str, Any]:
    # msgpack gives the lists back as lists, but a hand-made value may hold tuples
    if not isinstance(stored, dict) or "text" not in stored or "tokens" not in stored:
        return {"text": None, "tokens": []}
    return {"text": stored["text"], "tokens": list(stored["tokens"])}


def _retokenized(doc: Doc, records: List[Any], stored: Dict[str, Any]) -> List[Relation]:
    """The records moved from the stored token boundaries to the Doc's own."""
    if stored["text"] != zlib.crc32(doc.text.encode("utf8", "surrogatepass")):
        raise ValueError(
            "doc._.relations were set on a Doc with another text, so their token offsets do not "
            "refer to this Doc (was its user_data copied from another Doc?). Set doc._.relations again."
        )
    bounds = stored["tokens"]
    moved = []
    for i, record in enumerate(records):
        relation = _parse(record, len(bounds) // 2, i)
        offsets = []
        for field, (start, end) in (("head", relation.head), ("tail", relation.tail)):
            start_char, end_char = bounds[2 * start], bounds[2 * end - 1]
            span = doc.char_span(start_char, end_char)
            if span is None:
                raise ValueError(
                    f"doc._.relations[{i}].{field}: the entity {doc.text[start_char:end_char]!r} "
                    f"(characters {start_char}-{end_char}) no longer starts and ends on a token "
                    "boundary: the Doc was retokenized (a merge across its edge or a split inside "
                    "it) after the relations were set. Set doc._.relations again."
                )
            offsets.append((span.start, span.end))
        moved.append(Relation(offsets[0], offsets[1], relation.label, relation.score))
    return moved


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
    RAISES (ValueError): If a record does not fit the Doc (e.g. one appended
        with offsets outside it).
    """
    for i, record in enumerate(doc._.relations):
        # appended records have not been validated by the setter
        relation = to_relation(record, doc, i)
        yield (doc[slice(*relation.head)], relation.label, doc[slice(*relation.tail)], relation.score)


# Doc-level extensions that `Doc.from_docs` skips with warning W101.
_SKIPPED_EXTENSIONS = rf"\[W101\] .*'({RELATIONS_ATTR}|{TOKENS_KEY[1]})'"


def concat_docs(docs: Sequence[Doc], **kwargs: Any) -> Optional[Doc]:
    """`Doc.from_docs` that keeps the relations, moved to the joined Doc's offsets.

    docs (Sequence[Doc]): The Docs, in order.
    kwargs: Other arguments of `Doc.from_docs`.
    RETURNS (Optional[Doc]): The joined Doc (None for no Docs, as `from_docs`).
    """
    docs = list(docs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SKIPPED_EXTENSIONS)
        joined = Doc.from_docs(docs, **kwargs)
    if joined is None:
        return None
    relations, offset = [], 0
    for doc in docs:
        relations += [_shifted(relation, offset) for relation in doc._.relations]
        offset += len(doc)
    joined._.relations = relations
    return joined


def span_as_doc(span: Span, **kwargs: Any) -> Doc:
    """`Span.as_doc` that keeps the relations whose head and tail lie inside the span.

    span (Span): The span.
    kwargs: Other arguments of `Span.as_doc`.
    RETURNS (Doc): The new Doc.
    """
    doc = span.as_doc(**kwargs)
    doc._.relations = [
        _shifted(relation, -span.start)
        for relation in span.doc._.relations
        if span.start <= min(relation.head[0], relation.tail[0])
        and max(relation.head[1], relation.tail[1]) <= span.end
    ]
    return doc


def _shifted(relation: Relation, offset: int) -> Relation:
    head, tail = relation.head, relation.tail
    return Relation((head[0] + offset, head[1] + offset), (tail[0] + offset, tail[1] + offset), relation.label, relation.score)
