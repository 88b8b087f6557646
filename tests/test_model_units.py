"""The PyTorch span model, piece by piece: candidates, sampling, features,
fusion, pooling, losses, decisions, and the whole module in both modes."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from spacy_spanjoint.model import SpanJointModel
from spacy_spanjoint.model.candidates import (
    enumerate_spans,
    group_ranks,
    ordered_pairs,
    sample_per_group,
    training_pairs,
    training_spans,
)
from spacy_spanjoint.model.classifiers import PhasedClassifier
from spacy_spanjoint.model.decoding import greedy_non_overlapping
from spacy_spanjoint.model.gated_fusion import GatedFusion
from spacy_spanjoint.model.global_features import TypeDistanceFeature, entity_distance
from spacy_spanjoint.model.losses import joint_loss, phased_loss
from spacy_spanjoint.model.relation_representation import RelationRepresentation
from spacy_spanjoint.model.span_representation import SpanRepresentation, max_pool_ranges


def windows(*sizes: int) -> torch.Tensor:
    """Token -> window ids for consecutive windows of the given sizes."""
    return torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(sizes)]).long()


def n_spans(n: int, w: int) -> int:
    return sum(n - k + 1 for k in range(1, min(n, w) + 1))


def as_set(pairs: torch.Tensor) -> set:
    return {tuple(p) for p in pairs.tolist()}


# -- span enumeration (Eq. 1) -------------------------------------------------


@pytest.mark.parametrize("n,w", [(1, 1), (1, 10), (2, 5), (7, 3), (10, 10), (12, 4)])
def test_enumerate_spans_count_in_one_window(n, w):
    spans = enumerate_spans(windows(n), w)
    assert spans.shape == (n_spans(n, w), 2)
    widths = spans[:, 1] - spans[:, 0]
    assert widths.min() >= 1 and widths.max() <= min(n, w)
    assert len(as_set(spans)) == len(spans)


def test_enumerate_spans_never_cross_windows():
    token_window = windows(4, 1, 6)
    spans = enumerate_spans(token_window, 3)
    assert len(spans) == n_spans(4, 3) + n_spans(1, 3) + n_spans(6, 3)
    assert torch.equal(token_window[spans[:, 0]], token_window[spans[:, 1] - 1])
    # ordered by start, then end
    keys = (spans[:, 0] * 100 + spans[:, 1]).tolist()
    assert keys == sorted(keys)


def test_enumerate_spans_no_tokens():
    spans = enumerate_spans(torch.zeros((0,), dtype=torch.long), 10)
    assert spans.shape == (0, 2)


# -- negative sampling ----------------------------------------------------------


def test_group_ranks_and_sampling():
    groups = torch.tensor([1, 0, 1, 0, 1, 2])
    keys = torch.tensor([0.3, 0.9, 0.1, 0.2, 0.2, 5.0])
    assert group_ranks(groups, keys).tolist() == [2, 1, 0, 0, 1, 0]
    keep = sample_per_group(groups, 2, torch.Generator().manual_seed(0))
    assert [int(keep[groups == g].sum()) for g in (0, 1, 2)] == [2, 2, 1]


def test_training_spans_gold_first_and_no_gold_negatives():
    token_window = windows(6, 5)
    # the second gold span is wider than max_width: it is kept anyway
    gold = torch.tensor([[1, 3], [6, 11], [0, 1]])
    spans = training_spans(token_window, gold, max_width=3, negatives_per_window=1000)
    assert torch.equal(spans[:3], gold)
    negatives = spans[3:]
    assert not (as_set(negatives) & as_set(gold))
    # with a large N every non-gold candidate is a negative
    candidates = as_set(enumerate_spans(token_window, 3))
    assert as_set(negatives) == candidates - as_set(gold)
    assert len(negatives) == len(candidates) - 2  # (1, 3) and (0, 1) are candidates


@pytest.mark.parametrize("n_negatives", [0, 1, 4])
def test_training_spans_at_most_n_negatives_per_window(n_negatives):
    token_window = windows(6, 5, 1)
    gold = torch.tensor([[0, 2], [7, 8]])
    spans = training_spans(token_window, gold, max_width=4, negatives_per_window=n_negatives)
    negatives = spans[2:]
    negative_windows = token_window[negatives[:, 0]]
    available = {0: n_spans(6, 4) - 1, 1: n_spans(5, 4) - 1, 2: 1}
    for window, count in available.items():
        assert int((negative_windows == window).sum()) == min(n_negatives, count)
    assert torch.equal(token_window[negatives[:, 0]], token_window[negatives[:, 1] - 1])
    assert not (as_set(negatives) & as_set(gold))


def test_training_spans_without_gold():
    token_window = windows(3)
    spans = training_spans(token_window, torch.zeros((0, 2), dtype=torch.long), 2, 100)
    assert as_set(spans) == as_set(enumerate_spans(token_window, 2))


def test_training_pairs_positives_symmetric_and_negatives():
    entity_window = torch.tensor([0, 0, 0, 1, 1])
    # label 0 directed, label 1 symmetric
    gold = torch.tensor([[0, 1, 0], [1, 2, 1]])
    symmetric = torch.tensor([False, True])
    pairs, labels = training_pairs(entity_window, gold, symmetric, negatives_per_window=100)
    by_pair = {tuple(p): int(l) for p, l in zip(pairs.tolist(), labels.tolist())}
    assert len(by_pair) == len(pairs)  # no pair twice
    assert by_pair[(0, 1)] == 1
    assert by_pair[(1, 2)] == 2 and by_pair[(2, 1)] == 2  # symmetric: both directions
    assert by_pair[(1, 0)] == 0  # the directed relation reversed is a negative
    negatives = {p for p, l in by_pair.items() if l == 0}
    assert negatives == {(1, 0), (0, 2), (2, 0), (3, 4), (4, 3)}
    # gold positives come first
    assert labels[:3].tolist() == [1, 2, 2]


def test_training_pairs_negatives_limit_and_windows():
    entity_window = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    gold = torch.tensor([[0, 1, 0], [0, 4, 0]])  # the second crosses windows
    pairs, labels = training_pairs(entity_window, gold, torch.tensor([False]), negatives_per_window=2)
    # pairs across windows are never built, not even for a gold relation
    assert torch.equal(entity_window[pairs[:, 0]], entity_window[pairs[:, 1]])
    assert (0, 4) not in as_set(pairs)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    negatives = pairs[labels == 0]
    assert [int((entity_window[negatives[:, 0]] == w).sum()) for w in (0, 1)] == [2, 2]
    assert (0, 1) not in as_set(negatives)
    assert int((labels > 0).sum()) == 1


def test_training_pairs_first_gold_label_wins():
    entity_window = torch.tensor([0, 0])
    gold = torch.tensor([[0, 1, 1], [0, 1, 0]])
    pairs, labels = training_pairs(entity_window, gold, torch.tensor([False, False]), 100)
    assert {tuple(p): int(l) for p, l in zip(pairs.tolist(), labels.tolist())} == {(0, 1): 2, (1, 0): 0}


def test_training_pairs_empty():
    pairs, labels = training_pairs(
        torch.zeros((0,), dtype=torch.long), torch.zeros((0, 3), dtype=torch.long), torch.tensor([True]), 100
    )
    assert pairs.shape == (0, 2) and labels.shape == (0,)


# -- ordered pairs (Eq. 7) ------------------------------------------------------


def test_ordered_pairs_head_major_same_group_no_self():
    groups = torch.tensor([0, 1, 0, 0, 1, 2])
    pairs = ordered_pairs(groups)
    assert pairs.tolist() == [[0, 2], [0, 3], [1, 4], [2, 0], [2, 3], [3, 0], [3, 2], [4, 1]]


def test_ordered_pairs_matches_naive_loop():
    generator = torch.Generator().manual_seed(3)
    groups = torch.randint(0, 4, (23,), generator=generator)
    expected = [[i, j] for i in range(23) for j in range(23) if i != j and groups[i] == groups[j]]
    assert ordered_pairs(groups).tolist() == expected


@pytest.mark.parametrize("groups", [[], [5]])
def test_ordered_pairs_none(groups):
    assert ordered_pairs(torch.tensor(groups, dtype=torch.long)).shape == (0, 2)


# -- distance features ------------------------------------------------------------


@pytest.mark.parametrize(
    "head,tail,expected",
    [
        ((0, 2), (2, 4), 0),  # touching
        ((0, 3), (2, 5), 0),  # overlapping
        ((0, 5), (1, 2), 0),  # nested
        ((3, 3 + 1), (3, 4), 0),  # same span
        ((0, 1), (5, 6), 4),
        ((5, 6), (0, 1), 4),  # either order
        ((0, 1), (11, 12), 10),  # exactly the clip
        ((0, 1), (30, 31), 10),  # clipped
    ],
)
def test_entity_distance(head, tail, expected):
    distance = entity_distance(torch.tensor([head]), torch.tensor([tail]), max_distance=10)
    assert distance.tolist() == [expected]


def test_type_distance_feature_is_one_embedding_per_triple():
    feature = TypeDistanceFeature(4, n_entity_labels=3, max_distance=2)
    heads, tails, distances = zip(*itertools.product(range(3), range(3), range(3)))
    index_rows = feature(torch.tensor(heads), torch.tensor(tails), torch.tensor(distances))
    assert torch.equal(index_rows, feature.embedding.weight)  # a bijection onto the table


@pytest.mark.parametrize("init_std", [None, 0.02, 0.4])
def test_embedding_init_std_sets_the_scale_of_every_learned_embedding(init_std):
    torch.manual_seed(0)
    model = SpanJointModel(384, 4, 5, embedding_init_std=init_std)
    tables = [model.spans.width_embedding, model.relations.distance.embedding,
              model.relations.type_distance.embedding]
    expected = 1.0 if init_std is None else init_std  # None: torch's N(0, 1)
    for table in tables:
        assert table.weight.std().item() == pytest.approx(expected, rel=0.15)


# -- gated fusion (Eq. 5) -----------------------------------------------------------


def test_gate_weights_sum_to_one_and_output_is_convex():
    torch.manual_seed(0)
    fusion = GatedFusion([6, 6, 6])
    inputs = [torch.randn(5, 6) * 3 for _ in range(3)]
    weights = fusion.gate_weights(inputs)
    assert weights.shape == (5, 3)
    assert (weights >= 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(5))
    output = fusion(inputs)
    assert output.shape == (5, 6)
    expected = sum(weights[:, o : o + 1] * inputs[o] for o in range(3))
    assert torch.allclose(output, expected, atol=1e-6)
    stacked = torch.stack(inputs)
    assert (output <= stacked.max(0).values + 1e-6).all()
    assert (output >= stacked.min(0).values - 1e-6).all()


def test_paper_gate_ignores_position_positional_gate_does_not():
    """Eq. 5 with a shared gate fuses <a, b> like <b, a>; the positional variant
    (used for entity pairs) must not."""
    torch.manual_seed(0)
    a, b, c = (torch.randn(4, 6) for _ in range(3))
    paper = GatedFusion([6, 6, 6])
    assert torch.allclose(paper([a, b, c]), paper([b, a, c]), atol=1e-6)
    positional = GatedFusion([6, 6, 6], positional=True)
    # starts near Eq. 5: the maps are close to the identity
    for projection in positional.positions:
        assert torch.allclose(projection.weight, torch.eye(6), atol=0.2)
    assert not torch.allclose(positional([a, b, c]), positional([b, a, c]))
    weights = positional.gate_weights([a, b, c])
    assert torch.allclose(weights.sum(-1), torch.ones(4))


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("binary_features,multiclass_features", [(True, True), (False, False)])
def test_relation_representation_depends_on_direction(gated, binary_features, multiclass_features):
    torch.manual_seed(0)
    representation = RelationRepresentation(
        8, 8, 3, 5, gated=gated, binary_features=binary_features, multiclass_features=multiclass_features
    )
    tokens, entities = torch.randn(10, 8), torch.randn(2, 8)
    spans = torch.tensor([[0, 2], [5, 6]])
    pairs = torch.tensor([[0, 1], [1, 0]])
    same_type = torch.tensor([1, 1])
    binary, typed = representation(tokens, entities, spans, pairs, same_type)
    assert binary.shape == (2, representation.binary_width) and typed.shape == (2, representation.typed_width)
    assert not torch.allclose(binary[0], binary[1])
    assert not torch.allclose(typed[0], typed[1])


def test_gated_fusion_needs_equal_widths_and_input_count():
    with pytest.raises(ValueError, match="one size"):
        GatedFusion([4, 5])
    with pytest.raises(ValueError, match="expects 2 inputs"):
        GatedFusion([4, 4])([torch.zeros(1, 4)])


def test_concatenation_when_not_gated():
    fusion = GatedFusion([3, 4, 2], gated=False)
    assert fusion.output_width == 9
    inputs = [torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 2)]
    assert torch.equal(fusion(inputs), torch.cat(inputs, dim=-1))
    assert not list(fusion.parameters())


@pytest.mark.parametrize("gated", [True, False])
def test_linear_map_of_fusion_equals_linear_of_fused_rows(gated):
    """W fuse(E) + b from the tables (gathered after the map) equals the map of
    the fused rows, for the gate (Eq. 5) and for concatenation."""
    torch.manual_seed(0)
    fusion = GatedFusion([6, 6, 6], gated=gated)
    tables = [torch.randn(7, 6) * 3, torch.randn(3, 6), torch.randn(11, 6)]
    indices = [None, torch.tensor([0, 0, 1, 2, 2, 1, 0]), torch.tensor([1, 2, 3, 10, 0, 5, 5])]
    rows = [table if index is None else table[index] for table, index in zip(tables, indices)]
    weight, bias = torch.randn(5, fusion.output_width), torch.randn(5)
    expected = F.linear(fusion(rows), weight, bias)
    mapped = fusion.linear_map(tables, indices, weight, bias)
    assert mapped.shape == (7, 5)
    assert torch.allclose(mapped, expected, atol=1e-5)
    # a wrong weight changes the answer: the map is not a no-op
    assert not torch.allclose(fusion.linear_map(tables, indices, weight * 2, bias), expected, atol=1e-3)


def test_linear_map_refuses_positional_fusion_and_wrong_input_counts():
    positional = GatedFusion([4, 4], positional=True)
    tables, weight, bias = [torch.zeros(2, 4)] * 2, torch.zeros(1, 4), torch.zeros(1)
    with pytest.raises(ValueError, match="positional"):
        positional.linear_map(tables, [None, None], weight, bias)
    with pytest.raises(ValueError, match="expects 2 inputs"):
        GatedFusion([4, 4]).linear_map(tables[:1], [None], weight, bias)


# -- max pooling over ranges (Eq. 4, 9) -----------------------------------------------


def naive_max_pool(x, starts, ends):
    rows = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        rows.append(x[s:e].max(0).values if e > s else torch.zeros(x.shape[1]))
    return torch.stack(rows) if rows else torch.zeros((0, x.shape[1]))


def test_max_pool_ranges_matches_naive_loop():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(13, 4, generator=generator)
    pairs = [(s, e) for s in range(14) for e in range(s, 14)]
    # empty ranges, also reversed ones and ones starting at the end
    pairs += [(5, 2), (13, 12), (13, 13), (0, 0)]
    starts, ends = (torch.tensor(v) for v in zip(*pairs))
    assert torch.equal(max_pool_ranges(x, starts, ends), naive_max_pool(x, starts, ends))


def test_max_pool_ranges_empty_ranges_give_zeros():
    x = torch.randn(4, 3)
    # two nested spans that end the batch: the range between them starts at T
    pooled = max_pool_ranges(x, torch.tensor([4, 2]), torch.tensor([3, 2]))
    assert torch.equal(pooled, torch.zeros(2, 3))
    assert max_pool_ranges(x, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)).shape == (0, 3)


# -- losses (Eq. 11, 15, 16) ---------------------------------------------------------------


def test_two_phase_loss_is_bce_over_all_plus_ce_over_positives():
    torch.manual_seed(0)
    logits = {"binary": torch.randn(5), "types": torch.randn(5, 3)}
    targets = torch.tensor([0, 2, 1, 0, 3])
    expected = F.binary_cross_entropy_with_logits(
        logits["binary"], torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    ) + F.cross_entropy(logits["types"][[1, 2, 4]], torch.tensor([1, 0, 2]))
    assert torch.allclose(phased_loss(logits, targets), expected)


def test_two_phase_loss_without_positives_and_without_candidates():
    types = torch.randn(3, 2, requires_grad=True)
    logits = {"binary": torch.randn(3), "types": types}
    loss = phased_loss(logits, torch.zeros(3, dtype=torch.long))
    assert torch.allclose(loss, F.binary_cross_entropy_with_logits(logits["binary"], torch.zeros(3)))
    loss.backward()
    assert torch.equal(types.grad, torch.zeros(3, 2))
    empty = {"binary": torch.zeros(0, requires_grad=True), "types": torch.zeros(0, 2, requires_grad=True)}
    loss = phased_loss(empty, torch.zeros(0, dtype=torch.long))
    assert loss.item() == 0.0 and loss.requires_grad


def test_single_phase_loss_is_ce_with_none_class():
    torch.manual_seed(0)
    joint = torch.randn(4, 3)
    targets = torch.tensor([0, 1, 2, 0])
    assert torch.allclose(phased_loss({"joint": joint}, targets), F.cross_entropy(joint, targets))


def test_joint_loss_is_the_sum():
    torch.manual_seed(0)
    entity = {"binary": torch.randn(3), "types": torch.randn(3, 2)}
    relation = {"joint": torch.randn(2, 4)}
    e_targets, r_targets = torch.tensor([1, 0, 2]), torch.tensor([3, 0])
    expected = phased_loss(entity, e_targets) + phased_loss(relation, r_targets)
    assert torch.allclose(joint_loss(entity, e_targets, relation, r_targets), expected)


# -- decisions ----------------------------------------------------------------------------


def test_two_phase_decide_threshold():
    classifier = PhasedClassifier(2, 2, 3, two_phase=True)
    logits = {
        "binary": torch.tensor([-1.0, 0.0, 3.0]),
        "types": torch.tensor([[0.0, 5.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    }
    positive, labels, scores = classifier.decide(logits, 0.5)
    assert positive.tolist() == [False, True, True]  # sigmoid(0) = 0.5 is kept
    assert labels.tolist() == [1, 0, 2]
    type_probs = torch.softmax(logits["types"], -1).max(-1).values
    assert torch.allclose(scores, torch.sigmoid(logits["binary"]) * type_probs)
    positive, _, _ = classifier.decide(logits, 0.96)
    assert positive.tolist() == [False, False, False]  # sigmoid(3) = 0.9526
    positive, _, _ = classifier.decide(logits, 0.0)
    assert positive.all()


def test_single_phase_decide():
    classifier = PhasedClassifier(2, 2, 2, two_phase=False)
    joint = torch.tensor([[3.0, 1.0, 2.0], [0.0, 1.0, 4.0], [1.0, 2.0, 0.0]])
    positive, labels, scores = classifier.decide({"joint": joint}, threshold=0.99)
    assert positive.tolist() == [False, True, True]
    assert labels.tolist() == [1, 1, 0]  # 0-based types, also for the negative
    assert torch.allclose(scores, torch.softmax(joint, -1).max(-1).values)
    positive, labels, scores = classifier.decide({"joint": torch.zeros(0, 3)}, 0.5)
    assert positive.shape == labels.shape == scores.shape == (0,)


# -- the whole model ------------------------------------------------------------------------

WIDTH, N_ENTITY, N_RELATION = 8, 3, 2
SWITCHES = list(itertools.product([True, False], repeat=4))


def make_model(two_phase=True, gated=True, binary_features=True, multiclass_features=True, **kwargs):
    torch.manual_seed(0)
    return SpanJointModel(
        WIDTH, N_ENTITY, N_RELATION, two_phase=two_phase, gated=gated, binary_features=binary_features,
        multiclass_features=multiclass_features, max_span_width=4, max_distance=5, **kwargs,
    )


def batch():
    """Two docs: the first of one window (6 tokens), the second of two (4 and 5)."""
    token_window = windows(6, 4, 5)
    tokens = torch.randn(len(token_window), WIDTH, requires_grad=True)
    contexts = torch.randn(3, WIDTH, requires_grad=True)
    return tokens, contexts, token_window


def gold():
    # a nested pair in the first window, two entities ending the batch
    spans = torch.tensor([[0, 2], [1, 2], [4, 6], [6, 7], [8, 10], [10, 12], [13, 15], [14, 15]])
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    relations = torch.tensor([[0, 2, 0], [1, 0, 1], [3, 4, 1], [6, 7, 0], [7, 6, 1]])
    return spans, labels, relations, torch.tensor([False, True])


def training_loss(output):
    """Eq. 16 over a training forward's logits, split by task ("entity.binary" -> "binary")."""
    task = lambda name: {k.split(".")[1]: v for k, v in output.items() if k.startswith(name) and "targets" not in k}
    return joint_loss(task("entity"), output["entity.targets"], task("relation"), output["relation.targets"])


