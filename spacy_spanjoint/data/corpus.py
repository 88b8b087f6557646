"""Convert between SpERT JSON corpora and spaCy Docs.

The SpERT format is a JSON list of sentences:

    {"tokens": ["John", "lives", "in", "Ohio", "."],
     "entities": [{"type": "Peop", "start": 0, "end": 1}, {"type": "Loc", "start": 3, "end": 4}],
     "relations": [{"type": "Live_In", "head": 0, "tail": 1}],
     "orig_id": 42}

with `end` exclusive and `head`/`tail` indexing the sentence's `entities`. A
`*_types.json` file lists the entity and relation types and marks the
symmetric relation types.

Each sentence becomes one Doc: the tokens as words, the entities as a
`SpanGroup` in `doc.spans["entities"]` (input order, overlapping and nested
spans kept), the relations as `Relation` records in `doc._.relations` (input
order, head and tail given by token offsets) and `orig_id` in `doc._.orig_id`
(None when the sentence has none, or has `"orig_id": null`; export then
leaves the key out).
Every Doc also carries the sorted symmetric relation labels of the types file
in `doc.user_data[SYMMETRIC_LABELS_KEY]`, because the scorer reads them from
the gold docs. Sentence keys other than the four above are kept verbatim in
`doc.user_data[EXTRA_FIELDS_KEY]`, so JSON -> DocBin -> JSON gives back the
input for any corpus in this format. Entity and relation objects may hold
only their three keys: anything else could not follow the entity through a
Doc, so it is reported rather than lost.

Input is validated before anything is converted. Every problem becomes a
`Problem` naming the file, sentence index, orig_id and field; by default
they are raised together as a `CorpusError`. With `skip_invalid=True` only the
invalid items are dropped (an invalid sentence, an invalid entity together
with the relations that use it, an invalid relation) and the problems are
returned, so the caller can report what was dropped and why.

Exact duplicate relations (the same head, tail and type twice in one
sentence, as in some public releases of standard corpora) are not errors: the
copies are dropped and returned as problems with `fatal=False`, so the caller
can warn about them. A corpus without duplicates still round-trips byte for
byte.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from ..pipeline.relations import SYMMETRIC_LABELS_KEY, Relation, register_extensions
from .outputs import atomic_path

# Default `doc.spans` key of the entities, shared with the component.
ENTITIES_KEY = "entities"
# Sentence keys outside the SpERT schema, kept so that export restores them.
EXTRA_FIELDS_KEY = "spanjoint_spert_extra"
SENTENCE_KEYS = ("tokens", "entities", "relations")
ORIG_ID = "orig_id"
ENTITY_KEYS = ("type", "start", "end")
RELATION_KEYS = ("type", "head", "tail")

PathLike = Union[str, Path]


@dataclass(frozen=True)
class Problem:
    """One problem found in a corpus or types file.

    file (str): The file the problem is in.
    index (Optional[int]): Index of the sentence in the file; None when the
        problem concerns the whole file.
    orig_id (Any): The sentence's `orig_id`, None if it has none.
    field (str): Where in the sentence (or types file), e.g.
        "entities[2].end"; "" for the sentence or file as a whole.
    message (str): What is wrong.
    reason (str): Short category, used to count dropped items.
    item (str): What the problem invalidates, and what `skip_invalid` drops:
        "file", "sentence", "entity" or "relation".
    fatal (bool): False for what is dropped without `skip_invalid` (an exact
        duplicate relation): a warning, not an error.
    """

    file: str
    index: Optional[int]
    orig_id: Any
    field: str
    message: str
    reason: str
    item: str
    fatal: bool = True

    def __str__(self) -> str:
        where = [self.file]
        if self.index is not None:
            where.append(f"sentence {self.index} (orig_id {self.orig_id!r})")
        if self.field:
            where.append(self.field)
        return f"{', '.join(where)}: {self.message}"


class CorpusError(ValueError):
    """Raised when a corpus or types file is invalid.

    problems (List[Problem]): All problems found.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"- {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) found:\n{lines}")


