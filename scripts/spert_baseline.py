"""The SpERT baseline study: SpERT as published against the shipped SpERT recipe.

Trains each (config, seed) run on CoNLL04 train for the shipped budget (20
epochs of batch 2, learning-rate warm-up over 10% of the updates, then linear
decay to zero) and scores the final model on dev and test, as SpERT's
reference implementation does (no dev-based model selection). Each finished
run writes reports/spert_baseline/runs/ROW_seedN.json (config, overrides, seed,
steps, scores, seconds, machine), so an interrupted study continues where it
stopped; `scripts/spert_baseline_report.py` turns those files into the report.

    python scripts/spert_baseline.py [--rows paper --rows shipped] [--seeds 0 --seeds 1 --seeds 2] [--jobs 2]
"""
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

import typer

from runs import Run, budget_overrides, execute, machine

ROWS: Dict[str, Path] = {
    "paper": Path("configs/paper/conll04_spert.cfg"),
    "shipped": Path("configs/conll04_spert.cfg"),
}
RESULTS = Path("reports/spert_baseline/runs")
BATCH_SIZE = 2


def run_and_record(run: Run, row: str, budget: Dict[str, str], threads: int, results: Path) -> dict:
    """Train and score one run unless its result file exists; write it under `results`."""
    path = results / f"{row}_seed{run.seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = {"row": row, **execute(run, budget, threads, gpu_id=-1), "machine": machine(-1)}
    results.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    return result


def main(
    output_dir: Path = typer.Option(Path("training/spert_baseline"), "--output", help="Folder for the runs"),
    train_corpus: Path = typer.Option(Path("corpus/conll04_train.spacy"), "--train", exists=True),
    dev_corpus: Path = typer.Option(Path("corpus/conll04_dev.spacy"), "--dev", exists=True),
    test_corpus: Path = typer.Option(Path("corpus/conll04_test.spacy"), "--test", exists=True),
    epochs: float = typer.Option(20.0, "--epochs", help="Training budget per run, in epochs of the train corpus"),
    seeds: List[int] = typer.Option([0, 1, 2], "--seeds"),
    rows: Optional[List[str]] = typer.Option(None, "--rows", help=f"Rows to run: {list(ROWS)} (default: all)"),
    jobs: int = typer.Option(2, "--jobs", help="Runs at a time, each with its share of the cores"),
    results: Path = typer.Option(RESULTS, "--results", help="Folder of the per-run result files"),
):
    """Train and score every (row, seed) run whose result file does not exist yet."""
    unknown = [row for row in rows or [] if row not in ROWS]
    if unknown:
        raise typer.BadParameter(f"unknown rows {unknown}; rows are {list(ROWS)}")
    budget = budget_overrides(epochs, train_corpus, BATCH_SIZE)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    todo = [(row, Run(output_dir / row / f"seed{seed}", ROWS[row], seed, {}, train_corpus,
                      {"dev": dev_corpus, "test": test_corpus}))
            for seed in seeds for row in (rows or list(ROWS))]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_and_record, run, row, budget, threads, results) for row, run in todo]
        for (row, run), future in zip(todo, futures):
            scores = future.result()["scores"]["test"]
            print(f"{row} seed {run.seed}: test NER F1 {scores['ner_f']:.2f}, strict RE F1 {scores['re_strict_f']:.2f}",
                  flush=True)


if __name__ == "__main__":
    typer.run(main)
