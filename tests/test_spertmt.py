"""The SpERT.MT parts (equation numbers of the SpERT.MT paper): ranking loss (Eq. 6-9),
IoU and ENIoU (Eq. 11-12), the IoU-scaled BCE (Eq. 13), entity logits in the pair
representation (Eq. 15-16), prediction from class scores (Eq. 18), and every shipped
config training one step on a tiny encoder."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from spacy.util import load_config, load_model_from_config
from thinc.api import Adam, fix_random_seed

from spacy_spanjoint.layers.blocks import flat_settings
from spacy_spanjoint.model import SpanJointModel
from spacy_spanjoint.model.classifiers import PhasedClassifier, threshold_class_scores
from spacy_spanjoint.model.iou import entity_iou, span_iou
from spacy_spanjoint.model.losses import identification_loss, joint_loss, phased_loss, ranking_loss
from spacy_spanjoint.model.relation_representation import RelationRepresentation

from test_spanjoint_component import TRAIN_DATA, make_examples

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# the shipped recipe (configs/*.cfg) and the paper configs (configs/paper/*.cfg)
CONFIGS = sorted(CONFIG_DIR.rglob("*.cfg"))
WIDTH, N_ENTITY, N_RELATION = 8, 3, 2
SPERT_MT = dict(two_phase=False, gated=False, binary_features=False, multiclass_features=False,
                identification_heads=True, classification_loss="ranking", iou_weighted_identification=True,
                entity_logits_in_pairs=True, class_threshold=0.85)
COMBINED = dict(classification_loss="ranking", iou_weighted_identification=True, entity_logits_in_pairs=True)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# -- ranking loss (Eq. 6-9) ------------------------------------------------------------


def test_ranking_loss_hand_computed_with_hardest_wrong_class():
    scores = torch.tensor([[3.0, 1.0, -2.0],  # gold class 0 leads; hardest wrong is class 1
                           [0.0, 0.5, -1.0],  # negative: only L-, on the best class (1)
                           [1.0, -3.0, 4.0]],  # gold class 1; a wrong class (2) beats it
                          requires_grad=True)
    targets = torch.tensor([1, 0, 2])
    expected = (
        softplus(2 * (2.5 - 3.0)) + softplus(2 * (0.5 + 1.0))
        + softplus(2 * (0.5 + 0.5))
        + softplus(2 * (2.5 + 3.0)) + softplus(2 * (0.5 + 4.0))
    ) / 3
    loss = ranking_loss(scores, targets, margin_positive=2.5, margin_negative=0.5, scale=2.0)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # gradient reaches the gold class and the hardest wrong class only
    touched = (scores.grad != 0).nonzero().tolist()
    assert touched == [[0, 0], [0, 1], [1, 1], [2, 1], [2, 2]]
    assert scores.grad[0, 0] < 0 and scores.grad[0, 1] > 0  # gold up, wrong down


def test_ranking_loss_margins_and_single_class():
    # gold far above m+ and wrong far below -m-: nearly no loss
    good = ranking_loss(torch.tensor([[20.0, -20.0]]), torch.tensor([1]))
    assert good.item() < 1e-6
    # one class and a positive: no wrong class, so only L+
    single = ranking_loss(torch.tensor([[1.0]]), torch.tensor([1]), 2.5, 0.5, 2.0)
    assert single.item() == pytest.approx(softplus(2 * 1.5), rel=1e-6)


# -- IoU, ENIoU (Eq. 11-12) and the dynamic BCE (Eq. 13) --------------------------------


def test_span_iou_hand_computed():
    # [start, end): inclusive [0, 2] vs [1, 3] share 2 of a 4-token hull
    spans = torch.tensor([[0, 3], [0, 2], [1, 2], [5, 7]])
    gold = torch.tensor([[1, 4], [2, 4], [0, 4], [5, 7]])
    iou = span_iou(spans, gold)
    assert iou[0].tolist() == pytest.approx([0.5, 0.25, 0.75, 0.0])
    assert iou[1, 1].item() == 0.0  # touching spans share no token
    assert iou[2, 2].item() == pytest.approx(0.25)  # nested: 1 of 4 tokens
    assert iou[3, 3].item() == 1.0


def test_eniou_is_the_best_gold_of_the_same_window():
    spans = torch.tensor([[0, 3], [0, 1], [6, 7], [4, 5]])
    span_window = torch.tensor([0, 0, 1, 1])
    gold = torch.tensor([[1, 4], [0, 2], [6, 8]])
    gold_window = torch.tensor([0, 0, 1])
    eniou = entity_iou(spans, span_window, gold, gold_window)
    # [0,3): max(0.5 vs [1,4), 2/3 vs [0,2)); [0,1): 1/2; [6,7): 1/2; [4,5): no overlap
    assert eniou.tolist() == pytest.approx([2 / 3, 0.5, 0.5, 0.0])
    # the same overlap in another window does not count
    other_window = entity_iou(spans[:1], torch.tensor([1]), gold[:1], torch.tensor([0]))
    assert other_window.tolist() == [0.0]
    none = entity_iou(spans, span_window, torch.zeros((0, 2), dtype=torch.long), torch.zeros(0, dtype=torch.long))
    assert none.tolist() == [0.0] * 4


def test_dynamic_bce_hand_computed():
    logits = torch.tensor([0.0, 2.0, -1.0])
    targets = torch.tensor([3, 0, 0])
    eniou = torch.tensor([1.0, 0.5, 0.0])
    # positive: -(1 - delta) log p; negatives: -delta (1 + ENIoU) log(1 - p) = ... softplus(logit)
    expected = (0.75 * math.log(2.0) + 0.25 * 1.5 * softplus(2.0) + 0.25 * 1.0 * softplus(-1.0)) / 3
    assert identification_loss(logits, targets, eniou, delta=0.25).item() == pytest.approx(expected, rel=1e-6)
    # a hard negative (high ENIoU) costs more than an easy one with the same logit
    hard = identification_loss(torch.tensor([1.0]), torch.tensor([0]), torch.tensor([0.9]))
    easy = identification_loss(torch.tensor([1.0]), torch.tensor([0]), torch.tensor([0.0]))
    assert hard > easy
    plain = F.binary_cross_entropy_with_logits(logits, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(identification_loss(logits, targets), plain)


def test_multitask_loss_weights_identification_and_ranking():
    torch.manual_seed(0)
    logits = {"binary": torch.randn(4), "scores": torch.randn(4, 3)}
    targets, eniou = torch.tensor([0, 2, 0, 1]), torch.tensor([0.3, 1.0, 0.0, 1.0])
    loss = phased_loss(logits, targets, eniou, identification_weight=0.5, classification_weight=2.0,
                       ranking_margin_positive=1.0, ranking_margin_negative=0.2, ranking_scale=3.0, iou_delta=0.4)
    expected = 0.5 * identification_loss(logits["binary"], targets, eniou, 0.4) + 2.0 * ranking_loss(
        logits["scores"], targets, 1.0, 0.2, 3.0)
    assert torch.allclose(loss, expected)
    # ENIoU scales the entity task only
    both = joint_loss(logits, targets, logits, targets, entity_eniou=eniou)
    assert torch.allclose(both, phased_loss(logits, targets, eniou) + phased_loss(logits, targets))


# -- prediction from class scores (Eq. 18) -----------------------------------------------


def test_class_threshold_decides_from_class_scores_alone():
    scores = torch.tensor([[0.9, 0.2], [0.84, -1.0], [-0.3, 2.0], [0.85, 0.1]])
    positive, labels, confidence = threshold_class_scores(scores, 0.85)
    assert positive.tolist() == [True, False, True, True]
    assert labels.tolist() == [0, 0, 1, 0]
    assert torch.allclose(confidence, torch.sigmoid(scores.max(-1).values))
    # the identification head does not take part in the decision
    classifier = PhasedClassifier(2, 2, 2, two_phase=False, identification=True, ranking=True)
    for binary in (-100.0, 100.0):
        decided = classifier.decide({"binary": torch.full((4,), binary), "scores": scores}, 0.5, class_threshold=0.85)
        assert decided[0].tolist() == [True, False, True, True]


def test_two_phase_decision_with_ranking_scores():
    """The combined model's default: phase one decides, the best class score types."""
    classifier = PhasedClassifier(2, 2, 3, two_phase=True, ranking=True)
    logits = {"binary": torch.tensor([-1.0, 2.0]), "scores": torch.tensor([[5.0, 0.0, 0.0], [-2.0, -1.0, -3.0]])}
    positive, labels, scores = classifier.decide(logits, 0.5)
    assert positive.tolist() == [False, True]  # the class scores do not decide
    assert labels.tolist() == [0, 1]
    assert torch.allclose(scores, torch.sigmoid(logits["binary"]) * torch.sigmoid(torch.tensor([5.0, -1.0])))
    assert classifier.typed.bias is None  # s^T W_c (Eq. 6) has no bias


