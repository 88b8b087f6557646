"""Documents per second of `predict --engine ray` with 1 and 2 actors against
single-process `predict` on the same input, on this machine, and what a
cluster would need per actor (memory, model load time).

Each single-process run is a fresh process (model load time and peak memory
are those of one Ray actor with the same torch threads). The Ray runs share one
local Ray (`num_cpus` = the actors of the larger run); their seconds include
starting the actors, i.e. loading the pipeline in each. Writes JSON and
markdown.

    python scripts/untrained_pipeline.py /tmp/minilm_untrained
    python scripts/benchmark_ray.py /tmp/minilm_untrained reports/benchmark_ray.json --docs 400
"""
import json
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Dict, List

import typer

from spacy_spanjoint.analysis.benchmarks import SENTENCES, benchmark_machine, save_report


def write_input(path: Path, docs: int) -> None:
    with path.open("w", encoding="utf8") as file:
        for i in range(docs):
            text = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 3))
            file.write(json.dumps({"id": f"doc{i}", "text": text}) + "\n")


def single_process(model: str, input_path: str, output_path: str, threads: int, batch_size: int) -> Dict[str, Any]:
    """`predict_file` in this (fresh) process: load time, documents per second, peak memory."""
    import spacy
    import torch

    from spacy_spanjoint.data.predict import predict_file

    torch.set_num_threads(threads)
    start = time.perf_counter()
    nlp = spacy.load(model)
    loaded = time.perf_counter()
    written, _ = predict_file(nlp, input_path, output_path, batch_size=batch_size)
    seconds = time.perf_counter() - loaded
    return {
        "threads": threads,
        "model_load_seconds": round(loaded - start, 2),
        "predict_seconds": round(seconds, 2),
        "documents": written,
        "documents_per_second": round(written / seconds, 2),
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def in_fresh_process(*args: Any) -> Dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(single_process, *args).result()


def records(path: Path) -> List[Dict[str, Any]]:
    from spacy_spanjoint.scale import read_output

    if path.is_dir():
        return [{k: v for k, v in r.items() if k not in ("file", "line")} for r in read_output(path)]
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


def main(
    model: Path = typer.Argument(..., help="Pipeline folder", exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="JSON report; the markdown goes beside it"),
    docs: int = typer.Option(400, "--docs", help="Documents of the input", min=1),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    shard_size: int = typer.Option(50, "--shard-size", help="Documents per shard: a shard is the unit of work of an actor", min=1),
    actor_counts: List[int] = typer.Option([1, 2], "--actors", help="Actor counts to time"),
    label: str = typer.Option("", "--label", help="What the pipeline is, for the report"),
) -> None:
    import ray

    from spacy_spanjoint.scale import run_job

    report: Dict[str, Any] = {
        "pipeline": str(model),
        "pipeline_label": label,
        "documents": docs,
        "batch_size": batch_size,
        "shard_size": shard_size,
        "machine": benchmark_machine(),
        "ray_version": ray.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_input(folder / "in.jsonl", docs)
        report["single_process"] = []
        for threads in sorted({1, max(actor_counts)}):
            typer.echo(f"single process, {threads} thread(s)")
            result = in_fresh_process(str(model), str(folder / "in.jsonl"), str(folder / f"single{threads}.jsonl"), threads, batch_size)
            report["single_process"].append(result)
        start = time.perf_counter()
        ray.init(num_cpus=max(actor_counts), include_dashboard=False)
        report["ray_start_seconds"] = round(time.perf_counter() - start, 2)
        report["ray"] = []
        try:
            for actors in actor_counts:
                typer.echo(f"ray, {actors} actor(s)")
                out = folder / f"ray{actors}"
                summary = run_job(model, folder / "in.jsonl", out, actors=actors, batch_size=batch_size, shard_size=shard_size)
                summary["actors"] = actors
                # After the first output (one shard): the actors are up, the rest is annotation.
                steady = summary["seconds"] - summary["first_output_seconds"]
                summary["documents_per_second_after_start_up"] = round((docs - min(docs, shard_size)) / steady, 2)
                summary["equals_single_process"] = records(out) == records(folder / "single1.jsonl")
                report["ray"].append(summary)
        finally:
            ray.shutdown()
    save_report(report, output, markdown)


def markdown(report: Dict[str, Any]) -> str:
    single = {run["threads"]: run for run in report["single_process"]}
    base = single[1]
    rows = [
        f"| single process, {t} torch thread(s) | {run['documents_per_second']} | {run['predict_seconds']} s (+ {run['model_load_seconds']} s load) | |"
        for t, run in single.items()
    ]
    rows += [
        f"| Ray Data, {run['actors']} actor(s), 1 thread each | {run['documents_per_second']} ({run['documents_per_second_after_start_up']} "
        f"after start-up) | {run['seconds']} s ({run['first_output_seconds']} s to the first output) | "
        f"{'yes' if run['equals_single_process'] else 'NO'} |"
        for run in report["ray"]
    ]
    machine = report["machine"]
    return "\n".join(
        [
            "# Batch extraction on Ray Data: benchmark",
            "",
            f"Pipeline: {report['pipeline_label'] or report['pipeline']}. Input: {report['documents']} documents of one "
            f"to three sentences, batch size {report['batch_size']}, shards of {report['shard_size']}. Machine: {machine['cpus']} CPUs ({machine['processor']}), "
            f"load average {machine['load_average_start'][0]} at the start and {machine['load_average_end'][0]} at the end "
            f"(other work shared the CPUs). Ray {report['ray_version']}, local, started in {report['ray_start_seconds']} s.",
            "",
            "| run | documents/s | time | output equals single process |",
            "|---|---|---|---|",
            *rows,
            "",
            "## What a cluster needs",
            "",
            f"- Memory per actor: about {base['peak_memory_mib']} MiB (peak resident memory of one process that loads "
            "the pipeline and predicts with one torch thread), plus Ray's own worker overhead.",
            f"- Model load time per actor: {base['model_load_seconds']} s on this machine; every actor pays it once, "
            "and again after a restart.",
            f"- Throughput per actor (one CPU): about {base['documents_per_second']} documents/s here. A cluster of N nodes "
            "with C free CPUs each runs N x C one-thread actors (`--actors`), for up to N x C times that rate while the "
            "input has at least as many shards (`--shard-size`) as there are actors; memory per node is C times the "
            "figure above.",
            "- The input and the pipeline must be at the same path on every node (a shared file system or an installed "
            "pipeline package); the output is written by the driver only.",
            "",
        ]
    )


if __name__ == "__main__":
    typer.run(main)
