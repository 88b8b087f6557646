"""Int8 quantization of the encoder: it predicts like the float pipeline,
and training or saving it is refused with a clear error."""
import json

import numpy
import pytest
import spacy
import torch
from typer.testing import CliRunner

from spacy_spanjoint import quantize_encoder
from spacy_spanjoint.cli import app
from test_spanjoint_component import make_examples

TEXTS = ["John Smith lives in New York.", "Mary works for Acme Corp in Paris."]


@pytest.fixture
def saved_pipeline(saved_tiny_pipeline):
    return saved_tiny_pipeline[1]


def encoder_linears(nlp):
    modules = [shim._model for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims]
    kinds = (torch.nn.Linear, torch.ao.nn.quantized.dynamic.Linear)
    return [m for module in modules for m in module.modules() if isinstance(m, kinds)]


def hidden_states(nlp, text):
    return nlp(text)._.trf_data.tensors[0].ravel()


def test_quantized_encoder_has_int8_linears_and_close_hidden_states(saved_pipeline):
    float_nlp, int8_nlp = spacy.load(saved_pipeline), quantize_encoder(spacy.load(saved_pipeline))
    assert all(type(m) is torch.nn.Linear for m in encoder_linears(float_nlp))
    quantized = encoder_linears(int8_nlp)
    assert quantized and all(type(m) is torch.ao.nn.quantized.dynamic.Linear for m in quantized)
    for text in TEXTS:
        float_states, int8_states = hidden_states(float_nlp, text), hidden_states(int8_nlp, text)
        assert not numpy.array_equal(float_states, int8_states)
        cosine = float_states @ int8_states / (numpy.linalg.norm(float_states) * numpy.linalg.norm(int8_states))
        assert cosine > 0.99
    for doc in int8_nlp.pipe(TEXTS):
        assert len(doc.spans["entities"]) > 0 and len(doc._.relations) > 0


def test_quantizing_twice_is_a_no_op(saved_pipeline):
    nlp = quantize_encoder(spacy.load(saved_pipeline))
    assert quantize_encoder(nlp) is nlp
    assert nlp("Anna married Tom.").spans["entities"] is not None


def test_a_quantized_pipeline_cannot_be_saved(saved_pipeline, tmp_path):
    nlp = quantize_encoder(spacy.load(saved_pipeline))
    with pytest.raises(ValueError, match="quantized to int8.*cannot be saved"):
        nlp.to_disk(tmp_path / "int8")
    with pytest.raises(ValueError, match="cannot be saved"):
        nlp.to_bytes()


def test_a_quantized_pipeline_cannot_be_trained(saved_pipeline):
    nlp = quantize_encoder(spacy.load(saved_pipeline))
    examples = make_examples(nlp.vocab)
    for example in examples:
        example.predicted = nlp.get_pipe("sentencizer")(example.predicted)
    with pytest.raises(ValueError, match="cannot be trained"):
        nlp.update(examples, losses={})


def test_quantize_needs_a_transformer_component():
    with pytest.raises(ValueError, match="no component 'transformer'"):
        quantize_encoder(spacy.blank("en"))


def test_predict_cli_int8_writes_predictions(saved_pipeline, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf8")
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["predict", str(saved_pipeline), str(source), str(output), "--int8"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text(encoding="utf8").splitlines()]
    assert len(records) == 2 and all(r["entities"] for r in records)
