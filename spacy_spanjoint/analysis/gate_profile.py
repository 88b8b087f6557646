"""What the gated fusions (Eq. 5 of the two-phase paper) of a trained model weigh.

Eq. 5 mixes its inputs with softmax weights alpha. `gate_profile` runs a
pipeline over some docs and records alpha at each gate: the span gate (span
tokens, context x0, width), the pair gate of phase one (head, tail, relation
context, distance) and the phase-two gate (R_r, C_r). A gate that gives one
input nearly all the weight selects rather than fuses.
"""
from typing import Dict, Iterable, List, Optional

import torch
from spacy.language import Language
from spacy.tokens import Doc

from ..layers.spanjoint import torch_span_model
from ..model.gated_fusion import GatedFusion

# gate -> (path of the GatedFusion in SpanJointModel, names of its inputs in order)
GATES = {
    "span": ("spans.fusion", ("tokens", "context", "width", "first_token", "last_token")),
    "pair": ("relations.pair_fusion", ("head", "tail", "context", "distance")),
    "type": ("relations.type_fusion", ("relation", "type_distance")),
}


def span_model(nlp: Language, component: str = "spanjoint") -> torch.nn.Module:
    """The torch `SpanJointModel` inside a pipeline's spanjoint component."""
    model = torch_span_model(nlp.get_pipe(component).model)
    if model is None:
        raise ValueError(f"'{component}' has no span model yet: initialize or train the pipeline first")
    return model


def gate_profile(nlp: Language, docs: Iterable[Doc], selective: float = 0.9,
                 component: str = "spanjoint") -> Dict[str, Dict]:
    """Mean and std of each input's gate weight, and how often one input dominates.

    nlp (Language): A trained pipeline with a spanjoint component.
    docs (Iterable[Doc]): Texts to run, as unannotated Docs.
    selective (float): An item counts as selected when one weight exceeds this.
    RETURNS (Dict[str, Dict]): Per gate that is on and gated: "items", "mean"
        and "std" (input name -> value), "selective_share". Concatenating
        models (`gated = false`) have no gates and give an empty dict.
    """
    model = span_model(nlp, component)
    weights: Dict[str, List[torch.Tensor]] = {}
    hooks = []
    for gate, (path, _) in GATES.items():
        fusion = _gated_fusion(model, path)
        if fusion is not None:
            hooks.append(fusion.register_forward_hook(_recorder(weights.setdefault(gate, []))))
    try:
        # the span gate runs on every candidate span only when their representations are built
        with model.building_span_representations():
            for _ in nlp.pipe(docs):
                pass
    finally:
        for hook in hooks:
            hook.remove()
    profile = {}
    for gate, recorded in weights.items():
        alpha = torch.cat(recorded) if recorded else torch.zeros((0, 1))
        names = GATES[gate][1][: alpha.shape[1]]
        profile[gate] = {
            "items": int(alpha.shape[0]),
            "mean": {n: round(float(v), 4) for n, v in zip(names, alpha.mean(0))} if len(alpha) else {},
            "std": {n: round(float(v), 4) for n, v in zip(names, alpha.std(0))} if len(alpha) > 1 else {},
            "selective_share": round(float((alpha.max(1).values > selective).float().mean()), 4) if len(alpha) else 0.0,
        }
    return profile


def _gated_fusion(model: torch.nn.Module, path: str) -> Optional[GatedFusion]:
    """The gating `GatedFusion` at `path`; None when that part is off or concatenates."""
    try:
        fusion = model.get_submodule(path)
    except AttributeError:  # e.g. relations.type_fusion is None without multi-class features
        return None
    return fusion if isinstance(fusion, GatedFusion) and fusion.gated else None


def _recorder(store: List[torch.Tensor]):
    def record(module: GatedFusion, inputs, output):
        if inputs[0][0].shape[0]:
            store.append(module.gate_weights(inputs[0]).detach())
    return record
