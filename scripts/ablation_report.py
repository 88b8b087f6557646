"""Report of the ablation study: mean +- std over seeds, analyses, plots.

Reads RUNS_DIR/ROW/seedN/result.json (scripts/ablations.py) and writes
OUTPUT.json, OUTPUT.md and OUTPUT.png (scores per row), plus
OUTPUT_analysis.png: the imbalance ratios of Table 6 of the two-phase paper
(counted on the candidates the training sampler draws from TRAIN), and NER F1
by entity length and strict RE F1 by entity distance on test for the full
model against the base (the mean over its seeds).

    python scripts/ablation_report.py RUNS_DIR TRAIN.spacy TEST.spacy TYPES.json reports/ablations
"""
import json
import statistics
from pathlib import Path
from typing import Dict

import typer

from spacy_spanjoint.analysis.ablation_rows import BATCH_SIZE, ROWS, run_dir_name
from spacy_spanjoint.analysis.runs import mean_std, pyplot, steps_per_epoch

METRICS = [("dev", "ner_f"), ("dev", "re_strict_f"), ("test", "ner_f"), ("test", "re_strict_f"),
           ("test", "re_strict_macro_f")]
COMPARED_ROWS = ("full", "base (SpERT)")


def summarize(runs_dir: Path, steps_in_epoch: int) -> Dict[str, dict]:
    """Per row (in table order): seeds, steps, epochs, seconds and mean +- std of each metric."""
    summary = {}
    for row in ROWS:
        results = [json.loads(p.read_text()) for p in sorted((runs_dir / run_dir_name(row.name)).glob("seed*/result.json"))]
        if not results:
            continue
        summary[row.name] = {
            "table": row.table,
            "config": row.config,
            "overrides": row.overrides,
            "seeds": [r["seed"] for r in results],
            "steps": sorted({r["steps"] for r in results}),
            "epochs": sorted({round(r["steps"] / steps_in_epoch, 2) for r in results}),
            "train_seconds": mean_std([r["train_seconds"] for r in results]),
            **{f"{split}_{metric}": mean_std([r["scores"][split][metric] for r in results]) for split, metric in METRICS},
        }
    return summary


def bucket_scores(runs_dir: Path, test_path: Path, types) -> Dict[str, dict]:
    """NER F1 by entity length and RE F1 by distance of the compared rows (mean over seeds)."""
    from spacy.tokens import DocBin
    from spacy.training import Example
    from spacy.vocab import Vocab

    from spacy_spanjoint.analysis.breakdown import entity_f1_by_length, relation_f1_by_distance

    vocab = Vocab()
    gold = list(DocBin().from_disk(test_path).get_docs(vocab))
    result = {}
    for row in COMPARED_ROWS:
        per_seed = {"ner_by_length": [], "re_by_distance": []}
        for path in sorted((runs_dir / run_dir_name(row)).glob("seed*/test_predicted.spacy")):
            predicted = list(DocBin().from_disk(path).get_docs(vocab))
            examples = [Example(p, g) for p, g in zip(predicted, gold)]
            per_seed["ner_by_length"].append(entity_f1_by_length(examples))
            per_seed["re_by_distance"].append(relation_f1_by_distance(examples, symmetric_relations=types.symmetric))
        if per_seed["ner_by_length"]:
            result[row] = {
                name: {bucket: {"f": round(100 * statistics.mean(s[bucket]["f"] for s in seeds), 2),
                                "n_gold": seeds[0][bucket]["n_gold"]}
                       for bucket in seeds[0]}
                for name, seeds in per_seed.items()
            }
    return result


