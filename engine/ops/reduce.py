"""Reductions over axes: sum, mean and max, with or without the reduced axes kept as size 1."""

from __future__ import annotations

import math

from engine.backend import array_module
from engine.errors import ShapeError
from engine.ops._util import format_shape, normalize_axes
from engine.registry import Op, Param, TensorType, register


class Reduction(Op):
    """Reduce ``axis`` (an int, a list, or null for every axis, the batch included)."""

    category = "math"
    params = (
        Param("axis", "axes", None, "axis or list of axes to reduce, negative from the end; null reduces all",
              nullable=True),
        Param("keepdims", "bool", False, "keep the reduced axes as size 1"),
    )

    def infer(self, p, x: TensorType) -> TensorType:
        axes = reduced_axes(p.axis, x.shape)
        if p.keepdims:
            shape = tuple(1 if i in axes else size for i, size in enumerate(x.shape))
        else:
            shape = tuple(size for i, size in enumerate(x.shape) if i not in axes)
        return TensorType(shape, x.dtype)

    def flops(self, p, inputs, outputs):
        return inputs[0].per_sample_size()

    def _prepare(self, ctx, p, x) -> tuple[int, ...]:
        """Remember the input's shape and the shape with reduced axes as 1 (for broadcasting g)."""
        axes = normalize_axes(p.axis, x.ndim)
        ctx.shape = x.shape
        ctx.kept_shape = tuple(1 if i in axes else size for i, size in enumerate(x.shape))
        return axes


def reduced_axes(axis, shape: tuple) -> tuple[int, ...]:
    """The reduced axes as sorted non-negative ints; the error names the input's shape."""
    try:
        return normalize_axes(axis, len(shape))
    except ShapeError as error:
        raise ShapeError(f"{error} (input shape {format_shape(shape)})", field=error.field) from None


def _spread(g, ctx):
    """g broadcast back over the reduced axes, as a writable array of the input's shape."""
    out = array_module(g).empty(ctx.shape, dtype=g.dtype)
    out[...] = g.reshape(ctx.kept_shape)
    return out


@register
class Sum(Reduction):
    name = "sum"
    doc = "Sum over axes; the gradient is g broadcast back over them."

    def forward(self, ctx, p, x):
        return x.sum(axis=self._prepare(ctx, p, x), keepdims=p.keepdims)

    def backward(self, ctx, p, g):
        return (_spread(g, ctx),)


@register
class Mean(Reduction):
    name = "mean"
    doc = "Mean over axes; the gradient is g / count broadcast back over them."

    def forward(self, ctx, p, x):
        axes = self._prepare(ctx, p, x)
        ctx.count = math.prod(x.shape[i] for i in axes)
        return x.mean(axis=axes, keepdims=p.keepdims)

    def backward(self, ctx, p, g):
        return (_spread(g * (1.0 / ctx.count), ctx),)


@register
class Max(Reduction):
    name = "max"
    doc = "Maximum over axes; the gradient goes to the arg-max positions, split evenly among ties."

    def forward(self, ctx, p, x):
        axes = self._prepare(ctx, p, x)
        out = x.max(axis=axes, keepdims=True)
        ctx.winners = x == out
        ctx.ties = ctx.winners.sum(axis=axes, keepdims=True, dtype=x.dtype)
        return out if p.keepdims else out.reshape([size for i, size in enumerate(x.shape) if i not in axes])

    def backward(self, ctx, p, g):
        return (ctx.winners * (g.reshape(ctx.kept_shape) / ctx.ties),)

