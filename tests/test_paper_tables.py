"""The papers' ablation tables at the full budget: the study's rows, their comparisons
with the full model and the baseline, and the F1 breakdown each run keeps."""
import inspect
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from spacy.tokens import DocBin
from spacy.util import load_config, registry

from spacy_spanjoint.analysis import ablation_rows, paper_tables
from spacy_spanjoint.analysis.breakdown import DISTANCE_INTERVALS, LENGTH_INTERVALS
from spacy_spanjoint.analysis.runs import config_digest, score_model

from test_spanjoint_component import make_examples

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def studies() -> dict:
    return runpy.run_path(str(SCRIPTS / "study.py"), run_name="study")["STUDIES"]


def has_setting(config: dict, dotted: str) -> bool:
    """Whether the config has the setting, or its section's registered function takes it
    (spaCy adds a missing setting to an existing section)."""
    *sections, name = dotted.split(".")
    node = config
    for part in sections:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    if name in node:
        return True
    function = [(key[1:], value) for key, value in node.items() if key.startswith("@")]
    return bool(function) and name in inspect.signature(registry.get(*function[0])).parameters


@pytest.mark.parametrize("study", ["spert_baseline", "fast_training", "paper_tables"])
def test_every_study_override_names_a_setting_its_config_has(study):
    # spaCy refuses an override of a missing section or argument only when the run starts
    for name, row in studies()[study].items():
        config = load_config(ROOT / row.config, interpolate=False)
        missing = [key for key in row.overrides if not has_setting(config, key)]
        assert not missing, f"{study} row {name}: {row.config} has no {missing}"


def test_paper_rows_train_the_paper_configs_and_shipped_rows_the_shipped_recipe():
    rows = paper_tables.study_rows()
    assert len([key for key in rows if key.startswith("paper_")]) == len(ablation_rows.ROWS)
    assert sorted(key for key in rows if key.startswith("shipped_")) == [
        "shipped_base_spert", "shipped_combined", "shipped_full", "shipped_spertmt"]
    assert rows["paper_full"].config == "configs/paper/conll04_two_phase.cfg"
    assert rows["paper_base_spert"].config == "configs/paper/conll04_spert.cfg"
    assert rows["shipped_full"].config == "configs/conll04.cfg"
    # the same switches under both recipes
    assert rows["paper_spertmt_no_eil"].overrides == ablation_rows.ROWS_BY_NAME["SpERT.MT -EIL"].overrides
    # section 4.5 of the two-phase paper: concatenation instead of every gate, spans and relations
    assert set(rows["paper_wo_gated"].overrides.values()) == {"false"}
    assert {key.rsplit(".", 2)[-2] for key in rows["paper_wo_gated"].overrides} == {
        "span_representation", "relation_representation"}
    assert ablation_rows.ROWS_BY_NAME["base (SpERT)"].paper_delta == (-2.8, -4.0)


def summarised_row(scores_by_seed: dict) -> dict:
    return {"runs": [{"seed": seed, "scores": {"dev": {"ner_f": ner, "re_strict_f": re},
                                                "test": {"ner_f": ner, "re_strict_f": re}}}
                     for seed, (ner, re) in scores_by_seed.items()]}


def test_comparisons_pair_each_row_by_seed_with_its_full_model_and_the_baseline():
    rows = {
        "paper_full": summarised_row({0: (88.0, 70.0), 1: (87.0, 69.0), 2: (89.0, 71.0)}),
        "paper_base_spert": summarised_row({0: (86.0, 66.0), 1: (85.0, 66.0), 2: (86.0, 67.0)}),
        # seed 3 has no partner in the full row: only the shared seeds count
        "paper_wo_gated": summarised_row({0: (87.0, 69.0), 1: (87.0, 68.0), 2: (88.0, 70.0), 3: (10.0, 10.0)}),
    }
    found = {entry["row"]: entry for entry in paper_tables.comparisons(rows)}
    assert set(found) == set(rows)
    gated = found["paper_wo_gated"]
    assert gated["paper_delta"] == (-0.6, -0.9)
    assert gated["against_full"]["dev_ner_f"]["mean"] == pytest.approx(-2 / 3, abs=0.01)
    assert gated["against_full"]["dev_re_strict_f"]["n"] == 3
    assert gated["against_base"]["test_ner_f"]["mean"] == pytest.approx(5 / 3, abs=0.01)
    # a row is not compared with itself
    assert found["paper_full"]["against_full"] == {}
    assert found["paper_base_spert"]["against_base"] == {}
    assert found["paper_full"]["against_base"]["dev_re_strict_f"]["mean"] == pytest.approx(11 / 3, abs=0.01)


