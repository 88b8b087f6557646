"""A tiny pipeline that predicts entities and relations on any text, for the
app tests (packaging, prediction export): the tiny random encoder, a few
updates, and thresholds of 0 so that every window gets entities and relations."""
from pathlib import Path
from typing import Optional

import spacy
from thinc.api import Adam, Optimizer

from test_spanjoint_component import make_examples, make_nlp

# Flat entities keep the output small; the cap bounds the pairs per window. Spans of at
# most two tokens leave every window of three or more tokens at least two flat entities,
# so it has pairs, whatever the few updates taught the model.
PREDICT_EVERYTHING = {
    "entity_threshold": 0.0,
    "relation_threshold": 0.0,
    "flat_entities": True,
    "max_entities_per_window": 3,
    "max_span_width": 2,
}


def build_tiny_pipeline(encoder_path: Path, steps: int = 2, optimizer: Optional[Optimizer] = None,
                        **model_overrides) -> spacy.Language:
    """The configs/conll04.cfg pipeline on the tiny encoder, trained for a few steps.

    encoder_path (Path): Folder of the tiny encoder (the `tiny_encoder_path` fixture).
    steps (int): Number of updates.
    optimizer (Optional[Optimizer]): What updates it (None: Adam at 0.001).
    model_overrides: Settings of `[components.spanjoint.model]` to change.
    RETURNS (Language): The pipeline (transformer, spanjoint; no sentence segmenter).
    """
    nlp = make_nlp(encoder_path, **{**PREDICT_EVERYTHING, **model_overrides})
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    optimizer = optimizer or Adam(0.001)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, losses={})
    return nlp
