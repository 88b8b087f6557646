"""The span-based joint extractor: spans -> entities -> pairs -> relations.

Composition of the two-phase paper's model (sections 3.1-3.4): span
representations (Eq. 3-5), phase one and phase two for entities (Eq. 6, 12)
and for relations (Eq. 7-10, 13-14). The same module is SpERT when
`two_phase`, `gated`, `binary_features` and `multiclass_features` are off.

The SpERT.MT paper's parts are switches of their own: identification heads
(Eq. 4-5), ranking classification (Eq. 6-10), IoU-scaled identification of
the entities (Eq. 11-13), entity logits in the pair representation (Eq.
15-16) and prediction from the class scores (Eq. 18). SpERT plus all of them
is SpERT.MT; the two-phase model plus them is the combined model.
"""
import contextlib
from typing import Dict, Iterator, Optional, Tuple

import torch
from torch import Tensor, nn

from .candidates import enumerate_spans, group_ranks, ordered_pairs, training_pairs, training_spans
from .classifiers import PhasedClassifier
from .decoding import greedy_non_overlapping
from .iou import entity_iou
from .relation_representation import RelationRepresentation
from .span_representation import SpanRepresentation
from .token_case import TokenCaseFeature


# settings of `predict` that can change without retraining (`SpanJointModel.set_decoding`)
DECODING_SETTINGS = ("entity_threshold", "relation_threshold", "class_threshold", "flat_entities",
                     "max_entities_per_window")


def check_switches(two_phase: bool, identification_heads: bool, classification_loss: str,
                   iou_weighted_identification: bool, class_threshold: Optional[float],
                   gated: bool = True, gated_relations: Optional[bool] = None) -> None:
    """Raise a ValueError for a combination of switches that has no meaning.

    RETURNS (None): Nothing; raises on an invalid combination.
    """
    if classification_loss not in ("softmax", "ranking"):
        raise ValueError(f"classification_loss must be 'softmax' or 'ranking', got {classification_loss!r}")
    ranking = classification_loss == "ranking"
    if class_threshold is not None and not ranking:
        raise ValueError("class_threshold (SpERT.MT Eq. 18) thresholds ranking class scores: "
                         "set classification_loss = 'ranking'")
    if ranking and not two_phase and class_threshold is None:
        raise ValueError("ranking class scores have no none class: without two_phase, "
                         "set class_threshold (SpERT.MT Eq. 18, 0.85)")
    if iou_weighted_identification and not (two_phase or identification_heads):
        raise ValueError("iou_weighted_identification scales the identification loss: "
                         "set identification_heads = true (or two_phase = true)")
    if gated_relations and not gated:
        raise ValueError("gated_relations = true needs gated = true: concatenated span representations "
                         "are wider than the context and distance vectors they would be gated with")


