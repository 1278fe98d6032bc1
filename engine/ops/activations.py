"""Activation functions, applied element-wise (softmax and log_softmax along one axis).

ReLU, tanh and sigmoid run their passes over runs of rows split across the engine's threads
(``engine.parallel.for_rows``): each chain of passes finds its run in cache, on every core."""

from __future__ import annotations

import math

import numpy

from engine import parallel
from engine.backend import array_module, special
from engine.ops import _numba
from engine.ops._util import normalize_axis
from engine.registry import Op, Param, Port, TensorType, register


class Activation(Op):
    category = "activations"

    def infer(self, p, x: TensorType) -> TensorType:
        return x


LOGISTIC_COST = 8  # scipy's float32 expit costs about 8 elements of maximum (NumPy's SIMD tanh about 1)


def _rows(array):
    """The array as (rows, values) for ``parallel.for_rows`` (a view when it is contiguous)."""
    return array.reshape(array.shape[0] if array.ndim else 1, -1)


def elementwise(body, out_like, *arrays, cost: int = 1):
    """A new array shaped like ``out_like``, filled by ``body(out_run, *runs)`` over runs of rows
    of ``arrays`` (and of the output) split across the engine's threads (``cost``: see
    ``parallel.for_rows``)."""
    xp = array_module(out_like)
    out = xp.empty(out_like.shape, dtype=out_like.dtype)
    if out.size <= parallel.RUN_VALUES:  # one run on one thread: no slicing (a dense layer's activations)
        body(out, *arrays)
        return out
    rows = [_rows(a) for a in (out, *arrays)]

    def run(low, high):
        body(*(r[low:high] for r in rows))

    parallel.for_rows(xp, rows[0].shape[0], rows[0].shape[1], run, cost=cost)
    return out


@register
class Relu(Activation):
    name = "relu"
    doc = "max(x, 0)."

    def forward(self, ctx, p, x):
        xp = array_module(x)
        # Compiled where it can: NumPy's maximum against a scalar does not vectorize (NumPy 2.4:
        # 4x the time of a copy, a compiled pass 1x).
        out = _compiled_map(_relu_pass, x)
        if out is None:
            out = elementwise(lambda o, x: xp.maximum(x, 0, out=o), x, x)
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        xp = array_module(g)
        # One pass instead of a comparison into a mask and a product (2.5x faster on one core).
        dx = _compiled_map(_relu_backward_pass, g, ctx.out)
        return (dx,) if dx is not None else (elementwise(lambda d, g, o: xp.multiply(g, o > 0, out=d), g, g, ctx.out),)


def _compiled_map(function, *arrays, extra=(), strict: bool = False):
    """A new array like ``arrays[0]`` filled by ``function(*runs of arrays, *extra, run of the
    output)``, one compiled pass over flat runs split across the engine's threads; None where
    kernels do not run (CuPy, no numba, a non-contiguous array, mixed dtypes): the caller's NumPy
    form then."""
    first = arrays[0]
    if not (_numba.available(array_module(first))
            and all(a.flags.c_contiguous and a.dtype == first.dtype for a in arrays)):
        return None
    kernel, out = _numba.compile_kernel(function, strict=strict), numpy.empty_like(first)
    flat = [a.reshape(-1) for a in (*arrays, out)]
    parallel.run(first.size, lambda low, high: kernel(*(a[low:high] for a in flat[:-1]), *extra, flat[-1][low:high]),
                 work=_numba.piece_work(first.size, _numba.LIGHT_PIECE_VALUES))
    return out


def _relu_pass(x, out):
    """out = maximum(x, 0) as NumPy computes it: NaN stays NaN, -0.0 gives +0.0."""
    zero = x.dtype.type(0.0)
    for i in range(x.shape[0]):
        value = x[i]
        out[i] = value if (value > zero or value != value) else zero


