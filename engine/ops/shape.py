"""Shape ops: reshape, flatten, transpose, concat and slice. They move values without arithmetic,
so each gradient moves g back the same way."""

from __future__ import annotations

import math

from engine.backend import array_module
from engine.errors import ShapeError
from engine.ops._util import format_shape, normalize_axis
from engine.registry import Op, Param, Port, TensorType, register


class ShapeOp(Op):
    category = "shape"

    def flops(self, p, inputs, outputs):
        return 0


def axis_of(axis: int, shape: tuple, field: str = "params.axis") -> int:
    """``axis`` as a non-negative int; the error names the input's shape."""
    try:
        return normalize_axis(axis, len(shape), field)
    except ShapeError as error:
        raise ShapeError(f"{error} (input shape {format_shape(shape)})", field=field) from None


def _needs_batch_axis(x: TensorType) -> None:
    if x.rank < 1:
        raise ShapeError("needs a tensor with a batch axis, got a scalar ()", field="inputs.x")


@register
class Reshape(ShapeOp):
    name = "reshape"
    doc = "Reshape each sample: (N, ...) -> (N, *shape), one size may be -1 (inferred)."
    params = (Param("shape", "shape", doc="the new per-sample shape, without the batch axis; -1 once at most"),)
    inputs = (Port("x", doc="(N, ...)", rank=(1, None)),)

    def infer(self, p, x: TensorType) -> TensorType:
        _needs_batch_axis(x)
        sample = x.shape[1:]
        known = math.prod(size for size in p.shape if size != -1)
        if any(size is None for size in sample):
            new = tuple(None if size == -1 else size for size in p.shape)
        else:
            total = math.prod(sample)
            if -1 in p.shape:
                if total % known:
                    raise ShapeError(
                        f"cannot reshape samples of shape {format_shape(sample)} ({total} values) into "
                        f"{list(p.shape)}: {total} is not a multiple of {known}",
                        field="params.shape",
                    )
                new = tuple(total // known if size == -1 else size for size in p.shape)
            elif total != known:
                raise ShapeError(
                    f"cannot reshape samples of shape {format_shape(sample)} ({total} values) into "
                    f"{format_shape(p.shape)} ({known} values)",
                    field="params.shape",
                )
            else:
                new = p.shape
        return TensorType((x.shape[0], *new), x.dtype)

    def forward(self, ctx, p, x):
        ctx.shape = x.shape
        return x.reshape((x.shape[0], *p.shape))

    def backward(self, ctx, p, g):
        return (g.reshape(ctx.shape),)


@register
class Flatten(ShapeOp):
    name = "flatten"
    doc = "Flatten the axes from start_axis on into one: (N, a, b, c) -> (N, a*b*c) for start_axis 1."
    params = (Param("start_axis", "int", 1, "first axis to flatten; the axes before it are kept", minimum=1),)
    inputs = (Port("x", doc="(N, ...) with at least one axis after the batch", rank=(2, None)),)

    def infer(self, p, x: TensorType) -> TensorType:
        if p.start_axis >= x.rank:
            raise ShapeError(
                f"start_axis {p.start_axis} is out of range for input of shape {format_shape(x.shape)} "
                f"(rank {x.rank}): it must be at most {x.rank - 1}",
                field="params.start_axis",
            )
        rest = x.shape[p.start_axis:]
        size = None if any(s is None for s in rest) else math.prod(rest)
        return TensorType((*x.shape[:p.start_axis], size), x.dtype)

    def forward(self, ctx, p, x):
        ctx.shape = x.shape
        return x.reshape((*x.shape[:p.start_axis], -1))

    def backward(self, ctx, p, g):
        return (g.reshape(ctx.shape),)


@register
class Transpose(ShapeOp):
    name = "transpose"
    doc = "Permute axes: out.shape[i] = x.shape[axes[i]]; null reverses them."
    params = (Param("axes", "int_list", None, "a permutation of every axis, the batch axis included; null reverses",
                    nullable=True),)

    def infer(self, p, x: TensorType) -> TensorType:
        return TensorType(tuple(x.shape[a] for a in permutation(p.axes, x.shape)), x.dtype)

    def forward(self, ctx, p, x):
        axes = permutation(p.axes, x.shape)
        ctx.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return x.transpose(axes)

    def backward(self, ctx, p, g):
        return (g.transpose(ctx.inverse),)


def permutation(axes, shape: tuple) -> tuple[int, ...]:
    rank = len(shape)
    if axes is None:
        return tuple(reversed(range(rank)))
    normalized = tuple(a % rank if -rank <= a < rank else None for a in axes)
    if len(axes) != rank or sorted(a for a in normalized if a is not None) != list(range(rank)):
        raise ShapeError(
            f"axes {list(axes)} must be a permutation of the {rank} axes of input shape {format_shape(shape)} "
            f"(e.g. {list(reversed(range(rank)))})",
            field="params.axes",
        )
    return normalized


@register
class Concat(ShapeOp):
    name = "concat"
    doc = "Join tensors along an axis; every other axis must have the same size."
    params = (Param("axis", "int", -1, "axis to join along, negative from the end"),)
    inputs = (Port("x", doc="the tensors to join, in order", variadic=True, rank=(1, None)),)

    def infer(self, p, xs: list[TensorType]) -> TensorType:
        first = xs[0]
        for index, x in enumerate(xs[1:], start=1):
            if x.rank != first.rank:
                raise ShapeError(
                    f"input {index} has shape {format_shape(x.shape)} (rank {x.rank}) but input 0 has "
                    f"{format_shape(first.shape)} (rank {first.rank}); concat needs inputs of one rank",
                    field="inputs.x",
                )
            if x.dtype != first.dtype:
                raise ShapeError(f"input {index} is {x.dtype} but input 0 is {first.dtype}", field="inputs.x")
        axis = axis_of(p.axis, first.shape)
        shape = []
        for dim in range(first.rank):
            sizes = [x.shape[dim] for x in xs]
            if dim == axis:
                shape.append(None if None in sizes else sum(sizes))
                continue
            known = [(index, size) for index, size in enumerate(sizes) if size is not None]
            for index, size in known[1:]:
                if size != known[0][1]:
                    other = known[0][0]
                    raise ShapeError(
                        f"input {index} has shape {format_shape(xs[index].shape)} but input {other} has "
                        f"{format_shape(xs[other].shape)}: they differ at axis {dim} ({size} against {known[0][1]}), "
                        f"and only the concat axis {axis} may differ",
                        field="inputs.x",
                    )
            shape.append(known[0][1] if known else None)
        return TensorType(tuple(shape), first.dtype)

    def forward(self, ctx, p, xs):
        axis = p.axis % xs[0].ndim
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        return array_module(*xs).concatenate(xs, axis=axis)

    def backward(self, ctx, p, g):
        needs = ctx.needs[0] if ctx.needs else True
        needs = needs if isinstance(needs, list) else [needs] * len(ctx.sizes)
        grads, start = [], 0
        index = [slice(None)] * g.ndim
        for size, needed in zip(ctx.sizes, needs):
            index[ctx.axis] = slice(start, start + size)
            grads.append(g[tuple(index)] if needed else None)
            start += size
        return (grads,)


@register
class Slice(ShapeOp):
    name = "slice"
    doc = "x[..., start:stop:step, ...] along one axis, like Python slicing; the gradient is zero elsewhere."
    params = (
        Param("axis", "int", -1, "axis to slice, negative from the end"),
        Param("start", "int", 0, "first index, negative from the end"),
        Param("stop", "int", None, "index to stop before, negative from the end; null runs to the end", nullable=True),
        Param("step", "int", 1, "stride", minimum=1),
    )
    inputs = (Port("x", rank=(1, None)),)

    def infer(self, p, x: TensorType) -> TensorType:
        axis = axis_of(p.axis, x.shape)
        size = x.shape[axis]
        length = None
        if size is not None:
            start, stop, _ = slice(p.start, p.stop, p.step).indices(size)
            length = len(range(start, stop, p.step))
            if length == 0:
                stop_text = "" if p.stop is None else p.stop
                raise ShapeError(
                    f"slice [{p.start}:{stop_text}:{p.step}] of axis {axis} (size {size}) of input shape "
                    f"{format_shape(x.shape)} is empty",
                    field="params.start" if start >= size else "params.stop",
                )
        return TensorType(x.shape[:axis] + (length,) + x.shape[axis + 1:], x.dtype)

    def forward(self, ctx, p, x):
        index = (slice(None),) * (p.axis % x.ndim) + (slice(p.start, p.stop, p.step),)
        ctx.index, ctx.shape = index, x.shape
        return x[index]

    def backward(self, ctx, p, g):
        grad = array_module(g).zeros(ctx.shape, dtype=g.dtype)
        grad[ctx.index] = g
        return (grad,)