@pytest.mark.parametrize("two_phase,gated,binary_features,multiclass_features", SWITCHES)
def test_training_forward_shapes(two_phase, gated, binary_features, multiclass_features):
    model = make_model(two_phase, gated, binary_features, multiclass_features, span_negatives=5, pair_negatives=3)
    model.train()
    tokens, contexts, token_window = batch()
    spans, labels, relations, symmetric = gold()
    output = model(tokens, contexts, token_window, spans, labels, relations, symmetric)
    n_spans_, n_pairs = len(output["entity.targets"]), len(output["relation.targets"])
    assert output["entity.targets"][: len(spans)].tolist() == (labels + 1).tolist()
    assert (output["entity.targets"][len(spans):] == 0).all()
    assert n_spans_ == len(spans) + 5 + 5 + 5
    # positives: (0,2), (1,0) and its symmetric (0,1); (3,4) and (4,3); (6,7) (its label 0 comes
    # first, so (7,6)'s symmetric copy is dropped) and (7,6)
    assert output["relation.targets"][:7].tolist() == [1, 2, 2, 1, 2, 2, 2]
    # negatives: 3 of window 0's 3 unrelated pairs, window 1 has none left, 3 of window 2's 4
    assert n_pairs == 7 + 3 + 0 + 3
    if two_phase:
        assert set(output) == {"entity.binary", "entity.types", "entity.targets",
                               "relation.binary", "relation.types", "relation.targets"}
        assert output["entity.binary"].shape == (n_spans_,)
        assert output["entity.types"].shape == (n_spans_, N_ENTITY)
        assert output["relation.binary"].shape == (n_pairs,)
        assert output["relation.types"].shape == (n_pairs, N_RELATION)
    else:
        assert set(output) == {"entity.joint", "entity.targets", "relation.joint", "relation.targets"}
        assert output["entity.joint"].shape == (n_spans_, N_ENTITY + 1)
        assert output["relation.joint"].shape == (n_pairs, N_RELATION + 1)
    loss = training_loss(output)
    loss.backward()
    assert torch.isfinite(loss)
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0
    assert contexts.grad is not None and contexts.grad.abs().sum() > 0