def _relu_backward_pass(g, out, dx):
    """dx = g * (out > 0), as NumPy computes it (a NaN gradient stays NaN where the unit is off)."""
    for i in range(g.shape[0]):
        dx[i] = g[i] * (out[i] > 0)


def _tanh_backward_pass(g, out, dx):
    """dx = g * (1 - out^2)."""
    one = out.dtype.type(1.0)
    for i in range(g.shape[0]):
        o = out[i]
        dx[i] = g[i] * (one - o * o)


def _sigmoid_backward_pass(g, out, dx):
    """dx = g * out * (1 - out)."""
    one = out.dtype.type(1.0)
    for i in range(g.shape[0]):
        o = out[i]
        dx[i] = (one - o) * o * g[i]


@register
class LeakyRelu(Activation):
    name = "leaky_relu"
    doc = "x if x > 0 else slope * x."
    params = (Param("slope", "float", 0.01, "gradient for negative inputs", minimum=0.0, maximum=1.0),)

    def forward(self, ctx, p, x):
        xp = array_module(x)
        ctx.positive = x > 0
        return xp.where(ctx.positive, x, x * p.slope)

    def backward(self, ctx, p, g):
        return (array_module(g).where(ctx.positive, g, g * p.slope),)


@register
class Sigmoid(Activation):
    name = "sigmoid"
    doc = "Logistic function 1 / (1 + e^-x); d/dx = s (1 - s)."

    def forward(self, ctx, p, x):
        expit = special(array_module(x)).expit
        ctx.out = out = elementwise(lambda o, x: expit(x, out=o), x, x, cost=LOGISTIC_COST)
        return out

    def backward(self, ctx, p, g):
        xp = array_module(g)
        dx = _compiled_map(_sigmoid_backward_pass, g, ctx.out)
        if dx is not None:
            return (dx,)

        def run(d, g, o):  # g * s * (1 - s)
            xp.subtract(1.0, o, out=d)
            d *= o
            d *= g

        return (elementwise(run, g, g, ctx.out),)


@register
class Tanh(Activation):
    name = "tanh"
    doc = "Hyperbolic tangent; d/dx = 1 - tanh(x)^2."

    def forward(self, ctx, p, x):
        xp = array_module(x)
        ctx.out = out = elementwise(lambda o, x: xp.tanh(x, out=o), x, x)
        return out

    def backward(self, ctx, p, g):
        xp = array_module(g)
        dx = _compiled_map(_tanh_backward_pass, g, ctx.out)
        if dx is not None:
            return (dx,)

        def run(d, g, o):  # g * (1 - tanh^2)
            xp.multiply(o, o, out=d)
            xp.subtract(1.0, d, out=d)
            d *= g

        return (elementwise(run, g, g, ctx.out),)


@register
class Softmax(Activation):
    name = "softmax"
    doc = "exp(x) / sum(exp(x)) along an axis; VJP s * (g - sum(g s))."
    params = (Param("axis", "int", -1, "axis that sums to one"),)
    inputs = (Port("x", rank=(1, None)),)

    def infer(self, p, x):
        normalize_axis(p.axis, x.rank)
        return x

    def forward(self, ctx, p, x):
        xp = array_module(x)
        shifted = x - x.max(axis=p.axis, keepdims=True)
        out = xp.exp(shifted)
        out /= out.sum(axis=p.axis, keepdims=True)
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        out = ctx.out
        return (out * (g - (g * out).sum(axis=p.axis, keepdims=True)),)


@register
class LogSoftmax(Activation):
    name = "log_softmax"
    doc = "x - logsumexp(x) along an axis; VJP g - softmax(x) * sum(g)."
    params = (Param("axis", "int", -1, "axis to normalise over"),)
    inputs = (Port("x", rank=(1, None)),)

    def infer(self, p, x):
        normalize_axis(p.axis, x.rank)
        return x

    def forward(self, ctx, p, x):
        xp = array_module(x)
        shifted = x - x.max(axis=p.axis, keepdims=True)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=p.axis, keepdims=True))
        ctx.out = out
        return out

    def backward(self, ctx, p, g):
        xp = array_module(g)
        return (g - xp.exp(ctx.out) * g.sum(axis=p.axis, keepdims=True),)