@dataclass(frozen=True)
class SpertTypes:
    """The content of a SpERT `*_types.json` file, in file order.

    entities (Tuple[str, ...]): The entity types.
    relations (Tuple[str, ...]): The relation types.
    symmetric (Tuple[str, ...]): The relation types marked `"symmetric": true`.
    """

    entities: Tuple[str, ...]
    relations: Tuple[str, ...]
    symmetric: Tuple[str, ...]


def count_dropped(problems: Iterable[Problem]) -> Dict[str, int]:
    """Count the distinct items that a list of problems drops.

    An item with several problems is counted once.

    problems (Iterable[Problem]): Problems returned with `skip_invalid=True`.
    RETURNS (Dict[str, int]): Number of dropped items per kind ("sentence",
        "entity", "relation").
    """
    dropped: Dict[str, set] = {}
    for problem in problems:
        # "entities[2].end" and "entities[2].type" are the same entity.
        element = problem.field.split(".")[0] if problem.item != "sentence" else ""
        dropped.setdefault(problem.item, set()).add((problem.index, element))
    return {item: len(keys) for item, keys in dropped.items()}


def load_types(path: PathLike) -> SpertTypes:
    """Read a SpERT types file.

    path (str / Path): The `*_types.json` file.
    RETURNS (SpertTypes): Its entity, relation and symmetric relation types.
    RAISES (CorpusError): If the file is unreadable or malformed.
    """
    data = _load_json(path)
    problems: List[Problem] = []

    def problem(field: str, message: str) -> None:
        problems.append(
            Problem(str(path), None, None, field, message, "malformed types file", "file")
        )

    if not isinstance(data, dict):
        problem("", f"expected an object with 'entities' and 'relations', got {_kind(data)}")
        raise CorpusError(problems)
    sections: Dict[str, Dict[str, Any]] = {}
    for section in ("entities", "relations"):
        specs = data.get(section)
        if not isinstance(specs, dict):
            problem(section, f"expected an object of types, got {_kind(specs)}")
            continue
        sections[section] = specs
        for label, spec in specs.items():
            if not label:
                problem(section, "empty type name")
            if not isinstance(spec, dict):
                problem(f"{section}.{label}", f"expected an object, got {_kind(spec)}")
    symmetric = []
    for label, spec in sections.get("relations", {}).items():
        flag = spec.get("symmetric", False) if isinstance(spec, dict) else False
        if not isinstance(flag, bool):
            problem(f"relations.{label}.symmetric", f"expected true or false, got {flag!r}")
        elif flag:
            symmetric.append(label)
    if problems:
        raise CorpusError(problems)
    return SpertTypes(
        entities=tuple(sections["entities"]),
        relations=tuple(sections["relations"]),
        symmetric=tuple(symmetric),
    )


def read_spert_json(
    path: PathLike,
    types_path: PathLike,
    skip_invalid: bool = False,
    vocab: Optional[Vocab] = None,
    spans_key: str = ENTITIES_KEY,
) -> Tuple[List[Doc], List[Problem]]:
    """Read a SpERT JSON corpus into Docs.

    path (str / Path): The corpus file.
    types_path (str / Path): The corpus's `*_types.json` file.
    skip_invalid (bool): Drop invalid sentences, entities and relations instead
        of raising.
    vocab (Optional[Vocab]): The vocab of the Docs; a new one if None.
    spans_key (str): The `doc.spans` key for the entities.
    RETURNS (Tuple[List[Doc], List[Problem]]): The Docs, one per sentence kept,
        and the problems behind what was dropped: without `skip_invalid`, only
        the exact duplicate relations (`fatal=False`).
    RAISES (CorpusError): If a file is unreadable or malformed, or if any
        sentence is invalid and `skip_invalid` is False.
    """
    types = load_types(types_path)
    return spert_to_docs(
        _load_json(path),
        types,
        file=str(path),
        skip_invalid=skip_invalid,
        vocab=vocab,
        spans_key=spans_key,
    )


