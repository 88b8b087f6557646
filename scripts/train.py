"""Train with spaCy's training loop (what `spacy train` runs) and record the cost.

Writes OUTPUT/training_cost.json: wall seconds, epochs, seconds per epoch
(each epoch includes one evaluation on the dev set, as configured by
`eval_frequency`), peak resident memory, and the exact command. A run that
ends at `max_steps` (as the shipped configs do) counts max_steps in epochs of
its training corpus.

    python scripts/train.py CONFIG OUTPUT [--gpu-id N] [--name.of.setting value ...]
"""
import json
import resource
import sys
import time
from pathlib import Path

import typer
from spacy.cli._util import parse_config_overrides
from spacy.cli.train import train
from spacy.util import load_config

from spacy_spanjoint.analysis.runs import steps_per_epoch


def main(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., exists=True, dir_okay=False),
    output_path: Path = typer.Argument(...),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g"),
):
    overrides = parse_config_overrides(ctx.args)
    start = time.perf_counter()
    train(config_path, output_path, use_gpu=gpu_id, overrides=overrides)
    seconds = time.perf_counter() - start
    config = load_config(config_path, overrides=overrides, interpolate=True)
    epochs = training_epochs(config)
    cost = {
        "command": " ".join(["python"] + sys.argv),
        "config": str(config_path),
        "seed": config["training"]["seed"],
        "epochs": epochs,
        "batch_size": config["training"]["batcher"].get("size"),
        "wall_seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / epochs, 1) if epochs > 0 else None,
        "peak_memory_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "gpu_id": gpu_id,
    }
    (output_path / "training_cost.json").write_text(json.dumps(cost, indent=2) + "\n")
    print(json.dumps(cost, indent=2))


def training_epochs(config) -> float:
    """The epochs a run trains: max_epochs or max_steps (in epochs of the training
    corpus), whichever ends it first; 0 when neither is set."""
    training = config["training"]
    limits = [training["max_epochs"]] if training["max_epochs"] > 0 else []
    if training["max_steps"] > 0:
        batches = steps_per_epoch(Path(config["corpora"]["train"]["path"]), training["batcher"]["size"])
        limits.append(round(training["max_steps"] / batches, 2))
    return min(limits, default=0)


app = typer.Typer(add_completion=False)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(main)

if __name__ == "__main__":
    app()