def test_training_forward_without_gold_entities():
    model = make_model(span_negatives=4)
    tokens, contexts, token_window = batch()
    none = torch.zeros((0, 2), dtype=torch.long)
    output = model(tokens, contexts, token_window, none, torch.zeros(0, dtype=torch.long),
                   torch.zeros((0, 3), dtype=torch.long), torch.tensor([False, True]))
    assert output["entity.targets"].tolist() == [0] * 12
    assert output["relation.targets"].shape == (0,)
    assert output["relation.types"].shape == (0, N_RELATION)
    loss = training_loss(output)
    loss.backward()
    assert torch.isfinite(loss)


def force_positive(model):
    """Make every span an entity and every pair a relation."""
    for classifier in (model.entity_classifier, model.relation_classifier):
        if classifier.two_phase:
            last_layer(classifier.binary).bias.data.fill_(100.0)
        else:
            last_layer(classifier.joint).bias.data[0] = -100.0


def last_layer(head):
    """The output layer of a classifier head (linear, or with a hidden layer)."""
    return head[-1] if isinstance(head, torch.nn.Sequential) else head


@pytest.mark.parametrize("two_phase,gated,binary_features,multiclass_features", SWITCHES)
def test_predict_for_each_switch_combination(two_phase, gated, binary_features, multiclass_features):
    model = make_model(two_phase, gated, binary_features, multiclass_features, max_entities_per_window=4)
    force_positive(model)
    model.eval()
    tokens, contexts, token_window = batch()
    with torch.no_grad():
        output = model(tokens, contexts, token_window)
    spans = output["entity_spans"]
    n_entities = len(spans)
    assert n_entities == 4 * 3  # capped per window
    assert output["entity_labels"].shape == output["entity_scores"].shape == (n_entities,)
    assert ((output["entity_labels"] >= 0) & (output["entity_labels"] < N_ENTITY)).all()
    assert ((output["entity_scores"] >= 0) & (output["entity_scores"] <= 1)).all()
    assert torch.equal(token_window[spans[:, 0]], token_window[spans[:, 1] - 1])
    assert ((spans[:, 1] - spans[:, 0]) <= 4).all()
    pairs = output["relation_pairs"]
    entity_window = token_window[spans[:, 0]]
    assert as_set(pairs) == as_set(ordered_pairs(entity_window))
    assert len(pairs) == 3 * 4 * 3
    assert output["relation_labels"].shape == output["relation_scores"].shape == (len(pairs),)
    assert ((output["relation_labels"] >= 0) & (output["relation_labels"] < N_RELATION)).all()


