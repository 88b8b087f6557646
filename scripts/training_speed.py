"""Training speed side by side: the shipped config against its faster variants.

Each variant is the shipped config (configs/conll04.cfg) with some blocks
replaced: torch's fused AdamW for the optimizer (`spacy-spanjoint.TorchAdamW.v1`),
bfloat16 autocast for the encoder's training forward pass (`train_precision`),
or both. Every measurement runs `nlp.update` steps in a fresh process (the
benchmark's training step, dev evaluation not included), the variants take
turns so that a busy machine slows each of them alike, and the report gives
the median seconds per epoch of each variant and its speed-up over the
shipped config.

    python scripts/training_speed.py corpus/conll04_train.spacy reports/training_speed.json [--steps 40] [--repeats 3]
"""
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import typer

from spacy_spanjoint.analysis.benchmarks import measure_training
from spacy_spanjoint.analysis.runs import machine

CONFIG = Path("configs/conll04.cfg")
ENCODER = "components.transformer.model.train_precision"


def torch_adamw(config: dict) -> dict:
    """The config's optimizer block on `spacy-spanjoint.TorchAdamW.v1`, which takes Adam.v1's settings."""
    return {**config["training"]["optimizer"], "@optimizers": "spacy-spanjoint.TorchAdamW.v1"}


def variants(config: dict) -> Dict[str, Dict[str, object]]:
    """Name -> the blocks it replaces."""
    encoder = dict(config["components"]["transformer"]["model"])
    bfloat16 = {"components.transformer.model": {**encoder, "train_precision": "bfloat16"}}
    optimizer = {"training.optimizer": torch_adamw(config)}
    return {"shipped": {}, "torch_adamw": optimizer, "bfloat16_encoder": bfloat16,
            "torch_adamw+bfloat16_encoder": {**optimizer, **bfloat16}}


def measure_in_subprocess(name: str, steps: int, full_epoch: bool, train_path: Path, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, str(train_path), "-", "--measure", name, "--steps", str(steps)]
    if full_epoch:
        command.append("--full-epoch")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"variant {name} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(
    train_path: Path = typer.Argument(..., help="Training DocBin"),
    output_path: Path = typer.Argument(..., help="JSON report (- when measuring one variant)"),
    steps: int = typer.Option(40, "--steps", help="Timed nlp.update steps per measurement"),
    repeats: int = typer.Option(3, "--repeats", help="Measurements per variant, taken in turns"),
    full_epoch: bool = typer.Option(False, "--full-epoch", help="Time whole epochs instead"),
    threads: int = typer.Option(2, "--threads", help="torch threads of each measurement"),
    names: List[str] = typer.Option([], "--variant", help="Variants to measure (default: all)"),
    measure: str = typer.Option("", "--measure", hidden=True),
):
    """Measure every variant `repeats` times, in turns, and write the report."""
    from spacy.util import load_config

    config = load_config(CONFIG, interpolate=False)
    all_variants = variants(config)
    if measure:
        print(json.dumps(measure_training(CONFIG, train_path, steps, full_epoch, -1, sections=all_variants[measure])))
        return
    chosen = names or list(all_variants)
    runs: Dict[str, List[dict]] = {name: [] for name in chosen}
    for repeat in range(repeats):
        for name in chosen:
            runs[name].append(measure_in_subprocess(name, steps, full_epoch, train_path, threads))
            typer.echo(f"{name} #{repeat}: {runs[name][-1]['seconds_per_epoch']} s/epoch", err=True)
    median = {name: statistics.median(r["seconds_per_epoch"] for r in results) for name, results in runs.items()}
    base = median.get("shipped")
    report = {
        "command": " ".join(["python"] + sys.argv),
        "config": str(CONFIG),
        "machine": {**machine(-1), "threads": threads, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "method": runs[chosen[0]][0]["method"] + f"; {repeats} measurements per variant in fresh processes, in turns",
        "variants": {name: {"replaced_blocks": sorted(all_variants[name]),
                            "seconds_per_epoch_median": round(median[name], 1),
                            "seconds_per_epoch_runs": [r["seconds_per_epoch"] for r in runs[name]],
                            "peak_memory_gib": max(r["peak_memory_gib"] for r in runs[name]),
                            "speed_up_over_shipped": round(base / median[name], 2) if base else None}
                     for name in chosen},
    }
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(json.dumps(report, indent=2) + "\n")
    typer.echo(json.dumps({n: v["seconds_per_epoch_median"] for n, v in report["variants"].items()}, indent=2))


if __name__ == "__main__":
    typer.run(main)
