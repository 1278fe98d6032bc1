"""Masks for padded sequences: from true lengths (N,) to a 0/1 mask over T steps.

mask[n, t] = 1 if t < lengths[n] else 0, shaped for an element-wise product with a sequence or for
an attention op's ``mask`` port (where it hides the padded keys from every query).
"""

from __future__ import annotations

from engine.backend import array_module
from engine.errors import ShapeError
from engine.ops._util import format_shape
from engine.registry import Op, Param, Port, TensorType, register

# Graphs type float tensors as float32 (as embedding's outputs); a mask of 0 and 1 is exact in any float type.
MASK_DTYPE = "float32"

# form -> where the steps go: (N, T), or (N, 1, 1, T) / (N, 1, T) broadcasting over (N, heads, Lq, Lk) / (N, Lq, Lk).
FORMS = {"sequence": (), "attention": (1, 1), "attention_single_head": (1,)}


@register
class SequenceMask(Op):
    name = "sequence_mask"
    category = "recurrent"
    doc = ("A 0/1 mask of the valid steps of padded sequences: mask[n, t] = 1 if t < lengths[n]. Form 'sequence' "
           "gives (N, T); 'attention' gives (N, 1, 1, T) for multi_head_attention's mask (and scaled dot-product "
           "attention over (N, heads, L, d)); 'attention_single_head' gives (N, 1, T) for scaled dot-product "
           "attention over (N, L, d). Not differentiable.")
    params = (
        Param("steps", "int", doc="T, the padded length of the sequences (the attention's number of keys)",
              minimum=1, maximum=10_000_000),
        Param("form", "choice", "sequence", "'sequence': (N, T); 'attention': (N, 1, 1, T); "
                                            "'attention_single_head': (N, 1, T)", choices=tuple(FORMS)),
    )
    inputs = (Port("lengths", "int", doc="(N,) true lengths, each in [0, steps]", differentiable=False, rank=(1, 1)),)
    outputs = (Port("out", doc="1.0 at valid steps, 0.0 at padding"),)
    differentiable = False

    def infer(self, p, lengths: TensorType) -> TensorType:
        if not lengths.dtype.startswith("int"):
            raise ShapeError(f"lengths must be integers, got {lengths.dtype}", field="inputs.lengths")
        if lengths.rank != 1:
            raise ShapeError(f"lengths must have shape (N,), one per sequence, got {format_shape(lengths.shape)}",
                             field="inputs.lengths")
        return TensorType((lengths.shape[0], *FORMS[p.form], p.steps), MASK_DTYPE)

    def forward(self, ctx, p, lengths):
        xp = array_module(lengths)
        if lengths.size:
            low, high = int(lengths.min()), int(lengths.max())
            if low < 0 or high > p.steps:
                raise ValueError(f"lengths must lie in [0, {p.steps}] (steps), got values from {low} to {high}")
        valid = xp.arange(p.steps) < lengths[:, None]
        return valid.astype(MASK_DTYPE).reshape(lengths.shape[0], *FORMS[p.form], p.steps)

    def backward(self, ctx, p, g):
        return (None,)
