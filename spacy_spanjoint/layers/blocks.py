"""The registered sub-blocks the span model is composed of in a config
(`spacy-spanjoint.SpanJointModel.v2`): span representation, relation
representation, classifiers, training candidates and loss.

Each block names the settings of one part of the papers, checks them, and
returns them as keyword arguments of `spacy_spanjoint.model.SpanJointModel`
(or of the loss, `spacy_spanjoint.model.losses.phased_loss`); the
architecture builds the torch model from them once the encoder width and the
label counts are known. A config therefore shows SpERT and the two-phase
model differing in a few blocks:

    [components.spanjoint.model.classifiers]
    @misc = "spacy-spanjoint.classifiers.v1"
    two_phase = true
"""
from typing import Any, Dict, Optional

from spacy.util import registry

# `SpanJointModel.v1` setting -> where `SpanJointModel.v2` keeps it ("block.name", or a name of v2 itself)
V1_TO_V2: Dict[str, str] = {
    "max_span_width": "span_representation.max_span_width",
    "width_embedding_size": "span_representation.width_embedding_size",
    "gated": "span_representation.gated",
    "positional_fusion": "span_representation.positional_fusion",
    "boundary_tokens": "span_representation.boundary_tokens",
    "token_case_features": "span_representation.case_embedding",
    "max_distance": "relation_representation.max_distance",
    "gated_relations": "relation_representation.gated",
    "binary_features": "relation_representation.binary_features",
    "multiclass_features": "relation_representation.multiclass_features",
    "pair_span_context": "relation_representation.pair_span_context",
    "entity_logits_in_pairs": "relation_representation.entity_logits_in_pairs",
    "two_phase": "classifiers.two_phase",
    "identification_heads": "classifiers.identification_heads",
    "classification_loss": "classifiers.classification_loss",
    "multi_label_relations": "classifiers.multi_label_relations",
    "classifier_hidden_width": "classifiers.hidden_width",
    "classifier_init_std": "classifiers.init_std",
    "dropout": "classifiers.dropout",
    "class_threshold": "classifiers.class_threshold",
    "span_negatives": "candidates.span_negatives",
    "pair_negatives": "candidates.pair_negatives",
    "symmetric_canonical": "candidates.symmetric_canonical",
    "identification_weight": "loss.identification_weight",
    "classification_weight": "loss.classification_weight",
    "ranking_margin_positive": "loss.ranking_margin_positive",
    "ranking_margin_negative": "loss.ranking_margin_negative",
    "ranking_scale": "loss.ranking_scale",
    "iou_weighted_identification": "loss.iou_weighted_identification",
    "iou_delta": "loss.iou_delta",
    "multilabel_reduction": "loss.multilabel_reduction",
    "max_grad_norm": "head_max_grad_norm",
    "grad_factor": "grad_factor",
    "upstream": "upstream",
    "head_learn_rate_scale": "head_learn_rate_scale",
    "embedding_init_std": "embedding_init_std",
}


def _positive(name: str, value: Optional[float]) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{name} must be positive (or null), got {value}")


@registry.misc("spacy-spanjoint.span_representation.v1")
def configure_span_representation(
    max_span_width: int = 10,
    width_embedding_size: Optional[int] = None,
    gated: bool = True,
    positional_fusion: bool = False,
    boundary_tokens: bool = False,
    case_embedding: bool = False,
) -> Dict[str, Any]:
    """The span representation (two-phase Eq. 3-5; SpERT's span vector).

    max_span_width (int): Longest candidate span, in tokens.
    width_embedding_size (Optional[int]): Width of the span-width embedding
        (SpERT: 25); None: the encoder's width.
    gated (bool): Fuse the span's parts with the softmax gate (Eq. 5);
        False: concatenate them, as SpERT does.
    positional_fusion (bool): Per-dimension gate weights (not in the papers).
    boundary_tokens (bool): The span's first and last token vectors join it (not in the papers).
    case_embedding (bool): A learned embedding of each token's case class is
        added to its vector (not in the papers; for uncased encoders).
    """
    if max_span_width < 1:
        raise ValueError(f"max_span_width must be at least 1, got {max_span_width}")
    return dict(max_span_width=max_span_width, width_embedding_size=width_embedding_size, gated=gated,
                positional_fusion=positional_fusion, boundary_tokens=boundary_tokens,
                token_case_features=case_embedding)


