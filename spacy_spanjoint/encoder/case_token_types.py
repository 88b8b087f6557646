"""Token case as the encoder's token types: capitalisation inside the transformer.

The default encoder (MiniLM) is uncased: "Apple" and "apple" are the same
word pieces. `model.token_case.TokenCaseFeature` adds a case embedding to the
token vectors after the encoder, so the transformer layers never see it. This
feeds it in at the bottom instead: each word piece's token type id is the
case class of the token it belongs to (`model.token_case.case_class`), and the
encoder's token type embedding table becomes one row per case class. Every
row starts as a copy of row 0, the type of a single-sentence input, so the
untrained encoder computes exactly what it computed before; the second-segment
row of sentence-pair inputs is dropped (windows are single sequences). Special
tokens and padding keep type 0. Not part of either paper.

It needs an encoder with a token type embedding (`embeddings.token_type_embeddings`:
BERT, MiniLM and their relatives).
"""
from typing import List

import numpy
import torch
from spacy.tokens import Span
from spacy_transformers.data_classes import WordpieceBatch
from thinc.types import Ragged

from ..model.token_case import N_CASE_CLASSES, case_classes


def token_type_embeddings(transformer) -> torch.nn.Embedding:
    """The encoder's token type embedding table, or a ValueError naming the encoder."""
    embeddings = getattr(transformer, "embeddings", None)
    table = getattr(embeddings, "token_type_embeddings", None)
    if not isinstance(table, torch.nn.Embedding):
        name = getattr(transformer.config, "_name_or_path", type(transformer).__name__)
        raise ValueError(
            f"case_token_types needs an encoder with a token type embedding "
            f"(embeddings.token_type_embeddings, as in BERT); '{name}' "
            f"({type(transformer).__name__}) has none: set case_token_types = false"
        )
    return table


def add_case_token_types(transformer) -> None:
    """Replace the token type table by `N_CASE_CLASSES` rows, each a copy of row 0.

    Idempotent: a table that already has the rows (a saved pipeline, loaded
    from its config) is left as it is.
    """
    table = token_type_embeddings(transformer)
    if table.num_embeddings == N_CASE_CLASSES:
        return
    weight = table.weight.detach()
    grown = torch.nn.Embedding(N_CASE_CLASSES, table.embedding_dim, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        grown.weight.copy_(weight[:1].expand(N_CASE_CLASSES, -1))
    transformer.embeddings.token_type_embeddings = grown
    transformer.config.type_vocab_size = N_CASE_CLASSES


def with_case_token_types(wordpieces: WordpieceBatch, align: Ragged, windows: List[Span]) -> WordpieceBatch:
    """The word pieces with each piece's token type set to its token's case class.

    wordpieces (WordpieceBatch): One row per window (padded to seq_len).
    align (Ragged): Token -> rows of the flattened (windows x seq_len) pieces,
        one entry per token of the windows, in order.
    windows (List[Span]): The windows, in the order of the rows.
    RETURNS (WordpieceBatch): A copy with `token_type_ids` filled in.
    """
    shape = wordpieces.input_ids.shape
    types = numpy.zeros(shape, dtype=wordpieces.input_ids.dtype)
    texts = [token.text for window in windows for token in window]
    lengths = numpy.asarray(align.lengths, dtype="int64")
    if len(texts) != len(lengths):
        raise ValueError(f"with_case_token_types: {len(texts)} tokens in the windows but "
                         f"{len(lengths)} in the word-piece alignment")
    pieces = numpy.asarray(align.dataXd, dtype="int64").reshape(-1)
    if pieces.size:
        types.reshape(-1)[pieces] = numpy.repeat(numpy.asarray(case_classes(texts), dtype=types.dtype), lengths)
    return WordpieceBatch(
        strings=wordpieces.strings,
        input_ids=wordpieces.input_ids,
        attention_mask=wordpieces.attention_mask,
        lengths=wordpieces.lengths,
        token_type_ids=types,
    )
