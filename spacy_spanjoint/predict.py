"""Predict entities and relations for a text file and export them.

Input is a `.txt` file with one document per line, or JSON Lines whose
objects have a `text` field (any other fields are carried through). Blank
lines are skipped. A line that is not usable (invalid JSON, not an object,
missing or non-string `text`) becomes an `InputProblem` naming its line
number; the other lines are still processed.

Each document gets an id: its `id` field if it has one, else its line number.

Output formats:

- `jsonl`: one object per document, the input fields plus `entities`
  (character offsets `start` / `end`, `text`, `label`, `score`) and
  `relations` (`head` / `tail` index into `entities`, `label`, `score`);
- `csv`: one triple per row (doc id, head, relation, tail, their labels and
  scores, and the sentence of the head);
- `spert`: the SpERT JSON corpus format of `corpus.py` (one sentence object
  per document, `orig_id` = the document id), so other tools can score it.
"""
import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from .component import SpanJoint
from .corpus import ENTITIES_KEY, docs_to_spert
from .relations import register_extensions

FORMATS = ("jsonl", "csv", "spert")
CSV_HEADER = (
    "doc_id",
    "head",
    "head_label",
    "relation",
    "tail",
    "tail_label",
    "head_score",
    "relation_score",
    "tail_score",
    "sentence",
)


@dataclass(frozen=True)
class InputProblem:
    """A line of the input that could not be used.

    file (str): The input file.
    line (int): Its line number (1-based).
    reason (str): What is wrong with it.
    """

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def read_records(path: Union[str, Path]) -> Iterator[Tuple[int, Optional[Dict[str, Any]], Optional[InputProblem]]]:
    """Stream the documents of a `.txt` or JSON Lines file.

    A `.txt` file holds one text per line. Any other file is read as JSON
    Lines: each line an object with a string `text`.

    path (str / Path): The input file.
    YIELDS (Tuple[int, Optional[Dict], Optional[InputProblem]]): The line
        number and either the record (a dict with `text`) or the problem.
    """
    path = Path(path)
    is_text = path.suffix.lower() == ".txt"
    with path.open(encoding="utf8") as file:
        for number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if is_text:
                yield number, {"text": line}, None
                continue
            record, reason = parse_json_line(line)
            yield number, record, None if reason is None else InputProblem(str(path), number, reason)