def spert_to_docs(
    sentences: Any,
    types: SpertTypes,
    *,
    file: str = "<data>",
    skip_invalid: bool = False,
    vocab: Optional[Vocab] = None,
    spans_key: str = ENTITIES_KEY,
) -> Tuple[List[Doc], List[Problem]]:
    """Convert loaded SpERT JSON data into Docs.

    sentences (Any): The parsed JSON (a list of sentence objects).
    types (SpertTypes): The allowed entity and relation types.
    file (str): Name of the data's file, for the problems.
    skip_invalid (bool): Drop invalid sentences, entities and relations instead
        of raising.
    vocab (Optional[Vocab]): The vocab of the Docs; a new one if None.
    spans_key (str): The `doc.spans` key for the entities.
    RETURNS (Tuple[List[Doc], List[Problem]]): See `read_spert_json`.
    RAISES (CorpusError): See `read_spert_json`.
    """
    register_extensions()
    if not isinstance(sentences, list):
        raise _file_error(
            file, f"expected a list of sentences, got {_kind(sentences)}", "top level not a list"
        )
    vocab = vocab if vocab is not None else Vocab()
    docs: List[Doc] = []
    problems: List[Problem] = []
    for index, sentence in enumerate(sentences):
        orig_id = sentence.get(ORIG_ID) if isinstance(sentence, dict) else None
        where = _Location(file, index, orig_id)
        doc, found = _sentence_to_doc(sentence, types, vocab, spans_key, where)
        problems.extend(found)
        if doc is not None:
            docs.append(doc)
    if not skip_invalid:
        errors = [problem for problem in problems if problem.fatal]
        if errors:
            raise CorpusError(errors)
    return docs, problems


def docs_to_spert(
    docs: Iterable[Doc], spans_key: str = ENTITIES_KEY, file: str = "<docs>"
) -> List[Dict[str, Any]]:
    """Convert gold or predicted Docs into SpERT JSON data.

    Entities come from `doc.spans[spans_key]` in order; each relation's head
    and tail become the index of the first entity with the same offsets.
    Scores are not part of the format and are left out.

    docs (Iterable[Doc]): The Docs.
    spans_key (str): The `doc.spans` key holding the entities.
    file (str): Name of the Docs' source, for the problems.
    RETURNS (List[Dict[str, Any]]): One sentence object per Doc, keys in SpERT
        order.
    RAISES (CorpusError): If a relation's head or tail offsets match no entity.
    """
    register_extensions()
    sentences = []
    problems: List[Problem] = []
    for index, doc in enumerate(docs):
        sentence, found = _doc_to_sentence(doc, spans_key, file, index)
        sentences.append(sentence)
        problems.extend(found)
    if problems:
        raise CorpusError(problems)
    return sentences


def write_spert_json(sentences: List[Dict[str, Any]], path: PathLike) -> None:
    """Write SpERT JSON data the way SpERT's corpora were written.

    `json.dumps` with its defaults (one line, ASCII escapes, no final newline)
    reproduces the released corpus files byte for byte.

    sentences (List[Dict[str, Any]]): The data, e.g. from `docs_to_spert`.
    path (str / Path): The output file.
    """
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(sentences), encoding="utf8")


def write_docbin(docs: Iterable[Doc], path: PathLike) -> None:
    """Save Docs as a `.spacy` file, keeping `doc._.relations`, `orig_id` and
    the symmetric labels (all in `user_data`).

    docs (Iterable[Doc]): The Docs.
    path (str / Path): The output file, replaced only once complete.
    """
    doc_bin = DocBin(docs=docs, store_user_data=True)
    with atomic_path(path) as temporary:
        doc_bin.to_disk(temporary)


def read_docbin(path: PathLike, vocab: Optional[Vocab] = None) -> List[Doc]:
    """Load Docs from a `.spacy` file.

    Note that msgpack gives lists in `user_data` back as tuples (e.g. the
    symmetric labels).

    path (str / Path): The `.spacy` file.
    vocab (Optional[Vocab]): The vocab of the Docs; a new one if None.
    RETURNS (List[Doc]): The Docs, their relations checked.
    RAISES (CorpusError): If the file cannot be read, is not a DocBin, or
        holds relation records that do not fit their Doc (each such Doc is
        named by its index and orig_id).
    """
    register_extensions()
    vocab = vocab if vocab is not None else Vocab()
    try:
        docs = list(DocBin().from_disk(path).get_docs(vocab))
    except OSError as err:
        raise _file_error(path, f"cannot read file: {err.strerror or err}", "unreadable file") from None
    except Exception as err:  # msgpack, zlib and spaCy each raise their own errors on foreign bytes
        message = f"not a .spacy file (spaCy DocBin): {type(err).__name__}: {err}"
        raise _file_error(path, message, "not a DocBin") from None
    problems = []
    for index, doc in enumerate(docs):
        try:
            doc._.relations
        except ValueError as err:
            where = _Location(str(path), index, doc._.orig_id)
            problems.append(where.problem("relations", str(err), "corrupt relations", "sentence"))
    if problems:
        raise CorpusError(problems)
    return docs


