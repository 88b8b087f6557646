"""Training losses.

Two-phase paper: BCE of phase one (Eq. 11) + CE of phase two (Eq. 15),
summed over both tasks (Eq. 16). SpERT: one CE with a none class.
SpERT.MT paper: identification BCE (Eq. 4-5), optionally scaled by ENIoU
(Eq. 13), plus the pairwise ranking loss of the class scores (Eq. 6-9),
weighted alpha / beta (Eq. 10) and summed over both tasks (Eq. 17).

Which loss applies follows from the classifier's output keys (see
`classifiers.PhasedClassifier`): "binary" (identification / phase one),
"types" (phase-two softmax), "joint" (softmax with a none class), "scores"
(ranking class scores), "multilabel" (SpERT's sigmoid per relation type, a
BCE summed over the types). All losses are means over the candidates, where the
papers write sums, so their scale does not depend on the number of sampled
negatives.
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def identification_loss(logits: Tensor, targets: Tensor, eniou: Optional[Tensor] = None,
                        delta: float = 0.25) -> Tensor:
    """Binary cross-entropy of the identification head (SpERT.MT Eq. 4-5, two-phase Eq. 11).

    With `eniou`, the dynamically scaled BCE of SpERT.MT Eq. 13:
    H = -q (1 - delta) log p - delta (1 - q) (1 + ENIoU) log(1 - p),
    so a negative span that overlaps a gold entity (a hard negative) costs
    more than one far from every entity.

    logits (Tensor): (N,) identification logits (p = sigmoid(logits)).
    targets (Tensor): (N,) target ids, 0 = negative (q = 0), k > 0 = positive.
    eniou (Optional[Tensor]): (N,) ENIoU of each candidate (Eq. 12); None for plain BCE.
    delta (float): The balancing factor delta of Eq. 13 (0.25; below 0.5
        weighs the positives more).
    RETURNS (Tensor): The mean loss over the candidates.
    """
    positive = (targets > 0).to(logits.dtype)
    if eniou is None:
        return F.binary_cross_entropy_with_logits(logits, positive)
    weight = positive * (1.0 - delta) + (1.0 - positive) * delta * (1.0 + eniou.to(logits.dtype))
    return (F.binary_cross_entropy_with_logits(logits, positive, reduction="none") * weight).mean()


def ranking_loss(scores: Tensor, targets: Tensor, margin_positive: float = 2.5,
                 margin_negative: float = 0.5, scale: float = 2.0) -> Tensor:
    """Pairwise ranking loss of the class scores (SpERT.MT Eq. 7-9).

    For a positive, L+ = log(1 + exp(gamma (m+ - score_y+))) pulls the gold
    class score above m+ (Eq. 7). For every candidate, L- = log(1 + exp(gamma
    (m- + score_y-))) pushes the highest-scoring wrong class below -m- (Eq. 8);
    a negative has no gold class, so all classes are wrong and only L- counts.

    scores (Tensor): (N, C) class scores s^T W_c (Eq. 6), no none class.
    targets (Tensor): (N,) 0 = negative, k = class k - 1.
    margin_positive (float): m+ (2.5).
    margin_negative (float): m- (0.5).
    scale (float): gamma (2).
    RETURNS (Tensor): The mean of L+ + L- over the candidates (Eq. 9).
    """
    positive = targets > 0
    gold = (targets - 1).clamp(min=0)
    is_gold = F.one_hot(gold, scores.shape[1]).bool() & positive[:, None]
    gold_score = scores.gather(1, gold[:, None]).squeeze(1)
    loss_positive = F.softplus(scale * (margin_positive - gold_score)) * positive
    # hardest negative: the best wrong class; none when the only class is the gold one
    has_wrong = (~is_gold).any(dim=1)
    hardest = scores.masked_fill(is_gold, float("-inf")).max(dim=1).values
    hardest = torch.where(has_wrong, hardest, torch.zeros_like(hardest))
    loss_negative = F.softplus(scale * (margin_negative + hardest)) * has_wrong
    return (loss_positive + loss_negative).mean()


# the weights of the two tasks in the loss, alpha and beta of SpERT.MT Eq. 10
LOSS_WEIGHTS = ("identification_weight", "classification_weight")


def phased_loss(
    logits: Dict[str, Tensor],
    targets: Tensor,
    eniou: Optional[Tensor] = None,
    *,
    identification_weight: float = 1.0,
    classification_weight: float = 1.0,
    ranking_margin_positive: float = 2.5,
    ranking_margin_negative: float = 0.5,
    ranking_scale: float = 2.0,
    iou_delta: float = 0.25,
    multilabel_reduction: str = "sum",
) -> Tensor:
    """Loss of one classifier: alpha * identification + beta * classification (SpERT.MT Eq. 10).

    Identification ("binary"): BCE over all candidates (two-phase Eq. 11,
    SpERT.MT Eq. 4-5), IoU-scaled with `eniou` (Eq. 13). Classification:
    "types", CE over the gold positives only (two-phase Eq. 15; phase two
    learns on gold items); "joint", CE with the none class (SpERT); "scores",
    the ranking loss over all candidates (SpERT.MT Eq. 6-9); "multilabel",
    SpERT's relation loss, a BCE per type summed over the types, with targets
    given as an (N, L) 0/1 matrix. With the default
    weights of 1 this is the two-phase paper's sum.

    logits (Dict[str, Tensor]): A `PhasedClassifier`'s output.
    targets (Tensor): (N,) target ids, 0 = negative, k = type k - 1; (N, L)
        0/1 per type for "multilabel".
    eniou (Optional[Tensor]): (N,) ENIoU per candidate, for Eq. 13.
    identification_weight (float): alpha of Eq. 10.
    classification_weight (float): beta of Eq. 10.
    ranking_margin_positive, ranking_margin_negative, ranking_scale (float):
        m+, m- and gamma of Eq. 7-8.
    iou_delta (float): delta of Eq. 13.
    multilabel_reduction (str): "sum" or "mean" of the per-type BCE of a candidate.
    RETURNS (Tensor): The scalar loss; 0 when there are no candidates.
    """
    if targets.numel() == 0:
        return sum(value.sum() for value in logits.values()) * 0.0
    loss = 0.0
    if "binary" in logits:
        loss = identification_weight * identification_loss(logits["binary"], targets, eniou, iou_delta)
    if "joint" in logits:
        return loss + classification_weight * F.cross_entropy(logits["joint"], targets)
    if "multilabel" in logits:
        per_type = F.binary_cross_entropy_with_logits(logits["multilabel"], targets.to(logits["multilabel"].dtype),
                                                      reduction="none")
        per_candidate = per_type.mean(dim=-1) if multilabel_reduction == "mean" else per_type.sum(dim=-1)
        return loss + classification_weight * per_candidate.mean()
    if "scores" in logits:
        ranking = ranking_loss(logits["scores"], targets, ranking_margin_positive, ranking_margin_negative, ranking_scale)
        return loss + classification_weight * ranking
    positive = targets > 0
    if positive.any():
        return loss + classification_weight * F.cross_entropy(logits["types"][positive], targets[positive] - 1)
    return loss + logits["types"].sum() * 0.0


def joint_loss(entity_logits: Dict[str, Tensor], entity_targets: Tensor,
               relation_logits: Dict[str, Tensor], relation_targets: Tensor,
               entity_eniou: Optional[Tensor] = None, **weights: float) -> Tensor:
    """L = entity loss + relation loss (two-phase Eq. 16, SpERT.MT Eq. 17).

    entity_eniou (Optional[Tensor]): ENIoU of the entity candidates; scales the
        entity identification loss (SpERT.MT Eq. 13). Relations have none.
    weights: Keyword arguments of `phased_loss` (alpha, beta, margins, gamma, delta).
    """
    return (phased_loss(entity_logits, entity_targets, entity_eniou, **weights)
            + phased_loss(relation_logits, relation_targets, **weights))
