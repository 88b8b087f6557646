"""Batch extraction on Ray Data: `predict --engine ray`.

The job is one Ray Dataset:

1. `from_items` over the shards still to do (`shards.py`), one block each;
2. `flat_map(read_shard)`: the workers read their shards' records;
3. `map_batches(Extractor, compute=ActorPoolStrategy(size=N))`: each actor
   loads the pipeline once and turns a batch of records into output records
   (JSON text), a failing document into an error record;
4. the driver collects the output records of each shard and writes the shard
   atomically once it holds every record of it.

Ray restarts an actor that dies and retries its batch (Ray Data's actor pools
set `max_restarts=-1` and `max_task_retries=-1`). The driver keeps the first
copy of each (shard, position) and writes each shard once, so a retried batch
cannot duplicate a record, and a shard is only written when none is missing.
The output folder therefore needs to be reachable from the driver only; the
input and the pipeline must be reachable from every node (the same path, or
an installed pipeline package).
"""
import json
import time
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type, Union

from ..data.predict import doc_to_record, spans_key_of
from ..pipeline.relations import register_extensions
from .shards import Shard, kind_of, plan_shards, prepare_output, read_shard, shard_file, write_shard, write_summary

# Error reasons are cut to this many characters (an exception can quote the whole text).
MAX_REASON_CHARS = 500
SHARD_FIELDS = tuple(field.name for field in fields(Shard))
# One read task at a time for every this many actors (at least one).
ACTORS_PER_READER = 8


class Extractor:
    """The `map_batches` callable: one instance per Ray actor, holding the pipeline."""

    def __init__(self, model: str, threads: int = 1, config: Optional[Dict[str, Any]] = None, int8: bool = False):
        """Load the pipeline (once per actor).

        model (str): A pipeline folder or an installed pipeline package.
        threads (int): torch threads of this actor (its CPUs).
        config (Optional[Dict]): Config overrides for `spacy.load`.
        int8 (bool): Quantize the encoder to int8 (`quantize_encoder`).
        """
        import spacy
        import torch

        from ..encoder.quantization import quantize_encoder

        torch.set_num_threads(max(1, int(threads)))
        register_extensions()
        self.nlp = spacy.load(model, config=config or {})
        if int8:
            quantize_encoder(self.nlp)
        self.spans_key = spans_key_of(self.nlp)

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[Any]]:
        """Annotate a batch of rows of `read_shard`.

        batch (Dict[str, Any]): Columns `shard`, `index`, `file`, `line`, `record`, `problem`.
        RETURNS (Dict[str, List]): Columns `shard`, `index`, `output` (a JSON
            object: the output record or an error record) and `error` (bool).
        """
        columns = {name: list(values.tolist() if hasattr(values, "tolist") else values) for name, values in batch.items()}
        size = len(columns["shard"])
        outputs, errors = [""] * size, [False] * size
        usable: List[Tuple[int, Dict[str, Any]]] = []
        for i in range(size):
            if columns["problem"][i]:
                outputs[i], errors[i] = self.error_record(columns, i, None, columns["problem"][i]), True
            else:
                usable.append((i, json.loads(columns["record"][i])))
        annotated = self.annotate([record["text"] for _, record in usable])
        for (i, record), doc in zip(usable, annotated):
            if isinstance(doc, Exception):
                reason = f"{type(doc).__name__}: {doc}"
                outputs[i], errors[i] = self.error_record(columns, i, record, reason), True
                continue
            output = doc_to_record(doc, record, self.spans_key)
            # a .txt line's id is its line number, unique only within its file
            if "id" not in record or kind_of(Path(columns["file"][i])) == "text":
                output.update(file=columns["file"][i], line=columns["line"][i])
            outputs[i] = json.dumps(output, ensure_ascii=False)
        return {"shard": columns["shard"], "index": columns["index"], "output": outputs, "error": errors}

    def annotate(self, texts: List[str]) -> List[Any]:
        """The Docs of the texts; where the batch fails, each text alone, so
        that only the failing ones become exceptions.

        texts (List[str]): The texts.
        RETURNS (List[Union[Doc, Exception]]): A Doc or the exception, per text.
        """
        try:
            return list(self.nlp.pipe(texts, batch_size=max(1, len(texts))))
        except Exception:
            return [self.annotate_one(text) for text in texts]

    def annotate_one(self, text: str) -> Any:
        try:
            return self.nlp(text)
        except Exception as err:  # one bad document must not stop the job
            return err

    @staticmethod
    def error_record(columns: Dict[str, List[Any]], i: int, record: Optional[Dict[str, Any]], reason: str) -> str:
        error: Dict[str, Any] = {}
        if record is not None and "id" in record:
            error["id"] = record["id"]
        error.update(file=columns["file"][i], line=columns["line"][i], error=reason[:MAX_REASON_CHARS])
        return json.dumps(error, ensure_ascii=False, default=str)


def _read_rows(row: Dict[str, Any]) -> List[Dict[str, Any]]:
    shard = Shard(**{name: row[name] if name in ("path", "name", "kind") else int(row[name]) for name in SHARD_FIELDS})
    return read_shard(shard)