def entity_spans(doc: Doc, spans_key: str = ENTITIES_KEY) -> Sequence[Span]:
    """The entities of a Doc: `doc.spans[spans_key]`, or `doc.ents` when the
    Doc has no such span group (e.g. Docs of an NER corpus).

    doc (Doc): The Doc.
    spans_key (str): The `doc.spans` key of the entities.
    RETURNS (Sequence[Span]): The entity spans.
    """
    if spans_key in doc.spans:
        return doc.spans[spans_key]
    return doc.ents


def count_ents_fallbacks(docs: Iterable[Doc], spans_key: str = ENTITIES_KEY) -> int:
    """The number of Docs whose entities `entity_spans` takes from `doc.ents`.

    docs (Iterable[Doc]): The Docs.
    spans_key (str): The `doc.spans` key of the entities.
    RETURNS (int): Docs without `doc.spans[spans_key]` but with `doc.ents`.
    """
    return sum(1 for doc in docs if spans_key not in doc.spans and doc.ents)


def _load_json(path: PathLike) -> Any:
    try:
        text = Path(path).read_text(encoding="utf8")
    except OSError as err:
        raise _file_error(
            path, f"cannot read file: {err.strerror or err}", "unreadable file"
        ) from None
    except UnicodeDecodeError as err:
        raise _file_error(path, f"not UTF-8 text: {err}", "malformed JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        message = f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        raise _file_error(path, message, "malformed JSON") from None
    except RecursionError:
        message = "JSON nested too deeply to read (a corpus needs four levels)"
        raise _file_error(path, message, "malformed JSON") from None


def _file_error(path: PathLike, message: str, reason: str) -> CorpusError:
    return CorpusError([Problem(str(path), None, None, "", message, reason, "file")])


class _Location:
    """Where in a file a sentence is, to build its problems."""

    def __init__(self, file: str, index: int, orig_id: Any) -> None:
        self.file = file
        self.index = index
        self.orig_id = orig_id

    def problem(self, field: str, message: str, reason: str, item: str, fatal: bool = True) -> Problem:
        return Problem(self.file, self.index, self.orig_id, field, message, reason, item, fatal)


def _sentence_to_doc(
    sentence: Any, types: SpertTypes, vocab: Vocab, spans_key: str, where: _Location
) -> Tuple[Optional[Doc], List[Problem]]:
    problems = _check_sentence(sentence, where)
    # Entities and relations are only checked in a well-formed sentence: a
    # broken sentence is dropped whole, so their problems would count twice.
    if problems:
        return None, problems
    entities, relations = sentence["entities"], sentence["relations"]
    entity_ok, entity_problems = _check_entities(entities, len(sentence["tokens"]), types, where)
    relation_ok, relation_problems = _check_relations(relations, entity_ok, types, where)
    tokens = sentence["tokens"]
    # The text is not part of the format: one space between tokens.
    doc = Doc(vocab, words=tokens, spaces=[True] * (len(tokens) - 1) + [False] if tokens else [])
    doc.spans[spans_key] = [
        Span(doc, entity["start"], entity["end"], label=entity["type"])
        for entity, ok in zip(entities, entity_ok)
        if ok
    ]
    doc._.relations = [
        Relation(
            head=_offsets(entities[relation["head"]]),
            tail=_offsets(entities[relation["tail"]]),
            label=relation["type"],
            score=1.0,
        )
        for relation, ok in zip(relations, relation_ok)
        if ok
    ]
    doc._.orig_id = where.orig_id
    doc.user_data[SYMMETRIC_LABELS_KEY] = sorted(types.symmetric)
    extra = {key: value for key, value in sentence.items() if key not in (*SENTENCE_KEYS, ORIG_ID)}
    if extra:
        doc.user_data[EXTRA_FIELDS_KEY] = extra
    return doc, entity_problems + relation_problems


def _check_sentence(sentence: Any, where: _Location) -> List[Problem]:
    if not isinstance(sentence, dict):
        return [
            where.problem(
                "",
                f"expected a sentence object, got {_kind(sentence)}",
                "sentence not an object",
                "sentence",
            )
        ]
    problems = []
    for key in SENTENCE_KEYS:
        if key not in sentence:
            problems.append(where.problem(key, "missing key", "missing key", "sentence"))
        elif not isinstance(sentence[key], list):
            problems.append(
                where.problem(
                    key, f"expected a list, got {_kind(sentence[key])}", "not a list", "sentence"
                )
            )
    tokens = sentence.get("tokens")
    # An empty token list is an empty Doc (what `predict` writes for an empty text).
    if isinstance(tokens, list):
        for i, token in enumerate(tokens):
            # spaCy refuses empty words, so "" is as unusable as a number.
            if not isinstance(token, str) or not token:
                problems.append(
                    where.problem(
                        f"tokens[{i}]",
                        f"expected a non-empty string, got {token!r}",
                        "invalid token",
                        "sentence",
                    )
                )
    return problems


def _check_entities(
    entities: List[Any], n_tokens: int, types: SpertTypes, where: _Location
) -> Tuple[List[bool], List[Problem]]:
    valid = []
    problems: List[Problem] = []
    first_with_offsets: Dict[Tuple[int, int], int] = {}
    for i, entity in enumerate(entities):
        field = f"entities[{i}]"
        found = _check_keys(entity, ENTITY_KEYS, field, "entity", where)
        if not found:
            if entity["type"] not in types.entities:
                found.append(
                    where.problem(
                        f"{field}.type",
                        f"entity type {entity['type']!r} is not in the types file",
                        "unknown entity type",
                        "entity",
                    )
                )
            offset_problem = _check_offsets(entity["start"], entity["end"], n_tokens, field, where)
            if offset_problem is not None:
                found.append(offset_problem)
            else:
                # Relations are stored by offsets, so two entities with the
                # same offsets could not be told apart.
                offsets = _offsets(entity)
                if offsets in first_with_offsets:
                    found.append(
                        where.problem(
                            field,
                            f"duplicate of entities[{first_with_offsets[offsets]}] "
                            f"(same offsets {offsets[0]}-{offsets[1]})",
                            "duplicate entity",
                            "entity",
                        )
                    )
                else:
                    first_with_offsets[offsets] = i
        valid.append(not found)
        problems.extend(found)
    return valid, problems


def _check_offsets(
    start: Any, end: Any, n_tokens: int, field: str, where: _Location
) -> Optional[Problem]:
    for name, value in (("start", start), ("end", end)):
        if not _is_int(value):
            return where.problem(
                f"{field}.{name}",
                f"expected an int offset, got {value!r}",
                "non-int offset",
                "entity",
            )
    if not 0 <= start <= n_tokens or not 0 <= end <= n_tokens:
        name = "start" if not 0 <= start <= n_tokens else "end"
        return where.problem(
            f"{field}.{name}",
            f"offsets {start}-{end} are out of range for {n_tokens} tokens",
            "offsets out of range",
            "entity",
        )
    if start >= end:
        return where.problem(
            f"{field}.start", f"start {start} is not before end {end}", "empty span", "entity"
        )
    return None


def _check_relations(
    relations: List[Any], entity_ok: List[bool], types: SpertTypes, where: _Location
) -> Tuple[List[bool], List[Problem]]:
    valid = []
    problems: List[Problem] = []
    first_with_key: Dict[Tuple[int, int, str], int] = {}
    for i, relation in enumerate(relations):
        field = f"relations[{i}]"
        found = _check_keys(relation, RELATION_KEYS, field, "relation", where)
        if not found:
            if relation["type"] not in types.relations:
                found.append(
                    where.problem(
                        f"{field}.type",
                        f"relation type {relation['type']!r} is not in the types file",
                        "unknown relation type",
                        "relation",
                    )
                )
            head, tail = relation["head"], relation["tail"]
            bad_indices = [
                where.problem(
                    f"{field}.{name}",
                    f"{value!r} is not the index of one of "
                    f"the sentence's {len(entity_ok)} entities",
                    "invalid entity index",
                    "relation",
                )
                for name, value in (("head", head), ("tail", tail))
                if not _is_int(value) or not 0 <= value < len(entity_ok)
            ]
            found.extend(bad_indices)
            if not bad_indices and head == tail:
                found.append(
                    where.problem(
                        field,
                        f"head and tail are the same entity ({head})",
                        "self-relation",
                        "relation",
                    )
                )
            elif not bad_indices:
                for name, value in (("head", head), ("tail", tail)):
                    if not entity_ok[value]:
                        found.append(
                            where.problem(
                                f"{field}.{name}",
                                f"uses entity {value}, which is invalid",
                                "uses an invalid entity",
                                "relation",
                            )
                        )
        if not found:
            key = (relation["head"], relation["tail"], relation["type"])
            if key in first_with_key:
                # The same head, tail and type: the copy adds nothing, so it is
                # dropped with a warning rather than failing the corpus.
                found.append(
                    where.problem(
                        field,
                        f"exact duplicate of relations[{first_with_key[key]}], dropped",
                        "duplicate relation",
                        "relation",
                        fatal=False,
                    )
                )
            else:
                first_with_key[key] = i
        valid.append(not found)
        problems.extend(found)
    return valid, problems


def _check_keys(
    value: Any, keys: Sequence[str], field: str, item: str, where: _Location
) -> List[Problem]:
    if not isinstance(value, dict):
        return [
            where.problem(
                field,
                f"expected the {item} as an object, got {_kind(value)}",
                f"{item} not an object",
                item,
            )
        ]
    missing = [
        where.problem(f"{field}.{key}", "missing key", "missing key", item)
        for key in keys
        if key not in value
    ]
    # Extra keys could not be carried through the Doc, and dropping them
    # quietly would break the round trip.
    unknown = [
        where.problem(
            f"{field}.{key}", f"unknown key (expected only {', '.join(keys)})", "unknown key", item
        )
        for key in value
        if key not in keys
    ]
    return missing + unknown


def _doc_to_sentence(
    doc: Doc, spans_key: str, file: str, index: int
) -> Tuple[Dict[str, Any], List[Problem]]:
    spans = entity_spans(doc, spans_key)
    entity_index: Dict[Tuple[int, int], int] = {}
    for i, span in enumerate(spans):
        entity_index.setdefault((span.start, span.end), i)
    where = _Location(file, index, doc._.orig_id)
    problems = []
    relations = []
    for i, relation in enumerate(doc._.relations):
        head, tail = entity_index.get(tuple(relation.head)), entity_index.get(tuple(relation.tail))
        for name, found, offsets in (("head", head, relation.head), ("tail", tail, relation.tail)):
            if found is None:
                problems.append(
                    where.problem(
                        f"relations[{i}].{name}",
                        f"{relation.label!r} relation's {name} offsets "
                        f"{offsets[0]}-{offsets[1]} match no entity in doc.spans[{spans_key!r}]",
                        "relation without entity",
                        "relation",
                    )
                )
        relations.append({"type": relation.label, "head": head, "tail": tail})
    sentence: Dict[str, Any] = {
        "tokens": [token.text for token in doc],
        "entities": [{"type": span.label_, "start": span.start, "end": span.end} for span in spans],
        "relations": relations,
    }
    # A sentence without orig_id must come back without it.
    if doc._.orig_id is not None:
        sentence[ORIG_ID] = _to_json(doc._.orig_id)
    sentence.update(_to_json(doc.user_data.get(EXTRA_FIELDS_KEY, {})))
    return sentence, problems


def _to_json(value: Any) -> Any:
    # msgpack hands lists in user_data back as tuples.
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _offsets(entity: Dict[str, Any]) -> Tuple[int, int]:
    return (entity["start"], entity["end"])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    return names.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )
