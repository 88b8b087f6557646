"""Predict entities and relations for a text file and export them.

Input is a `.txt` file with one document per line, or JSON Lines whose
objects have a `text` field (any other fields are carried through). Lines end
at "\n" (or "\r\n") only: a lone "\r" or another Unicode line separator
inside a line is part of its text. A byte-order mark at the start of the file
is ignored. Blank lines are skipped. A line that is not usable (not UTF-8,
invalid JSON, not an object, missing or non-string `text`, a lone surrogate,
a text longer than the pipeline's `nlp.max_length`) becomes an
`InputProblem` naming its line number; the other lines are still processed.
The input is read once, as a stream, so a pipe works.

Each document gets an id: its `id` field if it has one, else its line number
(which the JSONL output of a `.txt` input carries as `id`).

Output formats:

- `jsonl`: one object per document, the input fields plus `entities`
  (character offsets `start` / `end`, `text`, `label`, `score`) and
  `relations` (`head` / `tail` index into `entities`, `label`, `score`);
- `csv`: one triple per row (doc id, head, relation, tail, their labels and
  scores, and the sentence of the head). A text cell that starts with `=`,
  `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so that a
  spreadsheet shows it instead of running it as a formula (unless
  `escape_formulas=False`); an id that is not a string is written as JSON;
- `spert`: the SpERT JSON corpus format of `corpus.py` (one sentence object
  per document, `orig_id` = the document id), so other tools can score it.
"""
import codecs
import csv
import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from ..pipeline.component import SpanJoint
from ..pipeline.relations import register_extensions
from .corpus import ENTITIES_KEY, docs_to_spert
from .outputs import atomic_output, check_not_input

FORMATS = ("jsonl", "csv", "spert")
INPUT_FORMATS = ("txt", "jsonl")
# Cells a spreadsheet would read as a formula (OWASP's list for CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
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


def read_records(
    path: Union[str, Path], max_length: Optional[int] = None, input_format: Optional[str] = None
) -> Iterator[Tuple[int, Optional[Dict[str, Any]], Optional[InputProblem]]]:
    """Stream the documents of a `.txt` or JSON Lines file.

    A `.txt` file holds one text per line. Any other file is read as JSON
    Lines: each line an object with a string `text`.

    path (str / Path): The input file (a pipe works: it is read once).
    max_length (Optional[int]): Longest usable text, in characters (the
        pipeline's `nlp.max_length`); None: no limit.
    input_format (Optional[str]): "txt" or "jsonl"; None: "txt" for a `.txt`
        suffix, else "jsonl".
    YIELDS (Tuple[int, Optional[Dict], Optional[InputProblem]]): The line
        number and either the record (a dict with `text`; from a `.txt` file,
        also `id`, the line number) or the problem.
    """
    path = Path(path)
    if input_format is None:
        input_format = "txt" if path.suffix.lower() == ".txt" else "jsonl"
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"Unknown input format {input_format!r}; expected one of {', '.join(INPUT_FORMATS)}")
    with path.open("rb") as file:
        # Binary lines end at b"\n" only; text mode would also split at a lone "\r".
        for number, raw in enumerate(file, start=1):
            record, reason = parse_line(raw, number, input_format, max_length)
            if record is not None or reason is not None:
                yield number, record, None if reason is None else InputProblem(str(path), number, reason)


def parse_line(raw: bytes, number: int, input_format: str, max_length: Optional[int] = None
               ) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """One input line as a record, or the reason it cannot be used.

    The line ends at b"\n" (a "\r" before it is dropped); a byte-order mark
    opening line 1 is ignored. A `.txt` line is the text, with the line
    number as its `id`; a JSON Lines line is an object with a string `text`.

    raw (bytes): The line as read from a binary file.
    number (int): Its line number, from 1.
    input_format (str): "txt" or "jsonl".
    max_length (Optional[int]): Longest usable text in characters; None: no limit.
    RETURNS (Tuple[Optional[Dict], Optional[str]]): The record or the reason;
        (None, None) for a blank line.
    """
    line, reason = decode_line(raw, number)
    if line is None:
        return None, reason
    if not line.strip():
        return None, None
    if input_format == "txt":
        record, reason = {"id": number, "text": line}, None
    else:
        record, reason = parse_json_line(line)
    if reason is None:
        reason = _text_problem(record, max_length)
    return (None, reason) if reason else (record, None)


def decode_line(raw: bytes, number: int) -> Tuple[Optional[str], Optional[str]]:
    """The text of an input line without its line end (b"\n", and a "\r"
    before it) and, on line 1, without a byte-order mark; or why it is not UTF-8.

    RETURNS (Tuple[Optional[str], Optional[str]]): The text, or None and the reason.
    """
    if number == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    raw = raw[:-1] if raw.endswith(b"\n") else raw
    raw = raw[:-1] if raw.endswith(b"\r") else raw
    try:
        return raw.decode("utf8"), None
    except UnicodeDecodeError as err:
        return None, f"not UTF-8 text (byte {raw[err.start]:#04x} at byte {err.start + 1} of the line)"