def breakdown(shift: float) -> dict:
    return {"ner_by_length": {name: {"p": 80.0, "r": 80.0, "f": 80.0 + shift, "n_gold": 10}
                              for name, _, _ in LENGTH_INTERVALS},
            "re_by_distance": {name: {"p": 60.0, "r": 60.0, "f": 60.0 + shift, "n_gold": 5}
                               for name, _, _ in DISTANCE_INTERVALS}}


def run_file(row: str, seed: int, ner: float, re: float, shift: float) -> dict:
    scores = {"ner_f": ner, "re_strict_f": re, "re_strict_macro_f": re - 1, "re_boundaries_f": re + 1}
    return {"row": row, "seed": seed, "config": "configs/paper/conll04_spert.cfg", "overrides": {}, "steps": 10,
            "train_seconds": 12.0, "threads": 1, "machine": {"cpu": "test CPU"},
            "scores": {"dev": scores, "test": scores}, "breakdown": {"dev": breakdown(shift), "test": breakdown(shift)}}


def test_study_report_writes_the_comparisons_and_the_breakdown_of_the_paper_tables(tmp_path):
    runs = tmp_path / "paper_tables" / "runs"
    runs.mkdir(parents=True)
    for row, values in {"paper_full": [(88.0, 70.0, 2.0), (87.0, 69.0, 4.0)],
                        "paper_base_spert": [(86.0, 66.0, 0.0), (85.0, 66.0, 0.0)]}.items():
        for seed, (ner, re, shift) in enumerate(values):
            (runs / f"{row}_seed{seed}.json").write_text(json.dumps(run_file(row, seed, ner, re, shift)))
    result = subprocess.run([sys.executable, str(SCRIPTS / "study_report.py"), "paper_tables", "--reports", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    report = json.loads((tmp_path / "paper_tables.json").read_text())
    full = report["rows"]["paper_full"]
    assert full["breakdown"]["dev"]["ner_by_length"]["1-2"] == {"f": 83.0, "low": 82.0, "high": 84.0, "n_gold": 10,
                                                               "runs": 2}
    (entry,) = [e for e in report["comparisons"] if e["row"] == "paper_full"]
    assert entry["against_base"]["test_ner_f"]["mean"] == 2.0
    table = (tmp_path / "paper_tables.md").read_text()
    assert "| base (SpERT) | paper |" in table and "-2.80 / -4.00" in table
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert result.returncode == 1 and "needs matplotlib" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "paper_tables.png").stat().st_size > 0
        assert (tmp_path / "paper_tables_breakdown.png").stat().st_size > 0


def test_a_scored_run_keeps_f1_by_entity_length_and_distance(saved_tiny_pipeline, tmp_path):
    nlp, model_dir = saved_tiny_pipeline
    gold = tmp_path / "gold.spacy"
    references = [eg.reference for eg in make_examples(nlp.vocab)]
    DocBin(docs=references, store_user_data=True).to_disk(gold)
    found = score_model(model_dir, {"dev": gold}, tmp_path, gpu_id=-1)
    assert set(found["scores"]["dev"]) >= {"ner_f", "re_strict_f", "re_strict_macro_f", "re_boundaries_f"}
    by_length = found["breakdown"]["dev"]["ner_by_length"]
    assert list(by_length) == [name for name, _, _ in LENGTH_INTERVALS]
    n_gold = sum(len([s for s in doc.spans["entities"] if len(s) <= 10]) for doc in references)
    assert sum(stats["n_gold"] for stats in by_length.values()) == n_gold
    assert all(0.0 <= stats["f"] <= 100.0 for stats in by_length.values())
    by_distance = found["breakdown"]["dev"]["re_by_distance"]
    assert sum(stats["n_gold"] for stats in by_distance.values()) == sum(len(doc._.relations) for doc in references)
    assert (tmp_path / "dev_predicted.spacy").exists()


def test_a_run_another_study_made_is_copied_not_trained_again(tmp_path):
    from spacy_spanjoint.analysis.runs import Run

    study = runpy.run_path(str(SCRIPTS / "study.py"), run_name="study")
    config = tmp_path / "conll04.cfg"
    config.write_text((ROOT / "configs" / "conll04.cfg").read_text())
    earlier = run_file("shipped", 1, 86.0, 66.0, 0.0)
    earlier.update(config=str(config), config_sha256=config_digest(config), train_corpus="corpus/train.spacy",
                   steps=9220)
    (tmp_path / "fast_training" / "runs").mkdir(parents=True)
    (tmp_path / "fast_training" / "runs" / "shipped_seed1.json").write_text(json.dumps(earlier))
    results = tmp_path / "paper_tables" / "runs"
    budget = {"training.max_steps": "9220"}

    def run(seed, overrides):
        return Run(tmp_path / "training" / "shipped_full" / f"seed{seed}", config, seed,
                   overrides, Path("corpus/train.spacy"), {})

    copied = study["run_and_record"](results, run(1, {}), budget, 1, -1)
    assert copied["row"] == "shipped_full" and copied["scores"] == earlier["scores"]
    assert copied["copied_from"].endswith("fast_training/runs/shipped_seed1.json")
    assert json.loads((results / "shipped_full_seed1.json").read_text()) == copied
    assert not (tmp_path / "training").exists()  # nothing trained
    # another seed, other overrides or another budget is a run of its own
    assert study["same_run"](results, run(2, {}), 9220) is None
    assert study["same_run"](results, run(1, {"a.b": "1"}), 9220) is None
    assert study["same_run"](results, run(1, {}), 920) is None
    # nor is a run of the config before its text changed
    config.write_text(config.read_text() + "\n# changed\n")
    (results / "shipped_full_seed1.json").unlink()
    assert study["same_run"](results, run(1, {}), 9220) is None


def test_the_readme_results_table_is_the_one_the_committed_reports_give():
    result = subprocess.run([sys.executable, str(SCRIPTS / "results_table.py"), "--check",
                             "--readme", str(ROOT / "README.md"), "--reports", str(ROOT / "reports")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def summary_of(seeds, ner, re):
    stats = lambda mean: {"mean": mean, "std": 0.5, "n": len(seeds)}  # noqa: E731
    return {"seeds": seeds, "summary": {"test": {"ner_f": stats(ner), "re_strict_f": stats(re)}}}


def test_the_results_table_takes_each_model_from_the_first_report_that_measured_it(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "spert_baseline.json").write_text(json.dumps({
        "reference": {"source": "the reference", "test": {"ner_f": 84.52, "re_strict_f": 60.49}},
        "rows": {"paper": summary_of([0, 1, 2], 82.0, 58.0), "shipped": summary_of([0], 86.0, 66.0)}}))
    (reports / "paper_tables.json").write_text(json.dumps({"rows": {"shipped_base_spert": summary_of([0, 1], 86.5, 66.5),
                                                                    "paper_full": summary_of([0, 1, 2], 84.0, 61.0)}}))
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\nbefore\n\n<!-- results-table:start (generated by scripts/results_table.py from reports/; "
                      "do not edit) -->\n| old |\n<!-- results-table:end -->\n\nafter\n")
    command = [sys.executable, str(SCRIPTS / "results_table.py"), "--readme", str(readme), "--reports", str(reports)]
    assert subprocess.run(command + ["--check"], capture_output=True, text=True).returncode == 1
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n\n") and text.endswith("\n\nafter\n") and "| old |" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    # paper_tables first for the shipped SpERT; spert_baseline's paper row for SpERT as published
    assert [row.split(" | ")[0] for row in rows] == [
        "| SpERT, shipped recipe", "| two-phase as published", "| SpERT as published", "| original SpERT code"]
    assert "86.50 ± 0.50" in rows[0] and "[paper_tables](reports/paper_tables.md)" in rows[0]
    assert "82.00 ± 0.50" in rows[2] and "84.52 | 60.49" in rows[3]
    assert subprocess.run(command + ["--check"], capture_output=True, text=True).returncode == 0


def test_the_results_table_needs_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    result = subprocess.run([sys.executable, str(SCRIPTS / "results_table.py"), "--readme", str(readme),
                             "--reports", str(ROOT / "reports")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "results-table:start" in result.stderr
    assert readme.read_text() == "# no markers\n"
