"""Matrix products: matmul and the dense (fully connected) layer.

In a training step that owns the cores (``engine.parallel.owned_cores``: convolutional nets) the
dense layer's three products split their rows across the engine's threads, each piece one BLAS call
on one thread; elsewhere they are single BLAS calls on BLAS's threads."""

from __future__ import annotations

import numpy

from engine import parallel
from engine.backend import array_module
from engine.errors import ShapeError
from engine.initializers import INITIALIZER_NAMES
from engine.ops import _numba
from engine.ops._util import broadcast_shapes, format_shape, sum_to
from engine.registry import Op, Param, Port, TensorType, Weight, register


@register
class Matmul(Op):
    name = "matmul"
    category = "math"
    doc = "Matrix product a @ b over the last two axes, batch axes broadcast."
    inputs = (Port("a", doc="(..., n, k)", rank=(2, None)), Port("b", doc="(..., k, m)", rank=(2, None)))

    def infer(self, p, a: TensorType, b: TensorType) -> TensorType:
        if a.rank < 2 or b.rank < 2:
            raise ShapeError(
                f"needs tensors of rank >= 2, got {format_shape(a.shape)} and {format_shape(b.shape)}", field="inputs"
            )
        if a.shape[-1] is not None and b.shape[-2] is not None and a.shape[-1] != b.shape[-2]:
            raise ShapeError(
                f"inner sizes differ: a {format_shape(a.shape)} has {a.shape[-1]} columns, "
                f"b {format_shape(b.shape)} has {b.shape[-2]} rows",
                field="inputs.b",
            )
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], field="inputs.b")
        return TensorType(batch + (a.shape[-2], b.shape[-1]), a.dtype)

    def flops(self, p, inputs, outputs):
        return 2 * inputs[0].shape[-1] * outputs[0].per_sample_size()

    def forward(self, ctx, p, a, b):
        ctx.a, ctx.b = a, b
        return a @ b

    def backward(self, ctx, p, g):
        a, b = ctx.a, ctx.b
        da = sum_to(g @ b.swapaxes(-1, -2), a.shape) if ctx.needs[0] else None
        db = sum_to(a.swapaxes(-1, -2) @ g, b.shape) if ctx.needs[1] else None
        return da, db


@register
class Dense(Op):
    name = "dense"
    category = "layers"
    doc = "Fully connected layer over the last axis: y = x W + b."
    inputs = (Port("x", doc="(..., features)", rank=(1, None)),)
    params = (
        Param("units", "int", doc="output features", minimum=1, maximum=1_000_000),
        Param("use_bias", "bool", True, "add a learned bias"),
        Param("kernel_init", "choice", "glorot_uniform", "initializer of W", choices=INITIALIZER_NAMES),
        Param("bias_init", "choice", "zeros", "initializer of b", choices=INITIALIZER_NAMES),
    )

    def infer(self, p, x: TensorType) -> TensorType:
        if x.rank < 1 or x.shape[-1] is None:
            raise ShapeError(f"needs a known last axis (features), got {format_shape(x.shape)}", field="inputs.x")
        return TensorType(x.shape[:-1] + (p.units,), x.dtype)

    def weights(self, p, x: TensorType) -> list[Weight]:
        fan_in = x.shape[-1]
        weights = [Weight("W", (fan_in, p.units), p.kernel_init, fan_in, p.units)]
        if p.use_bias:
            weights.append(Weight("b", (p.units,), p.bias_init, fan_in, p.units))
        return weights

    def flops(self, p, inputs, outputs):
        return 2 * inputs[0].shape[-1] * outputs[0].per_sample_size()

    def forward(self, ctx, p, x, W, b=None):
        ctx.x, ctx.W = x, W
        out = rows_product(x.reshape(-1, x.shape[-1]), W, b).reshape(*x.shape[:-1], W.shape[1])
        return out

    def backward(self, ctx, p, g):
        x, W = ctx.x, ctx.W
        needs = ctx.needs
        flat_g = g.reshape(-1, g.shape[-1])
        # The weight gradients first: a data-parallel worker sends them (ctx.weights_ready) while dx,
        # a product as large, is computed (the 3M-parameter MLP of the distributed bench: its 11.6 MB
        # hidden kernel's all-reduce overlapped nothing when it came last).
        dW = rows_product(x.reshape(-1, x.shape[-1]).T, flat_g) if needs[1] else None
        weight_grads = (dW, flat_g.sum(axis=0) if needs[2] else None) if p.use_bias else (dW,)
        if ctx.weights_ready is not None:
            ctx.weights_ready(weight_grads)
        dx = rows_product(flat_g, W.T).reshape(x.shape) if needs[0] else None
        return (dx, *weight_grads)


# Multiply-adds of a product worth one element of a simple ufunc in ``parallel``'s grain: BLAS does
# about 16-30 in the time a ufunc takes for one element, so smaller products stay on one thread.
PRODUCT_TERMS_PER_ELEMENT = 16


def rows_product(a, b, bias=None):
    """a (n, k) @ b (k, m) (+ bias (m,)): while a training step owns the cores (a convolutional
    net's), the rows of ``a`` split across the engine's threads; otherwise one product on BLAS's
    own threads, which measured faster for a dense net's products."""
    xp = array_module(a)
    n, k, m = a.shape[0], a.shape[1], b.shape[1]
    work = n * k * m // PRODUCT_TERMS_PER_ELEMENT
    if xp is not numpy or not parallel.cores_owned() or len(parallel.split(n, work)) == 1:
        out = a @ b
        if bias is not None:
            out += bias
        return out
    out = xp.empty((n, m), dtype=xp.result_type(a, b))

    def piece(start, stop):
        xp.matmul(a[start:stop], b, out=out[start:stop])
        if bias is not None:
            out[start:stop] += bias

    # The calling thread's piece a grain of work larger (about 2M multiply-adds, 20-40 us): the pool's
    # worker starts 50-100 us later, and a caller that finished first would sleep until it is done and
    # take as long again to wake (an encoder layer's steps at batch 32 on 2 threads 5% faster).
    parallel.run(n, piece, work=work, head_start=parallel.grain())
    return out


def transposed(matrix):
    """matrix.T (2-D) as a C-contiguous array, which BLAS multiplies by faster than by the view. On
    NumPy arrays a compiled copy in blocks of 16 rows: a (128, 512) float32 matrix in 45 us on one
    thread, against 148 us for ``numpy.ascontiguousarray(matrix.T)`` (the recurrent layers' backward
    pass does this once a step)."""
    xp = array_module(matrix)
    if not _numba.available(xp) or matrix.flags.f_contiguous or matrix.ndim != 2:
        return xp.ascontiguousarray(matrix.T)
    out = numpy.empty(matrix.shape[::-1], dtype=matrix.dtype)
    _numba.compile_kernel(_transpose_kernel)(matrix, out)
    return out


def _transpose_kernel(matrix, out):
    """out[j, i] = matrix[i, j], 16 rows of ``matrix`` at a time (a 64-byte row of out is written whole)."""
    rows, columns = matrix.shape
    for low in range(0, rows, 16):
        high = min(low + 16, rows)
        for j in range(columns):
            for i in range(low, high):
                out[j, i] = matrix[i, j]
