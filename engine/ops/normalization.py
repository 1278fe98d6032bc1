"""Normalization layers: batch normalization (statistics over the batch, running averages kept as
buffers for eval) and layer normalization (statistics over each sample's last axes).

Both compute x_hat = (x - mean) / sqrt(var + epsilon) and y = gamma * x_hat + beta; with M values
per statistic the input gradient is dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps).
"""

from __future__ import annotations

import functools
import math
import typing

import numpy

from engine import parallel
from engine.backend import array_module
from engine.errors import ShapeError
from engine.ops import _numba
from engine.ops._util import format_shape
from engine.registry import Op, Param, Port, TensorType, Weight, register


def _normalized_backward(g, x_hat, inv_std, gamma, axes):
    """dx of y = gamma * (x - mean) * inv_std with mean and inv_std taken over ``axes``."""
    dx_hat = g * gamma if gamma is not None else g
    mean_dx_hat_x_hat = (dx_hat * x_hat).mean(axis=axes, keepdims=True)
    dx_hat = dx_hat - dx_hat.mean(axis=axes, keepdims=True)  # a new array: g may be shared
    dx_hat -= x_hat * mean_dx_hat_x_hat
    dx_hat *= inv_std
    return dx_hat


@register
class BatchNorm(Op):
    name = "batch_norm"
    category = "normalization"
    inputs = (Port("x", doc="(N, C) or (N, C, ...): normalized per channel (axis 1)", rank=(2, None)),)
    doc = ("Batch normalization over axis 1 of (N, C) or (N, C, ...): in training y = gamma * (x - mean_B) / "
           "sqrt(var_B + epsilon) + beta with batch statistics, which also update running averages; in eval the "
           "running averages replace them.")
    params = (
        Param("momentum", "float", 0.1, "weight of the new batch in the running averages: "
                                        "running = (1 - momentum) * running + momentum * batch",
              minimum=0.0, maximum=1.0),
        Param("epsilon", "float", 1e-5, "added to the variance before the square root", minimum=0.0, maximum=1.0),
        Param("affine", "bool", True, "learn a scale gamma and a shift beta per channel"),
    )

    def infer(self, p, x: TensorType) -> TensorType:
        if x.rank < 2:
            raise ShapeError(f"needs an input (N, C) or (N, C, ...) with channels on axis 1, got "
                             f"{format_shape(x.shape)} (rank {x.rank}): it normalizes each channel over the batch; "
                             f"give it features (N, C) or maps (N, C, H, W), "
                             f"e.g. one value per sample reshaped to (N, 1)", field="inputs.x")
        if x.shape[1] is None:
            raise ShapeError(f"needs a known channel size (axis 1), got {format_shape(x.shape)}", field="inputs.x")
        return x

    def weights(self, p, x: TensorType) -> list[Weight]:
        channels = x.shape[1]
        weights = []
        if p.affine:
            weights += [Weight("gamma", (channels,), "ones"), Weight("beta", (channels,), "zeros")]
        weights += [Weight("running_mean", (channels,), "zeros", trainable=False),
                    Weight("running_var", (channels,), "ones", trainable=False)]
        return weights

    def flops(self, p, inputs, outputs):
        return 4 * inputs[0].per_sample_size()

    def forward(self, ctx, p, x, *weights):
        gamma, beta, running_mean, running_var = weights if p.affine else (None, None, *weights)
        xp = array_module(x)
        n, channels = x.shape[:2]
        rows = x.reshape(n, channels, -1)  # (N, C, R): statistics over N and R
        count = n * rows.shape[2]
        if ctx.training:
            if count < 2:
                raise ValueError(f"batch_norm in training needs more than one value per channel, got input {x.shape}")
            kernels = _batch_norm_kernels(xp)
            mean, var = _mean_and_variance(rows) if kernels is None else _kernel_mean_and_variance(kernels, rows)
            inv_std = 1.0 / (var + p.epsilon) ** 0.5
            m = p.momentum
            ctx.updates = {
                "running_mean": (1 - m) * running_mean + m * mean,
                "running_var": (1 - m) * running_var + m * var * (count / (count - 1)),
            }
        else:
            mean, inv_std = running_mean, 1.0 / (running_var + p.epsilon) ** 0.5
        # y = x * scale + shift, scale = gamma / sqrt(var + eps), shift = beta - mean * scale: two passes.
        scale = inv_std if gamma is None else gamma * inv_std
        shift = -mean * scale if beta is None else beta - mean * scale
        out = xp.empty(rows.shape, dtype=x.dtype)
        scale_b, shift_b = scale.astype(x.dtype)[:, None], shift.astype(x.dtype)[:, None]

        kernels = _batch_norm_kernels(xp)
        if kernels is not None:
            rows = numpy.ascontiguousarray(rows)
            scale_k, shift_k = scale_b[:, 0], shift_b[:, 0]
            parallel.run(n, lambda low, high: kernels.affine(rows[low:high], scale_k, shift_k, out[low:high]),
                         work=_kernel_work(rows))
        else:
            def normalize(low, high):
                xp.multiply(rows[low:high], scale_b, out=out[low:high])
                out[low:high] += shift_b

            parallel.for_rows(xp, n, rows[0].size, normalize)
        ctx.rows, ctx.mean, ctx.inv_std, ctx.gamma, ctx.shape = rows, mean, inv_std, gamma, x.shape
        return out.reshape(x.shape)

    def backward(self, ctx, p, g):
        rows, mean, inv_std, gamma = ctx.rows, ctx.mean, ctx.inv_std, ctx.gamma
        needs = ctx.needs
        xp = array_module(g)
        n = rows.shape[0]
        grads = g.reshape(rows.shape)
        count = n * rows.shape[2]
        scale = inv_std if gamma is None else gamma * inv_std
        want_sums = ctx.training and needs[0] or p.affine and (needs[1] or needs[2])
        kernels = _batch_norm_kernels(xp)
        if kernels is not None:
            grads = numpy.ascontiguousarray(grads)
        if want_sums and kernels is not None:  # per channel, in float64: sum(g) and sum(g * (x - mean))
            mean_64 = mean.astype(numpy.float64)

            def kernel_sums(low, high):
                totals = numpy.empty((2, rows.shape[1]))
                kernels.gradient_sums(rows[low:high], grads[low:high], mean_64, totals[0], totals[1])
                return totals

            grad_sum, grad_centered_sum = (total.astype(g.dtype) for total in parallel.map_reduce(
                n, kernel_sums, lambda a, b: a + b, work=_kernel_work(rows)))
        elif want_sums:  # per channel: sum(g) and sum(g * (x - mean)), in one pass over each run
            centered_mean = mean[:, None]

            def sums(low, high):
                r, d = rows[low:high], grads[low:high]
                centered = r - centered_mean
                return xp.stack([xp.einsum("ncr->c", d), xp.einsum("ncr,ncr->c", d, centered)])

            grad_sum, grad_centered_sum = _channel_sums(rows, sums)
        dx = None
        if needs[0]:
            # dx = scale * (g - mean(g) - x_hat * mean(g * x_hat)) = a * g + b * x + c per channel (training);
            # dx = scale * g in eval.
            if ctx.training:
                b = -scale * inv_std * inv_std * grad_centered_sum / count
                c = -scale * grad_sum / count - b * mean
            else:
                b = c = xp.zeros_like(scale)
            a_b, b_b, c_b = (v.astype(g.dtype)[:, None] for v in (scale, b, c))
            dx = xp.empty(rows.shape, dtype=g.dtype)
            if kernels is not None and ctx.training:
                a_k, b_k, c_k = a_b[:, 0], b_b[:, 0], c_b[:, 0]
                parallel.run(n, lambda low, high: kernels.input_gradient(grads[low:high], rows[low:high], a_k, b_k,
                                                                         c_k, dx[low:high]),
                             work=_kernel_work(rows))
            else:
                def input_grad(low, high):
                    d, target = grads[low:high], dx[low:high]
                    xp.multiply(d, a_b, out=target)
                    if ctx.training:
                        term = rows[low:high] * b_b
                        term += c_b
                        target += term

                parallel.for_rows(xp, n, rows[0].size, input_grad)
            dx = dx.reshape(ctx.shape)
        if not p.affine:
            return dx, None, None
        dgamma = (grad_centered_sum * inv_std).astype(g.dtype) if needs[1] else None
        dbeta = grad_sum.astype(g.dtype) if needs[2] else None
        return dx, dgamma, dbeta, None, None


