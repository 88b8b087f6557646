"""The span-based joint extractor: spans -> entities -> pairs -> relations.

Composition of the two-phase paper's model (sections 3.1-3.4): span
representations (Eq. 3-5), phase one and phase two for entities (Eq. 6, 12)
and for relations (Eq. 7-10, 13-14). The same module is SpERT when
`two_phase`, `gated`, `binary_features` and `multiclass_features` are off.
"""
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from .candidates import enumerate_spans, group_ranks, ordered_pairs, training_pairs, training_spans
from .classifiers import PhasedClassifier
from .decoding import greedy_non_overlapping
from .relation_representation import RelationRepresentation
from .span_representation import SpanRepresentation


class SpanJointModel(nn.Module):
    """Joint entity and relation extraction over the spans of sentence windows.

    width (int): d, the encoder width.
    n_entity_labels (int): |Omega|.
    n_relation_labels (int): |Psi|.
    max_span_width (int): epsilon of Eq. 1 (10).
    max_distance (int): Entity distances are clipped to it (10).
    two_phase (bool): Binary identification, then typing.
    gated (bool): Gated fusion (Eq. 5) instead of concatenation.
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
    ):
        super().__init__()
        self.max_span_width = max_span_width
        self.span_negatives = span_negatives
        self.pair_negatives = pair_negatives
        self.entity_threshold = entity_threshold
        self.relation_threshold = relation_threshold
        self.max_entities_per_window = max_entities_per_window
        self.flat_entities = flat_entities
        self.spans = SpanRepresentation(width, max_span_width, gated, positional=positional_fusion)
        self.relations = RelationRepresentation(
            self.spans.output_width, width, n_entity_labels, max_distance,
            gated=gated, binary_features=binary_features, multiclass_features=multiclass_features,
        )
        self.entity_classifier = PhasedClassifier(
            self.spans.output_width, self.spans.output_width, n_entity_labels, two_phase
        )
        self.relation_classifier = PhasedClassifier(
            self.relations.binary_width, self.relations.typed_width, n_relation_labels, two_phase
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        token_vectors: Tensor,
        contexts: Tensor,
        token_window: Tensor,
        gold_spans: Optional[Tensor] = None,
        gold_labels: Optional[Tensor] = None,
        gold_relations: Optional[Tensor] = None,
        symmetric: Optional[Tensor] = None,
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
        RETURNS (Dict[str, Tensor]): See `train_logits` and `predict`.
        """
        if gold_spans is None:
            return self.predict(token_vectors, contexts, token_window)
        return self.train_logits(token_vectors, contexts, token_window, gold_spans, gold_labels, gold_relations, symmetric)

    def train_logits(self, token_vectors, contexts, token_window, gold_spans, gold_labels, gold_relations, symmetric):
        """Logits and targets of the training candidates (SpERT's sampling).

        Phase two and the multi-class feature see the gold entity types.
        RETURNS (Dict[str, Tensor]): "entity.*" and "relation.*" logits, and
            "entity.targets" / "relation.targets" (0 = negative, k = label k - 1).
        """
        spans = training_spans(token_window, gold_spans, self.max_span_width, self.span_negatives)
        span_window = token_window[spans[:, 0]]
        n_gold = gold_spans.shape[0]
        span_targets = torch.zeros(spans.shape[0], dtype=torch.long, device=spans.device)
        span_targets[:n_gold] = gold_labels + 1
        span_reprs = self.spans(token_vectors, contexts, spans, span_window)
        dropped = self.dropout(span_reprs)
        entity_logits = self.entity_classifier(dropped, dropped)
        pairs, pair_targets = training_pairs(span_window[:n_gold], gold_relations, symmetric, self.pair_negatives)
        relation_reprs, typed_reprs = self.relations(token_vectors, span_reprs[:n_gold], gold_spans, pairs, gold_labels)
        relation_logits = self.relation_classifier(self.dropout(relation_reprs), self.dropout(typed_reprs))
        output = {f"entity.{k}": v for k, v in entity_logits.items()}
        output.update({f"relation.{k}": v for k, v in relation_logits.items()})
        output["entity.targets"] = span_targets
        output["relation.targets"] = pair_targets
        return output

    def predict(self, token_vectors: Tensor, contexts: Tensor, token_window: Tensor) -> Dict[str, Tensor]:
        """Entities and relations of a batch.

        All spans -> entity threshold -> type (-> non-overlapping subset with
        `flat_entities`); ordered pairs of the entities of each window ->
        relation threshold -> type.
        RETURNS (Dict[str, Tensor]): "entity_spans" (K, 2), "entity_labels",
            "entity_scores" (K,), "relation_pairs" (P, 2) into the entities,
            "relation_labels", "relation_scores" (P,).
        """
        spans = enumerate_spans(token_window, self.max_span_width)
        span_window = token_window[spans[:, 0]]
        span_reprs = self.spans(token_vectors, contexts, spans, span_window)
        is_entity, labels, scores = self.entity_classifier.decide(
            self.entity_classifier(span_reprs, span_reprs), self.entity_threshold
        )
        entities = torch.nonzero(is_entity).squeeze(1)
        if self.flat_entities:
            entities = entities[greedy_non_overlapping(spans[entities], span_window[entities], scores[entities])]
        top = group_ranks(span_window[entities], -scores[entities]) < self.max_entities_per_window
        entities = entities[top]
        entity_spans, entity_labels = spans[entities], labels[entities]
        pairs = ordered_pairs(span_window[entities])
        relation_reprs, typed_reprs = self.relations(
            token_vectors, span_reprs[entities], entity_spans, pairs, entity_labels
        )
        is_relation, relation_labels, relation_scores = self.relation_classifier.decide(
            self.relation_classifier(relation_reprs, typed_reprs), self.relation_threshold
        )
        return {
            "entity_spans": entity_spans,
            "entity_labels": entity_labels,
            "entity_scores": scores[entities],
            "relation_pairs": pairs[is_relation],
            "relation_labels": relation_labels[is_relation],
            "relation_scores": relation_scores[is_relation],
        }
