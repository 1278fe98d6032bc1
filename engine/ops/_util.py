"""Helpers shared by op families: undoing broadcasting and normalising axes."""

from __future__ import annotations

from engine.errors import ShapeError


def sum_to(grad, shape: tuple[int, ...]):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting (the one place it is undone)."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1
    )
    reduced = grad.sum(axis=axes, keepdims=True) if axes else grad
    if extra:
        reduced = reduced.reshape(reduced.shape[extra:])
    return reduced.reshape(shape)


def broadcast_shapes(a: tuple, b: tuple, field: str = "inputs") -> tuple:
    """Broadcast two symbolic shapes (``None`` is an unknown size, e.g. the batch)."""
    result = []
    for i in range(max(len(a), len(b))):
        x = a[len(a) - 1 - i] if i < len(a) else 1
        y = b[len(b) - 1 - i] if i < len(b) else 1
        if x == 1:
            result.append(y)
        elif y == 1 or x == y:
            result.append(x)
        elif x is None or y is None:
            result.append(x if y is None else y)
        else:
            raise ShapeError(
                f"shapes {format_shape(a)} and {format_shape(b)} cannot be broadcast together "
                f"(size {x} against {y} at axis {-1 - i})",
                field=field,
            )
    return tuple(reversed(result))


def normalize_axis(axis: int, ndim: int, field: str = "params.axis") -> int:
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for a tensor of rank {ndim}", field=field)
    return axis % ndim


def normalize_axes(axes, ndim: int, field: str = "params.axis") -> tuple[int, ...]:
    """``None`` means every axis; an int or a list of ints otherwise."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, int):
        axes = [axes]
    normalized = tuple(sorted(normalize_axis(a, ndim, field) for a in axes))
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"axis list {list(axes)} repeats an axis", field=field)
    return normalized


def format_shape(shape) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


SHARED_WORKSPACE = "shared"  # the key, in each node's workspace, of the work arrays all nodes share


def scratch(ctx, name: str, shape: tuple, dtype, xp):
    """A work array of ``shape`` for an op's own temporaries (im2col columns, a transposed gradient),
    its contents undefined. Under a model's training step (``ctx.workspace``, one per node and
    thread) the same memory is handed out again at every step: large arrays allocated afresh each
    step go back to the kernel on free and come back as page faults, which cost more than the
    arithmetic of a small convolution. Elsewhere it is a new array. Never return one from an op,
    as an output or as a gradient, nor keep one for backward: the next node's op reuses the memory
    (scratch arrays are shared by all the nodes of a step, ``SHARED_WORKSPACE``, so that a net of
    many convolutions holds one set of columns per thread, not one per layer)."""
    workspace = getattr(ctx, "workspace", None)
    if workspace is None:
        return xp.empty(shape, dtype=dtype)
    shared = getattr(ctx, "shared", None)  # a PieceWorkspace's share
    workspace = shared if shared is not None else workspace.get(SHARED_WORKSPACE, workspace)
    size = 1
    for extent in shape:
        size *= extent
    buffer = workspace.get(name)
    if buffer is None or buffer.size < size or buffer.dtype != dtype or not isinstance(buffer, xp.ndarray):
        buffer = workspace[name] = xp.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


class PieceWorkspace:
    """The work arrays of one piece of a split op (``engine.parallel.run_pieces``): each piece
    gets its own set under the node's workspace, so that pieces running at once never share one.
    Pass it to ``scratch`` and ``zero_bordered`` in place of the context."""

    def __init__(self, ctx, index: int):
        workspace = getattr(ctx, "workspace", None)
        self.workspace = None if workspace is None else workspace.setdefault(("piece", index), {})
        shared = None if workspace is None else workspace.get(SHARED_WORKSPACE)
        self.shared = None if shared is None else shared.setdefault(("piece", index), {})


def zero_bordered(ctx, name: str, shape: tuple, dtype, xp):
    """Like ``scratch``, but zero when first made and kept at exactly ``shape``: for padded copies
    whose inside is rewritten at every step and whose border must stay zero."""
    workspace = getattr(ctx, "workspace", None)
    buffer = None if workspace is None else workspace.get(name)
    if buffer is None or buffer.shape != tuple(shape) or buffer.dtype != dtype or not isinstance(buffer, xp.ndarray):
        buffer = xp.zeros(shape, dtype=dtype)
        if workspace is not None:
            workspace[name] = buffer
    return buffer