def _mean_and_variance(rows):
    """Per-channel mean and (biased) variance over (N, C, R) rows in one pass over memory: each run
    of samples gives its own mean and sum of squared deviations (two passes over the run while it is
    in cache), and runs merge in sample order by Chan et al.'s pairwise update:
    mean = mean_a + d * n_b / n,  M2 = M2_a + M2_b + d^2 * n_a * n_b / n,  d = mean_b - mean_a."""
    xp = array_module(rows)
    per_sample = rows.shape[2]

    def run(low, high):
        r = rows[low:high]
        count = (high - low) * per_sample
        mean = xp.einsum("ncr->c", r) / count
        centered = r - mean[:, None].astype(r.dtype)
        return count, mean, xp.einsum("ncr,ncr->c", centered, centered)

    count, mean, m2 = parallel.reduce_rows(xp, rows.shape[0], rows[0].size, run, _merge_moments)
    return mean, m2 / count


def _kernel_work(rows) -> int:
    return _numba.piece_work(rows.size)


def _merge_moments(a, b):
    """Two runs' (count, mean, M2) as one, by Chan et al.'s pairwise update (see _mean_and_variance)."""
    (count_a, mean_a, m2_a), (count_b, mean_b, m2_b) = a, b
    count = count_a + count_b
    delta = mean_b - mean_a
    return count, mean_a + delta * (count_b / count), m2_a + m2_b + delta * delta * (count_a * count_b / count)


