"""Shards of a batch job: which input records each holds, how to read them,
and how to write a shard's output so that a restarted job can trust it.

Nothing here imports Ray. A shard is a run of at most `shard_size`
consecutive records of one input file: for `.txt` and JSON Lines, the byte
offset of its first line, that line's number and the record count; for
Parquet, the first row and the row count. The plan, the list of all shards,
depends only on the input and `shard_size`, so a second run of the same job
finds the same shards. A shard's output file appears only complete: it is
written under a hidden temporary name and renamed (`os.replace`), so a job
stopped halfway leaves complete shards and temporary files, never a partial
shard.
"""
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from ..data.predict import decode_line, parse_line

OUTPUT_FORMATS = ("jsonl", "parquet")
PLAN_FILE = "_plan.json"
SUMMARY_FILE = "_summary.json"
# Inputs of a folder; a single file is read by its suffix (JSON Lines unless .txt or .parquet).
FOLDER_SUFFIXES = (".txt", ".jsonl", ".parquet")
# Fields of the output that a Parquet shard keeps typed; other input fields become JSON
# strings when their types differ between records (Arrow needs one type a column).
RECORD_FIELDS = ("id", "file", "line", "text", "entities", "relations", "error")


class PlanMismatch(ValueError):
    """The output folder holds shards of another job (other input, shard size or format)."""


@dataclass(frozen=True)
class Shard:
    """A run of consecutive records of one input file.

    index (int): Its number; its output file is `part-{index:05d}.{format}`.
    path (str): The input file (absolute, so that workers elsewhere find it).
    name (str): The file as the output names it: relative to the input folder, or its name.
    kind (str): "text", "jsonl" or "parquet".
    offset (int): Byte offset of the first line, or the first row (0-based) for Parquet.
    first_line (int): Line number (1-based) of the first record; for Parquet its row number (1-based).
    count (int): The number of records (non-blank lines or rows).
    """

    index: int
    path: str
    name: str
    kind: str
    offset: int
    first_line: int
    count: int


def kind_of(path: Path) -> str:
    """How a file is read: "text" (.txt), "parquet" (.parquet), else "jsonl"."""
    suffix = path.suffix.lower()
    return {".txt": "text", ".parquet": "parquet"}.get(suffix, "jsonl")


def input_files(input_path: Union[str, Path]) -> List[Path]:
    """The files of an input: the file itself, or the `.txt`, `.jsonl` and
    `.parquet` files below a folder, sorted by path.

    input_path (str / Path): A file or a folder.
    RETURNS (List[Path]): The files.
    """
    input_path = Path(input_path)
    if input_path.is_dir():
        files = [p for p in input_path.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES]
        return sorted(files, key=lambda p: p.relative_to(input_path).as_posix())
    if not input_path.is_file():
        raise FileNotFoundError(f"Input {input_path} is neither a file nor a folder")
    return [input_path]


