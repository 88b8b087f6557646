"""An untrained pipeline of the real size, for speed benchmarks only: the
configs/conll04.cfg architecture on the packaged MiniLM-L6 encoder, initialized
on the four test sentences of tests/ and never trained. Its predictions mean
nothing; its encoder, memory and load time are those of a trained CoNLL04 model.
Untrained, it would keep dozens of entities a sentence (and thousands of
pairs), so at most `ENTITIES_PER_WINDOW` are kept: about what a trained model
finds in a CoNLL04 sentence.

    python scripts/untrained_pipeline.py /tmp/minilm_untrained
"""
import sys
import time
from pathlib import Path

import typer

TESTS = Path(__file__).resolve().parent.parent / "tests"
ENTITIES_PER_WINDOW = 4


def main(output: Path = typer.Argument(..., help="Folder for the pipeline", file_okay=False)) -> None:
    sys.path.insert(0, str(TESTS))
    from test_spanjoint_component import make_examples, make_nlp
    from tiny_encoder import packaged_tokenizer_dir

    start = time.perf_counter()
    nlp = make_nlp(packaged_tokenizer_dir(), max_entities_per_window=ENTITIES_PER_WINDOW)
    nlp.initialize(lambda: make_examples(nlp.vocab))
    nlp.add_pipe("sentencizer", first=True)
    nlp.to_disk(output)
    typer.echo(f"Saved an untrained MiniLM pipeline to {output} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    typer.run(main)