ENTITY_HEAD_VARIANTS = [
    dict(two_phase=True, gated=True),
    dict(two_phase=True, gated=False),
    dict(two_phase=False, gated=True),
    dict(two_phase=False, gated=False, identification_heads=True),
    dict(two_phase=True, gated=True, classification_loss="ranking"),
    dict(two_phase=True, gated=True, boundary_tokens=True),
    dict(two_phase=True, gated=True, positional_fusion=True),
    dict(two_phase=True, gated=True, classifier_hidden_width=5),
]


@pytest.mark.parametrize("switches", ENTITY_HEAD_VARIANTS)
def test_entity_logits_of_all_spans_equal_the_classifier_on_built_representations(switches):
    """Prediction scores every candidate span without building its representation;
    the logits must be those of the classifier on the representations."""
    model = make_model(**switches).eval()
    for parameter in model.parameters():  # every weight away from its initial value
        parameter.data.add_(0.3 * torch.randn_like(parameter))
    tokens, contexts, token_window = batch()
    spans = enumerate_spans(token_window, 4)
    span_window = token_window[spans[:, 0]]
    with torch.no_grad():
        reprs = model.spans(tokens, contexts, spans, span_window)
        expected = model.entity_classifier(reprs, reprs)
        logits, built = model.entity_logits(tokens, contexts, spans, span_window)
        with model.building_span_representations():
            unfactored, all_reprs = model.entity_logits(tokens, contexts, spans, span_window)
    # only the variants whose heads cannot be factored build the representations
    factored = "positional_fusion" not in switches and "classifier_hidden_width" not in switches
    assert (built is None) == factored
    assert torch.equal(all_reprs, reprs)
    assert all(torch.equal(unfactored[key], expected[key]) for key in expected)
    assert logits.keys() == expected.keys()
    for key in expected:
        assert logits[key].shape == expected[key].shape
        assert torch.allclose(logits[key], expected[key], atol=1e-5), key