def plan_shards(input_path: Union[str, Path], shard_size: int) -> List[Shard]:
    """Split the input into shards of at most `shard_size` records; a shard never spans two files.

    input_path (str / Path): A `.txt`, JSON Lines or Parquet file, or a folder of them.
    shard_size (int): Records per shard.
    RETURNS (List[Shard]): The shards, in input order.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    root = Path(input_path)
    shards: List[Shard] = []
    for path in input_files(root):
        name = path.relative_to(root).as_posix() if root.is_dir() else path.name
        kind = kind_of(path)
        runs = _parquet_runs(path, shard_size) if kind == "parquet" else _line_runs(path, shard_size)
        for offset, first_line, count in runs:
            shards.append(Shard(len(shards), str(path.resolve()), name, kind, offset, first_line, count))
    return shards


def _line_runs(path: Path, shard_size: int) -> Iterator[tuple]:
    # Bytes, not text, so that each run knows where it starts. Blank lines are skipped as
    # predict.read_records skips them.
    offset = count = 0
    start = (0, 0)
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            line, problem = decode_line(raw, number)
            if problem or line.strip():
                if count == 0:
                    start = (offset, number)
                count += 1
                if count == shard_size:
                    yield (*start, count)
                    count = 0
            offset += len(raw)
    if count:
        yield (*start, count)


def _parquet_runs(path: Path, shard_size: int) -> Iterator[tuple]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if "text" not in parquet.schema_arrow.names:
        raise ValueError(f"Parquet input {path} has no 'text' column (columns: {parquet.schema_arrow.names})")
    rows = parquet.metadata.num_rows
    for offset in range(0, rows, shard_size):
        yield offset, offset + 1, min(shard_size, rows - offset)


def read_shard(shard: Shard) -> List[Dict[str, Any]]:
    """The rows of a shard, ready for the extraction step.

    Each row: `shard`, `index` (position in the shard), `file`, `line`, `record`
    (the input record as JSON, "" if unusable) and `problem` (why the record is
    unusable, "" if it is fine). Plain strings and numbers only, so that every
    block has one Arrow schema whatever the input fields.

    shard (Shard): The shard.
    RETURNS (List[Dict[str, Any]]): One row per record, in input order.
    """
    records = _parquet_records(shard) if shard.kind == "parquet" else _line_records(shard)
    rows = []
    for index, (line, record, problem) in enumerate(records):
        rows.append(
            {
                "shard": shard.index,
                "index": index,
                "file": shard.name,
                "line": line,
                "record": "" if record is None else json.dumps(record, ensure_ascii=False, default=str),
                "problem": problem or "",
            }
        )
    return rows


def _line_records(shard: Shard) -> Iterator[tuple]:
    found = 0
    input_format = "txt" if shard.kind == "text" else "jsonl"
    with open(shard.path, "rb") as file:
        file.seek(shard.offset)
        for number, raw in enumerate(file, start=shard.first_line):
            if found == shard.count:
                break
            record, problem = parse_line(raw, number, input_format)
            if record is None and problem is None:  # a blank line
                continue
            found += 1
            yield number, record, problem


def _parquet_records(shard: Shard) -> Iterator[tuple]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(shard.path)
    # Read only the row groups that hold the shard's rows; `start` is its first row within them.
    groups, start, first = [], 0, 0
    for group in range(parquet.metadata.num_row_groups):
        end = first + parquet.metadata.row_group(group).num_rows
        if end > shard.offset and first < shard.offset + shard.count:
            if not groups:
                start = shard.offset - first
            groups.append(group)
        first = end
    table = parquet.read_row_groups(groups).slice(start, shard.count)
    for number, record in enumerate(table.to_pylist(), start=shard.first_line):
        text = record.get("text")
        if not isinstance(text, str):
            yield number, None, f"'text' must be a string, got {type(text).__name__}"
        else:
            yield number, record, None


def shard_file(output_dir: Union[str, Path], shard: Union[Shard, int], output_format: str) -> Path:
    """The output file of a shard: `part-00007.jsonl`."""
    index = shard.index if isinstance(shard, Shard) else shard
    return Path(output_dir) / f"part-{index:05d}.{output_format}"


def write_shard(path: Path, records: Sequence[str], output_format: str) -> None:
    """Write a shard's output records atomically: a temporary file, synced, then renamed.

    path (Path): The shard's output file.
    records (Sequence[str]): Its records as JSON objects, in input order.
    output_format (str): "jsonl" or "parquet".
    """
    temporary = path.with_name(f".{path.name}.tmp")
    if output_format == "jsonl":
        with temporary.open("w", encoding="utf8") as file:
            file.write("".join(record + "\n" for record in records))
            file.flush()
            os.fsync(file.fileno())
    else:
        import pyarrow.parquet as pq

        pq.write_table(_arrow_table([json.loads(record) for record in records]), str(temporary))
    os.replace(temporary, path)


def _arrow_table(records: List[Dict[str, Any]]) -> Any:
    import pyarrow as pa

    try:
        return pa.Table.from_struct_array(pa.array(records))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # An input field of several types: keep it as JSON text.
        text = [
            {key: value if key in RECORD_FIELDS else json.dumps(value, ensure_ascii=False) for key, value in r.items()}
            for r in records
        ]
        return pa.Table.from_struct_array(pa.array(text))


def read_output(output_dir: Union[str, Path]) -> List[Dict[str, Any]]:
    """All records of a job's output folder, shard after shard (JSON Lines or Parquet)."""
    records: List[Dict[str, Any]] = []
    for path in sorted(Path(output_dir).glob("part-*.*")):
        if path.suffix == ".jsonl":
            records += [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(str(path)).to_pylist()
            records += [{key: value for key, value in row.items() if value is not None} for row in rows]
    return records


def prepare_output(output_dir: Union[str, Path], shards: List[Shard], output_format: str, shard_size: int) -> List[Shard]:
    """Check the output folder against the plan and return the shards still to do.

    The plan is saved as `_plan.json` in the folder. A folder with another
    job's plan is refused rather than mixed; leftover temporary files of a
    stopped run are removed.

    output_dir (str / Path): The output folder (created if missing).
    shards (List[Shard]): The plan.
    output_format (str): One of `OUTPUT_FORMATS`.
    shard_size (int): Records per shard, saved with the plan.
    RETURNS (List[Shard]): The shards whose output file does not exist yet.
    """
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"Unknown output format {output_format!r}; expected one of {', '.join(OUTPUT_FORMATS)}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    plan = {"format": output_format, "shard_size": shard_size, "shards": [asdict(shard) for shard in shards]}
    plan_path = output_dir / PLAN_FILE
    if plan_path.exists():
        saved = json.loads(plan_path.read_text(encoding="utf8"))
        if saved != plan:
            raise PlanMismatch(
                f"{output_dir} holds the output of another job (other input, shard size or format); "
                "use a new output folder, or delete this one to start again"
            )
    elif any(output_dir.iterdir()):
        raise PlanMismatch(f"{output_dir} is not empty and has no {PLAN_FILE}; use a new output folder")
    else:
        temporary = output_dir / f".{PLAN_FILE}.tmp"
        temporary.write_text(json.dumps(plan), encoding="utf8")
        os.replace(temporary, plan_path)
    for leftover in output_dir.glob(".part-*.tmp"):
        leftover.unlink()
    return [shard for shard in shards if not shard_file(output_dir, shard, output_format).exists()]


def write_summary(output_dir: Union[str, Path], summary: Dict[str, Any]) -> Optional[Path]:
    """Save the summary of a run as `_summary.json` (replacing the previous run's)."""
    path = Path(output_dir) / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    return path
