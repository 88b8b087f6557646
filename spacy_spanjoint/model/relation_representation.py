"""Relation representation of an ordered entity pair (Eq. 7-9, 13 of the two-phase paper;
Eq. 15-16 of the SpERT.MT paper for the entity logits)."""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from .gated_fusion import GatedFusion
from .global_features import DistanceFeature, TypeDistanceFeature, entity_distance
from .span_representation import max_pool_ranges


class RelationRepresentation(nn.Module):
    """R_r = fuse(E'_e1, E'_e2, R_C, D_r), and R'_r = fuse(R_r, C_r) for the types.

    R_C is the max-pool of the tokens between the two spans (Eq. 8-9), D_r the
    distance embedding (binary global feature), C_r the (type, type, distance)
    embedding (multi-class global feature, Eq. 13). The pair fusion maps each
    position linearly before the gate (`GatedFusion(positional=True)`), so the
    head and the tail are not interchangeable.

    entity_width (int): Width of the entity representations E'.
    width (int): d, the encoder width.
    n_entity_labels (int): |Omega|, for C_r.
    max_distance (int): Distance clip (10).
    gated (bool): Gated fusion or concatenation.
    binary_features (bool): Use D_r.
    multiclass_features (bool): Use C_r.
    logit_width (int): Width of the entity logits p(s) appended to both
        representations, head then tail (SpERT.MT Eq. 15-16); 0 for none.
    embedding_init_std (Optional[float]): Initial scale of D_r and C_r
        (see `embeddings.learned_embedding`).
    """

    def __init__(
        self,
        entity_width: int,
        width: int,
        n_entity_labels: int,
        max_distance: int,
        gated: bool = True,
        binary_features: bool = True,
        multiclass_features: bool = True,
        logit_width: int = 0,
        embedding_init_std: Optional[float] = None,
    ):
        super().__init__()
        self.max_distance = max_distance
        self.distance = DistanceFeature(width, max_distance, embedding_init_std) if binary_features else None
        pair_widths = [entity_width, entity_width, width] + ([width] if binary_features else [])
        self.pair_fusion = GatedFusion(pair_widths, gated, positional=True)
        self.binary_width = self.pair_fusion.output_width
        self.type_distance = None
        self.type_fusion = None
        self.typed_width = self.binary_width
        if multiclass_features:
            feature_width = self.binary_width if gated else width
            self.type_distance = TypeDistanceFeature(feature_width, n_entity_labels, max_distance, embedding_init_std)
            self.type_fusion = GatedFusion([self.binary_width, feature_width], gated)
            self.typed_width = self.type_fusion.output_width
        self.logit_width = logit_width
        self.binary_width += 2 * logit_width
        self.typed_width += 2 * logit_width

    def forward(
        self,
        token_vectors: Tensor,
        entity_reprs: Tensor,
        entity_spans: Tensor,
        pairs: Tensor,
        entity_types: Optional[Tensor],
        entity_logits: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tensor]:
        """Representations of the pairs for phase one and for phase two.

        token_vectors (Tensor): (T, d) token vectors.
        entity_reprs (Tensor): (K, entity_width) entity representations E'.
        entity_spans (Tensor): (K, 2) entity offsets.
        pairs (Tensor): (M, 2) head and tail indices into the entities.
        entity_types (Optional[Tensor]): (K,) entity label ids for C_r.
        entity_logits (Optional[Tensor]): (K, logit_width) entity logits p(s),
            needed when `logit_width` > 0.
        RETURNS (Tuple[Tensor, Tensor]): R_r (M, binary_width) and R'_r (M, typed_width).
        """
        head, tail = pairs[:, 0], pairs[:, 1]
        head_spans, tail_spans = entity_spans[head], entity_spans[tail]
        context = max_pool_ranges(
            token_vectors,
            head_spans[:, 1].minimum(tail_spans[:, 1]),
            head_spans[:, 0].maximum(tail_spans[:, 0]),
        )
        distance = entity_distance(head_spans, tail_spans, self.max_distance)
        parts = [entity_reprs[head], entity_reprs[tail], context]
        if self.distance is not None:
            parts.append(self.distance(distance))
        relation = self.pair_fusion(parts)
        typed = relation
        if self.type_distance is not None:
            feature = self.type_distance(entity_types[head], entity_types[tail], distance)
            typed = self.type_fusion([relation, feature])
        if self.logit_width:
            # r(s1, s2) = ... o p(s1) o p(s2), in the pair's order (SpERT.MT Eq. 15-16)
            logits = torch.cat([entity_logits[head], entity_logits[tail]], dim=-1)
            relation, typed = torch.cat([relation, logits], dim=-1), torch.cat([typed, logits], dim=-1)
        return relation, typed
