"""Phase one and phase two classifiers (Eq. 6, 10, 12, 14 of the two-phase paper).

With `two_phase=True`, a binary head decides entity / not-entity (relation /
not-relation) and a type head picks the type of the positives. With
`two_phase=False` one softmax over a "none" class plus the types does both
at once, as SpERT does.
"""
from typing import Dict, Tuple

import torch
from torch import Tensor, nn

NONE = 0  # index of the "none" class in single-phase targets and logits


class PhasedClassifier(nn.Module):
    """Binary identification then typing, or one classifier with a none class.

    binary_width (int): Width of the phase-one representation.
    typed_width (int): Width of the phase-two representation.
    n_labels (int): Number of types.
    two_phase (bool): Two heads (the paper) or one with a none class (SpERT).
    """

    def __init__(self, binary_width: int, typed_width: int, n_labels: int, two_phase: bool = True):
        super().__init__()
        self.two_phase = two_phase
        if two_phase:
            self.binary = nn.Linear(binary_width, 1)  # Eq. 6a / 10a
            self.typed = nn.Linear(typed_width, n_labels)  # Eq. 12a / 14a
        else:
            self.joint = nn.Linear(typed_width, n_labels + 1)

    def forward(self, binary_repr: Tensor, typed_repr: Tensor) -> Dict[str, Tensor]:
        if self.two_phase:
            return {"binary": self.binary(binary_repr).squeeze(-1), "types": self.typed(typed_repr)}
        return {"joint": self.joint(typed_repr)}

    def decide(self, logits: Dict[str, Tensor], threshold: float) -> Tuple[Tensor, Tensor, Tensor]:
        """Turn logits into decisions.

        Two-phase: positive when sigmoid(binary) >= threshold (Eq. 6b / 10b),
        type by argmax of the softmax (Eq. 12b / 14b), score = binary
        probability x type probability. Single-phase: positive when the best
        class is not "none", score = its probability.

        RETURNS (Tuple[Tensor, Tensor, Tensor]): positive mask, label ids
            (0-based types, also for the negatives) and scores.
        """
        if self.two_phase:
            is_positive = torch.sigmoid(logits["binary"])
            type_probs, labels = torch.softmax(logits["types"], dim=-1).max(dim=-1)
            return is_positive >= threshold, labels, is_positive * type_probs
        probs = torch.softmax(logits["joint"], dim=-1)
        best_prob, best = probs.max(dim=-1)
        labels = probs[:, NONE + 1 :].argmax(dim=-1) if probs.shape[0] else best
        return best != NONE, labels, best_prob
