"""The HTTP service (the `serve` extra: `pip install "spacy-spanjoint[serve]"`).

`app.py` builds the FastAPI app, `batcher.py` runs the pipeline off the event
loop. `python -m spacy_spanjoint serve-api MODEL` serves it with uvicorn.
See docs/service.md.
"""
from .app import Limits, create_app, pipeline_meta

__all__ = ["Limits", "create_app", "pipeline_meta"]