def test_stacked_linear_heads_only_when_every_head_is_linear():
    linear = PhasedClassifier(6, 6, 3, two_phase=True)
    weight, bias = linear.stacked_linear()
    assert weight.shape == (4, 6) and bias.shape == (4,)
    x = torch.randn(5, 6)
    split = linear.split_stacked(F.linear(x, weight, bias))
    for key, value in linear(x, x).items():
        assert torch.allclose(split[key], value, atol=1e-6)
    assert PhasedClassifier(6, 6, 3, two_phase=True, hidden_width=4).stacked_linear() is None
    # the relation classifier's heads read two different representations
    assert PhasedClassifier(6, 9, 3, two_phase=True).stacked_linear() is None


def test_predict_equals_prediction_from_built_span_representations():
    model = make_model(max_entities_per_window=4, entity_threshold=0.3).eval()
    for parameter in model.parameters():
        parameter.data.add_(0.3 * torch.randn_like(parameter))
    tokens, contexts, token_window = batch()
    with torch.no_grad():
        factored = model(tokens, contexts, token_window)
        with model.building_span_representations():
            built = model(tokens, contexts, token_window)
    assert len(built["entity_spans"]) > 0 and len(built["relation_pairs"]) > 0
    assert factored.keys() == built.keys()
    for key in built:
        assert torch.allclose(factored[key].float(), built[key].float(), atol=1e-5), key


