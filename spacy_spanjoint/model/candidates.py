"""Candidate spans and entity pairs, built as tensor index operations.

Spans: every span of at most `max_width` tokens inside one sentence window
(Eq. 1 of the two-phase paper). Pairs: every ordered pair of distinct
entities of the same window (Eq. 7). Training candidates follow SpERT's
negative sampling: all gold items plus up to N random negatives per window.
"""
from typing import Optional

import torch
from torch import Tensor


def enumerate_spans(token_window: Tensor, max_width: int) -> Tensor:
    """All spans of width 1..max_width that do not cross a window boundary (Eq. 1).

    token_window (Tensor): (T,) window id of each token; windows are contiguous.
    max_width (int): The span width threshold epsilon.
    RETURNS (Tensor): (N, 2) [start, end) token offsets, ordered by start, then end.
    """
    n_tokens = token_window.shape[0]
    spans = []
    for width in range(1, min(max_width, n_tokens) + 1):
        starts = torch.arange(n_tokens - width + 1, device=token_window.device)
        ends = starts + width
        inside = token_window[starts] == token_window[ends - 1]
        spans.append(torch.stack([starts[inside], ends[inside]], dim=1))
    if not spans:
        return torch.zeros((0, 2), dtype=torch.long, device=token_window.device)
    spans = torch.cat(spans)
    order = torch.argsort(spans[:, 0] * (max_width + 1) + (spans[:, 1] - spans[:, 0]))
    return spans[order]


def group_ranks(groups: Tensor, keys: Tensor) -> Tensor:
    """Rank of each item within its group, ordered by `keys` (0 = smallest key).

    groups (Tensor): (K,) group id of each item.
    keys (Tensor): (K,) sort keys within a group.
    RETURNS (Tensor): (K,) rank of each item inside its group.
    """
    if groups.numel() == 0:
        return groups.clone()
    order = torch.argsort(keys, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]
    sorted_groups = groups[order]
    positions = torch.arange(groups.shape[0], device=groups.device)
    group_start = torch.searchsorted(sorted_groups, sorted_groups, right=False)
    ranks = torch.empty_like(positions)
    ranks[order] = positions - group_start
    return ranks