@registry.misc("spacy-spanjoint.relation_representation.v1")
def configure_relation_representation(
    max_distance: int = 10,
    gated: Optional[bool] = None,
    binary_features: bool = True,
    multiclass_features: bool = True,
    pair_span_context: bool = True,
    entity_logits_in_pairs: bool = False,
) -> Dict[str, Any]:
    """The relation representation (two-phase Eq. 7-12; SpERT.MT Eq. 15).

    max_distance (int): Entity distances at or above this share one embedding.
    gated (Optional[bool]): Gate the relation parts (Eq. 8, 12); None: as the
        span representation; False concatenates them.
    binary_features (bool): The distance feature D_r of phase one (Eq. 7).
    multiclass_features (bool): The type x type x distance feature C_r of phase two (Eq. 11).
    pair_span_context (bool): Each entity enters the pair with its whole
        representation (with the sentence context); False: SpERT's and
        SpERT.MT Eq. 15's context-free c(s) = v(s) o w.
    entity_logits_in_pairs (bool): The entities' class logits join the pair (SpERT.MT Eq. 15-16).
    """
    if max_distance < 1:
        raise ValueError(f"max_distance must be at least 1, got {max_distance}")
    return dict(max_distance=max_distance, gated_relations=gated, binary_features=binary_features,
                multiclass_features=multiclass_features, pair_span_context=pair_span_context,
                entity_logits_in_pairs=entity_logits_in_pairs)


@registry.misc("spacy-spanjoint.classifiers.v1")
def configure_classifiers(
    two_phase: bool = True,
    identification_heads: bool = False,
    classification_loss: str = "softmax",
    multi_label_relations: bool = False,
    hidden_width: int = 0,
    init_std: Optional[float] = None,
    dropout: float = 0.1,
    class_threshold: Optional[float] = None,
) -> Dict[str, Any]:
    """The entity and relation classifiers.

    two_phase (bool): Binary decision first, type second (two-phase Eq. 6, 10);
        False: one softmax over the types and "none" (SpERT).
    identification_heads (bool): SpERT.MT's binary identification task (Eq. 4-5).
    classification_loss (str): "softmax" or SpERT.MT's pairwise "ranking" (Eq. 6-9).
    multi_label_relations (bool): A sigmoid per relation type (SpERT); needs two_phase = false.
    hidden_width (int): 0: linear classifiers (the papers); above 0: a hidden ReLU layer.
    init_std (Optional[float]): Initial std of the classifier weights (SpERT: 0.02); None: torch's.
    dropout (float): Dropout before the classifiers (SpERT: 0.1).
    class_threshold (Optional[float]): theta of SpERT.MT Eq. 18 (needs "ranking").
    """
    _positive("init_std", init_std)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return dict(two_phase=two_phase, identification_heads=identification_heads,
                classification_loss=classification_loss, multi_label_relations=multi_label_relations,
                classifier_hidden_width=hidden_width, classifier_init_std=init_std, dropout=dropout,
                class_threshold=class_threshold)


@registry.misc("spacy-spanjoint.training_candidates.v1")
def configure_training_candidates(
    span_negatives: int = 100,
    pair_negatives: int = 100,
    symmetric_canonical: bool = False,
) -> Dict[str, Any]:
    """The candidates of each training window (SpERT's sampling).

    span_negatives, pair_negatives (int): Negative spans and pairs drawn per window.
    symmetric_canonical (bool): A symmetric relation is trained in one
        direction, the earlier entity as its head (SpERT); False: both directions.
    """
    if span_negatives < 0 or pair_negatives < 0:
        raise ValueError("span_negatives and pair_negatives must not be negative")
    return dict(span_negatives=span_negatives, pair_negatives=pair_negatives, symmetric_canonical=symmetric_canonical)


