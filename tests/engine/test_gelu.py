"""GELU's float32 path (engine/ops/activations.py, ``_gelu_float32``): erf by Abramowitz and Stegun
7.1.26 instead of scipy's, within float32's precision of the exact GELU (float64 keeps scipy's erf,
which the gradient check and the PyTorch crosscheck use), whole and split across threads."""

from __future__ import annotations

import math

import numpy
import pytest
import scipy.special

from engine import parallel, testing
from engine.ops import _numba

CDF_TOLERANCE = 5e-7  # the formula's 1.5e-7 on erf, halved, plus float32 rounding of its passes


def _exact(x):
    x = x.astype(numpy.float64)
    cdf = 0.5 * (1.0 + scipy.special.erf(x / math.sqrt(2.0)))
    return x * cdf, cdf + x * numpy.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _values():
    rng = numpy.random.default_rng(0)
    x = rng.normal(scale=3.0, size=(40, 7, 33)).astype(numpy.float32)
    x.flat[:8] = [0.0, -0.0, 1e-8, -1e-8, 40.0, -40.0, 5.0, -5.0]  # zero, tiny, saturated tails
    return x


@pytest.mark.parametrize("threads", [1, 2])
def test_float32_gelu_matches_the_exact_one_forward_and_backward(threads, monkeypatch):
    x = _values()
    cotangent = numpy.random.default_rng(1).normal(size=x.shape).astype(numpy.float32)
    monkeypatch.setattr(parallel, "RUN_VALUES", 64)  # many runs, and pieces on two threads
    with parallel.threads(threads, grain=1):
        (out,), ctx, op, p, _ = testing.run_op("gelu", {}, [x])
        (dx,) = op.backward(ctx, p, cotangent)
    assert out.dtype == dx.dtype == numpy.float32
    exact_out, exact_slope = _exact(x)
    scale = numpy.maximum(numpy.abs(x.astype(numpy.float64)), 1.0)  # x Phi(x): Phi's error times |x|
    assert numpy.all(numpy.abs(out - exact_out) <= CDF_TOLERANCE * scale)
    assert numpy.all(numpy.abs(dx - cotangent * exact_slope) <= 2 * CDF_TOLERANCE * scale * numpy.abs(cotangent))
    assert out.flat[0] == 0.0 and out.flat[4] == 40.0 and out.flat[5] == 0.0


def test_split_float32_gelu_is_the_same_as_one_thread(monkeypatch):
    x = _values()
    with parallel.threads(1):
        single = testing.run_op("gelu", {}, [x])[0][0]
    monkeypatch.setattr(parallel, "RUN_VALUES", 64)
    with parallel.threads(2, grain=1):
        split = testing.run_op("gelu", {}, [x])[0][0]
    numpy.testing.assert_array_equal(split, single)  # element-wise: where a value is computed does not matter


@pytest.mark.parametrize("threads", [1, 2])
def test_the_compiled_passes_give_the_numpy_passes_bits(threads, monkeypatch):
    """The float32 forward and backward by the numba kernels (the default) against the same passes
    as NumPy calls, bit for bit, tails, infinities, NaN and signed zeros included."""
    pytest.importorskip("numba")
    x = _values()
    x.flat[8:12] = [numpy.inf, -numpy.inf, numpy.nan, 1e-30]
    cotangent = numpy.random.default_rng(2).normal(size=x.shape).astype(numpy.float32)
    results = []
    for kernels in (True, False):
        monkeypatch.setattr(_numba, "ENABLED", kernels)
        with parallel.threads(threads, grain=1), numpy.errstate(invalid="ignore"):
            (out,), ctx, op, p, _ = testing.run_op("gelu", {}, [x])
            (dx,) = op.backward(ctx, p, cotangent)
        results.append((out, ctx.cdf, dx))
    for compiled, plain in zip(*results):
        assert compiled.dtype == numpy.float32
        numpy.testing.assert_array_equal(compiled, plain)
        assert numpy.array_equal(numpy.signbit(compiled), numpy.signbit(plain))
