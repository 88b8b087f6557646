"""bfloat16 autocast of the encoder: at prediction (`predict_precision`) and in
the training forward pass (`train_precision`), float32 hidden states for the
span model, float32 weights and gradients, close predictions, and a clear
error for an unknown setting."""
import json

import numpy
import pytest
import spacy
import torch
from thinc.api import Adam
from typer.testing import CliRunner

from spacy_spanjoint import quantize_encoder
from spacy_spanjoint.cli import app
from spacy_spanjoint.encoder.precision import effective_precision, has_native_bfloat16, uses_bfloat16
from test_spanjoint_component import make_examples

TEXTS = ["John Smith lives in New York.", "Mary works for Acme Corp in Paris."]


def load_with_precision(path, precision):
    return spacy.load(path, config={"components": {"transformer": {"model": {"predict_precision": precision}}}})


def record_linear_dtypes(nlp):
    """The output dtypes of the encoder's first linear layer, one entry per call."""
    shims = [shim for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims]
    linear = next(m for shim in shims for m in shim._model.modules() if isinstance(m, torch.nn.Linear))
    seen = []
    linear.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    return seen


@pytest.fixture
def saved_pipeline(saved_tiny_pipeline):
    return saved_tiny_pipeline[1]


def test_bfloat16_prediction_autocasts_the_encoder_and_hands_on_float32(saved_pipeline):
    float_nlp, bf16_nlp = spacy.load(saved_pipeline), load_with_precision(saved_pipeline, "bfloat16")
    assert bf16_nlp.get_pipe("transformer").model.predict_precision == "bfloat16"
    assert effective_precision(float_nlp.get_pipe("transformer").model) == "float32"
    assert effective_precision(bf16_nlp.get_pipe("transformer").model) == "bfloat16"
    float_dtypes, bf16_dtypes = record_linear_dtypes(float_nlp), record_linear_dtypes(bf16_nlp)
    for text in TEXTS:
        float_states = float_nlp(text)._.trf_data.tensors[0]
        bf16_states = bf16_nlp(text)._.trf_data.tensors[0]
        assert bf16_states.dtype == numpy.float32
        assert not numpy.array_equal(float_states, bf16_states)
        a, b = float_states.ravel(), bf16_states.ravel()
        assert a @ b / (numpy.linalg.norm(a) * numpy.linalg.norm(b)) > 0.99
    assert float_dtypes and set(float_dtypes) == {torch.float32}
    assert bf16_dtypes and set(bf16_dtypes) == {torch.bfloat16}
    for doc in bf16_nlp.pipe(TEXTS * 3, batch_size=2):
        assert len(doc.spans["entities"]) > 0 and len(doc._.relations) > 0
        assert all(0.0 <= score <= 1.0 for score in doc.spans["entities"].attrs["scores"])


def test_training_stays_float32_under_bfloat16_prediction(saved_pipeline):
    nlp = load_with_precision(saved_pipeline, "bfloat16")
    dtypes = record_linear_dtypes(nlp)
    examples = make_examples(nlp.vocab)
    for example in examples:
        example.predicted = nlp.get_pipe("sentencizer")(example.predicted)
    losses = nlp.update(examples, losses={})
    assert numpy.isfinite(losses["spanjoint"]) and losses["spanjoint"] > 0
    assert dtypes and set(dtypes) == {torch.float32}


def test_bfloat16_training_autocasts_the_forward_pass_and_keeps_float32_gradients(saved_pipeline):
    nlp = spacy.load(saved_pipeline, config={"components": {"transformer": {"model": {"train_precision": "bfloat16"}}}})
    trf = nlp.get_pipe("transformer").model
    dtypes = record_linear_dtypes(nlp)
    examples = make_examples(nlp.vocab)
    for example in examples:
        example.predicted = nlp.get_pipe("sentencizer")(example.predicted)
    optimizer = Adam(0.001)
    before = [p.detach().clone() for p in trf.transformer.parameters()]
    losses = [nlp.update(examples, sgd=optimizer, losses={})["spanjoint"] for _ in range(3)]
    assert all(numpy.isfinite(losses)) and losses[-1] < losses[0]
    assert dtypes and set(dtypes) == {torch.bfloat16}
    after = list(trf.transformer.parameters())
    assert all(p.dtype == torch.float32 for p in after)
    assert any(not torch.equal(b, a) for b, a in zip(before, after))  # the encoder learned
    nlp("John Smith lives in New York.")  # prediction keeps predict_precision (float32 here)
    assert dtypes[-1] == torch.float32


def test_the_setting_is_saved_with_the_pipeline(saved_pipeline, tmp_path):
    load_with_precision(saved_pipeline, "bfloat16").to_disk(tmp_path / "bf16")
    reloaded = spacy.load(tmp_path / "bf16")
    assert reloaded.get_pipe("transformer").model.predict_precision == "bfloat16"
    assert reloaded.config["components"]["transformer"]["model"]["predict_precision"] == "bfloat16"


def test_an_int8_encoder_ignores_bfloat16(saved_pipeline):
    nlp = quantize_encoder(load_with_precision(saved_pipeline, "bfloat16"))
    int8_reference = quantize_encoder(spacy.load(saved_pipeline))
    assert effective_precision(nlp.get_pipe("transformer").model) == "int8"
    for text in TEXTS:
        numpy.testing.assert_array_equal(nlp(text)._.trf_data.tensors[0], int8_reference(text)._.trf_data.tensors[0])


def test_unknown_precision_is_refused_by_name(saved_pipeline):
    with pytest.raises(ValueError, match="predict_precision must be one of.*'float16'"):
        load_with_precision(saved_pipeline, "float16")


@pytest.mark.parametrize("amx,avx512_bf16,expected", [(True, False, True), (False, True, True), (False, False, False)])
def test_auto_follows_the_processor(saved_pipeline, monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    cpu = torch.device("cpu")
    assert has_native_bfloat16() is expected
    assert uses_bfloat16("auto", cpu) is expected
    assert uses_bfloat16("bfloat16", cpu) is True
    assert uses_bfloat16("float32", cpu) is False
    assert uses_bfloat16("bfloat16", torch.device("cuda")) is False
    auto_nlp = load_with_precision(saved_pipeline, "auto")
    assert effective_precision(auto_nlp.get_pipe("transformer").model) == ("bfloat16" if expected else "float32")


def test_predict_cli_precision(saved_pipeline, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf8")
    output = tmp_path / "out.jsonl"
    args = ["predict", str(saved_pipeline), str(source), str(output)]
    result = CliRunner().invoke(app, args + ["--precision", "bfloat16"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text(encoding="utf8").splitlines()]
    assert len(records) == 2 and all(r["entities"] for r in records)
    refused = CliRunner().invoke(app, args + ["--precision", "float16"])
    assert refused.exit_code == 1 and "Unknown --precision 'float16'" in refused.output
