"""Score a trained pipeline at other prediction thresholds, without retraining.

The phase-one thresholds (`entity_threshold`, `relation_threshold` in the
config) only act at prediction, so every pair of them can be scored on the
same weights. Each corpus is predicted from its gold words (what
`spacy evaluate --gold-preproc` scores). The JSON lists NER F1 and strict RE F1
for every pair on every corpus and, chosen on the first corpus (dev) by the
training score (the mean of the two F1), the best pair.

    python scripts/threshold_sweep.py MODEL_DIR OUTPUT.json dev=corpus/conll04_dev.spacy test=corpus/conll04_test.spacy
"""
import json
from pathlib import Path
from typing import List

import typer

from spacy_spanjoint.analysis.runs import gold_words


def main(
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="JSON report"),
    corpora: List[str] = typer.Argument(..., help="NAME=PATH.spacy; the first one chooses the thresholds"),
    entity_thresholds: List[float] = typer.Option([0.4, 0.5, 0.6], "--entity"),
    relation_thresholds: List[float] = typer.Option([0.3, 0.4, 0.5, 0.6, 0.7], "--relation"),
):
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    named = [item.split("=", 1) for item in corpora]
    bad = [item for item, pair in zip(corpora, named) if len(pair) != 2 or not Path(pair[1]).exists()]
    if bad:
        raise typer.BadParameter(f"corpora must be NAME=PATH with an existing PATH, got {bad}")
    nlp = spacy.load(model_dir)
    pipe = nlp.get_pipe("spanjoint")
    saved = pipe.decoding_in_effect
    report = {"model": str(model_dir), "trained_with": {"entity": saved["entity_threshold"],
                                                         "relation": saved["relation_threshold"]}, "scores": {}}
    for name, path in named:
        gold = list(DocBin().from_disk(path).get_docs(nlp.vocab))
        rows = report["scores"][name] = []
        for entity in entity_thresholds:
            for relation in relation_thresholds:
                pipe.set_decoding(entity_threshold=entity, relation_threshold=relation)
                scores = nlp.evaluate([Example(doc, ref) for doc, ref in zip(gold_words(nlp, gold), gold)])
                rows.append({"entity": entity, "relation": relation,
                             "ner_f": round(100 * scores["spans_entities_f"], 2),
                             "re_strict_f": round(100 * scores["relations_f"], 2)})
                typer.echo(f"{name} entity {entity} relation {relation}: {rows[-1]['ner_f']} / {rows[-1]['re_strict_f']}")
    first = report["scores"][named[0][0]]
    report["chosen_on"] = named[0][0]
    report["chosen"] = max(first, key=lambda row: row["ner_f"] + row["re_strict_f"])
    output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
