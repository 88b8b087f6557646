"""Measurements shared by the benchmark scripts: seconds per training epoch,
peak memory, the sample documents of the throughput benchmarks, and how a
benchmark report is saved."""
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import typer


def peak_memory_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def measure_training(config_path: Path, train_path: Path, steps: int, full_epoch: bool, gpu_id: int,
                     sections: Optional[Dict[str, dict]] = None) -> dict:
    """Seconds per training epoch from real `nlp.update` steps (run in a fresh process).

    sections (Optional[Dict[str, dict]]): Config blocks to replace, by dotted
        path ("training.optimizer": {...}), for variants of the config.
    """
    import spacy
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config, registry, resolve_dot_names

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    overrides = {"paths.train": str(train_path), "paths.dev": str(train_path)}
    config = load_config(config_path, overrides=overrides, interpolate=False)
    for path, block in (sections or {}).items():
        *parents, name = path.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[name] = block
    nlp = init_nlp(config, use_gpu=gpu_id)
    interpolated = nlp.config.interpolate()
    training = registry.resolve(interpolated["training"])
    (train_corpus,) = resolve_dot_names(interpolated, [training["train_corpus"]])
    examples = list(train_corpus(nlp))
    batches = list(training["batcher"](examples))
    optimizer, dropout = training["optimizer"], training["dropout"]
    warmup = 2
    timed = batches if full_epoch else batches[warmup : warmup + steps]
    for batch in batches[:warmup]:
        nlp.update(batch, drop=dropout, sgd=optimizer, losses={})
    start = time.perf_counter()
    for batch in timed:
        nlp.update(batch, drop=dropout, sgd=optimizer, losses={})
    seconds = time.perf_counter() - start
    per_step = seconds / len(timed)
    return {
        "config": str(config_path),
        "method": (
            "one full epoch of nlp.update steps, timed after 2 warm-up steps" if full_epoch else
            f"{len(timed)} nlp.update steps timed after {warmup} warm-up steps, scaled to the {len(batches)} steps of one epoch"
        ),
        "includes_dev_evaluation": False,
        "train_docs": len(examples),
        "steps_per_epoch": len(batches),
        "timed_steps": len(timed),
        "seconds_per_step": round(per_step, 4),
        "seconds_per_epoch": round(per_step * len(batches), 1),
        "peak_memory_gib": peak_memory_gib(),
    }



# Short news-like documents, one to three sentences, cycled to the requested count.
SENTENCES = [
    "John Wilkes Booth, who assassinated President Lincoln, was an actor.",
    "Mary Smith works for Acme Corp in Paris.",
    "The University of Oslo is in Norway, and Anna studied there before she married Tom.",
    "Bob visited Rome in May. He met the mayor of the city and the director of the museum.",
    "Acme Corp, based in Berlin, hired Carla Diaz as its chief engineer.",
]


def benchmark_machine() -> Dict[str, Any]:
    """The processor, CPUs and load average of this machine (at the start of a benchmark)."""
    return {
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


def save_report(report: Dict[str, Any], output: Path, markdown: Callable[[Dict[str, Any]], str]) -> None:
    """Add the load average at the end, write the JSON report and its markdown beside it, print the markdown."""
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    text = markdown(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    output.with_suffix(".md").write_text(text, encoding="utf8")
    typer.echo(text)

