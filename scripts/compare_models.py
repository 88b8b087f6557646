"""Side-by-side comparison of trained pipelines on one test corpus.

For each training folder (with model-best/ and training_cost.json from
scripts/train.py): test scores (NER P/R/F1, strict relation P/R/F1 micro and
macro, boundaries relation F1), training seconds per epoch, inference
sentences per second, peak memory and encoder precision at inference (each
model measured in its own process), and where the errors are (`analysis.entity_error_profile`,
`analysis.relation_error_profile`). Writes JSON and Markdown tables.

    python scripts/compare_models.py TRAINING_DIR [TRAINING_DIR ...] TEST.spacy OUT.json
"""
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import typer

from spacy_spanjoint.analysis.runs import SCORE_KEYS, gold_words

COLUMNS = ("ner_p", "ner_r", "ner_f", "re_strict_p", "re_strict_r", "re_strict_f", "re_strict_macro_f",
           "re_boundaries_f")


def measure(model_dir: Path, test_path: Path, gpu_id: int) -> dict:
    """Scores, speed and peak memory of one pipeline (run in a fresh process)."""
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    from spacy_spanjoint.analysis.breakdown import entity_error_profile, relation_error_profile
    from spacy_spanjoint.encoder.precision import effective_precision

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model_dir)
    gold = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    list(nlp.pipe(gold_words(nlp, gold[:16])))  # warm-up
    start = time.perf_counter()
    predicted = list(nlp.pipe(gold_words(nlp, gold)))
    seconds = time.perf_counter() - start
    scorer = nlp.get_pipe("spanjoint")
    examples = [Example(p, g) for p, g in zip(predicted, gold)]
    scores = scorer.score(examples)
    result = {name: round(100 * scores[SCORE_KEYS[name]], 2) for name in COLUMNS}
    result.update(
        inference_sentences_per_second=round(len(gold) / seconds, 1),
        inference_peak_memory_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        inference_encoder_precision=effective_precision(nlp.get_pipe("transformer").model),
        entity_errors=entity_error_profile(examples),
        relation_errors=relation_error_profile(examples),
    )
    return result


def main(
    paths: List[Path] = typer.Argument(..., help="Training folders, then the test .spacy, then the output .json"),
    gpu_id: int = typer.Option(-1, "--gpu-id"),
    measure_one: bool = typer.Option(False, "--measure-one", hidden=True),
):
    if measure_one:
        print(json.dumps(measure(paths[0], paths[1], gpu_id)))
        return
    *training_dirs, test_path, output_path = paths
    rows = {}
    for training_dir in training_dirs:
        out = subprocess.run(
            [sys.executable, __file__, str(training_dir / "model-best"), str(test_path), "--measure-one", "--gpu-id", str(gpu_id)],
            check=True, capture_output=True, text=True,
        ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        cost_file = training_dir / "training_cost.json"
        cost = json.loads(cost_file.read_text()) if cost_file.exists() else {}
        row.update({f"training_{k}": v for k, v in cost.items()})
        rows[training_dir.name] = row
    report = {
        "test_corpus": str(test_path),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}, python {platform.python_version()}",
        "gpu_id": gpu_id,
        "models": rows,
    }
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(json.dumps(report, indent=2) + "\n")
    tables = markdown_table(rows) + "\n\n" + error_tables(rows)
    output_path.with_suffix(".md").write_text(tables + "\n")
    print(tables)


def markdown_table(rows: dict) -> str:
    columns = [
        ("NER P", "ner_p"), ("NER R", "ner_r"), ("NER F1", "ner_f"),
        ("RE strict P", "re_strict_p"), ("RE strict R", "re_strict_r"), ("RE strict F1", "re_strict_f"),
        ("RE strict macro F1", "re_strict_macro_f"), ("RE boundaries F1", "re_boundaries_f"),
        ("train s/epoch", "training_seconds_per_epoch"), ("train peak GiB", "training_peak_memory_gib"),
        ("infer sent/s", "inference_sentences_per_second"), ("infer peak GiB", "inference_peak_memory_gib"),
        ("infer encoder", "inference_encoder_precision"),
    ]
    return config_table(columns, rows)


def config_table(columns: list, rows: dict) -> str:
    """A Markdown table: one row per config, one column per (title, key) of `columns`."""
    lines = ["| config | " + " | ".join(c for c, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(str(row.get(k, "")) for _, k in columns) + " |")
    return "\n".join(lines)


def error_tables(rows: dict) -> str:
    """Counts of each kind of entity and relation error per model (see `spacy_spanjoint.analysis.breakdown`)."""
    tables = []
    for title, key in (("Entities (gold and predicted counts, then each kind of outcome)", "entity_errors"),
                       ("Relations, strict (gold and predicted counts, then each kind of outcome)", "relation_errors")):
        kinds = list(next(iter(rows.values()))[key])
        counts = {name: row[key] for name, row in rows.items()}
        tables.append(f"{title}:\n\n" + config_table([(kind, kind) for kind in kinds], counts))
    return "\n\n".join(tables)

if __name__ == "__main__":
    typer.run(main)