class SpanJointModel(nn.Module):
    """Joint entity and relation extraction over the spans of sentence windows.

    width (int): d, the encoder width.
    n_entity_labels (int): |Omega|.
    n_relation_labels (int): |Psi|.
    max_span_width (int): epsilon of Eq. 1 (10).
    max_distance (int): Entity distances are clipped to it (10).
    two_phase (bool): Binary identification, then typing.
    gated (bool): Gated fusion (Eq. 5) instead of concatenation.
    gated_relations (Optional[bool]): Gate (Eq. 5 on the pair parts, section
        3.2.2, and on R_r and C_r, section 3.3.2) or concatenate the relation
        representations on their own; None: as `gated`. False with `gated`
        on keeps the span gate and concatenates the pair parts (not in the
        paper: a measured variant).
    binary_features (bool): Distance embedding in the relation representation.
    multiclass_features (bool): (type, type, distance) embedding (Eq. 13).
    dropout (float): Dropout before each classifier.
    span_negatives (int): Random non-entity spans per window in training.
    pair_negatives (int): Random unrelated entity pairs per window in training.
    entity_threshold (float): Phase-one entity probability threshold.
    relation_threshold (float): Phase-one relation probability threshold.
    max_entities_per_window (int): Entities paired per window at prediction
        (the highest-scoring ones), so the pair count stays bounded.
    flat_entities (bool): Keep only non-overlapping entities at prediction
        (greedy by score), for corpora without nested entities.
    positional_fusion (bool): Per-representation linear maps before the span
        gate too (the relation gate always has them, see `GatedFusion`).
    identification_heads (bool): Binary identification heads for entities and
        relations trained with BCE beside the classification (SpERT.MT Eq. 4-5).
        The two-phase model has them anyway (its phase-one heads), so this
        matters when `two_phase` is off.
    classification_loss (str): "softmax": softmax typing (phase two, or SpERT's
        none class); "ranking": class scores s^T W_c over the types, trained
        with the pairwise ranking loss (SpERT.MT Eq. 6-9).
    iou_weighted_identification (bool): Scale the entity identification BCE by
        ENIoU (SpERT.MT Eq. 11-13); needs identification heads.
    entity_logits_in_pairs (bool): Append the entity classification logits of
        head and tail to the pair representation (SpERT.MT Eq. 15-16).
    class_threshold (Optional[float]): theta of SpERT.MT Eq. 18: predict from
        the class scores alone, positive when the best one is >= theta; the
        identification heads and `entity_threshold` / `relation_threshold` are
        then unused. Needs "ranking". None: the thresholds above decide.
    embedding_init_std (Optional[float]): Initial standard deviation of the
        width, distance and type-distance embeddings; None: torch's N(0, 1).
    token_case_features (bool): Add a learned embedding of each token's case
        class to its vector (`token_case.TokenCaseFeature`; not in the papers:
        it gives an uncased encoder the capitalisation back).
    boundary_tokens (bool): The span's first and last token vectors join its
        representation (`SpanRepresentation`; not in the papers).
    classifier_hidden_width (int): 0: linear classifiers (the papers); above
        0: one hidden ReLU layer of this width in each (not in the papers).
    width_embedding_size (Optional[int]): Size of the width embedding (SpERT:
        25); None: d. Other sizes need the spans concatenated (`gated` off).
    pair_span_context (bool): The pair representation reads each span's full
        representation E'_S, context x0 included (two-phase Eq. 7); False: its
        c(s) = v(s) o w alone, as SpERT and SpERT.MT Eq. 15 do. False needs the
        relation parts concatenated (`gated_relations` off).
    classifier_init_std (Optional[float]): Initial standard deviation of the
        classifiers' weights, their biases 0 (SpERT's N(0, 0.02), BERT's
        initializer range); None: torch's default.
    multi_label_relations (bool): SpERT's relation classifier: a sigmoid per
        relation type, no none class, BCE summed over the types, every type
        with a probability of at least `relation_threshold` predicted (0.4 in
        SpERT). Single-phase softmax models only.
    symmetric_canonical (bool): Train a symmetric relation in one direction,
        the entity that starts first as its head, as SpERT does; False: as a
        positive in both directions.
    """

    def __init__(
        self,
        width: int,
        n_entity_labels: int,
        n_relation_labels: int,
        *,
        max_span_width: int = 10,
        max_distance: int = 10,
        two_phase: bool = True,
        gated: bool = True,
        gated_relations: Optional[bool] = None,
        binary_features: bool = True,
        multiclass_features: bool = True,
        dropout: float = 0.1,
        span_negatives: int = 100,
        pair_negatives: int = 100,
        entity_threshold: float = 0.5,
        relation_threshold: float = 0.5,
        max_entities_per_window: int = 50,
        flat_entities: bool = False,
        positional_fusion: bool = False,
        identification_heads: bool = False,
        classification_loss: str = "softmax",
        iou_weighted_identification: bool = False,
        entity_logits_in_pairs: bool = False,
        class_threshold: Optional[float] = None,
        embedding_init_std: Optional[float] = None,
        token_case_features: bool = False,
        boundary_tokens: bool = False,
        classifier_hidden_width: int = 0,
        width_embedding_size: Optional[int] = None,
        pair_span_context: bool = True,
        classifier_init_std: Optional[float] = None,
        multi_label_relations: bool = False,
        symmetric_canonical: bool = False,
    ):
        super().__init__()
        check_switches(two_phase, identification_heads, classification_loss, iou_weighted_identification,
                       class_threshold, gated, gated_relations)
        ranking = classification_loss == "ranking"
        self.iou_weighted_identification = iou_weighted_identification
        self.class_threshold = class_threshold
        self.max_span_width = max_span_width
        self.span_negatives = span_negatives
        self.pair_negatives = pair_negatives
        self.entity_threshold = entity_threshold
        self.relation_threshold = relation_threshold
        self.max_entities_per_window = max_entities_per_window
        self.flat_entities = flat_entities
        self.pair_span_context = pair_span_context
        self.symmetric_canonical = symmetric_canonical
        self.spans = SpanRepresentation(width, max_span_width, gated, positional=positional_fusion,
                                        embedding_init_std=embedding_init_std, boundary_tokens=boundary_tokens,
                                        width_embedding_size=width_embedding_size)
        logit_width = PhasedClassifier.class_width_for(n_entity_labels, two_phase, ranking)
        relations_gated = gated if gated_relations is None else gated_relations
        pair_span_width = self.spans.output_width if pair_span_context else self.spans.context_free_width
        self.relations = RelationRepresentation(
            pair_span_width, width, n_entity_labels, max_distance,
            gated=relations_gated, binary_features=binary_features, multiclass_features=multiclass_features,
            logit_width=logit_width if entity_logits_in_pairs else 0, embedding_init_std=embedding_init_std,
        )
        self.entity_classifier = PhasedClassifier(
            self.spans.output_width, self.spans.output_width, n_entity_labels, two_phase,
            identification=identification_heads, ranking=ranking, hidden_width=classifier_hidden_width,
        )
        self.relation_classifier = PhasedClassifier(
            self.relations.binary_width, self.relations.typed_width, n_relation_labels, two_phase,
            identification=identification_heads, ranking=ranking, hidden_width=classifier_hidden_width,
            multi_label=multi_label_relations,
        )
        if classifier_init_std is not None:
            for linear in [*self.entity_classifier.modules(), *self.relation_classifier.modules()]:
                if isinstance(linear, nn.Linear):
                    nn.init.normal_(linear.weight, mean=0.0, std=classifier_init_std)
                    if linear.bias is not None:
                        nn.init.zeros_(linear.bias)
        self.dropout = nn.Dropout(dropout)
        self.token_case = TokenCaseFeature(width) if token_case_features else None
        # prediction scores the candidate spans without building E'_S (`entity_logits`);
        # False builds every span representation (`building_span_representations`)
        self.factored_entity_logits = True

    def set_decoding(self, **settings) -> None:
        """Change how `predict` decides (the names of `DECODING_SETTINGS`); the
        weights stay as they are.

        RAISES (ValueError): For an unknown name, or a `class_threshold` on a
            model without ranking class scores.
        """
        unknown = sorted(set(settings) - set(DECODING_SETTINGS))
        if unknown:
            raise ValueError(f"unknown decoding settings {unknown}; they are {list(DECODING_SETTINGS)}")
        if settings.get("class_threshold") is not None and not self.entity_classifier.ranking:
            raise ValueError("class_threshold (SpERT.MT Eq. 18) thresholds ranking class scores, and this "
                             "model was trained with classification_loss = 'softmax'")
        for name, value in settings.items():
            setattr(self, name, value)

    def forward(
        self,
        token_vectors: Tensor,
        contexts: Tensor,
        token_window: Tensor,
        gold_spans: Optional[Tensor] = None,
        gold_labels: Optional[Tensor] = None,
        gold_relations: Optional[Tensor] = None,
        symmetric: Optional[Tensor] = None,
        token_case: Optional[Tensor] = None,
    ) -> Dict[str, Tensor]:
        """Training logits when gold annotations are given, else predictions.

        token_vectors (Tensor): (T, d) token vectors of the whole batch.
        contexts (Tensor): (W, d) [CLS] vector x0 of each window.
        token_window (Tensor): (T,) window id of each token.
        gold_spans (Optional[Tensor]): (G, 2) gold entity offsets.
        gold_labels (Optional[Tensor]): (G,) gold entity label ids.
        gold_relations (Optional[Tensor]): (R, 3) head, tail (into the gold
            entities), relation label id.
        symmetric (Optional[Tensor]): (n_relation_labels,) bool.
        token_case (Optional[Tensor]): (T,) case class of each token; needed
            with `token_case_features`, ignored without.
        RETURNS (Dict[str, Tensor]): See `train_logits` and `predict`.
        """
        if self.token_case is not None:
            if token_case is None:
                raise ValueError("SpanJointModel: token_case_features is on, so the case class of "
                                 "each token (token_case) must be given")
            token_vectors = self.token_case(token_vectors, token_case)
        if gold_spans is None:
            return self.predict(token_vectors, contexts, token_window)
        return self.train_logits(token_vectors, contexts, token_window, gold_spans, gold_labels, gold_relations, symmetric)

    def train_logits(self, token_vectors, contexts, token_window, gold_spans, gold_labels, gold_relations, symmetric):
        """Logits and targets of the training candidates (SpERT's sampling).

        Phase two and the multi-class feature see the gold entity types; the
        pairs (of gold entities) see their entity logits when
        `entity_logits_in_pairs` is on.
        RETURNS (Dict[str, Tensor]): "entity.*" and "relation.*" logits,
            "entity.targets" / "relation.targets" (0 = negative, k = label k - 1),
            and "entity.eniou" (ENIoU per span) with `iou_weighted_identification`.
        """
        spans = training_spans(token_window, gold_spans, self.max_span_width, self.span_negatives)
        span_window = token_window[spans[:, 0]]
        n_gold = gold_spans.shape[0]
        span_targets = torch.zeros(spans.shape[0], dtype=torch.long, device=spans.device)
        span_targets[:n_gold] = gold_labels + 1
        span_reprs = self.spans(token_vectors, contexts, spans, span_window)
        dropped = self.dropout(span_reprs)
        entity_logits = self.entity_classifier(dropped, dropped)
        pairs, pair_targets = training_pairs(
            span_window[:n_gold], gold_relations, symmetric, self.pair_negatives,
            entity_starts=gold_spans[:, 0] if self.symmetric_canonical else None,
            multi_label=self.relation_classifier.multi_label,
        )
        gold_logits = entity_logits[self.entity_classifier.class_key][:n_gold]
        relation_reprs, typed_reprs = self.relations(
            token_vectors, self.pair_spans(token_vectors, gold_spans, span_reprs[:n_gold]), gold_spans, pairs,
            gold_labels, gold_logits,
        )
        relation_logits = self.relation_classifier(self.dropout(relation_reprs), self.dropout(typed_reprs))
        output = {f"entity.{k}": v for k, v in entity_logits.items()}
        output.update({f"relation.{k}": v for k, v in relation_logits.items()})
        output["entity.targets"] = span_targets
        output["relation.targets"] = pair_targets
        if self.iou_weighted_identification:
            output["entity.eniou"] = entity_iou(spans, span_window, gold_spans, span_window[:n_gold])
        return output

    def predict(self, token_vectors: Tensor, contexts: Tensor, token_window: Tensor) -> Dict[str, Tensor]:
        """Entities and relations of a batch.

        All spans -> entity threshold -> type (-> non-overlapping subset with
        `flat_entities`); ordered pairs of the entities of each window ->
        relation threshold -> type. With `class_threshold`, the best class
        score decides instead of the thresholds (SpERT.MT Eq. 18). Only the
        entities' representations E'_S are built (`entity_logits`).
        RETURNS (Dict[str, Tensor]): "entity_spans" (K, 2), "entity_labels",
            "entity_scores" (K,), "relation_pairs" (P, 2) into the entities,
            "relation_labels", "relation_scores" (P,).
        """
        spans = enumerate_spans(token_window, self.max_span_width)
        span_window = token_window[spans[:, 0]]
        entity_logits, span_reprs = self.entity_logits(token_vectors, contexts, spans, span_window)
        is_entity, labels, scores = self.entity_classifier.decide(
            entity_logits, self.entity_threshold, self.class_threshold
        )
        entities = torch.nonzero(is_entity).squeeze(1)
        if self.flat_entities:
            entities = entities[greedy_non_overlapping(spans[entities], span_window[entities], scores[entities])]
        top = group_ranks(span_window[entities], -scores[entities]) < self.max_entities_per_window
        entities = entities[top]
        entity_spans, entity_labels = spans[entities], labels[entities]
        pairs = ordered_pairs(span_window[entities])
        if not self.pair_span_context:
            entity_reprs = None
        elif span_reprs is None:
            entity_reprs = self.spans(token_vectors, contexts, entity_spans, span_window[entities])
        else:
            entity_reprs = span_reprs[entities]
        relation_reprs, typed_reprs = self.relations(
            token_vectors, self.pair_spans(token_vectors, entity_spans, entity_reprs), entity_spans, pairs,
            entity_labels, entity_logits[self.entity_classifier.class_key][entities],
        )
        rows, relation_labels, relation_scores = self.relation_classifier.decide_each(
            self.relation_classifier(relation_reprs, typed_reprs), self.relation_threshold, self.class_threshold
        )
        return {
            "entity_spans": entity_spans,
            "entity_labels": entity_labels,
            "entity_scores": scores[entities],
            "relation_pairs": pairs[rows],
            "relation_labels": relation_labels,
            "relation_scores": relation_scores,
        }

    def pair_spans(self, token_vectors: Tensor, spans: Tensor, span_reprs: Optional[Tensor]) -> Tensor:
        """The spans as the pair representation reads them: E'_S (two-phase
        Eq. 7), or c(s) = v(s) o w without the context with `pair_span_context`
        off (SpERT; SpERT.MT Eq. 15)."""
        return span_reprs if self.pair_span_context else self.spans.context_free(token_vectors, spans)

    def entity_logits(self, token_vectors: Tensor, contexts: Tensor, spans: Tensor,
                      span_window: Tensor) -> Tuple[Dict[str, Tensor], Optional[Tensor]]:
        """The entity classifier's logits (Eq. 6, 12) for every candidate span.

        With linear heads and no positional maps, the heads apply to the fused
        parts (`SpanRepresentation.linear_map`) and no span representation is
        built: the same logits up to rounding, at a fraction of the time and
        memory, since there are about ten candidate spans per token.
        RETURNS (Tuple[Dict[str, Tensor], Optional[Tensor]]): the logits, and
            the span representations E'_S when they were built (else None).
        """
        stacked = self.entity_classifier.stacked_linear() if self.factored_entity_logits else None
        if stacked is None or not self.spans.fusion.factors_linear_maps:
            span_reprs = self.spans(token_vectors, contexts, spans, span_window)
            return self.entity_classifier(span_reprs, span_reprs), span_reprs
        weight, bias = stacked
        logits = self.spans.linear_map(token_vectors, contexts, spans, span_window, weight, bias)
        return self.entity_classifier.split_stacked(logits), None

    @contextlib.contextmanager
    def building_span_representations(self) -> Iterator[None]:
        """Predict by building every candidate span's E'_S, as before the
        factored entity logits: to record the span gate on all spans, or to
        time and compare the two ways."""
        factored, self.factored_entity_logits = self.factored_entity_logits, False
        try:
            yield
        finally:
            self.factored_entity_logits = factored
