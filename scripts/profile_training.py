"""Where a training step's time goes: py-spy samples of `spacy train` on CoNLL04.

Runs `spacy train` on a config for a short budget (no dev evaluation beyond
spaCy's first one on a single doc) under py-spy's sampling profiler, keeps
the samples taken inside spaCy's training loop, and sorts each into the first
part of the step its call stack names: the optimizer (and the gradient
clipping before it), the encoder's backward and forward passes (word-piece
tokenization apart), the span model's backward pass and loss, its forward
pass (candidate sampling apart), the listener's pooling, spaCy's Example
handling and alignment, batching. Writes the shares as JSON and markdown.
Needs py-spy (`pip install -e ".[profile]"`).

    python scripts/profile_training.py configs/conll04.cfg reports/training_profile [--steps 120] [--threads 2] [--set KEY=VALUE ...]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import typer

from spacy_spanjoint.analysis.runs import machine

# (part, markers): a sample belongs to the first part one of whose markers is in its stack
PARTS: List[Tuple[str, Sequence[str]]] = [
    ("gradient clipping", ("clip_gradient_norm",)),
    ("optimizer", ("finish_update",)),
    ("encoder backward", ("bounded_forward.<locals>.backprop",)),
    ("span model backward and loss", ("spanjoint_forward.<locals>.backprop", "SpanJoint.get_loss")),
    ("word-piece tokenization", ("huggingface_tokenize", "fit_to_encoder")),
    ("encoder forward", ("bounded_forward",)),
    ("listener and pooling", ("listener.py", "trfs2arrays")),
    ("candidate sampling", ("model/candidates.py",)),
    ("span model forward", ("spacy_spanjoint/model/", "spanjoint_forward")),
    ("gold batch and Example alignment", ("_gold_batch", "example.pyx", "training/example", "same_tokenization")),
    ("batching and corpus", ("create_train_batches", "corpus.py", "minibatch")),
]
LOOP_MARKER = "train_while_improving"


def part_of(stack: str) -> str:
    """The part of a training step one sampled call stack belongs to."""
    for part, markers in PARTS:
        if any(marker in stack for marker in markers):
            return part
    return "other"


def shares(raw_lines: List[str], classify: Callable[[str], str] = part_of) -> Dict[str, dict]:
    """Samples and share of each part, over the samples inside the training loop.

    raw_lines (List[str]): py-spy's raw output, "frame;frame;... count" per line.
    RETURNS (Dict[str, dict]): part -> {"samples", "share"}, largest first.
    """
    counts: Counter = Counter()
    for line in raw_lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and LOOP_MARKER in stack:
            counts[classify(stack)] += int(count)
    total = sum(counts.values())
    return {part: {"samples": n, "share": round(n / total, 4)} for part, n in counts.most_common()}


def main(
    config: Path = typer.Argument(..., exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="Report path without suffix (.json and .md are written)"),
    steps: int = typer.Option(120, "--steps", help="Training steps to sample"),
    threads: int = typer.Option(2, "--threads"),
    rate: int = typer.Option(50, "--rate", help="py-spy samples per second"),
    settings: List[str] = typer.Option([], "--set", help="Config override KEY=VALUE (repeatable)"),
):
    """Profile `steps` training steps of CONFIG and write the shares of each part."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit('This command needs py-spy: pip install -e ".[profile]"')
    overrides = {"training.max_steps": str(steps), "training.eval_frequency": str(10**9), "corpora.dev.limit": "1"}
    overrides.update(dict(setting.split("=", 1) for setting in settings))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "samples.txt"
        command = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(Path(tmp) / "model")]
        for key, value in overrides.items():
            command += [f"--{key}", value]
        subprocess.run([py_spy, "record", "--rate", str(rate), "--format", "raw", "--output", str(raw), "--", *command],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        parts = shares(raw.read_text().splitlines())
    report = {"command": " ".join(["python"] + sys.argv), "config": str(config), "overrides": overrides,
              "steps": steps, "threads": threads, "machine": machine(-1), "parts": parts}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Where a training step's time goes: `{config}`", "",
             f"py-spy samples of {steps} `spacy train` steps on {threads} thread(s), {report['machine']['cpu']};",
             f"command: `{report['command']}`.", "", "| part | share of the samples | samples |", "|---|---|---|"]
    lines += [f"| {part} | {100 * v['share']:.1f}% | {v['samples']} |" for part, v in parts.items()]
    output.with_suffix(".md").write_text("\n".join(lines) + "\n")
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