def sample_per_group(groups: Tensor, limit: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Keep at most `limit` random items of each group.

    groups (Tensor): (K,) group id of each item.
    limit (int): Largest number of items kept per group.
    RETURNS (Tensor): (K,) bool mask of the kept items.
    """
    keys = torch.rand(groups.shape[0], generator=generator, device=groups.device)
    return group_ranks(groups, keys) < limit


def ordered_pairs(groups: Tensor) -> Tensor:
    """All ordered pairs (i, j), i != j, of items in the same group (Eq. 7).

    groups (Tensor): (K,) group id (sentence window) of each entity.
    RETURNS (Tensor): (P, 2) item indices, head-major in item order.
    """
    device = groups.device
    if groups.numel() == 0:
        return torch.zeros((0, 2), dtype=torch.long, device=device)
    order = torch.argsort(groups, stable=True)
    sorted_groups = groups[order]
    group_start = torch.searchsorted(sorted_groups, sorted_groups, right=False)
    group_size = torch.searchsorted(sorted_groups, sorted_groups, right=True) - group_start
    n_partners = group_size
    heads = torch.repeat_interleave(torch.arange(groups.shape[0], device=device), n_partners)
    first_pair = torch.cumsum(n_partners, 0) - n_partners
    offset = torch.arange(heads.shape[0], device=device) - torch.repeat_interleave(first_pair, n_partners)
    tails = torch.repeat_interleave(group_start, n_partners) + offset
    pairs = torch.stack([order[heads], order[tails]], dim=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return pairs[torch.argsort(pairs[:, 0] * groups.shape[0] + pairs[:, 1])]


def training_spans(
    token_window: Tensor, gold_spans: Tensor, max_width: int, negatives_per_window: int
) -> Tensor:
    """Gold entity spans plus up to N random non-entity spans per window.

    token_window (Tensor): (T,) window id per token.
    gold_spans (Tensor): (G, 2) gold entity offsets.
    max_width (int): Width threshold for the negative spans.
    negatives_per_window (int): N, SpERT's 100.
    RETURNS (Tensor): (G + S, 2) spans, the G gold spans first.
    """
    candidates = enumerate_spans(token_window, max_width)
    n_tokens = token_window.shape[0] + 1
    is_gold = torch.isin(
        candidates[:, 0] * n_tokens + candidates[:, 1], gold_spans[:, 0] * n_tokens + gold_spans[:, 1]
    )
    negatives = candidates[~is_gold]
    keep = sample_per_group(token_window[negatives[:, 0]], negatives_per_window)
    return torch.cat([gold_spans, negatives[keep]])


def training_pairs(
    entity_window: Tensor, gold_relations: Tensor, symmetric: Tensor, negatives_per_window: int,
    *, entity_starts: Optional[Tensor] = None, multi_label: bool = False,
) -> tuple:
    """Gold relations plus up to N random unrelated pairs of gold entities per window.

    A symmetric relation is a positive in both directions; with
    `entity_starts`, in one canonical direction instead, the entity that
    starts first as the head, as SpERT trains them (its reverse is then an
    unrelated pair that may be sampled as a negative).

    entity_window (Tensor): (G,) window id of each gold entity.
    gold_relations (Tensor): (R, 3) head index, tail index, label (0-based).
    symmetric (Tensor): (n_relation_labels,) bool, which labels are symmetric.
    negatives_per_window (int): N, SpERT's 100.
    entity_starts (Optional[Tensor]): (G,) first token of each gold entity,
        for the canonical direction of symmetric relations; None: both directions.
    multi_label (bool): Targets as an (M, n_relation_labels) 0/1 matrix with
        every gold label of a pair, as SpERT's sigmoid classifier learns them;
        else one label per pair, the first gold relation's.
    RETURNS (Tuple[Tensor, Tensor]): (M, 2) pairs and their targets: (M,)
        ids, 0 = no relation, k = relation label k - 1, or the (M, L) matrix.
    """
    device = entity_window.device
    on_symmetric = symmetric[gold_relations[:, 2]]
    if entity_starts is None:
        positives = torch.cat([gold_relations, gold_relations[on_symmetric][:, [1, 0, 2]]])
    else:
        flip = on_symmetric & (entity_starts[gold_relations[:, 1]] < entity_starts[gold_relations[:, 0]])
        positives = torch.where(flip[:, None], gold_relations[:, [1, 0, 2]], gold_relations)
    # gold relations across windows cannot be candidates
    positives = positives[entity_window[positives[:, 0]] == entity_window[positives[:, 1]]]
    n_entities = entity_window.shape[0] + 1
    keys = positives[:, 0] * n_entities + positives[:, 1]
    # one candidate per pair, at the first gold relation of the pair
    first = group_ranks(keys, torch.arange(keys.shape[0], device=device)) == 0
    pair_keys = keys[first]
    pairs = ordered_pairs(entity_window)
    unrelated = pairs[~torch.isin(pairs[:, 0] * n_entities + pairs[:, 1], pair_keys)]
    keep = sample_per_group(entity_window[unrelated[:, 0]], negatives_per_window)
    negatives = unrelated[keep]
    all_pairs = torch.cat([positives[first][:, :2], negatives])
    if multi_label:
        targets = torch.zeros((all_pairs.shape[0], symmetric.shape[0]), dtype=torch.long, device=device)
        sorted_keys, order = pair_keys.sort()
        targets[order[torch.searchsorted(sorted_keys, keys)], positives[:, 2]] = 1
        return all_pairs, targets
    labels = torch.cat(
        [positives[first][:, 2] + 1, torch.zeros(negatives.shape[0], dtype=torch.long, device=device)]
    )
    return all_pairs, labels
