"""spacy-spanjoint: joint entity and relation extraction for spaCy.

Importing the package registers the `doc._.relations` and `doc._.orig_id`
extensions. The pipeline component, architectures and scorer are found by
spaCy through the package's entry points, so `spacy.load` of a saved pipeline
needs no import.
"""
from .data.visualize import render, serve
from .encoder.quantization import quantize_encoder
from .pipeline.relations import Relation, concat_docs, register_extensions, span_as_doc, triples

__version__ = "0.1.0"

register_extensions()

__all__ = [
    "Relation",
    "concat_docs",
    "quantize_encoder",
    "register_extensions",
    "render",
    "serve",
    "span_as_doc",
    "triples",
    "__version__",
]
