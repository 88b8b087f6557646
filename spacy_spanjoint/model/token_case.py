"""Token case feature: what an uncased encoder cannot see.

The default encoder (MiniLM, uncased) lowercases its input, so "Apple" and
"apple" reach the span model as the same word pieces. In CoNLL04, 1,005 of
the 1,079 test entities start with a capitalised token. This feature gives
that back: each token's vector gets a learned embedding of its case class
added, x_i <- x_i + K[case(t_i)], before the span and context pooling (Eq. 4
and 9 of the two-phase paper then pool the sums). It is not part of either
paper; the table starts at zero, so an untrained feature leaves the model
exactly as published.
"""
from functools import lru_cache
from typing import Iterable, List

import torch
from torch import Tensor, nn

# Case classes, in the order of the embedding rows.
LOWER, TITLE, UPPER, DIGIT, OTHER = range(5)
N_CASE_CLASSES = 5


@lru_cache(maxsize=65536)
def case_class(text: str) -> int:
    """The case class of one token's text.

    TITLE: first letter upper-case, not all letters upper-case (or a single
    letter); UPPER: two or more letters, all upper-case; LOWER: first
    character a lower-case letter; DIGIT: first character a digit; OTHER:
    punctuation, symbols, uncased scripts and the empty string.
    """
    if not text:
        return OTHER
    first = text[0]
    if first.isdigit():
        return DIGIT
    if first.islower():
        return LOWER
    if first.isupper():
        letters = [c for c in text if c.isalpha()]
        if len(letters) > 1 and all(c.isupper() for c in letters):
            return UPPER
        return TITLE
    return OTHER


def case_classes(texts: Iterable[str]) -> List[int]:
    """`case_class` of each token text, in order."""
    return [case_class(text) for text in texts]


class TokenCaseFeature(nn.Module):
    """x_i + K[case(t_i)]: one learned vector per case class, added to the token vectors.

    width (int): d, the encoder width.
    """

    def __init__(self, width: int):
        super().__init__()
        self.embedding = nn.Embedding(N_CASE_CLASSES, width)
        nn.init.zeros_(self.embedding.weight)

    def forward(self, token_vectors: Tensor, token_case: Tensor) -> Tensor:
        """token_vectors (Tensor): (T, d); token_case (Tensor): (T,) case class ids."""
        if token_case.shape[0] != token_vectors.shape[0]:
            raise ValueError(f"TokenCaseFeature: {token_vectors.shape[0]} token vectors but "
                             f"{token_case.shape[0]} case classes")
        return token_vectors + self.embedding(token_case.to(torch.long))