def parse_json_line(line: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """Parse one JSON Lines input line.

    line (str): The line, without its line break.
    RETURNS (Tuple[Optional[Dict], Optional[str]]): The record, or what is wrong with the line.
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err})"
    if not isinstance(record, dict):
        return None, f"expected a JSON object with a 'text' field, got {type(record).__name__}"
    if "text" not in record:
        return None, f"missing 'text' field (keys: {sorted(record)})"
    if not isinstance(record["text"], str):
        return None, f"'text' must be a string, got {type(record['text']).__name__}"
    return record, None


def count_lines(path: Union[str, Path]) -> int:
    """The number of non-blank lines of a file, for the progress bar."""
    with Path(path).open(encoding="utf8") as file:
        return sum(1 for line in file if line.strip())


def spans_key_of(nlp: Language) -> str:
    """The `doc.spans` key of the pipeline's `spanjoint` component."""
    for _, pipe in nlp.pipeline:
        if isinstance(pipe, SpanJoint):
            return pipe.spans_key
    return ENTITIES_KEY


def doc_to_record(doc: Doc, record: Dict[str, Any], spans_key: str = ENTITIES_KEY) -> Dict[str, Any]:
    """The JSONL output of one document: its input fields plus `entities` and
    `relations` (which replace input fields of those names).

    doc (Doc): The annotated Doc.
    record (Dict[str, Any]): The input record.
    spans_key (str): The `doc.spans` key of the entities.
    RETURNS (Dict[str, Any]): The output object.
    """
    entities = []
    index: Dict[Tuple[int, int], int] = {}
    for span, score in _scored_entities(doc, spans_key):
        index.setdefault((span.start, span.end), len(entities))
        entities.append(
            {
                "start": span.start_char,
                "end": span.end_char,
                "text": span.text,
                "label": span.label_,
                "score": round(score, 4),
            }
        )
    relations = [
        {
            "head": index[tuple(relation.head)],
            "tail": index[tuple(relation.tail)],
            "label": relation.label,
            "score": round(relation.score, 4),
        }
        for relation in doc._.relations
        if tuple(relation.head) in index and tuple(relation.tail) in index
    ]
    return {**record, "entities": entities, "relations": relations}


def _scored_entities(doc: Doc, spans_key: str) -> List[Tuple[Any, float]]:
    if spans_key not in doc.spans:
        return []
    group = doc.spans[spans_key]
    return list(zip(group, group.attrs.get("scores", [1.0] * len(group))))


class Writer:
    """Writes annotated documents to a file in one of `FORMATS`.

    Use as a context manager; `write(doc, record, doc_id)` once per document.
    """

    def __init__(self, path: Union[str, Path], output_format: str, spans_key: str = ENTITIES_KEY) -> None:
        """Open the output file.

        path (str / Path): The output file (its folder is created).
        output_format (str): One of `FORMATS`.
        spans_key (str): The `doc.spans` key of the entities.
        """
        if output_format not in FORMATS:
            raise ValueError(f"Unknown output format {output_format!r}; expected one of {', '.join(FORMATS)}")
        self.path = Path(path)
        self.format = output_format
        self.spans_key = spans_key
        self.count = 0
        self._file: Optional[IO[str]] = None
        self._csv: Any = None

    def __enter__(self) -> "Writer":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf8", newline="" if self.format == "csv" else None)
        if self.format == "csv":
            self._csv = csv.writer(self._file)
            self._csv.writerow(CSV_HEADER)
        elif self.format == "spert":
            self._file.write("[")
        return self

    def write(self, doc: Doc, record: Dict[str, Any], doc_id: Any) -> None:
        """Write one document.

        doc (Doc): The annotated Doc.
        record (Dict[str, Any]): Its input record.
        doc_id (Any): Its id (the `id` field or the line number).
        """
        assert self._file is not None, "use the Writer as a context manager"
        if self.format == "jsonl":
            self._file.write(json.dumps(doc_to_record(doc, record, self.spans_key), ensure_ascii=False) + "\n")
        elif self.format == "csv":
            self._csv.writerows(triple_rows(doc, doc_id, self.spans_key))
        else:
            doc._.orig_id = doc_id
            (sentence,) = docs_to_spert([doc], spans_key=self.spans_key, file=str(self.path))
            self._file.write((", " if self.count else "") + json.dumps(sentence))
        self.count += 1

    def __exit__(self, *exc_info: Any) -> None:
        assert self._file is not None
        if self.format == "spert":
            self._file.write("]")
        self._file.close()


def triple_rows(doc: Doc, doc_id: Any, spans_key: str = ENTITIES_KEY) -> List[Tuple[Any, ...]]:
    """The CSV rows of a Doc: one per relation, in the order of `CSV_HEADER`.

    doc (Doc): The annotated Doc.
    doc_id (Any): Its id.
    spans_key (str): The `doc.spans` key of the entities.
    RETURNS (List[Tuple]): The rows.
    """
    scores = {(span.start, span.end, span.label_): score for span, score in _scored_entities(doc, spans_key)}
    labels = {(span.start, span.end): span.label_ for span, _ in _scored_entities(doc, spans_key)}
    has_sents = doc.has_annotation("SENT_START")
    rows = []
    for relation in doc._.relations:
        head, tail = doc[slice(*relation.head)], doc[slice(*relation.tail)]
        head_label, tail_label = labels.get(tuple(relation.head), ""), labels.get(tuple(relation.tail), "")
        rows.append(
            (
                doc_id,
                head.text,
                head_label,
                relation.label,
                tail.text,
                tail_label,
                round(scores.get((head.start, head.end, head_label), 0.0), 4),
                round(relation.score, 4),
                round(scores.get((tail.start, tail.end, tail_label), 0.0), 4),
                head.sent.text if has_sents else doc.text,
            )
        )
    return rows


def predict_file(
    nlp: Language,
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    output_format: str = "jsonl",
    batch_size: int = 32,
    n_process: int = 1,
    on_problem: Optional[Callable[[InputProblem], None]] = None,
    progress: Optional[Callable[[Iterable[Any]], Iterable[Any]]] = None,
) -> Tuple[int, List[InputProblem]]:
    """Annotate every document of an input file and write the predictions.

    nlp (Language): The pipeline.
    input_path (str / Path): The `.txt` or JSONL input.
    output_path (str / Path): The output file.
    output_format (str): One of `FORMATS`.
    batch_size (int): Documents per batch of `nlp.pipe`.
    n_process (int): Processes of `nlp.pipe`.
    on_problem (Optional[Callable]): Called with each bad line as soon as it is read.
    progress (Optional[Callable]): Wraps the stream of annotated documents,
        e.g. a progress bar.
    RETURNS (Tuple[int, List[InputProblem]]): The number of documents written
        and the bad lines.
    """
    register_extensions()
    problems: List[InputProblem] = []

    def usable() -> Iterator[Tuple[str, Tuple[Dict[str, Any], Any]]]:
        for number, record, problem in read_records(input_path):
            if problem is not None:
                problems.append(problem)
                if on_problem is not None:
                    on_problem(problem)
                continue
            assert record is not None
            yield record["text"], (record, record.get("id", number))

    annotated = nlp.pipe(usable(), as_tuples=True, batch_size=batch_size, n_process=n_process)
    if progress is not None:
        annotated = progress(annotated)
    with Writer(output_path, output_format, spans_key_of(nlp)) as writer:
        for doc, (record, doc_id) in annotated:
            writer.write(doc, record, doc_id)
    return writer.count, problems
