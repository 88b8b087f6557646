"""spacy-spanjoint: joint entity and relation extraction for spaCy.

Importing the package registers the `doc._.relations` and `doc._.orig_id`
extensions. The pipeline component, architectures and scorer are found by
spaCy through the package's entry points, so `spacy.load` of a saved pipeline
needs no import.
"""
from .quantization import quantize_encoder
from .relations import Relation, register_extensions, triples
from .visualize import render, serve

__version__ = "0.1.0"

register_extensions()

__all__ = ["Relation", "quantize_encoder", "register_extensions", "render", "serve", "triples", "__version__"]