class _Kernels(typing.NamedTuple):
    stats: object
    affine: object
    gradient_sums: object
    input_gradient: object


def _batch_norm_kernels(xp):
    """The compiled batch-norm kernels where they run (NumPy arrays, numba installed), else None."""
    return _compiled_batch_norm_kernels() if _numba.available(xp) else None


@functools.cache
def _compiled_batch_norm_kernels() -> _Kernels:
    return _Kernels(*(_numba.compile_kernel(f) for f in (_stats_kernel, _affine_kernel, _gradient_sums_kernel,
                                                          _input_gradient_kernel)))


def _kernel_mean_and_variance(kernels, rows):
    """``_mean_and_variance`` by the kernel: each piece's per-channel mean and M2 in float64 (two
    passes over the piece), merged in piece order as there."""
    rows = numpy.ascontiguousarray(rows)
    channels, per_sample = rows.shape[1:]

    def piece(low, high):
        mean, m2 = numpy.empty(channels), numpy.empty(channels)
        kernels.stats(rows[low:high], mean, m2)
        return (high - low) * per_sample, mean, m2

    count, mean, m2 = parallel.map_reduce(rows.shape[0], piece, _merge_moments, work=_kernel_work(rows))
    return mean.astype(rows.dtype), (m2 / count).astype(rows.dtype)


def _stats_kernel(rows, mean_out, m2_out):
    """Per channel of rows (n, C, R): the mean and the sum of squared deviations from it."""
    n, channels, size = rows.shape
    count = n * size
    for c in range(channels):
        total = 0.0
        for i in range(n):
            for r in range(size):
                total += rows[i, c, r]
        mean = total / count
        squares = 0.0
        for i in range(n):
            for r in range(size):
                d = rows[i, c, r] - mean
                squares += d * d
        mean_out[c] = mean
        m2_out[c] = squares


def _affine_kernel(rows, scale, shift, out):
    """out = rows * scale + shift per channel (axis 1)."""
    n, channels, size = rows.shape
    for i in range(n):
        for c in range(channels):
            a, b = scale[c], shift[c]
            for r in range(size):
                out[i, c, r] = rows[i, c, r] * a + b


def _gradient_sums_kernel(rows, grads, mean, grad_sum, grad_centered_sum):
    """Per channel: sum(g) and sum(g * (x - mean)), accumulated in float64."""
    n, channels, size = rows.shape
    for c in range(channels):
        m = mean[c]
        plain = 0.0
        centered = 0.0
        for i in range(n):
            for r in range(size):
                d = grads[i, c, r]
                plain += d
                centered += d * (rows[i, c, r] - m)
        grad_sum[c] = plain
        grad_centered_sum[c] = centered


def _input_gradient_kernel(grads, rows, a, b, c, dx):
    """dx = a * g + b * x + c per channel."""
    n, channels, size = rows.shape
    for i in range(n):
        for k in range(channels):
            ak, bk, ck = a[k], b[k], c[k]
            for r in range(size):
                dx[i, k, r] = ak * grads[i, k, r] + bk * rows[i, k, r] + ck


def _channel_sums(rows, body):
    """Per-channel sums over (N, C, R) rows: ``body(low, high)`` for runs of samples on every
    thread, the partial sums added in sample order."""
    return parallel.reduce_rows(array_module(rows), rows.shape[0], rows[0].size, body, lambda a, b: a + b)


def _averaging(xp, size: int, dtype):
    """The vector (1/size, ...): a row's mean as a product, which BLAS does several times faster than
    NumPy's reduction along short rows."""
    return xp.full(size, 1.0 / size, dtype=dtype)


