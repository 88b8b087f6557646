"""Learned embeddings of the span model (width, distance, type x type x distance)."""
from typing import Optional

from torch import nn


def learned_embedding(count: int, width: int, init_std: Optional[float] = None) -> nn.Embedding:
    """An embedding table of `count` rows of size `width`.

    init_std (Optional[float]): Standard deviation of the initial rows. None
        keeps torch's N(0, 1): rows of norm about sqrt(width), about 20 for
        width 384, while MiniLM's token vectors have a norm of about 7. In a
        gated (convex) fusion such rows outweigh the encoder's vectors until
        they are learned; a small value (0.02, BERT's initializer_range)
        starts them near zero.
    """
    embedding = nn.Embedding(count, width)
    if init_std is not None:
        nn.init.normal_(embedding.weight, mean=0.0, std=init_std)
    return embedding
