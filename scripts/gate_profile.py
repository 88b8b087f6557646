"""Gate weights (Eq. 5) of a trained pipeline on a corpus, written as JSON.

    python scripts/gate_profile.py MODEL CORPUS OUTPUT_JSON
"""
import json
from pathlib import Path

import spacy
import typer
from spacy.tokens import DocBin

from spacy_spanjoint.analysis.runs import gold_words
from spacy_spanjoint.analysis.gate_profile import gate_profile


def main(model: Path = typer.Argument(..., exists=True), corpus: Path = typer.Argument(..., exists=True),
         output: Path = typer.Argument(...)):
    nlp = spacy.load(model)
    docs = gold_words(nlp, list(DocBin().from_disk(corpus).get_docs(nlp.vocab)))
    profile = {"model": str(model), "corpus": str(corpus), "sentences": len(docs), "gates": gate_profile(nlp, docs)}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(profile, indent=2) + "\n")
    print(json.dumps(profile, indent=2))


if __name__ == "__main__":
    typer.run(main)
