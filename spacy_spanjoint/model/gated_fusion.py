"""Gated fusion of representations (Eq. 5 of the two-phase paper)."""
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn


class GatedFusion(nn.Module):
    """Weighted sum of delta same-size representations, weights by a softmax gate.

    v_o = W1 E_o + b1 (5a); alpha = softmax(v) (5b); E' = sum_o alpha_o E_o (5c),
    with one W1 and b1 shared by all positions, as in the paper.

    Eq. 5 does not depend on which position a vector fills. For an entity
    pair that means <e1, e2> fuses exactly like <e2, e1>, so phase one could
    not tell a relation from its reverse. With `positional=True` each input
    first goes through a linear map of its own, E_o <- P_o E_o + c_o,
    initialised near the identity (so training starts close to Eq. 5) with a
    little noise (so the positions differ from the first step); the relation
    representation uses this.

    With `gated=False` the representations are concatenated instead (SpERT):
    concatenation keeps the order by itself.

    input_widths (Sequence[int]): The size of each of the delta representations;
        all equal (d) when gated.
    gated (bool): Gate (the paper) or concatenate (SpERT).
    positional (bool): A linear map per position before the gate.
    """

    def __init__(self, input_widths: Sequence[int], gated: bool = True, positional: bool = False):
        super().__init__()
        if gated and len(set(input_widths)) != 1:
            raise ValueError(f"Gated fusion needs representations of one size, got {list(input_widths)}")
        self.gated = gated
        self.n_inputs = len(input_widths)
        self.output_width = input_widths[0] if gated else sum(input_widths)
        self.score = nn.Linear(input_widths[0], 1) if gated else None
        self.positions = None
        if gated and positional:
            self.positions = nn.ModuleList(nn.Linear(width, width) for width in input_widths)
            for projection in self.positions:
                with torch.no_grad():
                    projection.weight.copy_(torch.eye(projection.in_features) + 0.02 * torch.randn_like(projection.weight))
                nn.init.zeros_(projection.bias)

    @property
    def factors_linear_maps(self) -> bool:
        """Whether `linear_map` applies: not with the positional maps."""
        return self.positions is None

    def _positioned(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        if self.positions is None:
            return list(inputs)
        return [projection(x) for projection, x in zip(self.positions, inputs)]

    def gate_weights(self, inputs: Sequence[Tensor]) -> Tensor:
        """alpha of Eq. 5b: (..., delta) weights that sum to 1."""
        stacked = torch.stack(self._positioned(inputs), dim=-2)
        return torch.softmax(self.score(stacked).squeeze(-1), dim=-1)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        if len(inputs) != self.n_inputs:
            raise ValueError(f"GatedFusion expects {self.n_inputs} inputs, got {len(inputs)}")
        if not self.gated:
            return torch.cat(list(inputs), dim=-1)
        stacked = torch.stack(self._positioned(inputs), dim=-2)
        weights = torch.softmax(self.score(stacked).squeeze(-1), dim=-1)
        return (weights.unsqueeze(-1) * stacked).sum(dim=-2)

    def linear_map(self, tables: Sequence[Tensor], indices: Sequence[Optional[Tensor]],
                   weight: Tensor, bias: Tensor) -> Tensor:
        """W fuse(E_1, ..., E_delta) + b, without building the fused vectors.

        Each E_o is given as rows of a table: E_o = tables[o][indices[o]] (all
        rows in order when the index is None). A linear map of Eq. 5c is the
        gated sum of the mapped inputs, W E' + b = sum_o alpha_o (W E_o) + b,
        since the alphas sum to 1; the gate scores of Eq. 5a are linear too.
        Both are computed on the tables, which are small for the sentence
        context (one row per window) and the width embedding (one row per
        width), and then gathered: for N spans this replaces the (N, delta, d)
        stack by one (N, d) x (d, k + 1) product. Concatenated inputs map
        through the matching column blocks of W. Prediction uses this for the
        entity classifier's logits over all candidate spans.

        tables (Sequence[Tensor]): (n_o, d_o) rows for each input.
        indices (Sequence[Optional[Tensor]]): (N,) row of each input per item, or None.
        weight (Tensor): (k, output_width) W.
        bias (Tensor): (k,) b.
        RETURNS (Tensor): (N, k) W E' + b.
        """
        if not self.factors_linear_maps:
            raise ValueError("GatedFusion.linear_map: the positional maps are not factored; fuse the inputs instead")
        if len(tables) != self.n_inputs or len(indices) != self.n_inputs:
            raise ValueError(f"GatedFusion expects {self.n_inputs} inputs, got {len(tables)} tables and {len(indices)} indices")
        if self.gated:
            # one product per table gives the gate score (Eq. 5a) and W E_o together
            mapped = torch.cat([self.score.weight, weight]).t()
            projected = [gather_rows(table @ mapped, index) for table, index in zip(tables, indices)]
            scores = torch.stack([p[:, 0] for p in projected], dim=-1) + self.score.bias
            alpha = torch.softmax(scores, dim=-1)
            output = sum(alpha[:, o, None] * p[:, 1:] for o, p in enumerate(projected))
        else:
            blocks = weight.split([table.shape[1] for table in tables], dim=1)
            output = sum(gather_rows(table @ block.t(), index) for table, block, index in zip(tables, blocks, indices))
        return output + bias


def gather_rows(table: Tensor, index: Optional[Tensor]) -> Tensor:
    """table[index], or the whole table when the index is None."""
    return table if index is None else table[index]
