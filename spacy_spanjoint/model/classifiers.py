"""Identification and classification heads (two-phase Eq. 6, 10, 12, 14; SpERT.MT Eq. 6, 18).

With `two_phase=True`, a binary head decides entity / not-entity (relation /
not-relation) and a type head picks the type of the positives. With
`two_phase=False` one softmax over a "none" class plus the types does both
at once, as SpERT does.

SpERT.MT's multi-task framework adds, to a single-phase classifier, a binary
identification head trained beside it (`identification=True`), and replaces
the softmax by class scores s^T W_c over the types alone (`ranking=True`,
Eq. 6), trained with the pairwise ranking loss; its prediction thresholds the
best class score (Eq. 18) and leaves the identification head out.

SpERT's relation classifier is a third kind of single-phase classifier
(`multi_label=True`): one sigmoid per type, no none class, each type
predicted where its probability reaches the threshold, so a pair may hold
several types.
"""
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

NONE = 0  # index of the "none" class in single-phase targets and logits


class PhasedClassifier(nn.Module):
    """Binary identification then typing, or one classifier with a none class.

    binary_width (int): Width of the phase-one / identification representation.
    typed_width (int): Width of the phase-two / classification representation.
    n_labels (int): Number of types.
    two_phase (bool): Two heads (the two-phase paper) or one with a none class (SpERT).
    identification (bool): A binary identification head beside a single-phase
        classifier (SpERT.MT Eq. 4-5); the two-phase model has it anyway (phase one).
    ranking (bool): Class scores s^T W_c over the types (SpERT.MT Eq. 6),
        output as "scores", instead of softmax logits.
    hidden_width (int): 0: each head is the papers' linear map; above 0: a
        hidden layer of this width with a ReLU before it (not in the papers).
    multi_label (bool): One sigmoid per type instead of a softmax with a none
        class, output as "multilabel" (SpERT's relation classifier); single-phase
        softmax classifiers only.
    """

    def __init__(self, binary_width: int, typed_width: int, n_labels: int, two_phase: bool = True,
                 identification: bool = False, ranking: bool = False, hidden_width: int = 0,
                 multi_label: bool = False):
        super().__init__()
        if multi_label and (two_phase or ranking):
            raise ValueError("a multi-label (sigmoid per type) classifier is single-phase with no ranking scores: "
                             "set two_phase = false and classification_loss = 'softmax'")
        self.two_phase = two_phase
        self.ranking = ranking
        self.multi_label = multi_label
        self.binary = None
        if multi_label:
            self.multilabel = scoring_head(typed_width, n_labels, hidden_width)
        elif two_phase:
            self.binary = scoring_head(binary_width, 1, hidden_width)  # Eq. 6a / 10a
            self.typed = scoring_head(typed_width, n_labels, hidden_width, bias=not ranking)  # Eq. 12a / 14a
        elif ranking:
            self.typed = scoring_head(typed_width, n_labels, hidden_width, bias=False)  # SpERT.MT Eq. 6
        else:
            self.joint = scoring_head(typed_width, n_labels + 1, hidden_width)
        if identification and not two_phase:
            self.binary = scoring_head(binary_width, 1, hidden_width)  # SpERT.MT Eq. 4
        self.class_key = self.class_key_for(two_phase, ranking, multi_label)
        self.class_width = self.class_width_for(n_labels, two_phase, ranking)

    @staticmethod
    def class_key_for(two_phase: bool, ranking: bool, multi_label: bool = False) -> str:
        """Output key of the classification logits: "scores", "types", "multilabel" or "joint"."""
        if multi_label:
            return "multilabel"
        return "scores" if ranking else ("types" if two_phase else "joint")

    @staticmethod
    def class_width_for(n_labels: int, two_phase: bool, ranking: bool) -> int:
        """Width of the classification logits (the entity logits p(s) of SpERT.MT Eq. 15)."""
        return n_labels if two_phase or ranking else n_labels + 1

    @property
    def class_head(self) -> nn.Module:
        """The head of the `class_key` logits."""
        return getattr(self, self.class_key if self.class_key in ("joint", "multilabel") else "typed")

    def heads(self) -> List[Tuple[str, nn.Module]]:
        """The output key and module of each head, in output order."""
        return ([("binary", self.binary)] if self.binary is not None else []) + [(self.class_key, self.class_head)]

    def forward(self, binary_repr: Tensor, typed_repr: Tensor) -> Dict[str, Tensor]:
        output = {}
        if self.binary is not None:
            output["binary"] = self.binary(binary_repr).squeeze(-1)
        output[self.class_key] = self.class_head(typed_repr)
        return output

    def stacked_linear(self) -> Optional[Tuple[Tensor, Tensor]]:
        """All heads as one linear map (weight (k, width), bias (k,)) when
        each head is a linear map of one and the same representation, else None.
        `split_stacked` turns its output back into this classifier's logits."""
        heads = [head for _, head in self.heads()]
        if not all(isinstance(head, nn.Linear) for head in heads) or len({h.in_features for h in heads}) != 1:
            return None
        weight = torch.cat([head.weight for head in heads])
        bias = torch.cat([head.weight.new_zeros(head.out_features) if head.bias is None else head.bias
                          for head in heads])
        return weight, bias

    def split_stacked(self, stacked: Tensor) -> Dict[str, Tensor]:
        """The logits of `forward` from the (N, k) output of `stacked_linear`."""
        keys, heads = zip(*self.heads())
        output = dict(zip(keys, stacked.split([head.out_features for head in heads], dim=-1)))
        if "binary" in output:
            output["binary"] = output["binary"].squeeze(-1)
        return output

    def decide(self, logits: Dict[str, Tensor], threshold: float,
               class_threshold: Optional[float] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Turn logits into decisions.

        With `class_threshold` (SpERT.MT Eq. 18): positive when the best class
        score is at least theta, label = that class, score = sigmoid of it;
        the identification head is not used. Otherwise, two-phase: positive
        when sigmoid(binary) >= threshold (Eq. 6b / 10b), type by argmax (Eq.
        12b / 14b), score = binary probability x type probability (softmax of
        the types, or sigmoid of a ranking class score). Single-phase: positive
        when the best class is not "none", score = its probability.

        logits (Dict[str, Tensor]): This classifier's output.
        threshold (float): Phase-one probability threshold.
        class_threshold (Optional[float]): theta of Eq. 18, on the raw class scores.
        RETURNS (Tuple[Tensor, Tensor, Tensor]): positive mask, label ids
            (0-based types, also for the negatives) and scores in [0, 1].
        """
        if self.multi_label:
            raise ValueError("a multi-label classifier may give a candidate several types: use `decide_each`")
        if class_threshold is not None:
            return threshold_class_scores(logits["scores"], class_threshold)
        if self.two_phase:
            is_positive = torch.sigmoid(logits["binary"])
            if self.ranking:
                type_scores, labels = logits["scores"].max(dim=-1)
                type_probs = torch.sigmoid(type_scores)
            else:
                type_probs, labels = torch.softmax(logits["types"], dim=-1).max(dim=-1)
            return is_positive >= threshold, labels, is_positive * type_probs
        probs = torch.softmax(logits["joint"], dim=-1)
        best_prob, best = probs.max(dim=-1)
        labels = probs[:, NONE + 1 :].argmax(dim=-1) if probs.shape[0] else best
        return best != NONE, labels, best_prob


    def decide_each(self, logits: Dict[str, Tensor], threshold: float,
                    class_threshold: Optional[float] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Decisions as (candidate, type) items: for a multi-label classifier
        every type whose sigmoid reaches `threshold` (SpERT's relation filter),
        else the one type of each positive of `decide`.

        RETURNS (Tuple[Tensor, Tensor, Tensor]): candidate rows, their label
            ids and scores in [0, 1], ordered by row.
        """
        if self.multi_label:
            probs = torch.sigmoid(logits["multilabel"])
            rows, labels = torch.nonzero(probs >= threshold, as_tuple=True)
            return rows, labels, probs[rows, labels]
        is_positive, labels, scores = self.decide(logits, threshold, class_threshold)
        rows = torch.nonzero(is_positive).squeeze(1)
        return rows, labels[rows], scores[rows]


def scoring_head(n_in: int, n_out: int, hidden_width: int = 0, bias: bool = True) -> nn.Module:
    """A linear map (hidden_width 0), or Linear -> ReLU -> Linear with that hidden width."""
    if hidden_width < 0:
        raise ValueError(f"classifier hidden width must be 0 (linear) or positive, got {hidden_width}")
    if hidden_width == 0:
        return nn.Linear(n_in, n_out, bias=bias)
    return nn.Sequential(nn.Linear(n_in, hidden_width), nn.ReLU(), nn.Linear(hidden_width, n_out, bias=bias))


def threshold_class_scores(scores: Tensor, theta: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Prediction from the class scores alone (SpERT.MT Eq. 18).

    The class with the highest score wins if that score is at least theta;
    otherwise the candidate is "NA". The ranking loss pulls gold scores above
    m+ and wrong ones below -m-, so theta = 0.85 sits between the margins.

    scores (Tensor): (N, C) class scores s^T W_c.
    theta (float): The threshold, on the raw scores.
    RETURNS (Tuple[Tensor, Tensor, Tensor]): positive mask, best class ids,
        and sigmoid(best score) as a confidence in [0, 1] (monotone in the score).
    """
    best, labels = scores.max(dim=-1)
    return best >= theta, labels, torch.sigmoid(best)