def test_predict_keeps_the_best_entities_of_each_window():
    model = make_model(max_entities_per_window=2, entity_threshold=0.0)
    model.eval()
    tokens, contexts, token_window = batch()
    with torch.no_grad():
        all_spans = enumerate_spans(token_window, 4)
        reprs = model.spans(tokens, contexts, all_spans, token_window[all_spans[:, 0]])
        _, _, scores = model.entity_classifier.decide(model.entity_classifier(reprs, reprs), 0.0)
        output = model(tokens, contexts, token_window)
    span_window = token_window[all_spans[:, 0]]
    expected = set()
    for w in range(3):
        rows = torch.nonzero(span_window == w).squeeze(1)
        best = rows[torch.argsort(scores[rows], descending=True)[:2]]
        expected |= as_set(all_spans[best])
    assert as_set(output["entity_spans"]) == expected


def test_predict_threshold_one_gives_nothing():
    model = make_model(entity_threshold=1.01)
    model.eval()
    with torch.no_grad():
        output = model(*batch())
    assert all(len(v) == 0 for v in output.values())


@pytest.mark.parametrize("two_phase", [True, False])
def test_predict_on_zero_tokens(two_phase):
    model = make_model(two_phase=two_phase)
    model.eval()
    empty = torch.zeros((0, WIDTH))
    with torch.no_grad():
        output = model(empty, empty, torch.zeros((0,), dtype=torch.long))
    assert output["entity_spans"].shape == (0, 2)
    assert output["relation_pairs"].shape == (0, 2)
    for key in ("entity_labels", "entity_scores", "relation_labels", "relation_scores"):
        assert output[key].shape == (0,)


