"""The papers' ablation tables at the full budget: rows, comparisons, Figs. 3-4.

The rows are those of `ablation_rows` (Table 7 of the two-phase paper, Table
2 of SpERT.MT, the combined model) twice over: with each model's paper config
(`paper_*`) and, for the full models and the baseline, with the shipped recipe
(`shipped_*`), so that architecture effects and recipe effects can be told
apart. `scripts/study.py paper_tables` runs them, `scripts/study_report.py
paper_tables` reports them with the functions here.
"""
import re
from typing import Dict, List, NamedTuple, Optional

from . import ablation_rows
from .breakdown import DISTANCE_INTERVALS, LENGTH_INTERVALS
from .confidence import paired_difference

RECIPES = ("paper", "shipped")
# the rows of the shipped recipe: the full models and the baseline
SHIPPED_ROWS = ("full", "base (SpERT)", "SpERT.MT", "combined")
# the row each table's rows are compared with, besides the baseline
TABLE_FULL_ROWS = {"two-phase Table 7": "full", "SpERT.MT Table 2": "SpERT.MT", "combined": "combined"}
BASE_ROW = "base (SpERT)"
BREAKDOWNS = {"ner_by_length": LENGTH_INTERVALS, "re_by_distance": DISTANCE_INTERVALS}


class StudyRow(NamedTuple):
    """One row of the study: its ablation row, recipe, config and overrides."""

    ablation: ablation_rows.Row
    recipe: str
    config: str
    overrides: Dict[str, str]


def slug(name: str) -> str:
    """A file-name-safe, lower-case form of a row name ("w/o two-phase" -> "wo_two_phase",
    "SpERT.MT -EIL" -> "spertmt_no_eil")."""
    name = name.lower().replace("w/o", "wo").replace("spert.mt", "spertmt").replace(" -", " no_")
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_")


def row_key(recipe: str, name: str) -> str:
    """The study's name for an ablation row under a recipe ("paper", "full" -> "paper_full")."""
    return f"{recipe}_{slug(name)}"


def study_rows() -> Dict[str, StudyRow]:
    """Every row of the study by its key: all ablation rows with the paper configs, the
    full models and the baseline with the shipped recipe."""
    rows = {}
    for recipe in RECIPES:
        for row in ablation_rows.ROWS:
            if recipe == "shipped" and row.name not in SHIPPED_ROWS:
                continue
            config = ablation_rows.PAPER_CONFIGS[row.config] if recipe == "paper" else row.config
            rows[row_key(recipe, row.name)] = StudyRow(row, recipe, config, dict(row.overrides))
    return rows


def seed_scores(row: dict, split: str, key: str) -> Dict[int, float]:
    """seed -> one score of a summarised report row."""
    return {run["seed"]: run["scores"][split][key] for run in row["runs"]}


def comparisons(report_rows: Dict[str, dict], split_keys=(("dev", "ner_f"), ("dev", "re_strict_f"),
                                                             ("test", "ner_f"), ("test", "re_strict_f"))) -> List[dict]:
    """Each measured row against its table's full row and against the baseline of its
    recipe, paired by seed (95% t intervals), beside the paper's own change.

    report_rows (Dict[str, dict]): row key -> summarised row (its "runs" with seeds and scores).
    RETURNS (List[dict]): one entry per measured row, in the study's order.
    """
    found = []
    for key, row in study_rows().items():
        if key not in report_rows:
            continue
        full = row_key(row.recipe, TABLE_FULL_ROWS[row.ablation.table])
        base = row_key(row.recipe, BASE_ROW)
        entry = {"row": key, "name": row.ablation.name, "recipe": row.recipe, "table": row.ablation.table,
                 "paper_delta": row.ablation.paper_delta, "against_full": {}, "against_base": {}}
        for against, other in (("against_full", full), ("against_base", base)):
            if other == key or other not in report_rows:
                continue
            for split, score in split_keys:
                entry[against][f"{split}_{score}"] = paired_difference(
                    seed_scores(report_rows[key], split, score), seed_scores(report_rows[other], split, score))
        found.append(entry)
    return found


