"""The ablation study on CoNLL04: every row one config (plus overrides), several seeds.

Rows of Table 7 of the two-phase paper, rows of Table 2 of the SpERT.MT paper,
and the combined model. Each run trains on CoNLL04 train for the same budget
(see scripts/runs.py) and scores the final model on dev and test. Results go
to OUTPUT_DIR/ROW/seedN/result.json; scripts/ablation_report.py turns them into
reports/ablations.{md,json,png}.

    python scripts/ablations.py OUTPUT_DIR --epochs 1 --seeds 0 1 2 [--rows full base] [--jobs 2]
"""
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import typer

from runs import Run, budget_overrides, execute_all, pyplot

MODEL = "components.spanjoint.model."
BATCH_SIZE = 4  # batch size of every run of the study (the committed report's)


class Row(NamedTuple):
    """One row of an ablation table."""

    name: str
    table: str
    config: str
    overrides: Dict[str, str]


def _off(*switches: str) -> Dict[str, str]:
    return {MODEL + switch: "false" for switch in switches}


ROWS = [
    Row("full", "two-phase Table 7", "configs/conll04.cfg", {}),
    # section 4.5: without the two phases the model "cannot make use of binary global features,
    # but retains multi-class global features", so the row drops D_r too
    Row("w/o two-phase", "two-phase Table 7", "configs/conll04.cfg", _off("two_phase", "binary_features")),
    Row("w/o binary features", "two-phase Table 7", "configs/conll04.cfg", _off("binary_features")),
    Row("w/o multi-class features", "two-phase Table 7", "configs/conll04.cfg", _off("multiclass_features")),
    Row("w/o both features", "two-phase Table 7", "configs/conll04.cfg",
        _off("binary_features", "multiclass_features")),
    Row("w/o gated", "two-phase Table 7", "configs/conll04.cfg", _off("gated")),
    Row("base (SpERT)", "two-phase Table 7", "configs/conll04_spert.cfg", {}),
    Row("SpERT.MT", "SpERT.MT Table 2", "configs/conll04_spertmt.cfg", {}),
    # section 4.5: -MTL goes back from "the binary and multi-class multi-task approach" to a
    # "single-step multi-class" one. Read as: the binary identification task goes (and with it
    # the IoU scaling of its loss, EIL), the multi-class task stays as SpERT.MT trains and
    # decides it (ranking loss, theta on the class scores)
    Row("SpERT.MT -MTL", "SpERT.MT Table 2", "configs/conll04_spertmt.cfg",
        _off("identification_heads", "iou_weighted_identification")),
    Row("SpERT.MT -entity logits", "SpERT.MT Table 2", "configs/conll04_spertmt.cfg", _off("entity_logits_in_pairs")),
    Row("SpERT.MT -EIL", "SpERT.MT Table 2", "configs/conll04_spertmt.cfg", _off("iou_weighted_identification")),
    Row("combined", "combined", "configs/conll04_combined.cfg", {}),
    # where the papers differ: SpERT.MT's ranking classification (the default) or phase two's softmax
    Row("combined, softmax typing", "combined", "configs/conll04_combined.cfg",
        {MODEL + "classification_loss": '"softmax"'}),
]
ROWS_BY_NAME = {row.name: row for row in ROWS}


def run_dir_name(row_name: str) -> str:
    """A folder name for a row ("w/o gated" -> "wo_gated")."""
    return "".join(c if c.isalnum() else "_" for c in row_name.replace("w/o", "wo")).strip("_")


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
              MODEL + "token_case_features": "false", MODEL + "gated_relations": "null",
              "components.transformer.model.case_token_types": "false",
              # and SpERT's dropout of 0.1 before the classifiers, which the two main configs set to 0
              MODEL + "dropout": "0.1"}
    runs = [
        Run(output_dir / run_dir_name(row.name) / f"seed{seed}", Path(row.config), seed, row.overrides,
            train_corpus, {"dev": dev_corpus, "test": test_corpus})
        for seed in seeds for row in selected
    ]
    execute_all(runs, lambda run: budget, jobs, gpu_id)


if __name__ == "__main__":
    typer.run(main)