def test_model_prediction_ignores_the_identification_heads():
    model = make_model(**SPERT_MT)
    model.eval()
    tokens, contexts, token_window = torch.randn(9, WIDTH), torch.randn(2, WIDTH), torch.tensor([0] * 5 + [1] * 4)
    with torch.no_grad():
        model.entity_classifier.typed.weight.mul_(20.0)  # spread the class scores around theta
        before = model(tokens, contexts, token_window)
        for classifier in (model.entity_classifier, model.relation_classifier):
            classifier.binary.bias.fill_(-100.0)
        after = model(tokens, contexts, token_window)
    assert 0 < len(before["entity_spans"]) < 30  # theta kept some spans, not all
    for key in before:
        assert torch.equal(before[key], after[key])
    assert (before["entity_scores"] >= torch.sigmoid(torch.tensor(0.85))).all()


# -- entity logits in the pair representation (Eq. 15-16) ------------------------------------


@pytest.mark.parametrize("gated", [True, False])
def test_entity_logits_widen_the_pair_representation(gated):
    torch.manual_seed(0)
    plain = RelationRepresentation(WIDTH, WIDTH, N_ENTITY, 5, gated=gated)
    torch.manual_seed(0)
    with_logits = RelationRepresentation(WIDTH, WIDTH, N_ENTITY, 5, gated=gated, logit_width=4)
    assert with_logits.binary_width == plain.binary_width + 8
    assert with_logits.typed_width == plain.typed_width + 8
    tokens, entities = torch.randn(10, WIDTH), torch.randn(3, WIDTH)
    spans, types = torch.tensor([[0, 1], [3, 5], [7, 8]]), torch.tensor([0, 2, 1])
    pairs, logits = torch.tensor([[0, 1], [1, 0], [2, 0]]), torch.randn(3, 4)
    binary, typed = with_logits(tokens, entities, spans, pairs, types, logits)
    base_binary, base_typed = plain(tokens, entities, spans, pairs, types)
    assert binary.shape == (3, with_logits.binary_width) and typed.shape == (3, with_logits.typed_width)
    # the pair's own representation first, then p(head) and p(tail), in the pair's order (Eq. 15-16)
    assert torch.allclose(binary[:, : plain.binary_width], base_binary)
    assert torch.equal(binary[:, plain.binary_width:], torch.cat([logits[pairs[:, 0]], logits[pairs[:, 1]]], 1))
    assert torch.equal(typed[:, plain.typed_width:], binary[:, plain.binary_width:])