# erf(u) for u >= 0 as 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-u^2), t = 1 / (1 + p u)
# (Abramowitz and Stegun 7.1.26, error below 1.5e-7; the same formula as PyTorch's vectorized float32
# erf): about float32's own precision, at a fraction of scipy's erf, which computes it in double.
ERF_P = 0.3275911
ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
GELU_COST = 16  # element-wise passes of the float32 GELU forward, for parallel.for_rows


def _gelu_float32(x):
    """(x Phi(x), Phi(x), exp(-x^2 / 2)) of a float32 NumPy array, over runs of rows on the engine's
    threads: Phi(x) = 1/2 + sign(x) (1/2 - q), q = t r(t) exp(-x^2 / 2) / 2 = erfc(|x| / sqrt 2) / 2."""
    xp = array_module(x)
    out, cdf, gauss = (xp.empty(x.shape, dtype=x.dtype) for _ in range(3))
    if _numba.available(xp) and x.flags.c_contiguous:
        _gelu_float32_compiled(x, out, cdf, gauss)
        return out, cdf, gauss
    rows = [_rows(a) for a in (x, out, cdf, gauss)]

    def run(low, high):
        values, o, c, e = (r[low:high] for r in rows)
        xp.abs(values, out=o)  # t, kept in the output until the end
        o *= ERF_P / math.sqrt(2.0)
        o += 1.0
        xp.reciprocal(o, out=o)
        a1, a2, a3, a4, a5 = (value * -0.5 for value in ERF_A)  # -r(t) / 2, Horner's rule
        xp.multiply(o, a5, out=c)
        for coefficient in (a4, a3, a2):
            c += coefficient
            c *= o
        c += a1
        c *= o
        xp.multiply(values, values, out=e)
        e *= -0.5
        xp.exp(e, out=e)
        c *= e  # -q
        c += 0.5
        xp.copysign(c, values, out=c)
        c += 0.5
        xp.multiply(values, c, out=o)

    if x.size <= parallel.RUN_VALUES:
        run(0, rows[0].shape[0])
    else:
        parallel.for_rows(xp, rows[0].shape[0], rows[0].shape[1], run, cost=GELU_COST)
    return out, cdf, gauss


def _gelu_scalars(dtype):
    """The float32 constants of the passes above, as NumPy rounds them (a Python float against a
    float32 array is taken as float32): p / sqrt 2, then a5, a4, a3, a2, a1 times -1/2, then 1/sqrt(2 pi)."""
    values = [ERF_P / math.sqrt(2.0), *(value * -0.5 for value in reversed(ERF_A)), 1.0 / math.sqrt(2.0 * math.pi)]
    return numpy.array(values, dtype=dtype)


def _gelu_float32_compiled(x, out, cdf, gauss):
    """``_gelu_float32``'s passes as two compiled ones around NumPy's exp (which is vectorized, where
    numba's is not), in runs of RUN_VALUES elements that stay in cache, pieces split across the
    engine's threads; the same operations in the same order, so the same bits (no contraction)."""
    square, phi = (_numba.compile_kernel(function, strict=True) for function in (_gelu_square_pass, _gelu_cdf_pass))
    scalars = _gelu_scalars(x.dtype)
    flat = [a.reshape(-1) for a in (x, out, cdf, gauss)]

    def piece(start, stop):
        for low, high in parallel.runs(start, stop, 1):
            values, o, c, e = (a[low:high] for a in flat)
            square(values, e)
            numpy.exp(e, out=e)
            phi(values, e, scalars, o, c)

    parallel.run(x.size, piece, work=_numba.piece_work(x.size))


