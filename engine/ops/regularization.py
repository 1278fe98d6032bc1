"""Regularization layers that act only while training."""

from __future__ import annotations

from engine.errors import ShapeError
from engine.registry import Op, Param, TensorType, register


@register
class Dropout(Op):
    name = "dropout"
    category = "layers"
    doc = (
        "Inverted dropout: in training zero each value with probability rate and scale the rest by 1/(1-rate); "
        "identity in eval."
    )
    params = (Param("rate", "float", 0.5, "probability of dropping a value, in [0, 1)", minimum=0.0, maximum=1.0),)

    def infer(self, p, x: TensorType) -> TensorType:
        if p.rate >= 1.0:
            raise ShapeError(f"rate must be below 1 (a rate of {p.rate} would drop every value)", field="params.rate")
        return x

    def forward(self, ctx, p, x):
        if not ctx.training or p.rate == 0.0:
            ctx.mask = None
            return x
        keep = 1.0 - p.rate
        mask = (ctx.rng.random(x.shape, dtype=x.dtype) < keep).astype(x.dtype)
        mask *= 1.0 / keep
        ctx.mask = mask
        return x * mask

    def backward(self, ctx, p, g):
        return (g if ctx.mask is None else g * ctx.mask,)
