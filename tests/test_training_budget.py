"""The shipped configs' training budget: the run ends at `max_steps`, on a step that
spaCy scores on dev, after the learning-rate schedule has reached 0, so the final
model is a candidate for model-best and the extra scored update changes no weight."""
import pytest
import torch
from spacy.training.loop import create_train_batches, train_while_improving
from spacy.util import load_config, minibatch, registry

from test_averaging import torch_shims, weights_of
from test_spanjoint_component import CONFIG, make_examples, make_nlp
from test_spertmt import CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_the_run_ends_on_a_scored_step_where_the_schedule_ends(path):
    training = load_config(path, interpolate=True)["training"]
    schedule = training["optimizer"]["learn_rate"]
    # max_steps, not an epoch count, ends the run (spaCy stops after step max_steps)
    assert training["max_epochs"] == 0 and training["max_steps"] > 0
    assert training["max_steps"] % training["eval_frequency"] == 0
    assert schedule["@schedules"] == "warmup_linear.v1"
    assert schedule["total_steps"] == training["max_steps"]
    assert 0 < schedule["warmup_steps"] < schedule["total_steps"]


def torch_weights(nlp) -> list:
    return [weight for _, shim in torch_shims(nlp) for weight in weights_of(shim).values()]


def test_spacy_scores_the_final_step_and_its_update_changes_no_weight(tiny_encoder_path):
    """spaCy's training loop with the main config's optimizer on a budget of 4 steps."""
    steps, eval_frequency = 4, 2
    nlp = make_nlp(tiny_encoder_path)
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    optimizer_config = load_config(CONFIG)["training"]["optimizer"]
    optimizer_config["learn_rate"].update(warmup_steps=1, total_steps=steps)
    optimizer = registry.resolve({"optimizer": optimizer_config})["optimizer"]
    batches = create_train_batches(nlp, lambda _: examples, lambda egs: minibatch(egs, size=2), max_epochs=0)
    loop = train_while_improving(
        nlp, optimizer, batches, lambda: (0.5, {}), dropout=0.0, eval_frequency=eval_frequency,
        accumulate_gradient=1, patience=0, max_steps=steps, exclude=[], annotating_components=[],
        before_update=None,
    )
    weights, scored = [torch_weights(nlp)], []
    for _, info, _ in loop:
        weights.append(torch_weights(nlp))
        if info["score"] is not None:
            scored.append(info["step"])
    assert scored == [0, 2, 4]
    assert len(weights) == steps + 2  # before training, then after steps 0 to 4
    # the updates with a learning rate above 0 change the weights, the last one does not
    assert any(not torch.equal(a, b) for a, b in zip(weights[-3], weights[-2]))
    assert all(torch.equal(a, b) for a, b in zip(weights[-2], weights[-1]))
