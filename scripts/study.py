"""Multi-seed studies of whole training runs on CoNLL04, resumable run by run.

- spert_baseline: SpERT as published (configs/paper/conll04_spert.cfg); the
  same with the relation loss summed over the types (SpERT's code averages
  it); that with the encoder and the span model clipped each to its own
  gradient norm (SpERT clips them together); that with Adam's bias
  correction too (thinc's default, which SpERT's AdamW skips); and SpERT
  with the shipped recipe (configs/conll04_spert.cfg).
- fast_training: the shipped config (configs/conll04.cfg) as it is and with
  the faster training path (torch's fused AdamW, bfloat16 autocast of the
  encoder's training forward pass), for the F1 the faster path keeps.
- paper_tables: the rows of the two-phase paper's Table 7, SpERT.MT's Table 2
  and the combined model with each model's paper config (paper_*), and the
  full models and the baseline with the shipped recipe (shipped_*); the run
  files keep dev F1 by entity length and distance for Figs. 3-4
  (spacy_spanjoint/analysis/paper_tables.py).

Trains each (row, seed) run on CoNLL04 train for the shipped budget (20
epochs of batch 2, learning-rate warm-up over 10% of the updates, then linear
decay to zero) and scores the final model on dev and test, as SpERT's
reference implementation does (no dev-based model selection). Each finished
run writes reports/STUDY/runs/ROW_seedN.json (config, overrides, seed, steps,
scores, seconds, machine), so an interrupted study continues where it
stopped; a run another study already made (same config text, overrides, seed and
budget) is copied from its file instead of trained again.
`scripts/study_report.py STUDY` turns those files into the report.

    python scripts/study.py STUDY [--rows ROW ...] [--seeds 0 --seeds 1 --seeds 2] [--jobs 2] [--gpu-id 0]
"""
import json
from functools import partial
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import typer

from spacy_spanjoint.data.outputs import atomic_path

from spacy_spanjoint.analysis.paper_tables import study_rows
from spacy_spanjoint.analysis.runs import Run, budget_overrides, config_digest, execute, execute_all, machine


class Row(NamedTuple):
    """One row of a study: a config and its overrides."""

    config: Path
    overrides: Dict[str, str]


FAST_TRAINING = {
    "training.optimizer.@optimizers": "spacy-spanjoint.TorchAdamW.v1",
    "components.transformer.model.train_precision": "bfloat16",
}
SUMMED_TYPE_LOSS = {"components.spanjoint.model.loss.multilabel_reduction": '"sum"'}
COMPONENT_CLIPPING = {
    **SUMMED_TYPE_LOSS,
    "components.transformer.model.max_grad_norm": "1.0",
    "components.transformer.model.clip_with_listener": "false",
}
STUDIES: Dict[str, Dict[str, Row]] = {
    "spert_baseline": {
        "paper": Row(Path("configs/paper/conll04_spert.cfg"), {}),
        "shipped": Row(Path("configs/conll04_spert.cfg"), {}),
        # SpERT's code averages the relation BCE over the types, as the paper config does; this row sums them
        "paper_summed_type_loss": Row(Path("configs/paper/conll04_spert.cfg"), SUMMED_TYPE_LOSS),
        # SpERT clips one global norm over the encoder and the span model, as the paper config does;
        # this row (and the next) clips each component to its own norm, as spaCy's components are updated
        "paper_component_clipping": Row(Path("configs/paper/conll04_spert.cfg"), COMPONENT_CLIPPING),
        # and with Adam's bias correction too (thinc's default), which SpERT's AdamW skips
        "paper_component_clipping_corrected_adam": Row(Path("configs/paper/conll04_spert.cfg"),
                                                       {**COMPONENT_CLIPPING, "training.optimizer.correct_bias": "true"}),
    },
    "fast_training": {
        "shipped": Row(Path("configs/conll04.cfg"), {}),
        "fast": Row(Path("configs/conll04.cfg"), FAST_TRAINING),
    },
    "paper_tables": {key: Row(Path(row.config), row.overrides) for key, row in study_rows().items()},
}
BATCH_SIZE = 2


def same_run(results: Path, run: Run, steps: int) -> Optional[Path]:
    """A run file of any study beside `results` that trained this config, as its file reads now,
    with these overrides, seed, train corpus and steps, and kept the breakdown by entity length
    and distance."""
    wanted = (str(run.config), config_digest(run.config), run.overrides, run.seed, str(run.train_corpus), steps)
    for path in sorted(results.parent.parent.glob("*/runs/*.json")):
        found = json.loads(path.read_text())
        if (found.get("config"), found.get("config_sha256"), found.get("overrides"), found.get("seed"),
                found.get("train_corpus"), found.get("steps")) == wanted and "breakdown" in found:
            return path
    return None


def run_and_record(results: Path, run: Run, budget: Dict[str, str], threads: int, gpu_id: int) -> dict:
    """Train and score one run (in OUTPUT/ROW/seedN) unless its result file exists; write it under `results`.

    A run another study already made (the same config text, overrides, seed, corpus and
    steps) is not trained again: its result is copied with the file it came from.
    """
    row = run.run_dir.parent.name
    path = results / f"{row}_seed{run.seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    earlier = same_run(results, run, int(budget["training.max_steps"]))
    if earlier is not None:
        result = {**json.loads(earlier.read_text()), "row": row, "copied_from": str(earlier)}
    else:
        result = {"row": row, **execute(run, budget, threads, gpu_id), "machine": machine(gpu_id)}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(
    study: str = typer.Argument(..., help=f"One of {list(STUDIES)}"),
    output_dir: Optional[Path] = typer.Option(None, "--output", help="Folder for the runs (default: training/STUDY)"),
    train_corpus: Path = typer.Option(Path("corpus/conll04_train.spacy"), "--train", exists=True),
    dev_corpus: Path = typer.Option(Path("corpus/conll04_dev.spacy"), "--dev", exists=True),
    test_corpus: Path = typer.Option(Path("corpus/conll04_test.spacy"), "--test", exists=True),
    epochs: float = typer.Option(20.0, "--epochs", help="Training budget per run, in epochs of the train corpus"),
    seeds: List[int] = typer.Option([0, 1, 2], "--seeds"),
    rows: Optional[List[str]] = typer.Option(None, "--rows", help="Rows to run (default: all of the study)"),
    jobs: int = typer.Option(2, "--jobs", help="Runs at a time, each with its share of the cores"),
    results: Optional[Path] = typer.Option(None, "--results", help="Folder of the run files (default: reports/STUDY/runs)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to train and predict on (-1: CPU)"),
):
    """Train and score every (row, seed) run whose result file does not exist yet."""
    if study not in STUDIES:
        raise typer.BadParameter(f"unknown study {study!r}; studies are {list(STUDIES)}")
    study_rows = STUDIES[study]
    unknown = [row for row in rows or [] if row not in study_rows]
    if unknown:
        raise typer.BadParameter(f"unknown rows {unknown}; the rows of {study} are {list(study_rows)}")
    output_dir = output_dir or Path("training") / study
    results = results or Path("reports") / study / "runs"
    budget = budget_overrides(epochs, train_corpus, BATCH_SIZE)
    runs = [Run(output_dir / row / f"seed{seed}", study_rows[row].config, seed, study_rows[row].overrides,
                train_corpus, {"dev": dev_corpus, "test": test_corpus})
            for seed in seeds for row in (rows or list(study_rows))]
    execute_all(runs, lambda run: budget, jobs, gpu_id=gpu_id, run_one=partial(run_and_record, results))


if __name__ == "__main__":
    typer.run(main)