@registry.misc("spacy-spanjoint.joint_loss.v1")
def configure_joint_loss(
    identification_weight: float = 1.0,
    classification_weight: float = 1.0,
    ranking_margin_positive: float = 2.5,
    ranking_margin_negative: float = 0.5,
    ranking_scale: float = 2.0,
    iou_weighted_identification: bool = False,
    iou_delta: float = 0.25,
    multilabel_reduction: str = "sum",
) -> Dict[str, Any]:
    """The joint loss (two-phase Eq. 16; SpERT.MT Eq. 10, 17).

    identification_weight, classification_weight (float): alpha and beta of SpERT.MT Eq. 10.
    ranking_margin_positive, ranking_margin_negative, ranking_scale (float):
        m+, m- and gamma of the ranking loss (Eq. 7-8).
    iou_weighted_identification (bool): Scale the entity identification loss
        by the candidates' IoU with the gold entities (Eq. 11-13).
    iou_delta (float): delta of Eq. 13.
    multilabel_reduction (str): How the multi-label relation classifier's BCE
        per type becomes one loss per pair: "sum" over the types, or "mean"
        (SpERT's reference code, which divides the sum by the number of types).
    """
    if multilabel_reduction not in ("sum", "mean"):
        raise ValueError(f"multilabel_reduction must be 'sum' or 'mean', got {multilabel_reduction!r}")
    return dict(identification_weight=identification_weight, classification_weight=classification_weight,
                ranking_margin_positive=ranking_margin_positive, ranking_margin_negative=ranking_margin_negative,
                ranking_scale=ranking_scale, iou_weighted_identification=iou_weighted_identification,
                iou_delta=iou_delta, multilabel_reduction=multilabel_reduction)


def model_setting(name: str) -> str:
    """The config path of a `SpanJointModel.v1` setting in a `[components.spanjoint]`
    block of v2 ("two_phase" -> "model.classifiers.two_phase"); decoding
    settings are the component's own ("relation_threshold")."""
    from ..model.spanjoint import DECODING_SETTINGS

    if name in DECODING_SETTINGS and name != "class_threshold":
        return name
    if name not in V1_TO_V2:
        raise KeyError(f"unknown span model setting {name!r}")
    return "model." + V1_TO_V2[name]


def flat_settings(component: Dict[str, Any]) -> Dict[str, Any]:
    """The settings of a `[components.spanjoint]` config block under their
    `SpanJointModel.v1` names, whichever version it uses: v2's blocks
    flattened, and the component's decoding settings beside them."""
    from ..model.spanjoint import DECODING_SETTINGS

    model = dict(component.get("model", {}))
    flat = {name: value for name, value in component.items() if name in DECODING_SETTINGS}
    if model.get("@architectures", "").endswith(".v1"):
        return {**{k: v for k, v in model.items() if not k.startswith("@") and k != "pooling"}, **flat}
    v2_to_v1 = {path: name for name, path in V1_TO_V2.items()}
    for key, value in model.items():
        if isinstance(value, dict) and key != "pooling":
            flat.update({v2_to_v1[f"{key}.{name}"]: v for name, v in value.items() if not name.startswith("@")})
        elif key in v2_to_v1:
            flat[v2_to_v1[key]] = value
    return flat


def set_model_setting(component: Dict[str, Any], name: str, value: Any) -> None:
    """Set a span model setting, by its `SpanJointModel.v1` name, in a
    `[components.spanjoint]` config block of v2 (see `model_setting`)."""
    *blocks, key = model_setting(name).split(".")
    node = component
    for block in blocks:
        node = node[block]
    node[key] = value
