"""Small saved pipelines kept as test fixtures, so that a change to the package
can be checked against pipelines saved by the code before it
(`test_saved_pipelines.py`).

Each fixture is a whole pipeline folder (sentencizer, transformer, spanjoint)
on a one-layer random BERT with a WordPiece vocabulary of a few hundred
pieces, trained until it predicts relations, and `expected.json`: what it predicted for
`TEXTS` when it was saved. Writing a fixture is a one-off:

    python tests/saved_pipelines.py tests/fixtures/saved_pipelines

It refuses a folder that exists, since the point of a fixture is that later
code does not rewrite it.
"""
import json
import string
import sys
from pathlib import Path
from typing import Dict, List

TEXTS = [
    "John Smith lives in New York.",
    "Mary works for Acme Corp in Paris. Anna married Tom.",
    "The University of Oslo is in Norway.",
    "",
    "Smith",
]
# name -> config the fixture is trained from, relative to the repository
CONFIGS = {
    "conll04": "configs/conll04.cfg",
    "spertmt": "configs/paper/conll04_spertmt.cfg",
    "spert": "configs/paper/conll04_spert.cfg",
}
MAX_UPDATES = 300
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_vocab(texts: List[str]) -> List[str]:
    """Special tokens, every lowercased word of `texts`, and single characters
    with and without the continuation prefix, so that any ASCII text tokenizes."""
    words = sorted({word.strip(string.punctuation).lower() for text in texts for word in text.split()} - {""})
    characters = list(string.ascii_lowercase + string.digits + string.punctuation)
    return SPECIAL_TOKENS + words + characters + ["##" + c for c in string.ascii_lowercase + string.digits]


def build_small_encoder(path: Path, vocab: List[str], seed: int = 0) -> Path:
    """A one-layer, 32-wide random BERT with an uncased WordPiece tokenizer over `vocab`."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(str(path))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256)
    BertModel(config).save_pretrained(str(path))
    return path


def predictions(nlp, texts: List[str]) -> List[Dict]:
    """Entities (start, end, label, score) and relations (head, tail, label, score) per text."""
    out = []
    for doc in nlp.pipe(texts):
        group = doc.spans["entities"]
        out.append({
            "text": doc.text,
            "entities": [[s.start, s.end, s.label_, score] for s, score in zip(group, group.attrs["scores"])],
            "relations": [[list(r.head), list(r.tail), r.label, r.score] for r in doc._.relations],
        })
    return out


def write_fixture(folder: Path, name: str, config_path: Path, encoder_path: Path) -> None:
    """Train the `config_path` pipeline on the small encoder and the component
    tests' corpus until it predicts relations; save it with its predictions under `folder/name`."""
    from spacy.util import load_config, load_model_from_config
    from thinc.api import Adam, fix_random_seed

    from spacy_spanjoint.layers.blocks import set_model_setting
    from test_spanjoint_component import make_examples
    from tiny_pipeline import PREDICT_EVERYTHING

    config = load_config(config_path)
    config["components"]["transformer"]["model"]["name"] = str(encoder_path)
    config["components"]["transformer"]["model"]["predict_precision"] = "float32"
    for setting, value in PREDICT_EVERYTHING.items():
        set_model_setting(config["components"]["spanjoint"], setting, value)
    fix_random_seed(0)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.001)
    nlp.add_pipe("sentencizer", first=True)
    # update until the pipeline predicts relations in most texts, so the fixture checks them
    for _ in range(MAX_UPDATES):
        nlp.update(examples, sgd=optimizer, losses={})
        if sum(bool(doc["relations"]) for doc in predictions(nlp, TEXTS)) >= 3:
            break
    else:
        raise RuntimeError(f"{name}: no relations after {MAX_UPDATES} updates")
    nlp.to_disk(folder / name)
    (folder / name / "expected.json").write_text(json.dumps(predictions(nlp, TEXTS), indent=1) + "\n")


def main(folder: Path) -> None:
    if folder.exists():
        raise SystemExit(f"{folder} exists; a saved-pipeline fixture is written once and never rewritten")
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(Path(__file__).parent))
    from test_spanjoint_component import TRAIN_DATA

    texts = TEXTS + [" ".join(words) for words, _, _ in TRAIN_DATA]
    scratch = folder.parent / (folder.name + ".encoder")
    encoder = build_small_encoder(scratch, wordpiece_vocab(texts))
    folder.mkdir(parents=True)
    for name, config in CONFIGS.items():
        write_fixture(folder, name, root / config, encoder)
    for file in scratch.iterdir():
        file.unlink()
    scratch.rmdir()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