# -- flat entity decoding -------------------------------------------------------------


def naive_greedy(spans, groups, scores):
    kept = []
    for i in sorted(range(len(spans)), key=lambda i: (-scores[i], i)):
        if all(groups[i] != groups[j] or spans[i][1] <= spans[j][0] or spans[j][1] <= spans[i][0] for j in kept):
            kept.append(i)
    return sorted(kept)


@pytest.mark.parametrize("seed", range(5))
def test_greedy_non_overlapping_equals_one_by_one_greedy(seed):
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, 30, (40,), generator=generator)
    spans = torch.stack([starts, starts + torch.randint(1, 6, (40,), generator=generator)], dim=1)
    groups = torch.randint(0, 2, (40,), generator=generator)
    scores = torch.rand(40, generator=generator).round(decimals=1)  # ties included
    kept = greedy_non_overlapping(spans, groups, scores)
    assert torch.nonzero(kept).squeeze(1).tolist() == naive_greedy(spans.tolist(), groups.tolist(), scores.tolist())
    chosen = spans[kept]
    for a in range(len(chosen)):
        for b in range(a + 1, len(chosen)):
            same_group = groups[kept][a] == groups[kept][b]
            assert not (same_group and chosen[a, 0] < chosen[b, 1] and chosen[b, 0] < chosen[a, 1])


def test_flat_entities_switch_removes_overlaps_at_prediction():
    torch.manual_seed(0)
    model = make_model(max_entities_per_window=50)
    model.entity_threshold = 0.0  # every span is an entity: maximal overlap
    model.eval()
    tokens, contexts, window = torch.randn(8, WIDTH), torch.randn(1, WIDTH), torch.zeros(8, dtype=torch.long)
    nested = model(tokens, contexts, window)["entity_spans"]
    model.flat_entities = True
    flat = model(tokens, contexts, window)["entity_spans"]
    assert len(flat) < len(nested)
    covered = torch.zeros(8, dtype=torch.int64)
    for start, end in flat.tolist():
        covered[start:end] += 1
    assert covered.max() == 1