def markdown(summary: Dict[str, dict], imbalance: dict, buckets: dict, budget_note: str) -> str:
    lines = ["# Ablations on CoNLL04", "", budget_note, "",
             "| row | table | seeds | epochs | dev NER F1 | dev RE F1 | test NER F1 | test RE F1 | test RE macro F1 | train s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in summary.items():
        cells = [f"{row[f'{s}_{m}']['mean']:.2f} ± {row[f'{s}_{m}']['std']:.2f}" for s, m in METRICS]
        lines.append(f"| {name} | {row['table']} | {len(row['seeds'])} | {'/'.join(map(str, row['epochs']))} | "
                     + " | ".join(cells) + f" | {row['train_seconds']['mean']:.0f} |")
    lines += ["", "## Imbalance of the training candidates (Table 6 of the two-phase paper)", "",
              "Largest class count / smallest class count over one epoch of sampled candidates.", "",
              "| task | baseline (types + none) | phase one (positive vs negative) | phase two (types) |",
              "|---|---|---|---|"]
    for task, ratios in imbalance.items():
        lines.append(f"| {task.upper()} | 1 : {ratios['baseline']} | 1 : {ratios['phase_one']} | 1 : {ratios['phase_two']} |")
    for task, ratios in imbalance.items():
        lines.append("")
        lines.append(f"{task.upper()} candidate counts: " + ", ".join(f"{k} {v}" for k, v in ratios["counts"].items()))
    for analysis, title in (("ner_by_length", "NER F1 by entity length (test)"),
                            ("re_by_distance", "Strict RE F1 by entity distance (test)")):
        if not buckets:
            break
        first = next(iter(buckets.values()))[analysis]
        lines += ["", f"## {title}", "", "| row | " + " | ".join(first) + " |", "|---" * (len(first) + 1) + "|"]
        for row, scores in buckets.items():
            lines.append(f"| {row} | " + " | ".join(f"{v['f']:.2f}" for v in scores[analysis].values()) + " |")
        lines.append("| gold count | " + " | ".join(str(v["n_gold"]) for v in first.values()) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: Dict[str, dict], buckets: dict, output: Path) -> None:
    plt = pyplot()
    names = list(summary)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, (metric, title) in zip(axes, (("ner_f", "NER F1"), ("re_strict_f", "strict RE F1"))):
        for offset, split in ((-0.2, "dev"), (0.2, "test")):
            means = [summary[n][f"{split}_{metric}"]["mean"] for n in names]
            stds = [summary[n][f"{split}_{metric}"]["std"] for n in names]
            ax.bar([i + offset for i in range(len(names))], means, 0.4, yerr=stds, capsize=3, label=split)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_title(f"{title} (mean ± std over seeds)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(output.with_suffix(".png"), dpi=110)
    plt.close(fig)
    if not buckets:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (analysis, title) in zip(axes, (("ner_by_length", "NER F1 by entity length (test)"),
                                            ("re_by_distance", "strict RE F1 by entity distance (test)"))):
        for row, scores in buckets.items():
            ax.plot(list(scores[analysis]), [v["f"] for v in scores[analysis].values()], marker="o", label=row)
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(output.parent / f"{output.name}_analysis.png", dpi=110)
    plt.close(fig)


def main(
    runs_dir: Path = typer.Argument(..., exists=True, file_okay=False),
    train_path: Path = typer.Argument(..., exists=True),
    test_path: Path = typer.Argument(..., exists=True),
    types_path: Path = typer.Argument(..., exists=True),
    output: Path = typer.Argument(..., help="Output path without suffix, e.g. reports/ablations"),
):
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    from spacy_spanjoint.analysis.breakdown import imbalance_ratios
    from spacy_spanjoint.data.corpus import load_types

    summary = summarize(runs_dir, steps_per_epoch(train_path, BATCH_SIZE))
    if not summary:
        raise typer.BadParameter(f"no results under {runs_dir}; run scripts/ablations.py first")
    types = load_types(types_path)
    train_docs = list(DocBin().from_disk(train_path).get_docs(Vocab()))
    imbalance = imbalance_ratios(train_docs, list(types.entities), list(types.relations))
    buckets = bucket_scores(runs_dir, test_path, types)
    steps = sorted({s for row in summary.values() for s in row["steps"]})
    epochs = sorted({e for row in summary.values() for e in row["epochs"]})
    budget_note = (f"Budget per run: {'/'.join(map(str, epochs))} epoch(s) = {'/'.join(map(str, steps))} updates on "
                   f"CoNLL04 train (batch {BATCH_SIZE}), learning rate warm-up over 10% of them, then linear decay to "
                   "zero; no dev-based model selection (the final model is scored on dev and test). Seeds "
                   f"{sorted({s for row in summary.values() for s in row['seeds']})}; mean ± sample std over seeds. "
                   "Run on 2 CPU cores, two runs at a time with one thread each, by `spacy project run ablations`. "
                   "This is a small fraction of the papers' budgets (the shipped configs train 20 epochs): the "
                   "table says which variants learn fastest at this budget, not how they rank when converged.")
    report = {"budget": budget_note, "rows": summary, "imbalance": imbalance, "by_bucket": buckets}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown(summary, imbalance, buckets, budget_note))
    plot(summary, buckets, output)
    print(output.with_suffix(".md").read_text())


if __name__ == "__main__":
    typer.run(main)
