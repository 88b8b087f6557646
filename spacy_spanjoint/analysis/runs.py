"""One experiment run: train a config on a step budget, then score the final model.

Shared by the ablation study (scripts/ablations.py) and the ADE folds
(scripts/ade_folds.py). A run trains with `spacy train` in a subprocess
(the config's own optimizer and batcher, the learning-rate schedule scaled to
the budget: 10% linear warm-up, then linear decay to zero), evaluates the
final model on each evaluation corpus in a fresh subprocess, keeps the
predicted Docs (for later analyses), the scores and the F1 by entity length and
entity distance (Figs. 3-4 of the two-phase paper) in RUN_DIR/result.json, and
deletes the model weights. A run whose result.json exists is not repeated.

    python -m spacy_spanjoint.analysis.runs MODEL_DIR NAME=CORPUS.spacy ... --output RUN_DIR
"""
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence

import typer

SCORE_KEYS = {
    "ner_f": "spans_entities_f", "ner_p": "spans_entities_p", "ner_r": "spans_entities_r",
    "ner_macro_f": "spans_entities_macro_f",
    "re_strict_f": "relations_f", "re_strict_p": "relations_p", "re_strict_r": "relations_r",
    "re_strict_macro_f": "relations_macro_f", "re_boundaries_f": "relations_boundaries_f",
    "re_boundaries_macro_f": "relations_boundaries_macro_f",
}
NO_DEV_EVALUATION = 10**9  # eval_frequency that keeps spaCy from scoring dev during a run
TRANSFORMER_DATA_KEY = ("._.", "trf_data", None, None)  # where Doc._.trf_data lives in user_data


PLOT_INSTALL = "pip install -e '.[plot]'"


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or exit naming the extra to install.

    The scripts that draw call it before their measurements too, so a missing
    matplotlib stops them at the start, not after hours of training.
    """
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(f"This command draws a plot and needs matplotlib: {PLOT_INSTALL}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Run(NamedTuple):
    """One training run: where it goes and what it trains."""

    run_dir: Path
    config: Path
    seed: int
    overrides: Dict[str, str]
    train_corpus: Path
    eval_corpora: Dict[str, Path]


def machine(gpu_id: int) -> dict:
    """What the figures were measured on."""
    import spacy
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    info = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "spacy": spacy.__version__,
        "gpu_id": gpu_id,
    }
    if gpu_id >= 0:
        info["gpu"] = torch.cuda.get_device_name(gpu_id)
    return info


def steps_per_epoch(train_corpus: Path, batch_size: int) -> int:
    """Updates in one epoch of `spacy.batch_by_sequence` over a DocBin."""
    from spacy.tokens import DocBin

    return math.ceil(len(DocBin().from_disk(train_corpus)) / batch_size)


def budget_overrides(epochs: float, train_corpus: Path, batch_size: int) -> Dict[str, str]:
    """spaCy overrides for a run of `epochs` epochs over `train_corpus` at `batch_size`.

    The batch size is set too, so a study keeps its budget when a config's
    own batch size changes.
    """
    total = max(1, round(epochs * steps_per_epoch(train_corpus, batch_size)))
    return {
        "training.batcher.size": str(batch_size),
        "training.max_epochs": "0",
        "training.max_steps": str(total),
        "training.eval_frequency": str(NO_DEV_EVALUATION),
        # spaCy still scores dev once before the first update: one doc is enough
        "corpora.dev.limit": "1",
        "training.optimizer.learn_rate.warmup_steps": str(max(1, total // 10)),
        "training.optimizer.learn_rate.total_steps": str(total),
    }


def execute(run: Run, budget: Dict[str, str], threads: int, gpu_id: int) -> dict:
    """Train and evaluate one run unless its result exists; return the result."""
    result_path = run.run_dir / "result.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    run.run_dir.mkdir(parents=True, exist_ok=True)
    overrides = {"paths.train": str(run.train_corpus), "system.seed": str(run.seed), **budget, **run.overrides}
    command = [sys.executable, "-m", "spacy", "train", str(run.config), "--output", str(run.run_dir / "model"),
               "--gpu-id", str(gpu_id)]
    for key, value in overrides.items():
        command += [f"--{key}", value]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    with open(run.run_dir / "train.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    train_seconds = time.perf_counter() - start
    evaluation = evaluate_in_subprocess(run.run_dir / "model" / "model-last", run.eval_corpora, run.run_dir, env, gpu_id)
    result = {
        "config": str(run.config),
        "config_sha256": config_digest(run.config),
        "seed": run.seed,
        "overrides": run.overrides,
        "train_corpus": str(run.train_corpus),
        "steps": int(budget["training.max_steps"]),
        "train_seconds": round(train_seconds, 1),
        "threads": threads,
        "command": " ".join(command),
        "scores": evaluation["scores"],
        "breakdown": evaluation["breakdown"],
    }
    shutil.rmtree(run.run_dir / "model")
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def config_digest(config: Path) -> str:
    """The sha256 of a config file's text: which version of the config a run trained."""
    return hashlib.sha256(Path(config).read_bytes()).hexdigest()


