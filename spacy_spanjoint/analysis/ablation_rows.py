"""The rows of the ablation study on CoNLL04: Table 7 of the two-phase paper,
Table 2 of the SpERT.MT paper and the combined model, each a config and the
switches it turns off (`scripts/ablations.py` runs them at a short budget,
`scripts/study.py paper_tables` at the full one with the paper configs and the
shipped recipe; `scripts/ablation_report.py` and `scripts/study_report.py`
report them)."""
from typing import Dict, NamedTuple, Optional, Tuple

from ..layers.blocks import model_setting


def setting(name: str) -> str:
    """The config override path of a span model setting ("two_phase" ->
    "components.spanjoint.model.classifiers.two_phase")."""
    return "components.spanjoint." + model_setting(name)

BATCH_SIZE = 4  # batch size of every run of the study (the committed report's)


class Row(NamedTuple):
    """One row of an ablation table.

    config is the shipped-recipe config of the row's model; `PAPER_CONFIGS`
    maps it to the same model as its paper publishes it. paper_delta is the
    paper's own (NER F1, RE F1) change against its full model, where the paper
    reports the row.
    """

    name: str
    table: str
    config: str
    overrides: Dict[str, str]
    paper_delta: Optional[Tuple[float, float]] = None


# the shipped-recipe config of each model -> the model as its paper publishes it
PAPER_CONFIGS = {
    "configs/conll04.cfg": "configs/paper/conll04_two_phase.cfg",
    "configs/conll04_spert.cfg": "configs/paper/conll04_spert.cfg",
    "configs/conll04_spertmt.cfg": "configs/paper/conll04_spertmt.cfg",
    "configs/conll04_combined.cfg": "configs/paper/conll04_combined.cfg",
}
# where each table's deltas come from
PAPER_DELTA_SOURCES = {
    "two-phase Table 7": "two-phase paper, Table 7, CoNLL04 dev, F1 change against its full model",
    "SpERT.MT Table 2": "SpERT.MT paper, Table 2 (SciERC test, the only corpus it ablates; mean of three runs), "
                        "F1 change against its full model (the text of section 4.5 gives the RE changes)",
}


def _off(*switches: str) -> Dict[str, str]:
    return {setting(switch): "false" for switch in switches}


ROWS = [
    Row("full", "two-phase Table 7", "configs/conll04.cfg", {}),
    # section 4.5: without the two phases the model "cannot make use of binary global features,
    # but retains multi-class global features", so the row drops D_r too
    Row("w/o two-phase", "two-phase Table 7", "configs/conll04.cfg", _off("two_phase", "binary_features"),
        (-2.3, -2.7)),
    Row("w/o binary features", "two-phase Table 7", "configs/conll04.cfg", _off("binary_features"), (-0.5, -0.7)),
    Row("w/o multi-class features", "two-phase Table 7", "configs/conll04.cfg", _off("multiclass_features"),
        (-0.3, -1.8)),
    Row("w/o both features", "two-phase Table 7", "configs/conll04.cfg",
        _off("binary_features", "multiclass_features"), (-0.2, -2.2)),
    # section 4.5: "the concatenation manner ... instead" of the gated mechanism, for spans and relations
    Row("w/o gated", "two-phase Table 7", "configs/conll04.cfg", _off("gated", "gated_relations"), (-0.6, -0.9)),
    Row("base (SpERT)", "two-phase Table 7", "configs/conll04_spert.cfg", {}, (-2.8, -4.0)),
    Row("SpERT.MT", "SpERT.MT Table 2", "configs/conll04_spertmt.cfg", {}),
    # section 4.5: -MTL goes back from "the binary and multi-class multi-task approach" to a
    # "single-step multi-class" one. Read as: the binary identification task goes (and with it
    # the IoU scaling of its loss, EIL), the multi-class task stays as SpERT.MT trains and
    # decides it (ranking loss, theta on the class scores)
    Row("SpERT.MT -MTL", "SpERT.MT Table 2", "configs/conll04_spertmt.cfg",
        _off("identification_heads", "iou_weighted_identification"), (-1.07, -0.83)),
    Row("SpERT.MT -entity logits", "SpERT.MT Table 2", "configs/conll04_spertmt.cfg", _off("entity_logits_in_pairs"),
        (-0.94, -1.23)),
    Row("SpERT.MT -EIL", "SpERT.MT Table 2", "configs/conll04_spertmt.cfg", _off("iou_weighted_identification"),
        (-1.01, -0.61)),
    Row("combined", "combined", "configs/conll04_combined.cfg", {}),
    # where the papers differ: SpERT.MT's ranking classification (the default) or phase two's softmax
    Row("combined, softmax typing", "combined", "configs/conll04_combined.cfg",
        {setting("classification_loss"): '"softmax"'}),
]


ROWS_BY_NAME = {row.name: row for row in ROWS}


def run_dir_name(row_name: str) -> str:
    """A folder name for a row ("w/o gated" -> "wo_gated")."""
    return "".join(c if c.isalnum() else "_" for c in row_name.replace("w/o", "wo")).strip("_")

