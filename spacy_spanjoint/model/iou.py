"""Span overlap with the gold entities (Eq. 11-12 of the SpERT.MT paper).

The IoU of two spans measures how far a candidate span is from an entity;
ENIoU, its largest IoU with any gold entity of the same sentence window,
scales the identification loss of the negative spans (Eq. 13, see
`losses.identification_loss`) so that near misses ("a systemic reaction"
beside "systemic reaction") weigh more than spans far from every entity.
"""
import torch
from torch import Tensor


def span_iou(spans: Tensor, others: Tensor) -> Tensor:
    """IoU of every span with every other span (Eq. 11).

    The paper's inclusive [i, j] offsets become [start, end) here:
    intersection min(end) - max(start), over the hull max(end) - min(start);
    0 when the spans share no token.

    spans (Tensor): (N, 2) [start, end) offsets.
    others (Tensor): (G, 2) [start, end) offsets.
    RETURNS (Tensor): (N, G) float IoU in [0, 1].
    """
    a, b = spans[:, None, :], others[None, :, :]
    intersection = (a[..., 1].minimum(b[..., 1]) - a[..., 0].maximum(b[..., 0])).clamp(min=0)
    hull = a[..., 1].maximum(b[..., 1]) - a[..., 0].minimum(b[..., 0])
    return intersection.float() / hull.clamp(min=1).float()


def entity_iou(spans: Tensor, span_window: Tensor, gold_spans: Tensor, gold_window: Tensor) -> Tensor:
    """ENIoU: the largest IoU of each span with a gold entity of its window (Eq. 12).

    spans (Tensor): (N, 2) candidate span offsets.
    span_window (Tensor): (N,) window id of each span.
    gold_spans (Tensor): (G, 2) gold entity offsets.
    gold_window (Tensor): (G,) window id of each gold entity.
    RETURNS (Tensor): (N,) float ENIoU in [0, 1]; 0 for a window without entities.
    """
    if gold_spans.shape[0] == 0:
        return spans.new_zeros(spans.shape[0], dtype=torch.get_default_dtype())
    same_window = span_window[:, None] == gold_window[None, :]
    return (span_iou(spans, gold_spans) * same_window).max(dim=1).values