def mean_breakdown(runs: List[dict], split: str) -> Optional[Dict[str, Dict[str, dict]]]:
    """Per analysis and interval, the mean, lowest and highest F1 over the runs that
    carry a breakdown of `split`, and the gold count (None when no run has one)."""
    breakdowns = [run["breakdown"][split] for run in runs if split in (run.get("breakdown") or {})]
    if not breakdowns:
        return None
    means: Dict[str, Dict[str, dict]] = {}
    for analysis, intervals in BREAKDOWNS.items():
        means[analysis] = {}
        for name, _, _ in intervals:
            values = [b[analysis][name]["f"] for b in breakdowns]
            means[analysis][name] = {"f": round(sum(values) / len(values), 2), "low": min(values),
                                     "high": max(values), "n_gold": breakdowns[0][analysis][name]["n_gold"],
                                     "runs": len(values)}
    return means


def plot_breakdowns(plt, report_rows: Dict[str, dict], split: str, path) -> bool:
    """Figs. 3-4 of the two-phase paper: NER F1 by entity length and strict RE F1 by entity
    distance, full model against the baseline of each recipe (mean over seeds, bars from the
    lowest to the highest seed). Returns False (and draws nothing) without the rows."""
    pairs = [(recipe, row_key(recipe, "full"), row_key(recipe, BASE_ROW)) for recipe in RECIPES]
    pairs = [(recipe, full, base) for recipe, full, base in pairs
             if all(report_rows.get(k, {}).get("breakdown", {}).get(split) for k in (full, base))]
    if not pairs:
        return False
    fig, axes = plt.subplots(len(pairs), 2, figsize=(10, 3.6 * len(pairs)), squeeze=False)
    titles = {"ner_by_length": "NER F1 by entity length", "re_by_distance": "strict RE F1 by entity distance"}
    for axis_row, (recipe, full, base) in zip(axes, pairs):
        for ax, (analysis, intervals) in zip(axis_row, BREAKDOWNS.items()):
            names = [name for name, _, _ in intervals]
            for offset, (label, key) in zip((-0.2, 0.2), (("full", full), ("base (SpERT)", base))):
                stats = report_rows[key]["breakdown"][split][analysis]
                means = [stats[n]["f"] for n in names]
                errors = [[stats[n]["f"] - stats[n]["low"] for n in names], [stats[n]["high"] - stats[n]["f"] for n in names]]
                ax.bar([i + offset for i in range(len(names))], means, width=0.4, yerr=errors, capsize=3,
                       label=f"{label} ({report_rows[key]['breakdown'][split][analysis][names[0]]['runs']} seeds)")
            gold = report_rows[full]["breakdown"][split][analysis]
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels([f"{n}\n(n={gold[n]['n_gold']})" for n in names])
            ax.set_ylabel("F1 (%)")
            ax.set_title(f"{titles[analysis]} ({split}, {recipe} configs)")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_comparisons(plt, found: List[dict], path, split: str = "dev") -> bool:
    """Each row's change against its table's full row on `split` (mean and 95% interval,
    paired by seed) beside the paper's own change. Returns False without any interval."""
    entries = [e for e in found if e["against_full"].get(f"{split}_ner_f")]
    if not entries:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(entries) + 1.5), sharey=True)
    labels = [f"{e['name']} ({e['recipe']})" for e in entries]
    for ax, (score, title, index) in zip(axes, (("ner_f", "NER F1", 0), ("re_strict_f", "strict RE F1", 1))):
        for i, entry in enumerate(entries):
            diff = entry["against_full"][f"{split}_{score}"]
            ax.errorbar(diff["mean"], i, xerr=[[diff["mean"] - diff["low"]], [diff["high"] - diff["mean"]]],
                        fmt="o", color="tab:blue", capsize=3, label="here (95% interval)" if i == 0 else None)
            if entry["paper_delta"]:
                ax.plot(entry["paper_delta"][index], i, "x", color="tab:red",
                        label="paper" if i == next(j for j, e in enumerate(entries) if e["paper_delta"]) else None)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_title(f"{title}, {split}")
        ax.set_xlabel("F1 points")
        ax.legend(fontsize=8)
    axes[0].set_yticks(range(len(entries)))
    axes[0].set_yticklabels(labels)
    axes[0].invert_yaxis()
    fig.suptitle("Change against the table's full model, paired by seed; the paper's own change "
                 "(Table 7: CoNLL04 dev; SpERT.MT Table 2: SciERC)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
