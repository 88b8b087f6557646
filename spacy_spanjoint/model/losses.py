"""Training losses of the two-phase model (Eq. 11, 15, 16)."""
from typing import Dict

import torch.nn.functional as F
from torch import Tensor


def phased_loss(logits: Dict[str, Tensor], targets: Tensor) -> Tensor:
    """Loss of one classifier: targets 0 = negative, k = type k - 1.

    Two-phase logits ("binary", "types"): binary cross-entropy over all
    candidates (Eq. 11) plus cross-entropy of the types over the gold
    positives only (Eq. 15; phase two learns on gold items). Single-phase
    logits ("joint"): cross-entropy with the none class (SpERT).

    logits (Dict[str, Tensor]): A `PhasedClassifier`'s output.
    targets (Tensor): (N,) target ids.
    RETURNS (Tensor): The scalar loss; 0 when there are no candidates.
    """
    if targets.numel() == 0:
        return next(iter(logits.values())).sum() * 0.0
    if "joint" in logits:
        return F.cross_entropy(logits["joint"], targets)
    positive = targets > 0
    loss = F.binary_cross_entropy_with_logits(logits["binary"], positive.float())
    if positive.any():
        loss = loss + F.cross_entropy(logits["types"][positive], targets[positive] - 1)
    else:
        loss = loss + logits["types"].sum() * 0.0
    return loss


def joint_loss(entity_logits: Dict[str, Tensor], entity_targets: Tensor,
               relation_logits: Dict[str, Tensor], relation_targets: Tensor) -> Tensor:
    """L = sum of the binary and the multi-class losses of both tasks (Eq. 16)."""
    return phased_loss(entity_logits, entity_targets) + phased_loss(relation_logits, relation_targets)
