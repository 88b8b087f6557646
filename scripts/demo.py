"""Print the entities and triples a pipeline finds in a few sentences, and its test scores.

The last step of the `demo` workflow; works with any pipeline that has a
`spanjoint` component.

    python scripts/demo.py MODEL [--scores METRICS.json] [--text "A sentence." ...]
"""
import json
from pathlib import Path
from typing import List, Optional

import spacy
import typer

import spacy_spanjoint
from spacy_spanjoint.data.predict import spans_key_of

SENTENCES = [
    "John Wilkes Booth, who assassinated President Lincoln, was an actor.",
    "Mary Smith works for Acme Corp in Paris.",
    "Boston is a city in Massachusetts.",
    "Bill Gates, the chairman of Microsoft, lives in Seattle.",
]


def main(
    model: str = typer.Argument(..., help="Pipeline folder or installed package"),
    scores: Optional[Path] = typer.Option(None, "--scores", exists=True, dir_okay=False,
                                          help="Metrics JSON written by `spacy evaluate`"),
    text: Optional[List[str]] = typer.Option(None, "--text", help="A sentence to read (repeatable)"),
):
    nlp = spacy.load(model)
    key = spans_key_of(nlp)
    if scores is not None:
        metrics = json.loads(scores.read_text())
        print(f"test NER F1 {100 * metrics[f'spans_{key}_f']:.2f}, "
              f"strict RE F1 {100 * metrics['relations_f']:.2f} ({scores})\n")
    for doc in nlp.pipe(text or SENTENCES):
        print(doc.text)
        entities = doc.spans[key]
        for span, score in zip(entities, entities.attrs["scores"]):
            print(f"  entity   {span.text} [{span.label_}] {score:.2f}")
        for head, label, tail, score in spacy_spanjoint.triples(doc):
            print(f"  relation ({head.text}, {label}, {tail.text}) {score:.2f}")
        print()


if __name__ == "__main__":
    typer.run(main)
