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
        flat_g, flat_x = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
        need_db = p.use_bias and needs[2]
        if ctx.weights_ready is None:  # all three from one split of the rows
            dx, dW, db = product_gradients(flat_x, flat_g, W, need_dx=needs[0], need_dW=needs[1], need_db=need_db)
            dx = None if dx is None else dx.reshape(x.shape)
            return (dx, dW, db) if p.use_bias else (dx, dW)
        # The weight gradients first: a data-parallel worker sends them (ctx.weights_ready) while dx,
        # a product as large, is computed (the 3M-parameter MLP of the distributed bench: its 11.6 MB
        # hidden kernel's all-reduce overlapped nothing when it came last).
        _, dW, db = product_gradients(flat_x, flat_g, W, need_dx=False, need_dW=needs[1], need_db=need_db)
        weight_grads = (dW, db) if p.use_bias else (dW,)
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


def product_gradients(x, g, W, *, need_dx: bool = True, need_dW: bool = True, need_db: bool = False):
    """For rows y = x W (+ b): (dx = g W^T, dW = x^T g, db = g's column sums), each None where not
    needed. While a training step owns the cores and the products are worth splitting, all of them
    come from one split of the rows (one hand-off to the pool instead of two or three): each piece
    writes its rows of dx and a partial dW and db, added in piece order (the same bits for the same
    thread count). Otherwise dW and db first, then dx, as ``rows_product`` does them."""
    xp = array_module(g)
    n, k, m = x.shape[0], x.shape[1], g.shape[1]
    work = n * k * m * (need_dx + need_dW) // PRODUCT_TERMS_PER_ELEMENT
    pieces = (parallel.split(n, work, head_start=parallel.grain())
              if xp is numpy and parallel.cores_owned() and (need_dx or need_dW) else [(0, n)])
    if len(pieces) == 1:
        dW = rows_product(x.T, g) if need_dW else None
        db = g.sum(axis=0) if need_db else None
        dx = rows_product(g, W.T) if need_dx else None
        return dx, dW, db
    dtype = xp.result_type(x, g)
    dx = xp.empty((n, k), dtype=dtype) if need_dx else None
    dW_parts = xp.empty((len(pieces), k, m), dtype=dtype) if need_dW else None
    db_parts = xp.empty((len(pieces), m), dtype=dtype) if need_db else None
    transposed_W = W.T

    def piece(index, start, stop):
        if dW_parts is not None:
            xp.matmul(x[start:stop].T, g[start:stop], out=dW_parts[index])
        if db_parts is not None:
            g[start:stop].sum(axis=0, out=db_parts[index])
        if dx is not None:
            xp.matmul(g[start:stop], transposed_W, out=dx[start:stop])

    parallel.run_pieces(n, piece, work=work, head_start=parallel.grain())
    return (dx, None if dW_parts is None else dW_parts.sum(axis=0),
            None if db_parts is None else db_parts.sum(axis=0))


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
