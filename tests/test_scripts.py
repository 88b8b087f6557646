"""The project scripts: the threshold sweep; the scripts that end with a plot stop at
the start when matplotlib is missing."""
import json
import subprocess
import sys
from pathlib import Path

from spacy.tokens import DocBin

from test_spanjoint_component import make_examples

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
WITHOUT_MATPLOTLIB = (
    "import runpy, sys; sys.modules['matplotlib'] = None; "
    "script = sys.argv[1]; sys.argv = sys.argv[1:]; sys.path.insert(0, str(__import__('pathlib').Path(script).parent)); "
    "runpy.run_path(script, run_name='__main__')"
)


def run_without_matplotlib(script: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", WITHOUT_MATPLOTLIB, str(SCRIPTS / script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_benchmark_stops_before_measuring(tmp_path):
    report = tmp_path / "benchmark.json"
    result = run_without_matplotlib(
        "benchmark.py", str(tmp_path / "no-model"), str(tmp_path / "test.spacy"),
        str(tmp_path / "train.spacy"), str(report),
    )
    assert result.returncode == 1, result.stderr
    assert "needs matplotlib: pip install -e '.[plot]'" in result.stderr
    # it stopped before the first measurement, which would have failed on the missing model
    assert "throughput" not in result.stdout
    assert not report.exists()


def test_ablation_study_stops_before_training(tmp_path):
    corpus = tmp_path / "corpus.spacy"
    corpus.write_bytes(b"")
    runs = tmp_path / "runs"
    result = run_without_matplotlib(
        "ablations.py", str(runs), "--train", str(corpus), "--dev", str(corpus), "--test", str(corpus)
    )
    assert result.returncode == 1, result.stderr
    assert "needs matplotlib: pip install -e '.[plot]'" in result.stderr
    assert not runs.exists()


def test_threshold_sweep_scores_every_pair_and_chooses_on_the_first_corpus(saved_tiny_pipeline, tmp_path):
    nlp, model_dir = saved_tiny_pipeline
    gold = tmp_path / "gold.spacy"
    DocBin(docs=[eg.reference for eg in make_examples(nlp.vocab)], store_user_data=True).to_disk(gold)
    report_path = tmp_path / "sweep.json"
    command = [sys.executable, str(SCRIPTS / "threshold_sweep.py"), str(model_dir), str(report_path),
               f"dev={gold}", f"test={gold}", "--entity", "0.0", "--entity", "1.01",
               "--relation", "0.0", "--relation", "0.5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["trained_with"] == {"entity": 0.0, "relation": 0.0}
    for name in ("dev", "test"):
        rows = report["scores"][name]
        assert [(row["entity"], row["relation"]) for row in rows] == [(0.0, 0.0), (0.0, 0.5), (1.01, 0.0), (1.01, 0.5)]
        # above every probability nothing is predicted; at 0 every span is a candidate
        assert all(row["ner_f"] == 0.0 and row["re_strict_f"] == 0.0 for row in rows if row["entity"] > 1)
        assert all(row["ner_f"] > 0.0 for row in rows if row["entity"] == 0.0)
    assert report["chosen_on"] == "dev"
    assert report["chosen"]["entity"] == 0.0


def test_threshold_sweep_names_a_missing_corpus(saved_tiny_pipeline, tmp_path):
    _, model_dir = saved_tiny_pipeline
    command = [sys.executable, str(SCRIPTS / "threshold_sweep.py"), str(model_dir), str(tmp_path / "sweep.json"),
               "dev=missing.spacy"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2
    assert "missing.spacy" in result.stderr
    assert not (tmp_path / "sweep.json").exists()


def test_benchmark_times_the_pipeline_at_each_batch_size(saved_tiny_pipeline, tmp_path):
    nlp, model_dir = saved_tiny_pipeline
    gold = tmp_path / "gold.spacy"
    references = [eg.reference for eg in make_examples(nlp.vocab)]
    n_docs = len(references)
    DocBin(docs=references, store_user_data=True).to_disk(gold)
    command = [sys.executable, str(SCRIPTS / "benchmark.py"), str(model_dir), str(gold), str(gold),
               str(tmp_path / "unused.json"), "--step", "batch-sizes", "--step-arg", "1,2,1000:2:0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sentences"] == n_docs
    assert list(report["by_batch_size"]) == ["1", "2", "1000"]
    for row in report["by_batch_size"].values():
        assert len(row["seconds_all_runs"]) == 2
        assert row["sentences_per_second"] > 0


def test_benchmark_throughput_compares_built_and_factored_span_representations(saved_tiny_pipeline, tmp_path):
    nlp, model_dir = saved_tiny_pipeline
    gold = tmp_path / "gold.spacy"
    references = [eg.reference for eg in make_examples(nlp.vocab)]
    DocBin(docs=references, store_user_data=True).to_disk(gold)
    command = [sys.executable, str(SCRIPTS / "benchmark.py"), str(model_dir), str(gold), str(gold),
               str(tmp_path / "unused.json"), "--batch-size", "2", "--step", "throughput", "--step-arg", "2:0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sentences"] == len(references)
    for key in ("transformer_alone", "full_pipeline", "full_pipeline_built_span_representations"):
        assert len(report[key]["seconds_all_runs"]) == 2
        assert report[key]["sentences_per_second"] > 0
    assert report["ratio_full_to_transformer_built_span_representations"] > 0
    assert report["docs_predicted_differently_with_built_span_representations"] == 0


def run_file(row: str, seed: int, ner: float, re: float) -> dict:
    scores = {"ner_f": ner, "re_strict_f": re, "re_strict_macro_f": re - 1, "re_boundaries_f": re + 1}
    return {"row": row, "seed": seed, "config": f"configs/{row}.cfg", "overrides": {"a.b": "1"}, "steps": 10,
            "train_seconds": 12.0, "threads": 1, "machine": {"cpu": "test CPU"},
            "scores": {"dev": scores, "test": scores}}


def test_study_report_summarises_the_run_files_by_row(tmp_path):
    runs = tmp_path / "spert_baseline" / "runs"
    runs.mkdir(parents=True)
    for row, seed, ner, re in [("paper", 0, 84.0, 60.0), ("paper", 1, 86.0, 62.0), ("shipped", 0, 86.5, 66.0)]:
        (runs / f"{row}_seed{seed}.json").write_text(json.dumps(run_file(row, seed, ner, re)))
    result = subprocess.run([sys.executable, str(SCRIPTS / "study_report.py"), "spert_baseline", "--reports", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "spert_baseline.json").read_text())
    assert report["reference"]["test"]["ner_f"] == 84.52
    paper = report["rows"]["paper"]
    assert paper["seeds"] == [0, 1]
    assert paper["summary"]["test"]["ner_f"] == {"mean": 85.0, "std": 1.41, "n": 2}
    assert report["rows"]["shipped"]["summary"]["test"]["re_strict_f"]["mean"] == 66.0
    table = (tmp_path / "spert_baseline.md").read_text()
    assert "| paper | `configs/paper.cfg` | `a.b=1` | 0, 1 | 85.00 ± 1.41 | 61.00 ± 1.41 |" in table


def test_study_refuses_an_unknown_study_or_row(tmp_path):
    corpora = []
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.spacy").write_bytes(b"")
        corpora += [f"--{split}", str(tmp_path / f"{split}.spacy")]
    for args, message in ((["nope"], "unknown study"), (["spert_baseline", "--rows", "nope"], "unknown rows")):
        result = subprocess.run([sys.executable, str(SCRIPTS / "study.py"), *args, *corpora], capture_output=True,
                                text=True, timeout=120, cwd=tmp_path)
        assert result.returncode != 0 and message in result.stderr + result.stdout


def test_profile_shares_sort_samples_into_the_first_part_their_stack_names():
    sys.path.insert(0, str(SCRIPTS))
    from profile_training import shares

    loop = "main (spacy/training/loop.py:1);train_while_improving (spacy/training/loop.py:2)"
    raw = [
        f"{loop};BoundedTransformerModel.finish_update (encoding.py:3);Optimizer._adam (thinc/optimizers.py:4) 6",
        f"{loop};Transformer.update.<locals>.backprop (x.py:1);bounded_forward.<locals>.backprop (encoding.py:9) 3",
        f"{loop};bounded_forward (encoding.py:1);huggingface_tokenize (t.py:2) 1",
        "main (spacy/cli/train.py:1);init_nlp (spacy/training/initialize.py:3) 50",  # outside the loop
    ]
    parts = shares(raw)
    assert parts == {"optimizer": {"samples": 6, "share": 0.6}, "encoder backward": {"samples": 3, "share": 0.3},
                     "word-piece tokenization": {"samples": 1, "share": 0.1}}

def test_demo_prints_the_test_scores_and_each_sentence_with_its_entities(saved_tiny_pipeline, tmp_path):
    _, model_dir = saved_tiny_pipeline
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"spans_entities_f": 0.5, "relations_f": 0.25}))
    command = [sys.executable, str(SCRIPTS / "demo.py"), str(model_dir), "--scores", str(metrics),
               "--text", "Mary Smith works for Acme Corp .", "--text", "Boston is in Massachusetts ."]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("test NER F1 50.00, strict RE F1 25.00")
    assert "Mary Smith works for Acme Corp ." in result.stdout
    assert "Boston is in Massachusetts ." in result.stdout


def test_scripts_import_the_package_and_never_each_other():
    import ast

    scripts = Path(__file__).resolve().parents[1] / "scripts"
    names = {path.stem for path in scripts.glob("*.py")}
    found = {}
    for path in scripts.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found.update({(path.name, m): True for m in modules if m.split(".")[0] in names})
    assert found == {}


def test_the_pipeline_never_imports_the_analysis_tools():
    import ast

    package = Path(__file__).resolve().parents[1] / "spacy_spanjoint"
    offenders = []
    for path in package.rglob("*.py"):
        if "analysis" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and "analysis" in node.module.split("."):
                offenders.append(str(path.relative_to(package)))
    assert offenders == []
