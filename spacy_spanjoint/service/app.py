"""The HTTP service: a FastAPI app around one pipeline, served by uvicorn.

- `POST /extract` with `{"text": ...}` answers one document of the JSONL
  schema of `predict.py`; with `{"texts": [...]}` it answers `{"documents": [...]}`.
- `GET /health` and `GET /meta` (pipeline name, version, labels, thresholds, limits).
- OpenAPI docs at `/docs` and `/openapi.json`, as FastAPI gives them.

Request bodies are untrusted input. The app turns every bad request into a
4xx answer before the pipeline sees it: 413 for a body over `max_body_bytes`
(FastAPI's own body limit, counted as the bytes arrive), 400 for malformed
JSON, 415 for a body that is not JSON, 422 for wrong types, unknown fields,
empty input, too many texts or too long a text, and 503 when more texts wait
than `max_queued_texts`. The pipeline runs on its own thread (`batcher.py`),
so slow or many clients never hold up the event loop.
"""
import json
import os
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, AsyncIterator, Dict, List, Optional, Union

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ..data.predict import doc_to_record, spans_key_of
from ..pipeline.component import SpanJoint
from ..pipeline.relations import register_extensions
from .batcher import Batcher, Overloaded

# `serve-api` hands the model and limits to each uvicorn worker process through these.
MODEL_ENV = "SPANJOINT_SERVE_MODEL"
LIMITS_ENV = "SPANJOINT_SERVE_LIMITS"


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the service.

    max_body_bytes (int): Bytes of a request body.
    max_texts (int): Texts of one request.
    max_chars (int): Characters of one text.
    max_batch (int): Texts the pipeline annotates at once (across requests).
    max_queued_texts (int): Texts waiting or in work; beyond, requests get 503.
    threads (Optional[int]): torch threads of the pipeline (None: torch's default).
    """

    max_body_bytes: int = 1_000_000
    max_texts: int = 64
    max_chars: int = 20_000
    max_batch: int = 64
    max_queued_texts: int = 1024
    threads: Optional[int] = None


class ExtractRequest(BaseModel):
    """One text, or a list of texts."""

    model_config = ConfigDict(extra="forbid")
    text: Optional[StrictStr] = Field(None, description="One document", examples=["Anna married Tom in Paris."])
    texts: Optional[List[StrictStr]] = Field(None, description="Several documents, answered in order")


class Entity(BaseModel):
    start: int = Field(description="Character offset of the first character")
    end: int = Field(description="Character offset after the last character")
    text: str
    label: str
    score: float


class RelationOut(BaseModel):
    head: int = Field(description="Index of the head in `entities`")
    tail: int = Field(description="Index of the tail in `entities`")
    label: str
    score: float


class Document(BaseModel):
    """A document of the JSONL output of `predict`."""

    text: str
    entities: List[Entity]
    relations: List[RelationOut]


class Documents(BaseModel):
    documents: List[Document]


def pipeline_meta(nlp: Any) -> Dict[str, Any]:
    """Name, version, labels and decoding thresholds of a pipeline (for `GET /meta`)."""
    meta: Dict[str, Any] = {
        "name": f"{nlp.meta.get('lang', '')}_{nlp.meta.get('name', '')}",
        "version": nlp.meta.get("version"),
        "spacy_version": nlp.meta.get("spacy_version"),
        "pipeline": list(nlp.pipe_names),
        "spans_key": spans_key_of(nlp),
    }
    for name, pipe in nlp.pipeline:
        if isinstance(pipe, SpanJoint):
            decoding = pipe.decoding_in_effect
            meta["entity_labels"] = pipe.entity_labels
            meta["relation_labels"] = pipe.relation_labels
            meta["thresholds"] = {
                key: decoding[key] for key in ("entity_threshold", "relation_threshold", "class_threshold") if key in decoding
            }
    return meta


def create_app(model: str, limits: Limits = Limits()) -> FastAPI:
    """The service for one pipeline, which loads when the app starts (once per worker).

    model (str): A pipeline folder or an installed pipeline package.
    limits (Limits): What a request may ask.
    RETURNS (FastAPI): The app.
    """
    state: Dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import spacy
        import torch

        if limits.threads:
            torch.set_num_threads(limits.threads)
        register_extensions()
        nlp = spacy.load(model)
        spans_key = spans_key_of(nlp)

        def annotate(texts: List[str]) -> List[Dict[str, Any]]:
            return [doc_to_record(doc, {"text": text}, spans_key) for text, doc in zip(texts, nlp.pipe(texts))]

        state["meta"] = {**pipeline_meta(nlp), "limits": asdict(limits)}
        state["batcher"] = batcher = Batcher(annotate, limits.max_batch, limits.max_queued_texts)
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="spacy-spanjoint",
        description="Joint entity and relation extraction: entities with character offsets, relations between them.",
        lifespan=lifespan,
        max_body_size=limits.max_body_bytes,
    )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        content_type = request.headers.get("content-type", "application/json")
        if "json" not in content_type.split(";")[0]:
            return JSONResponse({"detail": "Send JSON with Content-Type: application/json"}, status_code=415)
        if any(error.get("type") == "json_invalid" for error in errors):
            return JSONResponse({"detail": "Malformed JSON in the request body"}, status_code=400)
        # The input is echoed by default; a long text would come back whole.
        return JSONResponse({"detail": [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in errors]}, status_code=422)

    @app.get("/health")
    async def health() -> Dict[str, str]:
        """The service is up and its pipeline loaded."""
        return {"status": "ok"}

    @app.get("/meta")
    async def meta() -> Dict[str, Any]:
        """Pipeline name, version, labels, thresholds and the request limits."""
        return state["meta"]

    @app.post(
        "/extract",
        response_model=Union[Document, Documents],
        responses={
            400: {"description": "Malformed JSON"},
            413: {"description": "Body too large"},
            415: {"description": "Not JSON"},
            422: {"description": "Wrong types, empty input, too many texts or too long a text"},
            503: {"description": "Too many texts waiting; retry later"},
        },
    )
    async def extract(request: ExtractRequest) -> JSONResponse:
        """Entities (character offsets, label, score) and relations (indices into the entities)
        of one text (`text`), or of several (`texts`, answered as `documents` in order)."""
        texts = _checked_texts(request, limits)
        try:
            records = await state["batcher"].submit(texts)
        except Overloaded:
            raise HTTPException(503, "The service is busy; retry later", headers={"Retry-After": "1"})
        except Exception as err:  # the pipeline failed on this input; other requests go on
            raise HTTPException(500, f"The pipeline failed on this input ({type(err).__name__})")
        body = records[0] if request.text is not None else {"documents": records}
        return JSONResponse(body)

    return app


def _checked_texts(request: ExtractRequest, limits: Limits) -> List[str]:
    if (request.text is None) == (request.texts is None):
        raise HTTPException(422, "Give either 'text' or 'texts'")
    texts = [request.text] if request.text is not None else request.texts
    assert texts is not None
    if not texts:
        raise HTTPException(422, "'texts' is empty")
    if len(texts) > limits.max_texts:
        raise HTTPException(422, f"{len(texts)} texts; at most {limits.max_texts} a request")
    for i, text in enumerate(texts):
        if not text.strip():
            raise HTTPException(422, f"Text {i} is empty")
        if len(text) > limits.max_chars:
            raise HTTPException(422, f"Text {i} has {len(text)} characters; at most {limits.max_chars}")
    return texts


def app_from_environment() -> FastAPI:
    """The app of `serve-api`, built in each uvicorn worker from `MODEL_ENV` and `LIMITS_ENV`."""
    limits = Limits(**json.loads(os.environ.get(LIMITS_ENV, "{}")))
    return create_app(os.environ[MODEL_ENV], limits)
