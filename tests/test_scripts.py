"""The scripts that end with a plot stop at the start when matplotlib is missing."""
import subprocess
import sys
from pathlib import Path

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
