"""The SpERT config as published (configs/paper/conll04_spert.cfg) against the
reference implementation (lavis-nlp/spert): the widths of its classifiers'
inputs, its initialisation, its optimizer's decay groups, its multi-label
relation classifier and loss, and its canonical order of symmetric relations."""
import numpy
import pytest
import torch
import torch.nn.functional as F
from spacy.util import load_config, load_model_from_config, registry
from thinc.api import fix_random_seed

from spacy_spanjoint.layers.blocks import flat_settings
from spacy_spanjoint.model import SpanJointModel
from spacy_spanjoint.model.candidates import training_pairs
from spacy_spanjoint.model.classifiers import PhasedClassifier
from spacy_spanjoint.model.losses import phased_loss
from spacy_spanjoint.training.optimizers import DecayGroupOptimizer

from test_model_units import batch, gold
from test_spanjoint_component import make_examples
from test_spertmt import CONFIG_DIR

PAPER_SPERT = CONFIG_DIR / "paper" / "conll04_spert.cfg"
SPERT_WIDTH_EMBEDDING = 25  # SpERT's size_embedding
SPERT_INIT_STD = 0.02  # BERT's initializer_range, SpERT's init_weights


@pytest.fixture(scope="module")
def paper_spert(tiny_encoder_path):
    """The paper config on the tiny encoder, initialised on the test examples."""
    config = load_config(PAPER_SPERT)
    config["components"]["transformer"]["model"]["name"] = str(tiny_encoder_path)
    fix_random_seed(0)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    optimizer = registry.resolve({"optimizer": config["training"]["optimizer"]})["optimizer"]
    return nlp, examples, optimizer


def head_module(nlp) -> SpanJointModel:
    return nlp.get_pipe("spanjoint").model.layers[1].shims[0]._model


def test_classifier_inputs_have_spert_widths(paper_spert):
    nlp, _, _ = paper_spert
    pipe = nlp.get_pipe("spanjoint")
    d = pipe.model.get_dim("nI")
    head = head_module(nlp)
    # entity: [CLS] context, pooled span, width embedding; one softmax with a none class
    assert head.entity_classifier.joint.in_features == 2 * d + SPERT_WIDTH_EMBEDDING
    assert head.entity_classifier.joint.out_features == len(pipe.entity_labels) + 1
    # relation: both pooled spans with their widths and the context between them, no [CLS];
    # a sigmoid per type, no none class
    assert head.relation_classifier.multilabel.in_features == 3 * d + 2 * SPERT_WIDTH_EMBEDDING
    assert head.relation_classifier.multilabel.out_features == len(pipe.relation_labels)


def test_spert_initialisation_scale(paper_spert):
    head = head_module(paper_spert[0])
    tables = [head.spans.width_embedding.weight, head.entity_classifier.joint.weight,
              head.relation_classifier.multilabel.weight]
    values = torch.cat([t.detach().flatten() for t in tables])
    assert float(values.mean()) == pytest.approx(0.0, abs=0.003)
    assert float(values.std()) == pytest.approx(SPERT_INIT_STD, rel=0.1)
    for bias in (head.entity_classifier.joint.bias, head.relation_classifier.multilabel.bias):
        assert not bias.detach().any()


def test_pair_representation_reads_no_sentence_context():
    """SpERT's pairs (and SpERT.MT Eq. 15) leave [CLS] out; the two-phase pairs (Eq. 7) read it."""
    spans, labels, relations, symmetric = gold()
    for pair_span_context, reads_context in ((False, False), (True, True)):
        torch.manual_seed(0)
        model = SpanJointModel(8, 3, 2, two_phase=False, gated=False, binary_features=False,
                               multiclass_features=False, max_span_width=4, pair_span_context=pair_span_context,
                               width_embedding_size=SPERT_WIDTH_EMBEDDING)
        tokens, contexts, token_window = batch()
        torch.manual_seed(1)
        first = model(tokens, contexts, token_window, spans, labels, relations, symmetric)
        torch.manual_seed(1)
        second = model(tokens, contexts + 1.0, token_window, spans, labels, relations, symmetric)
        assert torch.equal(first["relation.targets"], second["relation.targets"])
        assert torch.equal(first["relation.joint"], second["relation.joint"]) is not reads_context
        assert not torch.equal(first["entity.joint"], second["entity.joint"])  # the entity sees [CLS]