@pytest.mark.parametrize("switches,logit_width", [
    (dict(two_phase=False, gated=False, binary_features=False, multiclass_features=False), N_ENTITY + 1),
    (SPERT_MT, N_ENTITY),
    (COMBINED, N_ENTITY),
])
def test_relation_classifier_sees_the_entity_logits(switches, logit_width):
    switches = {**switches, "entity_logits_in_pairs": False}
    without = make_model(**switches)
    with_logits = make_model(**{**switches, "entity_logits_in_pairs": True})
    assert with_logits.relations.typed_width == without.relations.typed_width + 2 * logit_width
    head = with_logits.relation_classifier.typed if switches.get("classification_loss") == "ranking" or \
        switches.get("two_phase", True) else with_logits.relation_classifier.joint
    assert head.in_features == with_logits.relations.typed_width


# -- the whole model with the SpERT.MT switches ----------------------------------------------


def make_model(**switches):
    torch.manual_seed(0)
    return SpanJointModel(WIDTH, N_ENTITY, N_RELATION, max_span_width=4, max_distance=5,
                          span_negatives=5, pair_negatives=3, **switches)


@pytest.mark.parametrize("switches", [SPERT_MT, COMBINED, {**COMBINED, "class_threshold": 0.85}])
def test_training_outputs_and_loss(switches):
    model = make_model(**switches)
    model.train()
    tokens, contexts, token_window = torch.randn(11, WIDTH, requires_grad=True), torch.randn(2, WIDTH), \
        torch.tensor([0] * 6 + [1] * 5)
    spans, labels = torch.tensor([[0, 2], [1, 2], [4, 6], [7, 9]]), torch.tensor([0, 1, 2, 1])
    relations = torch.tensor([[0, 2, 0], [2, 1, 1]])
    output = model(tokens, contexts, token_window, spans, labels, relations, torch.tensor([False, True]))
    assert {"entity.binary", "entity.scores", "entity.eniou", "relation.binary", "relation.scores"} <= set(output)
    assert output["entity.scores"].shape[1] == N_ENTITY and output["relation.scores"].shape[1] == N_RELATION
    eniou, targets = output["entity.eniou"], output["entity.targets"]
    assert (eniou[targets > 0] == 1.0).all() and ((eniou >= 0) & (eniou <= 1)).all()
    task = lambda name: {k.split(".")[1]: v for k, v in output.items()
                         if k.startswith(name) and k.split(".")[1] not in ("targets", "eniou")}
    loss = joint_loss(task("entity"), targets, task("relation"), output["relation.targets"], output["entity.eniou"])
    loss.backward()
    assert torch.isfinite(loss) and tokens.grad.abs().sum() > 0