def parse_json_line(line: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """Parse one JSON Lines input line.

    line (str): The line, without its line break.
    RETURNS (Tuple[Optional[Dict], Optional[str]]): The record, or what is wrong with the line.
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err})"
    except RecursionError:
        return None, "invalid JSON (nested too deeply)"
    if not isinstance(record, dict):
        return None, f"expected a JSON object with a 'text' field, got {type(record).__name__}"
    if "text" not in record:
        return None, f"missing 'text' field (keys: {sorted(record)})"
    if not isinstance(record["text"], str):
        return None, f"'text' must be a string, got {type(record['text']).__name__}"
    return record, None


def _text_problem(record: Dict[str, Any], max_length: Optional[int]) -> Optional[str]:
    """What makes a parsed record unusable by the pipeline or the output, if anything."""
    text = record["text"]
    if max_length is not None and len(text) > max_length:
        return f"the text has {len(text)} characters, more than the pipeline's nlp.max_length ({max_length})"
    try:
        # JSON escapes can encode a lone surrogate, which no output can hold.
        json.dumps(record, ensure_ascii=False).encode("utf8")
    except UnicodeEncodeError as err:
        return f"holds a lone surrogate ({err.object[err.start:err.end]!r}), which is not Unicode text"
    return None


def count_lines(path: Union[str, Path]) -> Optional[int]:
    """The number of non-blank lines of a file, for the progress bar.

    RETURNS (Optional[int]): The count; None for a pipe or another stream,
        which can be read only once.
    """
    path = Path(path)
    if not path.is_file():
        return None
    with path.open("rb") as file:
        # an upper bound: lines blank in Unicode but not in ASCII count too
        return sum(1 for line in file if line.strip())


def spans_key_of(nlp: Language) -> str:
    """The `doc.spans` key of the pipeline's `spanjoint` component."""
    for _, pipe in nlp.pipeline:
        if isinstance(pipe, SpanJoint):
            return pipe.spans_key
    return ENTITIES_KEY


def require_spanjoint(nlp: Language) -> SpanJoint:
    """The pipeline's `spanjoint` component.

    nlp (Language): The pipeline.
    RETURNS (SpanJoint): The component.
    RAISES (ValueError): If the pipeline has none.
    """
    for _, pipe in nlp.pipeline:
        if isinstance(pipe, SpanJoint):
            return pipe
    raise ValueError(
        f"The pipeline has no spanjoint component (its components: {', '.join(nlp.pipe_names) or 'none'}), "
        "so it predicts no entities or relations"
    )


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

    def __init__(
        self, path: Union[str, Path], output_format: str, spans_key: str = ENTITIES_KEY, escape_formulas: bool = True
    ) -> None:
        """Open the output file.

        path (str / Path): The output file (its folder is created). It is
            written to a temporary file that replaces it when the Writer
            closes without an error, so a failed run leaves it as it was.
        output_format (str): One of `FORMATS`.
        spans_key (str): The `doc.spans` key of the entities.
        escape_formulas (bool): In CSV, prefix text cells that a spreadsheet
            would run as a formula with `'`.
        """
        if output_format not in FORMATS:
            raise ValueError(f"Unknown output format {output_format!r}; expected one of {', '.join(FORMATS)}")
        self.path = Path(path)
        self.format = output_format
        self.spans_key = spans_key
        self.escape_formulas = escape_formulas
        self.count = 0
        self._file: Optional[IO[str]] = None
        self._csv: Any = None
        self._stack = ExitStack()

    def __enter__(self) -> "Writer":
        newline = "" if self.format == "csv" else None
        self._file = self._stack.enter_context(atomic_output(self.path, newline=newline))
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
            self._csv.writerows(csv_cells(row, self.escape_formulas) for row in triple_rows(doc, doc_id, self.spans_key))
        else:
            doc._.orig_id = doc_id
            (sentence,) = docs_to_spert([doc], spans_key=self.spans_key, file=str(self.path))
            self._file.write((", " if self.count else "") + json.dumps(sentence))
        self.count += 1

    def __exit__(self, *exc_info: Any) -> None:
        assert self._file is not None
        if self.format == "spert" and exc_info[0] is None:
            self._file.write("]")
        self._stack.__exit__(*exc_info)


def csv_cells(row: Sequence[Any], escape_formulas: bool = True) -> List[Any]:
    """The cells of a CSV row as written: ids that are not strings as JSON,
    text that a spreadsheet would run as a formula prefixed with `'`.

    row (Sequence[Any]): A row of `triple_rows`.
    escape_formulas (bool): Neutralise formula-like text cells.
    RETURNS (List[Any]): The cells.
    """
    escape = _escape_formula if escape_formulas else str
    doc_id, *rest = row
    # JSON of a non-string id starts with a digit, "-", "[", "{" or a letter: never a formula
    cells = [escape(doc_id) if isinstance(doc_id, str) else json.dumps(doc_id, ensure_ascii=False)]
    return cells + [escape(cell) if isinstance(cell, str) else cell for cell in rest]


def _escape_formula(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


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
    escape_formulas: bool = True,
    input_format: Optional[str] = None,
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
    escape_formulas (bool): See `Writer`.
    input_format (Optional[str]): See `read_records`.
    RETURNS (Tuple[int, List[InputProblem]]): The number of documents written
        and the bad lines.
    RAISES (ValueError): If the pipeline has no `spanjoint` component.
    RAISES (OutputError): If the output is the input or cannot be written.
    """
    register_extensions()
    check_not_input(output_path, input_path)
    spans_key = require_spanjoint(nlp).spans_key
    problems: List[InputProblem] = []

    def usable() -> Iterator[Tuple[str, Tuple[Dict[str, Any], Any]]]:
        for number, record, problem in read_records(input_path, nlp.max_length, input_format):
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
    with Writer(output_path, output_format, spans_key, escape_formulas) as writer:
        for doc, (record, doc_id) in annotated:
            writer.write(doc, record, doc_id)
    return writer.count, problems
