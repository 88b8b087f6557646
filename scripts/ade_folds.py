"""10-fold cross-validation on ADE, nested entities kept.

Trains configs/ade.cfg on each fold's train split for the same budget (see
spacy_spanjoint/analysis/runs.py), scores the final model on the fold's test split, and writes
OUTPUT.json and OUTPUT.md: per fold and as mean +- std over folds, the macro F1
of NER and of strict RE (the measure ADE results are usually given in), with
the micro F1 beside them.

    python scripts/ade_folds.py OUTPUT_DIR reports/ade --epochs 1 [--folds 0 1 ...] [--seed 0]
"""
import json
from pathlib import Path
from typing import List

import typer

from spacy_spanjoint.analysis.runs import Run, budget_overrides, execute_all, mean_std

METRICS = ("ner_macro_f", "re_strict_macro_f", "ner_f", "re_strict_f")


def main(
    output_dir: Path = typer.Argument(..., help="Folder for the runs"),
    report: Path = typer.Argument(..., help="Report path without suffix, e.g. reports/ade"),
    config: Path = typer.Option(Path("configs/ade.cfg"), "--config", exists=True),
    corpus_dir: Path = typer.Option(Path("corpus"), "--corpus-dir", exists=True, file_okay=False),
    epochs: float = typer.Option(1.0, "--epochs", help="Training budget per fold, in epochs of the fold's train split"),
    batch_size: int = typer.Option(4, "--batch-size", help="Batch size of every fold (sets the config's batcher)"),
    folds: List[int] = typer.Option(list(range(10)), "--folds"),
    seed: int = typer.Option(0, "--seed"),
    jobs: int = typer.Option(2, "--jobs", help="Folds at a time"),
    gpu_id: int = typer.Option(-1, "--gpu-id"),
):
    """Train and score every fold not done yet, then write the report."""
    runs = []
    for fold in folds:
        train, test = (corpus_dir / f"ade_split_{fold}_{split}.spacy" for split in ("train", "test"))
        for path in (train, test):
            if not path.exists():
                raise typer.BadParameter(f"fold {fold}: {path} is missing; run `spacy project run convert`")
        # paths.dev only feeds spaCy's step-0 evaluation: no model selection on the test split
        runs.append(Run(output_dir / f"fold{fold}", config, seed, {"paths.dev": str(test)}, train, {"test": test}))
    results = execute_all(runs, lambda run: budget_overrides(epochs, run.train_corpus, batch_size),
                          jobs, gpu_id)
    per_fold = {f"fold{fold}": result["scores"]["test"] for fold, result in zip(folds, results)}
    summary = {metric: mean_std([scores[metric] for scores in per_fold.values()]) for metric in METRICS}
    steps = sorted({r["steps"] for r in results})
    budget = (f"{epochs:g} epoch(s) per fold ({'/'.join(map(str, steps))} updates, batch {batch_size}), seed {seed}, "
              f"config {config}, final model scored on the fold's test split")
    data = {"budget": budget, "summary": summary, "folds": per_fold,
            "train_seconds": [r["train_seconds"] for r in results]}
    report.parent.mkdir(parents=True, exist_ok=True)
    report.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    lines = ["# ADE, 10-fold cross-validation", "", f"Budget: {budget}.", "",
             "| fold | NER macro F1 | strict RE macro F1 | NER micro F1 | strict RE micro F1 |", "|---|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(f"{scores[m]:.2f}" for m in METRICS) + " |" for name, scores in per_fold.items()]
    lines.append("| mean ± std | " + " | ".join(f"{summary[m]['mean']:.2f} ± {summary[m]['std']:.2f}" for m in METRICS) + " |")
    report.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
