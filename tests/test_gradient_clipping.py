"""Gradient clipping by global norm (`max_grad_norm`, SpERT's recipe): each
component's torch gradient reaches the optimizer with an L2 norm of at most
`max_norm`, and the direction is kept."""
import math

import numpy
import pytest
import spacy
import torch
from thinc.api import Optimizer, PyTorchWrapper, fix_random_seed

from spacy_spanjoint.training.gradient_clipping import clip_gradient_norm, torch_parameters

from test_spanjoint_component import make_config, make_examples


class RecordingAdam(Optimizer):
    """thinc's Adam without its per-weight clipping, recording each gradient it is given."""

    def __init__(self):
        super().__init__(0.001, grad_clip=0.0)
        self.seen = {}

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.seen[key] = gradient.copy()
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


def linear_with_gradient(scale: float):
    torch.manual_seed(0)
    model = PyTorchWrapper(torch.nn.Linear(4, 3))
    model.initialize()
    X = numpy.ones((2, 4), dtype="float32")
    Y, backprop = model.begin_update(X)
    backprop(numpy.full_like(Y, scale))
    return model


def global_norm(gradients):
    return math.sqrt(sum(float((g ** 2).sum()) for g in gradients))


def test_clip_scales_every_gradient_to_the_global_norm():
    model = linear_with_gradient(100.0)
    before = [p.grad.clone() for p in torch_parameters(model)]
    norm = clip_gradient_norm(model, 1.0)
    after = [p.grad for p in torch_parameters(model)]
    assert norm == pytest.approx(global_norm(g.numpy() for g in before), rel=1e-5)
    assert norm > 1.0
    assert global_norm(g.numpy() for g in after) == pytest.approx(1.0, rel=1e-4)
    for old, new in zip(before, after):  # one factor for all: the direction is kept
        torch.testing.assert_close(new, old / norm, rtol=1e-4, atol=1e-7)


def test_small_gradient_and_switched_off_are_left_alone():
    model = linear_with_gradient(1e-4)
    before = [p.grad.clone() for p in torch_parameters(model)]
    assert clip_gradient_norm(model, 1.0) < 1.0
    assert clip_gradient_norm(model, None) is None
    assert clip_gradient_norm(model, 0.0) is None
    for old, p in zip(before, torch_parameters(model)):
        assert torch.equal(old, p.grad)


def test_model_without_gradients_is_left_alone():
    model = PyTorchWrapper(torch.nn.Linear(4, 3))
    model.initialize()
    assert clip_gradient_norm(model, 1.0) is None


def gradient_norms(nlp, optimizer):
    """Global norm of the gradients the optimizer received, per component."""
    norms = {}
    for name, pipe in nlp.pipeline:
        ids = {shim.id for node in pipe.model.walk() for shim in node.shims}
        norms[name] = global_norm(g for (shim_id, _), g in optimizer.seen.items() if shim_id in ids)
    return norms


def updated_pipeline(encoder_path, max_grad_norm, clip_with_listener=False):
    """One update of the tiny pipeline; the span model clips to `max_grad_norm`, and the encoder too
    (on its own, or with `clip_with_listener` together with the span model)."""
    config = make_config(encoder_path, max_grad_norm=max_grad_norm)
    encoder = config["components"]["transformer"]["model"]
    encoder["max_grad_norm"] = None if clip_with_listener else max_grad_norm
    encoder["clip_with_listener"] = clip_with_listener
    fix_random_seed(0)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    optimizer = RecordingAdam()
    # as spaCy's training loop does: all gradients first, then each component's update
    nlp.update(examples, sgd=False, losses={})
    for _, pipe in nlp.pipeline:
        pipe.finish_update(optimizer)
    return nlp, optimizer


def test_pipeline_update_clips_each_component(tiny_encoder_path):
    max_norm = 1e-3  # far below the tiny pipeline's first gradients
    nlp, optimizer = updated_pipeline(tiny_encoder_path, None)
    unclipped = gradient_norms(nlp, optimizer)
    assert unclipped["transformer"] > max_norm and unclipped["spanjoint"] > max_norm
    nlp, optimizer = updated_pipeline(tiny_encoder_path, max_norm)
    clipped = gradient_norms(nlp, optimizer)
    assert clipped["transformer"] == pytest.approx(max_norm, rel=1e-3)
    assert clipped["spanjoint"] == pytest.approx(max_norm, rel=1e-3)


@pytest.mark.parametrize("component", ["transformer", "spanjoint"])
def test_negative_max_grad_norm_is_refused(tiny_encoder_path, component):
    config = make_config(tiny_encoder_path)
    setting = "max_grad_norm" if component == "transformer" else "head_max_grad_norm"
    config["components"][component]["model"][setting] = -1.0
    with pytest.raises(ValueError, match="max_grad_norm"):
        spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


def test_clip_with_listener_clips_encoder_and_span_model_to_one_norm(tiny_encoder_path):
    max_norm = 1e-3
    nlp, optimizer = updated_pipeline(tiny_encoder_path, max_norm, clip_with_listener=True)
    norms = gradient_norms(nlp, optimizer)
    assert norms["transformer"] > 0 and norms["spanjoint"] > 0  # both were updated
    assert math.hypot(norms["transformer"], norms["spanjoint"]) == pytest.approx(max_norm, rel=1e-3)
    # the two keep the ratio of their unclipped gradients (each clipped alone would reach max_norm)
    unclipped = gradient_norms(*updated_pipeline(tiny_encoder_path, None))
    ratio = norms["transformer"] / norms["spanjoint"]
    assert ratio == pytest.approx(unclipped["transformer"] / unclipped["spanjoint"], rel=1e-3)


def test_clip_with_listener_refuses_an_encoder_norm_and_a_missing_listener(tiny_encoder_path):
    config = make_config(tiny_encoder_path)
    config["components"]["transformer"]["model"]["clip_with_listener"] = True
    config["components"]["transformer"]["model"]["max_grad_norm"] = 1.0
    with pytest.raises(ValueError, match="clip_with_listener"):
        spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    config["components"]["transformer"]["model"]["max_grad_norm"] = None
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    optimizer = RecordingAdam()
    transformer = nlp.get_pipe("transformer")
    nlp.update(examples, sgd=False, losses={})
    transformer.finish_update(optimizer)  # the spanjoint component never takes it
    nlp.update(examples, sgd=False, losses={})
    with pytest.raises(RuntimeError, match="no spanjoint component took"):
        transformer.finish_update(optimizer)
