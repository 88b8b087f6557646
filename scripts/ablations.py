"""The ablation study on CoNLL04: every row one config (plus overrides), several seeds.

Rows of Table 7 of the two-phase paper, rows of Table 2 of the SpERT.MT paper,
and the combined model. Each run trains on CoNLL04 train for the same budget
(see spacy_spanjoint/analysis/runs.py) and scores the final model on dev and test. Results go
to OUTPUT_DIR/ROW/seedN/result.json; scripts/ablation_report.py turns them into
reports/ablations.{md,json,png}.

    python scripts/ablations.py OUTPUT_DIR --epochs 1 --seeds 0 1 2 [--rows full base] [--jobs 2]
"""
from pathlib import Path
from typing import List, Optional

import typer

from spacy_spanjoint.analysis.ablation_rows import BATCH_SIZE, ROWS, ROWS_BY_NAME, run_dir_name, setting
from spacy_spanjoint.analysis.runs import Run, budget_overrides, execute_all, pyplot


def main(
    output_dir: Path = typer.Argument(..., help="Folder for the runs"),
    train_corpus: Path = typer.Option(Path("corpus/conll04_train.spacy"), "--train", exists=True),
    dev_corpus: Path = typer.Option(Path("corpus/conll04_dev.spacy"), "--dev", exists=True),
    test_corpus: Path = typer.Option(Path("corpus/conll04_test.spacy"), "--test", exists=True),
    epochs: float = typer.Option(1.0, "--epochs", help="Training budget per run, in epochs of CoNLL04 train"),
    batch_size: int = typer.Option(BATCH_SIZE, "--batch-size", help="Batch size of every run (sets the configs' batcher)"),
    seeds: List[int] = typer.Option([0, 1, 2], "--seeds"),
    rows: Optional[List[str]] = typer.Option(None, "--rows", help="Row names (default: all)"),
    jobs: int = typer.Option(2, "--jobs", help="Runs at a time"),
    gpu_id: int = typer.Option(-1, "--gpu-id"),
):
    """Train and score every (row, seed) run not done yet."""
    pyplot()  # scripts/ablation_report.py plots the runs: stop before hours of training without matplotlib
    unknown = [name for name in rows or [] if name not in ROWS_BY_NAME]
    if unknown:
        raise typer.BadParameter(f"unknown rows {unknown}; rows are {list(ROWS_BY_NAME)}")
    selected = [ROWS_BY_NAME[name] for name in rows] if rows else ROWS
    # the study was measured without the token case features (after and in
    # the encoder), which the two main CoNLL04 configs now turn on, and with
    # the relation gates of the paper, which configs/conll04.cfg now replaces
    # by concatenation: every row keeps both case features off and the
    # relation gates following `gated`
    budget = {**budget_overrides(epochs, train_corpus, batch_size),
              setting("token_case_features"): "false", setting("gated_relations"): "null",
              "components.transformer.model.case_token_types": "false",
              # and SpERT's dropout of 0.1 before the classifiers, which the two main configs set to 0
              setting("dropout"): "0.1"}
    runs = [
        Run(output_dir / run_dir_name(row.name) / f"seed{seed}", Path(row.config), seed, row.overrides,
            train_corpus, {"dev": dev_corpus, "test": test_corpus})
        for seed in seeds for row in selected
    ]
    execute_all(runs, lambda run: budget, jobs, gpu_id)


if __name__ == "__main__":
    typer.run(main)