def evaluate_in_subprocess(model_dir: Path, corpora: Dict[str, Path], output: Path, env: dict, gpu_id: int) -> dict:
    """{"scores": corpus -> scores, "breakdown": corpus -> F1 by length and distance} of `score_model`."""
    command = [sys.executable, "-m", "spacy_spanjoint.analysis.runs", str(model_dir), "--output", str(output), "--gpu-id", str(gpu_id)]
    command += [f"{name}={path}" for name, path in corpora.items()]
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def execute_all(runs: Sequence[Run], budget_for, jobs: int, gpu_id: int, run_one=execute) -> List[dict]:
    """Run everything, `jobs` at a time, each with its share of the CPU cores.

    run_one (Callable): Trains and scores one run, with the arguments of `execute`.
    """
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_one, run, budget_for(run), threads, gpu_id) for run in runs]
        results = []
        for run, future in zip(runs, futures):
            result = future.result()
            print(f"{run.run_dir}: " + ", ".join(
                f"{name} NER {s['ner_f']:.2f} RE {s['re_strict_f']:.2f}" for name, s in result["scores"].items()
            ), flush=True)
            results.append(result)
    return results


def gold_words(nlp, gold: List) -> List:
    """Unannotated Docs with the tokens of the gold Docs (what `--gold-preproc` scores)."""
    from spacy.tokens import Doc

    return [Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc]) for doc in gold]


def mean_std(values: List[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (0 for a single value), rounded to 2 places."""
    return {"mean": round(statistics.mean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0, "n": len(values)}


def score_model(model_dir: Path, corpora: Dict[str, Path], output: Path, gpu_id: int) -> dict:
    """Predict each corpus from its gold words, score it, keep the predictions.

    RETURNS (dict): {"scores": corpus -> SCORE_KEYS scores, "breakdown": corpus ->
        {"ner_by_length", "re_by_distance"}} (percent).
    """
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    from .breakdown import entity_f1_by_length, relation_f1_by_distance

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model_dir)
    pipe = nlp.get_pipe("spanjoint")
    all_scores, breakdown = {}, {}
    for name, path in corpora.items():
        gold = list(DocBin().from_disk(path).get_docs(nlp.vocab))
        predicted = list(nlp.pipe(gold_words(nlp, gold)))
        examples = [Example(p, g) for p, g in zip(predicted, gold)]
        scores = pipe.score(examples)
        all_scores[name] = {key: round(100 * scores[spacy_key], 2) for key, spacy_key in SCORE_KEYS.items()}
        breakdown[name] = {"ner_by_length": percent(entity_f1_by_length(examples, pipe.spans_key)),
                           "re_by_distance": percent(relation_f1_by_distance(examples, pipe.spans_key))}
        for doc in predicted:  # keep entities and relations, not the transformer's output
            doc.user_data.pop(TRANSFORMER_DATA_KEY, None)
        DocBin(docs=predicted, store_user_data=True).to_disk(output / f"{name}_predicted.spacy")
    return {"scores": all_scores, "breakdown": breakdown}


def percent(by_interval: Dict[str, Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """interval -> {"p", "r", "f"} in percent, rounded to 2 places, and "n_gold" as it is."""
    return {name: {key: (value if key == "n_gold" else round(100 * value, 2)) for key, value in stats.items()}
            for name, stats in by_interval.items()}


def evaluate(
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False),
    corpora: List[str] = typer.Argument(..., help="NAME=PATH of each corpus to score"),
    output: Path = typer.Option(..., "--output"),
    gpu_id: int = typer.Option(-1, "--gpu-id"),
):
    """Score a trained pipeline on corpora; print the scores and their breakdown as JSON."""
    named: Dict[str, Path] = {}
    for item in corpora:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).exists():
            raise typer.BadParameter(f"expected NAME=PATH of an existing .spacy file, got '{item}'")
        named[name] = Path(path)
    print(json.dumps(score_model(model_dir, named, output, gpu_id)))


if __name__ == "__main__":
    typer.run(evaluate)
