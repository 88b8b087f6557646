"""Global features of entity pairs (sections 3.2.2 and 3.3.2 of the two-phase paper).

Binary global feature D_r: a learned embedding of the entity distance.
Multi-class global feature C_r: a learned embedding per (head type, tail
type, distance), the Cartesian product of Eq. 13.
"""
from typing import Optional

from torch import Tensor, nn

from .embeddings import learned_embedding


def entity_distance(head_spans: Tensor, tail_spans: Tensor, max_distance: int) -> Tensor:
    """Tokens strictly between two spans (0 when they touch or overlap), clipped.

    head_spans (Tensor): (M, 2) [start, end) of the head entities.
    tail_spans (Tensor): (M, 2) [start, end) of the tail entities.
    max_distance (int): Distances above it are set to it (10 in the paper).
    RETURNS (Tensor): (M,) distances in 0..max_distance.
    """
    gap = (head_spans[:, 0].maximum(tail_spans[:, 0]) - head_spans[:, 1].minimum(tail_spans[:, 1]))
    return gap.clamp(min=0, max=max_distance)


class DistanceFeature(nn.Module):
    """D_r: one embedding per entity distance 0..max_distance (binary global feature)."""

    def __init__(self, width: int, max_distance: int, init_std: Optional[float] = None):
        super().__init__()
        self.embedding = learned_embedding(max_distance + 1, width, init_std)

    def forward(self, distance: Tensor) -> Tensor:
        return self.embedding(distance)


class TypeDistanceFeature(nn.Module):
    """C_r: one embedding per (head type, tail type, distance) of Eq. 13."""

    def __init__(self, width: int, n_entity_labels: int, max_distance: int, init_std: Optional[float] = None):
        super().__init__()
        self.n_entity_labels = n_entity_labels
        self.n_distances = max_distance + 1
        self.embedding = learned_embedding(n_entity_labels * n_entity_labels * self.n_distances, width, init_std)

    def forward(self, head_type: Tensor, tail_type: Tensor, distance: Tensor) -> Tensor:
        index = (head_type * self.n_entity_labels + tail_type) * self.n_distances + distance
        return self.embedding(index)