@contextmanager
def ray_session(address: Optional[str] = None, num_cpus: Optional[int] = None) -> Iterator[None]:
    """Connect to a Ray cluster (`address`) or start a local one (`num_cpus`),
    and shut it down afterwards if this call started it. Reuses a session
    that is already running.

    address (Optional[str]): The cluster, e.g. "ray://head:10001" or "auto"; None starts Ray here.
    num_cpus (Optional[int]): CPUs of a local Ray (None: all of this machine).
    """
    import ray

    started = not ray.is_initialized()
    if started:
        if address is not None:
            ray.init(address=address)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def run_job(
    model: Union[str, Path],
    input_path: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    output_format: str = "jsonl",
    actors: int = 1,
    batch_size: int = 32,
    shard_size: int = 1000,
    threads_per_actor: int = 1,
    config: Optional[Dict[str, Any]] = None,
    int8: bool = False,
    extractor: Type[Extractor] = Extractor,
) -> Dict[str, Any]:
    """Annotate every record of the input on Ray Data and write the output shards.

    Shards already complete in `output_dir` (an earlier run of the same job)
    are skipped. Ray is started here with its defaults unless a session is
    already running (see `ray_session`).

    model (str / Path): A pipeline folder or an installed pipeline package.
    input_path (str / Path): A `.txt`, JSON Lines or Parquet file, or a folder of them.
    output_dir (str / Path): The folder of output shards.
    output_format (str): "jsonl" or "parquet".
    actors (int): Ray actors, each with its own copy of the pipeline.
    batch_size (int): Records per batch of an actor (and of its `nlp.pipe`).
    shard_size (int): Records per output shard.
    threads_per_actor (int): CPUs reserved for each actor and its torch threads.
    config (Optional[Dict]): Config overrides for `spacy.load`.
    int8 (bool): Quantize the encoder to int8 in each actor.
    extractor (Type[Extractor]): The callable class of the map step.
    RETURNS (Dict[str, Any]): The summary, also saved as `_summary.json`: shards
        (all, skipped, written), documents and errors written by this run, seconds
        (in all, and until the first output).
    """
    import ray

    start = time.perf_counter()
    shards = plan_shards(input_path, shard_size)
    todo = prepare_output(output_dir, shards, output_format, shard_size)
    documents = errors = 0
    first_output: Optional[float] = None
    if todo:
        local = Path(model)
        dataset = (
            ray.data.from_items([asdict(shard) for shard in todo], override_num_blocks=len(todo))
            # Reading takes no CPU of its own: with every CPU held by an actor, a read task
            # that asked for one would never start. Without a CPU, Ray would start a worker
            # process per shard at once; a few readers keep up with many actors.
            .flat_map(_read_rows, num_cpus=0, compute=ray.data.TaskPoolStrategy(size=max(1, actors // ACTORS_PER_READER)))
            .map_batches(
                extractor,
                fn_constructor_kwargs={
                    "model": str(local.resolve()) if local.exists() else str(model),
                    "threads": threads_per_actor,
                    "config": config,
                    "int8": int8,
                },
                batch_size=batch_size,
                batch_format="numpy",
                num_cpus=threads_per_actor,
                compute=ray.data.ActorPoolStrategy(size=actors),
            )
        )
        documents, errors, first_output = _collect_and_write(dataset, todo, Path(output_dir), output_format)
        first_output -= start
    seconds = time.perf_counter() - start
    summary = {
        "shards": len(shards),
        "shards_skipped": len(shards) - len(todo),
        "shards_written": len(todo),
        "documents": documents,
        "errors": errors,
        "seconds": round(seconds, 2),
        "documents_per_second": round(documents / seconds, 2) if seconds > 0 else None,
        # Until the first annotated batch came back: mostly starting the actors and loading the pipeline.
        "first_output_seconds": None if first_output is None else round(first_output, 2),
    }
    write_summary(output_dir, summary)
    return summary


def _collect_and_write(dataset: Any, todo: List[Shard], output_dir: Path, output_format: str) -> Tuple[int, int, float]:
    expected = {shard.index: shard.count for shard in todo}
    pending: Dict[int, Dict[int, Tuple[str, bool]]] = {shard.index: {} for shard in todo}
    documents = errors = 0
    first_output = None
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        first_output = first_output or time.perf_counter()
        rows = zip(*(batch[name].tolist() for name in ("shard", "index", "output", "error")))
        for shard, index, output, error in rows:
            held = pending.get(shard)
            if held is None or index in held:
                continue  # a copy from a retried batch: the first one is kept
            held[index] = (output, error)
            if len(held) == expected[shard]:
                write_shard(shard_file(output_dir, shard, output_format), [held[i][0] for i in range(len(held))], output_format)
                documents += len(held)
                errors += sum(flag for _, flag in held.values())
                del pending[shard]
    if pending:
        missing = {shard: expected[shard] - len(held) for shard, held in pending.items()}
        raise RuntimeError(f"Ray returned incomplete shards (shard: records missing): {missing}")
    return documents, errors, first_output or time.perf_counter()
