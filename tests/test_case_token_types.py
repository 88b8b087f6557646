"""Token case as the encoder's token types (`spacy_spanjoint/encoder/case_token_types.py`):
the grown table, the type ids of the word pieces, and the pipeline on the tiny encoder."""
import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc
from thinc.api import Adam
from thinc.types import Ragged
from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

from spacy_spanjoint.encoder.case_token_types import add_case_token_types, with_case_token_types
from spacy_spanjoint.encoder.transformer import tokenize_windows
from spacy_spanjoint.model.token_case import LOWER, N_CASE_CLASSES, OTHER, TITLE, UPPER

from test_spanjoint_component import make_config, make_examples, make_nlp, predictions, scores, words_doc


def tiny_bert():
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=16, max_position_embeddings=32))


def test_table_becomes_one_row_per_class_each_a_copy_of_type_zero():
    model = tiny_bert()
    before = model.embeddings.token_type_embeddings.weight.detach().clone()
    assert before.shape[0] == 2
    add_case_token_types(model)
    after = model.embeddings.token_type_embeddings.weight.detach()
    assert after.shape == (N_CASE_CLASSES, 8)
    assert model.config.type_vocab_size == N_CASE_CLASSES
    assert all(torch.equal(after[row], before[0]) for row in range(N_CASE_CLASSES))
    # a second call (a loaded pipeline) leaves the trained rows alone
    with torch.no_grad():
        model.embeddings.token_type_embeddings.weight[3] += 1.0
    grown = model.embeddings.token_type_embeddings.weight.detach().clone()
    add_case_token_types(model)
    assert torch.equal(model.embeddings.token_type_embeddings.weight.detach(), grown)


def test_untrained_rows_leave_the_encoder_output_unchanged():
    model = tiny_bert().eval()
    ids = torch.tensor([[1, 5, 6, 7, 2]])
    plain = model(input_ids=ids).last_hidden_state
    add_case_token_types(model)
    typed = model(input_ids=ids, token_type_ids=torch.tensor([[0, TITLE, LOWER, UPPER, 0]])).last_hidden_state
    assert torch.allclose(plain, typed, atol=1e-6)
    # once a row has learned, its class changes the output
    with torch.no_grad():
        model.embeddings.token_type_embeddings.weight[TITLE] += torch.linspace(-1.0, 1.0, 8)
    learned = model(input_ids=ids, token_type_ids=torch.tensor([[0, TITLE, LOWER, UPPER, 0]])).last_hidden_state
    assert not torch.allclose(plain, learned, atol=1e-3)


def test_encoder_without_token_types_is_refused_by_name():
    model = GPT2Model(GPT2Config(vocab_size=50, n_embd=8, n_layer=1, n_head=2, n_positions=16))
    with pytest.raises(ValueError, match="token_type_embeddings.*case_token_types = false"):
        add_case_token_types(model)


def test_each_piece_gets_its_tokens_case_class(tiny_encoder_path):
    nlp = make_nlp(tiny_encoder_path)
    nlp.initialize(lambda: make_examples(nlp.vocab))
    encoder = nlp.get_pipe("transformer").model
    doc = Doc(nlp.vocab, words=["Washington", "visited", "NASA", "headquarters", "."],
              sent_starts=[True, False, False, False, False])
    other = Doc(nlp.vocab, words=["it", "rained"])
    windows = [doc[:], other[:]]
    wordpieces, align = tokenize_windows(encoder, windows)
    typed = with_case_token_types(wordpieces, align, windows)
    types = typed.token_type_ids
    assert types.shape == wordpieces.input_ids.shape
    flat = types.reshape(-1)
    expected = [TITLE, LOWER, UPPER, LOWER, OTHER, LOWER, LOWER]
    for token, case in enumerate(expected):
        rows = align[token].dataXd.reshape(-1)
        assert len(rows) > 0
        assert set(flat[rows].tolist()) == {case}
    # [CLS], [SEP] and padding keep type 0
    covered = numpy.zeros(flat.shape, dtype=bool)
    covered[numpy.asarray(align.dataXd).reshape(-1)] = True
    assert (flat[~covered] == 0).all()
    assert numpy.array_equal(typed.input_ids, wordpieces.input_ids)


def test_alignment_of_other_tokens_is_refused():
    from spacy_transformers.data_classes import WordpieceBatch

    vocab = spacy.blank("en").vocab
    windows = [Doc(vocab, words=["a", "b"])[:]]
    pieces = WordpieceBatch(strings=[["[CLS]", "a", "[SEP]"]], input_ids=numpy.zeros((1, 3), dtype="int64"),
                            attention_mask=numpy.ones((1, 3), dtype="float32"), lengths=[3], token_type_ids=None)
    align = Ragged(numpy.array([1], dtype="int32"), numpy.array([1], dtype="int32"))
    with pytest.raises(ValueError, match="2 tokens in the windows but 1 in the word-piece alignment"):
        with_case_token_types(pieces, align, windows)


def case_typed_nlp(encoder_path):
    config = make_config(encoder_path)
    config["components"]["transformer"]["model"]["case_token_types"] = True
    from spacy.util import fix_random_seed, load_model_from_config

    fix_random_seed(0)
    return load_model_from_config(config, auto_fill=True, validate=True)


def test_pipeline_trains_the_case_rows_and_round_trips(tiny_encoder_path, tmp_path):
    nlp = case_typed_nlp(tiny_encoder_path)
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    table = nlp.get_pipe("transformer").model.transformer.embeddings.token_type_embeddings
    assert table.num_embeddings == N_CASE_CLASSES
    start = table.weight.detach().clone()
    optimizer = Adam(0.001)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer, losses={})
    table = nlp.get_pipe("transformer").model.transformer.embeddings.token_type_embeddings
    moved = (table.weight.detach() - start).abs().sum(dim=1)
    # the fixtures have title-case, lower-case and punctuation tokens: their rows learn
    for row in (TITLE, LOWER, OTHER):
        assert moved[row] > 0
    words = ["Mary", "works", "for", "Acme", "Corp", "in", "Paris", "."]
    doc = nlp(words_doc(nlp, words))
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    loaded_table = loaded.get_pipe("transformer").model.transformer.embeddings.token_type_embeddings
    assert torch.equal(loaded_table.weight.detach(), table.weight.detach())
    again = loaded(words_doc(loaded, words))
    assert predictions(again) == predictions(doc)
    assert scores(again) == pytest.approx(scores(doc), abs=1e-5)