def parameter_names(nlp) -> list:
    """The (shim, parameter name) keys the optimizer sees, encoder and span model."""
    return [(shim.id, name) for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims
            for name, _ in shim._model.named_parameters()] + \
        [(shim.id, name) for shim in nlp.get_pipe("spanjoint").model.layers[1].shims
         for name, _ in shim._model.named_parameters()]


def test_decay_groups_follow_spert(paper_spert):
    nlp, _, optimizer = paper_spert
    assert isinstance(optimizer, DecayGroupOptimizer)
    assert optimizer.L2 == 0.01 and optimizer.L2_is_weight_decay and optimizer.eps == 1e-6
    keys = parameter_names(nlp)
    undecayed = {name for key in keys for name in [key[1]] if not optimizer.decays(key)}
    decayed = {name for key in keys for name in [key[1]] if optimizer.decays(key)}
    # SpERT: no decay for biases and LayerNorm weights, decay for every other weight
    assert undecayed and decayed
    assert all(name.endswith("bias") or name.endswith("LayerNorm.weight") for name in undecayed)
    assert not any(name.endswith("bias") or "LayerNorm" in name for name in decayed)
    assert any("LayerNorm.weight" in name for name in undecayed)
    assert any(name.startswith("entity_classifier") for name in decayed | undecayed)


def test_decay_skips_biases_and_layer_norm_weights():
    optimizer = DecayGroupOptimizer(0.1, L2=0.5, L2_is_weight_decay=True, no_decay=("bias", "LayerNorm.weight"))
    zero_gradient = numpy.zeros((3,), dtype="f")
    for name, expected in (("dense.bias", 1.0), ("embeddings.LayerNorm.weight", 1.0), ("dense.weight", 0.95)):
        weights, _ = optimizer((0, name), numpy.ones((3,), dtype="f"), zero_gradient.copy())
        assert weights == pytest.approx([expected] * 3), name
    assert optimizer.L2 == 0.5  # restored after an undecayed parameter


def test_multi_label_targets_hold_every_gold_type_of_a_pair():
    entity_window = torch.tensor([0, 0, 0])
    gold_relations = torch.tensor([[0, 1, 1], [0, 1, 0], [1, 2, 2]])
    pairs, targets = training_pairs(entity_window, gold_relations, torch.tensor([False, False, False]), 100,
                                    multi_label=True)
    by_pair = {tuple(p): t for p, t in zip(pairs.tolist(), targets.tolist())}
    assert len(by_pair) == len(pairs) == 6  # one candidate per ordered pair
    assert by_pair[(0, 1)] == [1, 1, 0] and by_pair[(1, 2)] == [0, 0, 1]
    assert all(by_pair[p] == [0, 0, 0] for p in [(1, 0), (0, 2), (2, 0), (2, 1)])


def test_symmetric_relations_train_in_one_canonical_order():
    entity_window = torch.tensor([0, 0, 0])
    starts = torch.tensor([5, 0, 9])
    # label 0 symmetric, given tail-first; label 1 directed, given tail-first
    gold_relations = torch.tensor([[0, 1, 0], [2, 0, 1]])
    symmetric = torch.tensor([True, False])
    pairs, labels = training_pairs(entity_window, gold_relations, symmetric, 100, entity_starts=starts)
    by_pair = {tuple(p): int(label) for p, label in zip(pairs.tolist(), labels.tolist())}
    assert by_pair[(1, 0)] == 1 and by_pair[(0, 1)] == 0  # the first entity is the head; its reverse a negative
    assert by_pair[(2, 0)] == 2 and by_pair[(0, 2)] == 0  # a directed relation keeps its order
    both, _ = training_pairs(entity_window, gold_relations, symmetric, 100)
    assert {(0, 1), (1, 0)} <= {tuple(p) for p in both[: 3].tolist()}  # without starts: both directions


def test_multi_label_loss_is_bce_summed_over_types():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 1.0]])
    targets = torch.tensor([[1, 0, 1], [0, 0, 0]])
    expected = F.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none").sum(-1).mean()
    assert phased_loss({"multilabel": logits}, targets).item() == pytest.approx(expected.item())