@pytest.mark.parametrize("switches,message", [
    (dict(classification_loss="hinge"), "classification_loss"),
    (dict(class_threshold=0.85), "ranking"),
    (dict(two_phase=False, classification_loss="ranking"), "class_threshold"),
    (dict(two_phase=False, iou_weighted_identification=True), "identification_heads"),
])
def test_meaningless_switch_combinations_are_refused(switches, message):
    with pytest.raises(ValueError, match=message):
        make_model(**switches)


# -- every shipped config: builds and trains one step on the tiny encoder -------------------


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_trains_one_step(path, tiny_encoder_path):
    config = load_config(path)
    config["components"]["transformer"]["model"]["name"] = str(tiny_encoder_path)
    fix_random_seed(0)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = make_examples(nlp.vocab, TRAIN_DATA[:2])
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("spanjoint").model.layers[1]
    before = [p.detach().clone() for p in head.shims[0]._model.parameters()]
    losses = nlp.update(examples, sgd=Adam(0.001), losses={})
    assert math.isfinite(losses["spanjoint"]) and losses["spanjoint"] > 0
    after = list(head.shims[0]._model.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after))
    nlp(" ".join(TRAIN_DATA[0][0]))  # prediction runs too


def test_conll04_configs_differ_from_the_main_config_only_in_the_model_block():
    main = load_config(CONFIG_DIR / "conll04.cfg")
    names = {p.name for p in CONFIGS if p.parent == CONFIG_DIR}
    assert {"conll04_spert.cfg", "conll04_spertmt.cfg", "conll04_combined.cfg"} <= names
    for path in CONFIGS:
        if not path.name.startswith("conll04") or path.parent != CONFIG_DIR:
            continue
        other = load_config(path)
        for section in ("paths", "system", "nlp", "corpora", "training", "initialize"):
            assert other[section] == main[section], (path.name, section)
        # the case features (input token types and the span model's case table) go together
        other_encoder = dict(other["components"]["transformer"]["model"])
        case_types = other_encoder.pop("case_token_types", False)
        assert case_types == flat_settings(other["components"]["spanjoint"])["token_case_features"], path.name
        main_encoder = {k: v for k, v in main["components"]["transformer"]["model"].items() if k != "case_token_types"}
        assert other_encoder == main_encoder, path.name
        other_rest = {k: v for k, v in other["components"]["transformer"].items() if k != "model"}
        assert other_rest == {k: v for k, v in main["components"]["transformer"].items() if k != "model"}
    spertmt = flat_settings(load_config(CONFIG_DIR / "conll04_spertmt.cfg")["components"]["spanjoint"])
    assert {k: spertmt[k] for k in SPERT_MT} == SPERT_MT
    combined = flat_settings(load_config(CONFIG_DIR / "conll04_combined.cfg")["components"]["spanjoint"])
    assert combined["two_phase"] and combined["gated"] and combined["multiclass_features"]
    assert {k: combined[k] for k in COMBINED} == COMBINED