@register
class LayerNorm(Op):
    name = "layer_norm"
    category = "normalization"
    inputs = (Port("x", doc="(N, ...): each sample normalized over its last axes", rank=(2, None)),)
    doc = ("Layer normalization over each sample's last k axes: y = gamma * (x - mean) / sqrt(var + epsilon) + beta, "
           "mean and var taken over those axes; gamma and beta have their shape.")
    params = (
        Param("axes", "int", 1, "how many trailing axes to normalize over (1: the features of (N, ..., D))",
              minimum=1, maximum=8),
        Param("epsilon", "float", 1e-5, "added to the variance before the square root", minimum=0.0, maximum=1.0),
        Param("affine", "bool", True, "learn a scale gamma and a shift beta over the normalized shape"),
    )

    def infer(self, p, x: TensorType) -> TensorType:
        if p.axes >= x.rank:
            raise ShapeError(f"axes {p.axes} must leave the batch axis out: the input {format_shape(x.shape)} "
                             f"has rank {x.rank}", field="params.axes")
        if any(size is None for size in x.shape[-p.axes:]):
            raise ShapeError(f"the last {p.axes} axes of {format_shape(x.shape)} must have known sizes",
                             field="inputs.x")
        return x

    def weights(self, p, x: TensorType) -> list[Weight]:
        if not p.affine:
            return []
        normalized = tuple(x.shape[-p.axes:])
        size = math.prod(normalized)
        return [Weight("gamma", normalized, "ones", size, size), Weight("beta", normalized, "zeros", size, size)]

    def flops(self, p, inputs, outputs):
        return 4 * inputs[0].per_sample_size()

    def forward(self, ctx, p, x, gamma=None, beta=None):
        # Each sample's statistics over its own values: runs of rows on the engine's threads, every
        # pass of a run while it is in cache.
        xp = array_module(x)
        size = math.prod(x.shape[-p.axes:])
        rows = x.reshape(-1, size)
        x_hat = xp.empty(rows.shape, dtype=x.dtype)
        inv_std = xp.empty((rows.shape[0], 1), dtype=x.dtype)
        out = None if gamma is None else xp.empty(rows.shape, dtype=x.dtype)
        scale = None if gamma is None else gamma.reshape(-1)
        shift = None if beta is None else beta.reshape(-1)
        if _numba.available(xp) and rows.flags.c_contiguous:
            # One compiled pass a row (statistics accumulated in float64) instead of ten NumPy calls a run.
            kernel, epsilon = _numba.compile_kernel(_layer_norm_kernel), numpy.array([p.epsilon], dtype=numpy.float64)
            factors = numpy.ones(size, dtype=x.dtype) if scale is None else scale
            offsets = numpy.zeros(size, dtype=x.dtype) if shift is None else shift
            target = x_hat if out is None else out
            parallel.run(rows.shape[0], lambda low, high: kernel(
                rows[low:high], factors, offsets, epsilon, x_hat[low:high], inv_std[low:high, 0], target[low:high]),
                work=_numba.piece_work(rows.size))
            ctx.x_hat, ctx.inv_std, ctx.gamma = x_hat, inv_std, scale
            return target.reshape(x.shape)
        averaging = _averaging(xp, size, x.dtype)

        def normalize(low, high):
            values, centred, inverse = rows[low:high], x_hat[low:high], inv_std[low:high]
            xp.subtract(values, (values @ averaging)[:, None], out=centred)
            squares = centred * centred if out is None else xp.multiply(centred, centred, out=out[low:high])
            xp.matmul(squares, averaging, out=inverse[:, 0])
            inverse += p.epsilon
            xp.sqrt(inverse, out=inverse)
            xp.reciprocal(inverse, out=inverse)
            centred *= inverse
            if out is not None:
                xp.multiply(centred, scale, out=out[low:high])
                out[low:high] += shift

        parallel.for_rows(xp, rows.shape[0], size, normalize, cost=4)
        ctx.x_hat, ctx.inv_std, ctx.gamma = x_hat, inv_std, scale
        return (x_hat if out is None else out).reshape(x.shape)

    def backward(self, ctx, p, g):
        # dx = (dx_hat - mean(dx_hat) - x_hat mean(dx_hat x_hat)) inv_std, dx_hat = g gamma, and the
        # partial sums of dgamma and dbeta, in one pass over each run of rows.
        xp = array_module(g)
        x_hat, inv_std, scale, needs = ctx.x_hat, ctx.inv_std, ctx.gamma, ctx.needs
        rows = g.reshape(x_hat.shape)
        dx = xp.empty(x_hat.shape, dtype=g.dtype) if needs[0] else None
        if _numba.available(xp) and rows.flags.c_contiguous and g.dtype == x_hat.dtype:
            return _layer_norm_backward_compiled(g, rows, x_hat, inv_std, scale, dx, needs, p.axes)
        averaging = _averaging(xp, x_hat.shape[1], g.dtype)

        def run(low, high):
            upstream, normalized = rows[low:high], x_hat[low:high]
            product = upstream * normalized
            sums = None if scale is None else (product.sum(axis=0), upstream.sum(axis=0))
            if dx is not None:
                d = dx[low:high]
                if scale is None:
                    xp.copyto(d, upstream)
                else:
                    xp.multiply(upstream, scale, out=d)
                    product *= scale
                along = (product @ averaging)[:, None]  # mean(dx_hat x_hat)
                d -= (d @ averaging)[:, None]
                xp.multiply(normalized, along, out=product)
                d -= product
                d *= inv_std[low:high]
            return sums

        if scale is None:
            if dx is not None:
                parallel.for_rows(xp, rows.shape[0], rows.shape[1], run, cost=6)
            return (None if dx is None else dx.reshape(g.shape),)
        dgamma, dbeta = parallel.reduce_rows(xp, rows.shape[0], rows.shape[1], run,
                                             lambda a, b: (a[0] + b[0], a[1] + b[1]))
        shape = g.shape[g.ndim - p.axes:]
        return (None if dx is None else dx.reshape(g.shape), dgamma.reshape(shape) if needs[1] else None,
                dbeta.reshape(shape) if needs[2] else None)