def test_spert_averages_the_relation_loss_over_the_types(paper_spert):
    # SpERT's loss: rel_loss.sum(-1) / rel_loss.shape[-1], then the mean over the batch's pairs
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, 1.0], [-3.0, 0.0, 1.0, 2.0, -1.0]])
    targets = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 0, 1, 0]])
    per_type = F.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none")
    spert = (per_type.sum(-1) / per_type.shape[-1]).mean()
    found = phased_loss({"multilabel": logits}, targets, multilabel_reduction="mean")
    assert found.item() == pytest.approx(spert.item())
    assert phased_loss({"multilabel": logits}, targets).item() == pytest.approx(5 * spert.item())
    nlp, _, _ = paper_spert
    assert nlp.get_pipe("spanjoint").model.attrs["loss"]["multilabel_reduction"] == "mean"


def test_an_unknown_multilabel_reduction_is_refused():
    with pytest.raises(ValueError, match="multilabel_reduction"):
        registry.get("misc", "spacy-spanjoint.joint_loss.v1")(multilabel_reduction="max")


def test_multi_label_decisions_keep_every_type_above_the_threshold():
    classifier = PhasedClassifier(4, 4, 3, two_phase=False, multi_label=True)
    probabilities = torch.tensor([[0.9, 0.45, 0.1], [0.2, 0.3, 0.39], [0.41, 0.0, 0.8]])
    rows, labels, scores = classifier.decide_each({"multilabel": torch.logit(probabilities)}, 0.4)
    assert list(zip(rows.tolist(), labels.tolist())) == [(0, 0), (0, 1), (2, 0), (2, 2)]
    assert scores.tolist() == pytest.approx([0.9, 0.45, 0.41, 0.8])
    with pytest.raises(ValueError, match="decide_each"):
        classifier.decide({"multilabel": torch.zeros(1, 3)}, 0.4)
    with pytest.raises(ValueError, match="single-phase"):
        PhasedClassifier(4, 4, 3, two_phase=True, multi_label=True)


def test_paper_spert_trains_and_predicts_several_types_per_pair(paper_spert):
    nlp, examples, optimizer = paper_spert
    losses = nlp.update(examples, sgd=optimizer, losses={})
    assert numpy.isfinite(losses["spanjoint"]) and losses["spanjoint"] > 0
    head = head_module(nlp)
    with torch.no_grad():  # every type of every pair above the threshold
        head.relation_classifier.multilabel.bias.fill_(10.0)
        head.entity_classifier.joint.bias.copy_(torch.tensor([-10.0] + [10.0] * (head.entity_classifier.joint.out_features - 1)))
    doc = nlp(" ".join(["John", "Smith", "lives", "in", "New", "York", "."]))
    pipe = nlp.get_pipe("spanjoint")
    # a symmetric type is kept in one direction of a pair only
    directed = set(pipe.relation_labels) - set(pipe.cfg["symmetric_relations"])
    by_pair = {}
    for relation in doc._.relations:
        by_pair.setdefault((relation.head, relation.tail), set()).add(relation.label)
    assert len(directed) > 1 and by_pair and all(directed <= labels for labels in by_pair.values())


PAPER_PARTS = {
    # what each paper names, and nothing else, differs from SpERT as published
    "conll04_two_phase.cfg": {"two_phase", "gated", "gated_relations", "binary_features", "multiclass_features",
                              "relation_threshold", "width_embedding_size", "pair_span_context",
                              "multi_label_relations"},
    "conll04_spertmt.cfg": {"span_negatives", "pair_negatives", "multi_label_relations", "identification_heads",
                            "classification_loss", "iou_weighted_identification", "entity_logits_in_pairs",
                            "class_threshold"},
}


@pytest.mark.parametrize("name", sorted(PAPER_PARTS))
def test_paper_configs_differ_from_spert_only_in_their_papers_parts(name):
    spert = load_config(PAPER_SPERT)
    other = load_config(PAPER_SPERT.parent / name)
    for section in ("paths", "system", "nlp", "corpora", "training", "initialize"):
        assert other[section] == spert[section], section
    assert other["components"]["transformer"] == spert["components"]["transformer"]
    spert_model, other_model = (flat_settings(c["components"]["spanjoint"]) for c in (spert, other))
    changed = {k for k in spert_model.keys() | other_model.keys() if spert_model.get(k) != other_model.get(k)}
    assert changed == PAPER_PARTS[name]


