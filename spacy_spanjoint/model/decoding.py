"""Flat entity decoding: keep a non-overlapping subset of the predicted spans.

Span-based extraction scores every span on its own, so a corpus without
nested entities still gets overlapping predictions ("John Wilkes" beside
"John Wilkes Booth"). With `flat_entities`, the highest-scoring span of each
overlapping cluster wins, greedily by score, as tensor operations: in each
round every span that beats all its live overlapping rivals is kept, and the
spans it overlaps are dropped; the result equals one-by-one greedy decoding.
"""
import torch
from torch import Tensor


def greedy_non_overlapping(spans: Tensor, groups: Tensor, scores: Tensor) -> Tensor:
    """Mask of the spans kept by greedy-by-score non-overlapping decoding.

    spans (Tensor): (K, 2) [start, end) offsets.
    groups (Tensor): (K,) window ids; spans of different windows never compete.
    scores (Tensor): (K,) entity scores; ties go to the earlier span.
    RETURNS (Tensor): (K,) bool, True for the kept spans.
    """
    n = spans.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=spans.device)
    overlap = (
        (spans[:, None, 0] < spans[None, :, 1])
        & (spans[None, :, 0] < spans[:, None, 1])
        & (groups[:, None] == groups[None, :])
    )
    overlap.fill_diagonal_(False)
    order = torch.argsort(-scores, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=spans.device)
    better = overlap & (rank[None, :] < rank[:, None])
    alive = torch.ones(n, dtype=torch.bool, device=spans.device)
    kept = torch.zeros(n, dtype=torch.bool, device=spans.device)
    while bool(alive.any()):
        winners = alive & ~(better & alive[None, :]).any(dim=1)
        kept |= winners
        alive &= ~winners & ~(overlap & winners[None, :]).any(dim=1)
    return kept