def _gelu_square_pass(x, e):
    """e = (x * x) * -1/2."""
    half = x.dtype.type(-0.5)
    for i in range(x.shape[0]):
        e[i] = (x[i] * x[i]) * half


def _gelu_cdf_pass(x, e, scalars, out, cdf):
    """cdf = Phi(x) from e = exp(-x^2 / 2), and out = x cdf, by _gelu_float32's passes in its order."""
    one, half = x.dtype.type(1.0), x.dtype.type(0.5)
    p, a5, a4, a3, a2, a1 = scalars[0], scalars[1], scalars[2], scalars[3], scalars[4], scalars[5]
    for i in range(x.shape[0]):
        value = x[i]
        t = one / (abs(value) * p + one)
        c = ((((t * a5 + a4) * t + a3) * t + a2) * t + a1) * t
        c = c * e[i] + half
        c = numpy.copysign(c, value) + half
        cdf[i] = c
        out[i] = value * c


def _gelu_backward_pass(g, x, cdf, gauss, scalars, dx):
    """dx = (x * gauss / sqrt(2 pi) + cdf) * g, as the NumPy passes of Gelu.backward."""
    scale = scalars[6]
    for i in range(g.shape[0]):
        dx[i] = ((x[i] * gauss[i]) * scale + cdf[i]) * g[i]


@register
class Gelu(Activation):
    name = "gelu"
    doc = "x * Phi(x) (Gaussian error linear unit), exact or with the tanh approximation."
    params = (Param("approximate", "choice", "none", "'none' uses erf, 'tanh' the approximation",
                    choices=("none", "tanh")),)

    def forward(self, ctx, p, x):
        xp = array_module(x)
        ctx.x = x
        if p.approximate == "tanh":
            inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
            ctx.t = xp.tanh(inner)
            return 0.5 * x * (1.0 + ctx.t)
        if xp is numpy and x.dtype == numpy.float32:
            out, ctx.cdf, ctx.gauss = _gelu_float32(x)
            return out
        ctx.cdf = 0.5 * (1.0 + special(xp).erf(x * (1.0 / math.sqrt(2.0))))
        ctx.gauss = None
        return x * ctx.cdf

    def backward(self, ctx, p, g):
        xp = array_module(g)
        x = ctx.x
        if p.approximate == "tanh":
            t = ctx.t
            d_inner = math.sqrt(2.0 / math.pi) * (1.0 + 3 * 0.044715 * x * x)
            return (g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * d_inner),)
        if ctx.gauss is None:
            pdf = xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
            return (g * (ctx.cdf + x * pdf),)

        dx = _compiled_map(_gelu_backward_pass, g, x, ctx.cdf, ctx.gauss, extra=(_gelu_scalars(g.dtype),), strict=True)
        if dx is not None:
            return (dx,)

        def run(d, g, x, cdf, gauss):  # g (Phi(x) + x exp(-x^2 / 2) / sqrt(2 pi))
            xp.multiply(x, gauss, out=d)
            d *= 1.0 / math.sqrt(2.0 * math.pi)
            d += cdf
            d *= g

        return (elementwise(run, g, g, x, ctx.cdf, ctx.gauss, cost=4),)


@register
class Softplus(Activation):
    name = "softplus"
    doc = "log(1 + e^x), computed stably; d/dx = sigmoid(x)."

    def forward(self, ctx, p, x):
        xp = array_module(x)
        ctx.x = x
        return xp.logaddexp(x, 0.0)

    def backward(self, ctx, p, g):
        return (g * special(array_module(g)).expit(ctx.x),)


@register
class Step(Activation):
    name = "step"
    doc = "1 where x > 0, else 0 (the perceptron's output); no gradient flows through it."
    differentiable = False

    def forward(self, ctx, p, x):
        return (x > 0).astype(x.dtype)

    def backward(self, ctx, p, g):
        return (None,)