@pytest.mark.parametrize("gated_relations", [None, True, False])
def test_relation_gate_switch_apart_from_the_span_gate(gated_relations):
    model = make_model(gated_relations=gated_relations, span_negatives=5, pair_negatives=3)
    pairs_gated = gated_relations is not False
    assert model.spans.fusion.gated
    assert model.relations.pair_fusion.gated is model.relations.type_fusion.gated is pairs_gated
    # concatenated: head, tail (the gated span width each), context, distance; then C_r
    assert model.relations.binary_width == (WIDTH if pairs_gated else 4 * WIDTH)
    assert model.relations.typed_width == (WIDTH if pairs_gated else 5 * WIDTH)
    model.train()
    tokens, contexts, token_window = batch()
    spans, labels, relations, symmetric = gold()
    output = model(tokens, contexts, token_window, spans, labels, relations, symmetric)
    loss = training_loss(output)
    loss.backward()
    assert torch.isfinite(loss)
    force_positive(model)
    model.eval()
    with torch.no_grad():
        predicted = model(tokens, contexts, token_window)
    assert len(predicted["relation_pairs"]) == len(predicted["relation_labels"]) > 0


def test_gated_relations_need_gated_spans():
    with pytest.raises(ValueError, match="gated_relations = true needs gated = true"):
        make_model(gated=False, gated_relations=True)


# -- switches beyond the papers: span boundary tokens, hidden classifier layer --


def test_boundary_tokens_add_the_first_and_last_token_vectors():
    tokens, contexts, token_window = batch()
    spans = torch.tensor([[0, 3], [7, 8], [13, 15]])
    span_window = token_window[spans[:, 0]]
    concatenated = SpanRepresentation(WIDTH, 4, gated=False, boundary_tokens=True)
    parts = concatenated.parts(tokens, contexts, spans, span_window)
    assert len(parts) == 5
    assert torch.equal(parts[3], tokens[[0, 7, 13]])
    assert torch.equal(parts[4], tokens[[2, 7, 14]])
    assert concatenated(tokens, contexts, spans, span_window).shape == (3, 5 * WIDTH)
    assert concatenated.output_width == 5 * WIDTH
    gated = SpanRepresentation(WIDTH, 4, gated=True, boundary_tokens=True)
    weights = gated.fusion.gate_weights(gated.parts(tokens, contexts, spans, span_window))
    assert weights.shape == (3, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(3))
    assert gated(tokens, contexts, spans, span_window).shape == (3, WIDTH)
    # off: the three representations of Eq. 5
    assert len(SpanRepresentation(WIDTH, 4).parts(tokens, contexts, spans, span_window)) == 3


@pytest.mark.parametrize("two_phase", [True, False])
def test_classifier_hidden_layer_keeps_the_outputs(two_phase):
    x = torch.randn(4, WIDTH)
    linear = PhasedClassifier(WIDTH, WIDTH, 3, two_phase)
    hidden = PhasedClassifier(WIDTH, WIDTH, 3, two_phase, hidden_width=5)
    linear_out, hidden_out = linear(x, x), hidden(x, x)
    assert {k: v.shape for k, v in linear_out.items()} == {k: v.shape for k, v in hidden_out.items()}
    heads = [m for m in hidden.modules() if isinstance(m, torch.nn.Sequential)]
    assert len(heads) == (2 if two_phase else 1)
    assert all(h[0].out_features == 5 and isinstance(h[1], torch.nn.ReLU) for h in heads)
    assert not any(isinstance(m, torch.nn.Sequential) for m in linear.modules())


def test_classifier_hidden_width_must_not_be_negative():
    with pytest.raises(ValueError, match="hidden width must be 0"):
        PhasedClassifier(WIDTH, WIDTH, 3, hidden_width=-1)


@pytest.mark.parametrize("two_phase,gated", [(True, True), (False, False)])
def test_model_with_boundary_tokens_and_hidden_layers_trains_and_predicts(two_phase, gated):
    model = make_model(two_phase, gated, boundary_tokens=True, classifier_hidden_width=6,
                       span_negatives=5, pair_negatives=3)
    model.train()
    tokens, contexts, token_window = batch()
    spans, labels, relations, symmetric = gold()
    loss = training_loss(model(tokens, contexts, token_window, spans, labels, relations, symmetric))
    loss.backward()
    assert torch.isfinite(loss)
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0
    force_positive(model)
    model.eval()
    with torch.no_grad():
        predicted = model(tokens, contexts, token_window)
    assert len(predicted["entity_spans"]) > 0
    assert len(predicted["relation_pairs"]) == len(predicted["relation_labels"]) > 0
