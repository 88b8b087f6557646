"""Span representation: max-pooled tokens, sentence context and width (Eq. 3-5).

With `boundary_tokens` the first and last token vectors of the span join the
three representations (not in the papers: max-pooling alone barely tells
"John Wilkes" from "John Wilkes Booth", and span models such as PURE read the
span's ends).
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from .embeddings import learned_embedding
from .gated_fusion import GatedFusion


def max_pool_ranges(token_vectors: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
    """Max-pool token vectors over [start, end) ranges (Eq. 4 and 9).

    A sparse table holds the max of every run of 2^k tokens, so each range is
    the max of two (overlapping) runs: memory and time grow with the number
    of ranges, not with their length. An empty range (end <= start) gives a
    zero vector, as for the context of two entities that touch or overlap.

    token_vectors (Tensor): (T, d) token vectors x_i.
    starts (Tensor): (N,) first token of each range.
    ends (Tensor): (N,) end (exclusive) of each range.
    RETURNS (Tensor): (N, d) pooled vectors.
    """
    n, width = starts.shape[0], token_vectors.shape[1]
    lengths = (ends - starts).clamp(min=0)
    if n == 0 or token_vectors.shape[0] == 0:
        return token_vectors.new_zeros((n, width))
    levels = [token_vectors]
    longest = int(lengths.max())
    while 2 ** len(levels) <= longest:
        step = 2 ** (len(levels) - 1)
        previous = levels[-1]
        levels.append(torch.maximum(previous[:-step], previous[step:]))
    level = torch.floor(torch.log2(lengths.clamp(min=1).to(torch.float64))).long()
    table = torch.cat(levels)
    level_start = torch.tensor([0] + [len(t) for t in levels], device=starts.device).cumsum(0)[level]
    # an empty range may start at T (two spans ending the batch); its value is masked
    safe_starts = starts.clamp(min=0, max=token_vectors.shape[0] - 1)
    left = table[level_start + safe_starts]
    right = table[level_start + (safe_starts + lengths.clamp(min=1) - 2 ** level)]
    pooled = torch.maximum(left, right)
    empty = lengths == 0
    # candidate spans are never empty: skip a pass over the (N, d) result for them
    return pooled.masked_fill(empty.unsqueeze(1), 0.0) if bool(empty.any()) else pooled


class SpanRepresentation(nn.Module):
    """E'_S = fuse(max-pool of the span's tokens, x0, width embedding) (Eq. 4-5).

    width (int): d, the encoder width.
    max_width (int): Largest width with its own embedding; wider gold spans
        share the last one.
    gated (bool): Gated fusion (Eq. 5) or concatenation (SpERT).
    positional (bool): A linear map per representation before the gate
        (see `GatedFusion`); off is Eq. 5 as published.
    embedding_init_std (Optional[float]): Initial scale of the width
        embedding (see `embeddings.learned_embedding`).
    boundary_tokens (bool): Add the span's first and last token vectors as
        two more representations (gated or concatenated like the others).
    width_embedding_size (Optional[int]): Size of the width embedding (SpERT:
        25); None: d, as the gate needs.
    """

    def __init__(self, width: int, max_width: int, gated: bool = True, positional: bool = False,
                 embedding_init_std: Optional[float] = None, boundary_tokens: bool = False,
                 width_embedding_size: Optional[int] = None):
        super().__init__()
        self.max_width = max_width
        self.boundary_tokens = boundary_tokens
        width_size = width if width_embedding_size is None else width_embedding_size
        self.width_embedding = learned_embedding(max_width + 1, width_size, embedding_init_std)
        widths = [width, width, width_size] + ([width, width] if boundary_tokens else [])
        self.fusion = GatedFusion(widths, gated, positional=positional)
        self.output_width = self.fusion.output_width
        # c(s) = v(s) o w, the span in a SpERT pair (SpERT.MT Eq. 15): no context x0
        self.context_free_width = width + width_size

    def parts(self, token_vectors: Tensor, contexts: Tensor, spans: Tensor, span_window: Tensor) -> List[Tensor]:
        """The representations E1, E2, E3 of Eq. 5 for each span (then the
        first and last token vectors with `boundary_tokens`)."""
        pooled, widths = self.pooled_and_widths(token_vectors, spans)
        parts = [pooled, contexts[span_window], self.width_embedding(widths)]
        if self.boundary_tokens:
            parts += [token_vectors[spans[:, 0]], token_vectors[spans[:, 1] - 1]]
        return parts

    def part_tables(self, token_vectors: Tensor, contexts: Tensor, spans: Tensor,
                    span_window: Tensor) -> Tuple[List[Tensor], List[Optional[Tensor]]]:
        """The same representations as tables and the row of each span in
        them: the pooled tokens (one row per span), x0 (one row per window),
        the width embedding (one row per width) and the token vectors."""
        pooled, widths = self.pooled_and_widths(token_vectors, spans)
        tables = [pooled, contexts, self.width_embedding.weight]
        indices = [None, span_window, widths]
        if self.boundary_tokens:
            tables += [token_vectors, token_vectors]
            indices += [spans[:, 0], spans[:, 1] - 1]
        return tables, indices

    def context_free(self, token_vectors: Tensor, spans: Tensor) -> Tensor:
        """c(s) = v(s) o w: the max-pooled tokens and the width embedding, without
        the context x0, as SpERT's relation classifier reads a span (SpERT.MT Eq. 15).

        RETURNS (Tensor): (N, context_free_width).
        """
        pooled, widths = self.pooled_and_widths(token_vectors, spans)
        return torch.cat([pooled, self.width_embedding(widths)], dim=-1)

    def pooled_and_widths(self, token_vectors: Tensor, spans: Tensor) -> Tuple[Tensor, Tensor]:
        """Max-pool of each span's tokens (Eq. 4) and its width, clipped to `max_width`."""
        pooled = max_pool_ranges(token_vectors, spans[:, 0], spans[:, 1])
        return pooled, (spans[:, 1] - spans[:, 0]).clamp(max=self.max_width)

    def forward(self, token_vectors: Tensor, contexts: Tensor, spans: Tensor, span_window: Tensor) -> Tensor:
        return self.fusion(self.parts(token_vectors, contexts, spans, span_window))

    def linear_map(self, token_vectors: Tensor, contexts: Tensor, spans: Tensor, span_window: Tensor,
                   weight: Tensor, bias: Tensor) -> Tensor:
        """W E'_S + b for every span without building E'_S (`GatedFusion.linear_map`).

        RETURNS (Tensor): (N, k), equal to `linear(self(...), weight, bias)` up to rounding.
        """
        tables, indices = self.part_tables(token_vectors, contexts, spans, span_window)
        return self.fusion.linear_map(tables, indices, weight, bias)