def test_combined_paper_config_is_the_two_phase_one_with_spertmt_parts():
    two_phase, combined = (flat_settings(load_config(PAPER_SPERT.parent / name)["components"]["spanjoint"])
                           for name in ("conll04_two_phase.cfg", "conll04_combined.cfg"))
    changed = {k for k in two_phase.keys() | combined.keys() if two_phase.get(k) != combined.get(k)}
    assert changed == {"identification_heads", "classification_loss", "iou_weighted_identification",
                       "entity_logits_in_pairs"}


def weight_updates(tiny_encoder_path, optimizer, steps: int = 3) -> numpy.ndarray:
    """How a few updates with `optimizer` move the tiny shipped pipeline's torch weights."""
    from test_averaging import torch_shims, weights_of
    from test_spanjoint_component import make_nlp

    nlp = make_nlp(tiny_encoder_path)
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: examples)

    def flat_weights():
        return numpy.concatenate([numpy.asarray(w, dtype="float64").ravel()
                                  for _, shim in torch_shims(nlp) for w in weights_of(shim).values()])

    before = flat_weights()
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, losses={})
    return flat_weights() - before


def test_torch_adamw_updates_as_thinc_adam_does(tiny_encoder_path):
    settings = dict(L2=0.01, beta1=0.9, beta2=0.999, eps=1e-8, no_decay=("bias", "LayerNorm.weight"))
    thinc_path = registry.optimizers.get("spacy-spanjoint.AdamW.v1")(0.001, **settings)
    torch_path = registry.optimizers.get("spacy-spanjoint.TorchAdamW.v1")(0.001, **settings)
    expected = weight_updates(tiny_encoder_path, thinc_path)
    found = weight_updates(tiny_encoder_path, torch_path)
    # the torch path ran, once per torch module (encoder, span model); thinc's kept no state
    assert len(torch_path.torch_optimizers) == 2 and not torch_path.mom1 and thinc_path.mom1
    assert not numpy.array_equal(expected, found)
    # the same updates up to where eps enters (it matters for weights with tiny gradients)
    cosine = expected @ found / (numpy.linalg.norm(expected) * numpy.linalg.norm(found))
    assert cosine > 0.999
    assert numpy.linalg.norm(found) == pytest.approx(numpy.linalg.norm(expected), rel=0.01)


def test_torch_adamw_takes_adam_settings_and_refuses_what_it_cannot_do():
    build = registry.optimizers.get("spacy-spanjoint.TorchAdamW.v1")
    optimizer = build(0.001, L2=0.01, beta1=0.9, beta2=0.999, eps=1e-8, grad_clip=0.0, use_averages=False,
                      L2_is_weight_decay=True)
    assert optimizer.decays((0, "dense.bias"))  # no decay groups unless asked, as thinc's Adam
    for refused in ({"grad_clip": 1.0}, {"use_averages": True}, {"L2_is_weight_decay": False}):
        with pytest.raises(ValueError, match="TorchAdamW.v1 supports"):
            build(0.001, **refused)


def test_without_bias_correction_the_first_steps_are_larger_as_in_spert():
    first_steps = {}
    for correct_bias in (True, False):
        optimizer = DecayGroupOptimizer(0.01, L2=0.0, beta1=0.9, beta2=0.999, eps=1e-6, correct_bias=correct_bias)
        weights, _ = optimizer((0, "w"), numpy.zeros((2,), dtype="f"), numpy.array([1.0, -2.0], dtype="f"))
        first_steps[correct_bias] = weights
    # step 1: m = 0.1 g, v = 0.001 g^2; corrected, lr * sign(g); uncorrected, lr * 0.1 / sqrt(0.001)
    assert first_steps[True] == pytest.approx([-0.01, 0.01], rel=1e-3)
    assert first_steps[False] == pytest.approx([-0.01 * 0.1 / 0.001 ** 0.5, 0.01 * 0.1 / 0.001 ** 0.5], rel=1e-3)