def _layer_norm_backward_compiled(g, rows, x_hat, inv_std, scale, dx, needs, axes: int):
    """LayerNorm.backward by one compiled pass a row; dgamma and dbeta as per-piece column sums in
    float64, added in piece order."""
    size = x_hat.shape[1]
    kernel = _numba.compile_kernel(_layer_norm_backward_kernel)
    gamma = numpy.ones(size, dtype=g.dtype) if scale is None else scale
    target = numpy.empty((0, size), dtype=g.dtype) if dx is None else dx  # no rows: never written

    def piece(low, high):
        sums = numpy.zeros((2, size))
        kernel(rows[low:high], x_hat[low:high], inv_std[low:high, 0], gamma, dx is not None, target[low:high], sums)
        return sums

    sums = parallel.map_reduce(rows.shape[0], piece, lambda a, b: a + b, work=_numba.piece_work(rows.size))
    dx = None if dx is None else dx.reshape(g.shape)
    if scale is None:
        return (dx,)
    shape = g.shape[g.ndim - axes:]
    dgamma = sums[0].astype(g.dtype).reshape(shape) if needs[1] else None
    dbeta = sums[1].astype(g.dtype).reshape(shape) if needs[2] else None
    return dx, dgamma, dbeta


def _layer_norm_kernel(rows, gamma, beta, epsilon, x_hat, inv_std, out):
    """Per row: mean and biased variance (two passes, in float64), x_hat = (x - mean) / sqrt(var +
    eps), out = x_hat * gamma + beta (out may be x_hat itself when there is no affine part)."""
    n, size = rows.shape
    for i in range(n):
        total = 0.0
        for j in range(size):
            total += rows[i, j]
        mean = total / size
        squares = 0.0
        for j in range(size):
            d = rows[i, j] - mean
            squares += d * d
        inverse = 1.0 / numpy.sqrt(squares / size + epsilon[0])
        inv_std[i] = inverse
        for j in range(size):
            normalized = (rows[i, j] - mean) * inverse
            x_hat[i, j] = normalized
            out[i, j] = normalized * gamma[j] + beta[j]


def _layer_norm_backward_kernel(g, x_hat, inv_std, gamma, wants_dx, dx, sums):
    """Per row: dx = (d - mean(d) - x_hat mean(d x_hat)) inv_std, d = g gamma (means in float64);
    sums[0] += g x_hat and sums[1] += g, column by column (dgamma and dbeta)."""
    n, size = g.shape
    for i in range(n):
        along = 0.0
        plain = 0.0
        for j in range(size):
            upstream = g[i, j]
            sums[0, j] += upstream * x_hat[i, j]
            sums[1, j] += upstream
            d = upstream * gamma[j]
            plain += d
            along += d * x_hat[i, j]
        if wants_dx:
            mean_d = plain / size
            mean_along = along / size
            inverse = inv_std[i]
            for j in range(size):
                dx[i, j] = (g[i, j] * gamma[j] - mean_d - x_hat[i, j] * mean_along) * inverse

