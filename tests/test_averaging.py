"""Parameter averages (`use_averages`) reach the torch layers: the span model
and the transformer evaluate and save with the optimizer's averaged weights."""
import numpy
import spacy
import torch
from thinc.api import Adam, PyTorchWrapper, torch2xp

from spacy_spanjoint.training.averaging import AveragedHFShim, AveragedPyTorchShim, use_averaged_params

from tiny_pipeline import build_tiny_pipeline


def torch_shims(nlp):
    """Every torch shim of the pipeline, by component name."""
    return [(name, shim) for name, pipe in nlp.pipeline
            for node in pipe.model.walk() for shim in node.shims]


def weights_of(shim):
    return {name: value.detach().clone() for name, value in shim._model.named_parameters()}


def test_use_params_applies_the_averages_and_restores_the_weights():
    torch.manual_seed(0)
    model = use_averaged_params(PyTorchWrapper(torch.nn.Linear(3, 2)))
    model.initialize()
    shim = model.shims[0]
    assert isinstance(shim, AveragedPyTorchShim)
    optimizer = Adam(0.1, use_averages=True)
    X = numpy.ones((4, 3), dtype="float32")
    for _ in range(3):
        Y, backprop = model.begin_update(X)
        backprop(numpy.ones_like(Y))
        model.finish_update(optimizer)
    current = weights_of(shim)
    averages = {name: optimizer.averages[(shim.id, name)] for name in current}
    assert not numpy.allclose(averages["weight"], torch2xp(current["weight"]))
    with model.use_params(optimizer.averages):
        for name, value in shim._model.named_parameters():
            numpy.testing.assert_allclose(torch2xp(value.detach()), averages[name])
        averaged_output = model.predict(X)
    numpy.testing.assert_allclose(averaged_output, X @ averages["weight"].T + averages["bias"], rtol=1e-5)
    for name, value in shim._model.named_parameters():
        assert torch.equal(value.detach(), current[name])


def test_use_params_without_averages_keeps_the_weights():
    model = use_averaged_params(PyTorchWrapper(torch.nn.Linear(3, 2)))
    model.initialize()
    before = weights_of(model.shims[0])
    with model.use_params({}):
        after = weights_of(model.shims[0])
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_pipeline_evaluates_and_saves_with_the_averages(tiny_encoder_path, tmp_path):
    optimizer = Adam(0.001, use_averages=True)
    nlp = build_tiny_pipeline(tiny_encoder_path, steps=3, optimizer=optimizer)
    shims = torch_shims(nlp)
    kinds = {name: type(shim) for name, shim in shims}
    assert list(kinds) == ["transformer", "spanjoint"] and len(shims) == 2
    # the encoder's shim is also a SafeLoadingMixin (see test_security.py)
    assert issubclass(kinds["transformer"], AveragedHFShim) and kinds["spanjoint"] is AveragedPyTorchShim
    current = {id(shim): weights_of(shim) for _, shim in shims}
    with nlp.use_params(optimizer.averages):
        for _, shim in shims:
            averaged = [(name, value) for name, value in shim._model.named_parameters()
                        if (shim.id, name) in optimizer.averages]
            assert averaged
            for name, value in averaged:
                numpy.testing.assert_allclose(torch2xp(value.detach()), optimizer.averages[(shim.id, name)])
            assert any(not torch.equal(value.detach(), current[id(shim)][name]) for name, value in averaged)
        nlp.to_disk(tmp_path / "averaged")
    for _, shim in shims:
        assert all(torch.equal(value.detach(), current[id(shim)][name])
                   for name, value in shim._model.named_parameters())
    loaded = spacy.load(tmp_path / "averaged")
    for (_, shim), (_, loaded_shim) in zip(shims, torch_shims(loaded)):
        for name, value in loaded_shim._model.named_parameters():
            key = (shim.id, name)
            expected = optimizer.averages[key] if key in optimizer.averages else torch2xp(current[id(shim)][name])
            numpy.testing.assert_allclose(torch2xp(value.detach()), expected, rtol=1e-6, atol=1e-7)
