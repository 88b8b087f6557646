"""The `spanjoint` pipeline component: joint entity and relation extraction.

Pipeline glue only: it turns gold annotations into batch arrays, runs the
model (see `layers/architectures.py` and `model/`), computes the loss of Eq. 16 and
writes entities to `doc.spans[spans_key]` and relations to `doc._.relations`.
"""
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy
import srsly
import torch
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import filter_spans
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, torch2xp, xp2torch

from ..layers.spanjoint import GoldBatch, SpanJointOutput, build_torch_head, torch_span_model
from ..model.losses import LOSS_WEIGHTS, joint_loss
from ..model.spanjoint import DECODING_SETTINGS
from ..training.gradient_clipping import clip_jointly, take_deferred
from ..training.learn_rate_scale import update_scaled
from .relations import SYMMETRIC_LABELS_KEY, Relation, register_extensions
from .scoring import same_tokenization, score_spanjoint

DEFAULT_SPANJOINT_MODEL = """
[model]
@architectures = "spacy-spanjoint.SpanJointModel.v2"

[model.pooling]
@layers = "reduce_max.v1"

[model.span_representation]
@misc = "spacy-spanjoint.span_representation.v1"

[model.relation_representation]
@misc = "spacy-spanjoint.relation_representation.v1"

[model.classifiers]
@misc = "spacy-spanjoint.classifiers.v1"

[model.candidates]
@misc = "spacy-spanjoint.training_candidates.v1"

[model.loss]
@misc = "spacy-spanjoint.joint_loss.v1"
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_SPANJOINT_MODEL)["model"]


@Language.factory(
    "spanjoint",
    assigns=["doc.spans", "doc.ents", "doc._.relations"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": "entities",
        "scorer": {"@scorers": "spacy-spanjoint.spanjoint_scorer.v1"},
        "entity_threshold": None,
        "relation_threshold": None,
        "class_threshold": None,
        "flat_entities": None,
        "max_entities_per_window": None,
        "identification_weight": None,
        "classification_weight": None,
    },
    default_score_weights={
        "spans_entities_f": 0.5,
        "relations_f": 0.5,
        "spans_entities_p": None,
        "spans_entities_r": None,
        "spans_entities_macro_f": None,
        "relations_p": None,
        "relations_r": None,
        "relations_macro_f": None,
        "relations_boundaries_f": None,
    },
)
def make_spanjoint(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: str,
    scorer: Optional[Callable],
    entity_threshold: Optional[float],
    relation_threshold: Optional[float],
    class_threshold: Optional[float],
    flat_entities: Optional[bool],
    max_entities_per_window: Optional[int],
    identification_weight: Optional[float],
    classification_weight: Optional[float],
) -> "SpanJoint":
    """Create a `spanjoint` component.

    model (Model): A `spacy-spanjoint.SpanJointModel.v2` (or .v1) on a transformer listener.
    spans_key (str): Key of `doc.spans` for the entities.
    scorer (Optional[Callable]): Scores entities and relations.
    entity_threshold, relation_threshold, class_threshold (Optional[float]),
        flat_entities (Optional[bool]), max_entities_per_window (Optional[int]):
        How prediction decides (see `SpanJointModel`); they change without
        retraining, also at load time (`spacy.load(path, config=...)`).
        None: the model's setting.
    identification_weight, classification_weight (Optional[float]): alpha and
        beta of the joint loss (SpERT.MT Eq. 10); None: the model's setting.
    """
    decoding = dict(entity_threshold=entity_threshold, relation_threshold=relation_threshold,
                    class_threshold=class_threshold, flat_entities=flat_entities,
                    max_entities_per_window=max_entities_per_window)
    loss_weights = dict(identification_weight=identification_weight, classification_weight=classification_weight)
    return SpanJoint(nlp.vocab, model, name, spans_key=spans_key, scorer=scorer,
                     decoding={k: v for k, v in decoding.items() if v is not None},
                     loss_weights={k: v for k, v in loss_weights.items() if v is not None})


class SpanJoint(TrainablePipe):
    """Predict typed entities (possibly nested) and typed relations between them."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "spanjoint",
        *,
        spans_key: str = "entities",
        scorer: Optional[Callable] = score_spanjoint,
        decoding: Optional[Dict[str, Any]] = None,
        loss_weights: Optional[Dict[str, float]] = None,
    ) -> None:
        """decoding (Optional[Dict[str, Any]]): Settings of `DECODING_SETTINGS`
            that replace the model's at prediction.
        loss_weights (Optional[Dict[str, float]]): identification_weight and
            classification_weight that replace the model's in the loss.
        """
        register_extensions()
        unknown = sorted(set(decoding or {}) - set(DECODING_SETTINGS))
        unknown += sorted(set(loss_weights or {}) - set(LOSS_WEIGHTS))
        if unknown:
            raise ValueError(f"spanjoint: unknown settings {unknown}")
        self.decoding = dict(decoding or {})
        self.loss_weights = dict(loss_weights or {})
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict = {
            "spans_key": spans_key,
            "entity_labels": [],
            "relation_labels": [],
            "symmetric_relations": [],
            "width": None,
        }

    @property
    def spans_key(self) -> str:
        return self.cfg["spans_key"]

    @property
    def entity_labels(self) -> List[str]:
        return list(self.cfg["entity_labels"])

    @property
    def relation_labels(self) -> List[str]:
        return list(self.cfg["relation_labels"])

    @property
    def labels(self) -> tuple:
        return tuple(self.entity_labels + self.relation_labels)

    @property
    def label_data(self) -> Dict[str, List[str]]:
        return {k: list(self.cfg[k]) for k in ("entity_labels", "relation_labels", "symmetric_relations")}

    # -- prediction ---------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> SpanJointOutput:
        """Entities and relations of a batch (see `SpanJointModel.predict`), in
        torch's inference mode."""
        docs = list(docs)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Doc):
                raise TypeError(
                    f"spanjoint: item {i} of the batch is a {type(doc).__name__}, not a Doc. Call the "
                    "pipeline on text (`nlp(text)`) or pass Docs made by its tokenizer."
                )
        self._apply_decoding()
        with torch.inference_mode():
            return self.model.predict((docs, None))

    def set_decoding(self, **settings) -> None:
        """Change how prediction decides (names of `DECODING_SETTINGS`), as the
        component's config does at load time."""
        unknown = sorted(set(settings) - set(DECODING_SETTINGS))
        if unknown:
            raise ValueError(f"spanjoint: unknown decoding settings {unknown}; they are {list(DECODING_SETTINGS)}")
        self.decoding.update(settings)
        self._apply_decoding()

    @property
    def decoding_in_effect(self) -> Dict[str, Any]:
        """The decoding settings prediction uses now (empty before the model is built)."""
        self._apply_decoding()
        span_model = torch_span_model(self.model)
        return {} if span_model is None else {name: getattr(span_model, name) for name in DECODING_SETTINGS}

    def _apply_decoding(self) -> None:
        span_model = torch_span_model(self.model)
        if span_model is not None and self.decoding:
            span_model.set_decoding(**self.decoding)

    def set_annotations(self, docs: Iterable[Doc], output: SpanJointOutput) -> None:
        """Write entities to `doc.spans[spans_key]` (and `doc.ents` when they do not
        overlap) and relations to `doc._.relations`."""
        arrays = {k: numpy.asarray(v.get() if hasattr(v, "get") else v) for k, v in output.arrays.items()}
        starts = output.doc_starts
        entity_spans = arrays["entity_spans"].reshape(-1, 2)
        # entities come ordered by start token, so each doc's entities are contiguous
        entity_doc = numpy.searchsorted(starts, entity_spans[:, 0], side="right") - 1
        pairs = arrays["relation_pairs"].reshape(-1, 2)
        relation_doc = entity_doc[pairs[:, 0]] if len(pairs) else numpy.zeros((0,), dtype="int64")
        entity_labels, relation_labels = self.entity_labels, self.relation_labels
        for i, doc in enumerate(docs):
            offset = starts[i]
            rows = numpy.flatnonzero(entity_doc == i)
            spans = [
                Span(doc, int(s - offset), int(e - offset), label=entity_labels[label])
                for (s, e), label in zip(entity_spans[rows], arrays["entity_labels"][rows])
            ]
            doc.spans[self.spans_key] = SpanGroup(
                doc, name=self.spans_key, spans=spans,
                attrs={"scores": [float(s) for s in arrays["entity_scores"][rows]]},
            )
            if len(filter_spans(spans)) == len(spans):
                doc.ents = spans
            relations = []
            for r in numpy.flatnonzero(relation_doc == i):
                head, tail = entity_spans[pairs[r, 0]] - offset, entity_spans[pairs[r, 1]] - offset
                relations.append(
                    Relation((int(head[0]), int(head[1])), (int(tail[0]), int(tail[1])),
                             relation_labels[arrays["relation_labels"][r]], float(arrays["relation_scores"][r]))
                )
            doc._.relations = self._one_per_symmetric_pair(relations)

    def _one_per_symmetric_pair(self, relations: List[Relation]) -> List[Relation]:
        """A symmetric relation predicted in both directions is kept once, in the
        direction with the higher score."""
        symmetric = set(self.cfg["symmetric_relations"])
        best: Dict[tuple, Relation] = {}
        for relation in relations:
            if relation.label not in symmetric:
                continue
            key = (relation.label, *sorted([relation.head, relation.tail]))
            if key not in best or relation.score > best[key].score:
                best[key] = relation
        kept = set(map(id, best.values()))
        return [r for r in relations if r.label not in symmetric or id(r) in kept]

    # -- training -----------------------------------------------------------

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch. Every doc goes through the listener, also docs
        without entities, so the transformer sees the batch it produced.

        drop (float): Not used, so `[training] dropout` changes nothing; the
            span model's dropout is the architecture's `dropout` setting.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "SpanJoint.update")
        docs = [eg.predicted for eg in examples]
        if not any(len(doc) for doc in docs):
            # the transformer skips a batch without tokens, so the listener has nothing
            return losses
        output, backprop = self.model.begin_update((docs, self._gold_batch(examples)))
        loss, gradients = self.get_loss(examples, output)
        backprop(gradients)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], output: SpanJointOutput):
        """The joint loss (two-phase Eq. 16, SpERT.MT Eq. 10 and 17) and its
        gradient for each logit array; the loss weights are the component's
        `loss_weights` over the model's (`model.attrs["loss"]`)."""
        logits, targets, eniou = {}, {}, None
        for key, value in output.arrays.items():
            if key.endswith(".targets"):
                targets[key[: -len(".targets")]] = xp2torch(self.model.ops.asarray(value, dtype="int64"))
            elif key == "entity.eniou":  # SpERT.MT Eq. 12, a weight, not a logit
                eniou = xp2torch(value)
            else:
                logits[key] = xp2torch(value, requires_grad=True)

        def task_logits(task: str):
            return {k.split(".", 1)[1]: v for k, v in logits.items() if k.startswith(task + ".")}

        loss = joint_loss(task_logits("entity"), targets["entity"], task_logits("relation"), targets["relation"],
                          entity_eniou=eniou, **{**self.model.attrs.get("loss", {}), **self.loss_weights})
        loss.backward()
        gradients = {k: torch2xp(v.grad) if v.grad is not None else self.model.ops.alloc(v.shape) for k, v in logits.items()}
        return float(loss.detach()), gradients

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the weights; the span model's learn rate is the optimizer's
        times `head_learn_rate_scale` (the randomly initialised head needs
        larger steps than the pretrained encoder). With `head_max_grad_norm`,
        the span model's gradient is first clipped to that global norm; where
        the transformer's update waits for this one (its `clip_with_listener`),
        both gradients are clipped together to it and the transformer is
        updated here too."""
        encoder, *head = self.model.layers
        encoder.finish_update(sgd)
        max_grad_norm = self.model.attrs.get("max_grad_norm")
        waiting = take_deferred(sgd)
        if waiting:  # the transformer's clip_with_listener: one norm over both, as SpERT
            clip_jointly(waiting + head, max_grad_norm)
            for transformer in waiting:
                transformer.step(sgd)
            max_grad_norm = None
        for layer in head:
            update_scaled(layer, sgd, self.model.attrs["head_learn_rate_scale"], max_grad_norm)

    def _gold_batch(self, examples: Sequence[Example]) -> GoldBatch:
        """Gold entities and relations of a batch in batch-global token offsets."""
        entity_ids = {label: i for i, label in enumerate(self.entity_labels)}
        relation_ids = {label: i for i, label in enumerate(self.relation_labels)}
        spans: List[tuple] = []
        labels: List[int] = []
        relations: List[tuple] = []
        offset = 0
        for n, eg in enumerate(examples):
            index = {}
            same_tokens = same_tokenization(eg)
            for span in self._aligned_gold_spans(eg, same_tokens):
                if span.label_ not in entity_ids:
                    raise ValueError(
                        f"spanjoint: entity label '{span.label_}' in training doc {n} is not one of the "
                        f"component's labels {self.entity_labels}; initialize the component on data with it"
                    )
                if (span.start, span.end) in index:
                    continue
                index[(span.start, span.end)] = len(spans)
                spans.append((span.start + offset, span.end + offset))
                labels.append(entity_ids[span.label_])
            for relation in self._aligned_gold_relations(eg, same_tokens):
                if relation.label not in relation_ids:
                    raise ValueError(
                        f"spanjoint: relation label '{relation.label}' in training doc {n} is not one of the "
                        f"component's labels {self.relation_labels}"
                    )
                if relation.head not in index or relation.tail not in index:
                    raise ValueError(
                        f"spanjoint: training doc {n} has a relation {relation} whose head or tail is not "
                        f"an entity of doc.spans['{self.spans_key}']"
                    )
                relations.append((index[relation.head], index[relation.tail], relation_ids[relation.label]))
            offset += len(eg.predicted)
        symmetric = numpy.array([label in self.cfg["symmetric_relations"] for label in self.relation_labels], dtype=bool)
        return GoldBatch(
            numpy.array(spans, dtype="int64").reshape(-1, 2),
            numpy.array(labels, dtype="int64"),
            numpy.array(relations, dtype="int64").reshape(-1, 3),
            symmetric,
        )

    def _aligned_gold_spans(self, eg: Example, same_tokens: bool) -> List[Span]:
        gold = list(eg.reference.spans.get(self.spans_key, []))
        if same_tokens:
            return gold
        return [s for span in gold for s in eg.get_aligned_spans_y2x([span], allow_overlap=True)]

    def _aligned_gold_relations(self, eg: Example, same_tokens: bool) -> List[Relation]:
        relations = eg.reference._.relations
        if same_tokens:
            return relations
        aligned = []
        for relation in relations:
            ends = [eg.get_aligned_spans_y2x([eg.reference[slice(*offsets)]], allow_overlap=True)
                    for offsets in (relation.head, relation.tail)]
            if all(ends):
                aligned.append(relation._replace(head=(ends[0][0].start, ends[0][0].end),
                                                 tail=(ends[1][0].start, ends[1][0].end)))
        return aligned

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        entity_labels: Optional[List[str]] = None,
        relation_labels: Optional[List[str]] = None,
        symmetric_relations: Optional[List[str]] = None,
    ) -> None:
        """Collect the labels (or take them from the config) and build the model.

        entity_labels, relation_labels (Optional[List[str]]): Label sets; by
            default every label of the training data, sorted.
        symmetric_relations (Optional[List[str]]): Symmetric relation labels; by
            default those the corpus docs carry (from their types file).
        """
        validate_get_examples(get_examples, "SpanJoint.initialize")
        found_entities, found_relations, found_symmetric = set(), set(), set()
        for eg in get_examples():
            found_entities.update(span.label_ for span in eg.reference.spans.get(self.spans_key, []))
            found_relations.update(r.label for r in eg.reference._.relations)
            found_symmetric.update(eg.reference.user_data.get(SYMMETRIC_LABELS_KEY, []))
        self.cfg["entity_labels"] = list(entity_labels) if entity_labels else sorted(found_entities)
        self.cfg["relation_labels"] = list(relation_labels) if relation_labels else sorted(found_relations)
        self.cfg["symmetric_relations"] = sorted(symmetric_relations if symmetric_relations is not None else found_symmetric)
        if not self.cfg["entity_labels"]:
            raise ValueError(
                f"spanjoint: no entity labels. The training docs have no spans in doc.spans['{self.spans_key}'] "
                "and [initialize.components.spanjoint] gives no entity_labels."
            )
        if not self.cfg["relation_labels"]:
            raise ValueError("spanjoint: no relation labels in the training docs (doc._.relations) or the config.")
        self._set_dims()
        sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=(sample, None))
        self.cfg["width"] = self.model.get_dim("nI")
        self._apply_decoding()

    def _set_dims(self) -> None:
        self.model.set_dim("nE", len(self.cfg["entity_labels"]))
        self.model.set_dim("nR", len(self.cfg["relation_labels"]))
        if self.cfg.get("width") is not None and not self.model.has_dim("nI"):
            self.model.set_dim("nI", self.cfg["width"])

    def _build_head_from_cfg(self) -> None:
        """Before loading weights: the torch head must exist with the saved sizes."""
        self._set_dims()
        if len(self.model.layers) == 1:
            self.model.layers.append(build_torch_head(self.model))
        self._apply_decoding()

    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        """Score entities and relations, with this component's symmetric labels."""
        kwargs.setdefault("spans_key", self.spans_key)
        kwargs.setdefault("symmetric_relations", self.cfg["symmetric_relations"])
        return self.scorer(examples, **kwargs)

    # -- serialization ------------------------------------------------------

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "SpanJoint":
        self.cfg.update(srsly.json_loads(srsly.msgpack_loads(bytes_data)["cfg"]))
        self._build_head_from_cfg()
        return super().from_bytes(bytes_data, exclude=exclude)

    def from_disk(self, path, *, exclude=tuple()) -> "SpanJoint":
        self.cfg.update(srsly.read_json(Path(path) / "cfg"))
        self._build_head_from_cfg()
        return super().from_disk(path, exclude=exclude)

