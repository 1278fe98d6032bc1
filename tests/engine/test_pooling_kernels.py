"""Max and average pooling's compiled kernels (engine/ops/_numba.py) against their NumPy form: the
same outputs, argmax and gradients, bit for bit, over kernels, strides and paddings (overlapping
windows, gaps between windows, odd sizes), for both float types, on one thread and split across two
(the op table's numerical gradient checks run the kernels, as they are the default on NumPy)."""

from __future__ import annotations

import itertools

import numpy
import pytest

from engine import parallel
from engine.ops import _numba, pooling
from engine.testing import run_op

pytest.importorskip("numba")  # a dependency of the engine's CPU extra; without it only the NumPy form runs

GEOMETRIES = [
    {"kernel_size": kernel, "stride": stride, "padding": padding}
    for kernel, stride, padding in itertools.product((2, 3), (1, 2, 3), (0, 1, "same"))
] + [
    {"kernel_size": [2, 3], "stride": [1, 2], "padding": [1, 0]},  # rectangular, overlapping along one axis
    {"kernel_size": [3, 1], "stride": [2, 1]},
]
SHAPES = [(3, 2, 7, 9), (2, 3, 6, 6), (5, 1, 5, 4)]


def pool(op: str, params: dict, x, g, *, kernels: bool, threads: int = 1):
    """Forward and backward of one pooling op: (out, argmax or None, dx)."""
    _numba.ENABLED = kernels
    try:
        with parallel.threads(threads, grain=1):
            if kernels and threads > 1:  # the batch really splits into pieces
                assert len(parallel.split(len(x), pooling._kernel_work(x))) == min(threads, len(x))
            (out,), ctx, instance, p, _ = run_op(op, params, [x])
            (dx,) = instance.backward(ctx, p, g if g is not None else numpy.ones_like(out))
    finally:
        _numba.ENABLED = True
    return out, getattr(ctx, "argmax", None), dx


def assert_same(actual, expected):
    for mine, theirs in zip(actual, expected):
        if theirs is None:
            assert mine is None
            continue
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        numpy.testing.assert_array_equal(mine, theirs)


def output_shape(op: str, params: dict, x) -> tuple:
    _numba.ENABLED = False
    try:
        return run_op(op, params, [x])[0][0].shape
    finally:
        _numba.ENABLED = True


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("params", GEOMETRIES, ids=str)
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_the_kernels_give_the_numpy_forms_bits(op, params, shape, dtype, threads):
    rng = numpy.random.default_rng(sum(shape))
    x = rng.normal(size=shape).astype(dtype)
    if op == "max_pool2d":
        x = numpy.round(x * 2)  # many ties: the first maximum must win in both
    g = rng.normal(size=output_shape(op, params, x)).astype(dtype)
    _, ctx, *_ = run_op(op, params, [x])
    assert pooling._pool_kernels(numpy, ctx.geo) is not None  # the kernels run, not the NumPy form twice
    expected = pool(op, params, x, g, kernels=False, threads=threads)
    actual = pool(op, params, x, g, kernels=True, threads=threads)
    assert_same(actual, expected)


@pytest.mark.parametrize("params", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1},
                                    {"kernel_size": 3, "stride": 2, "padding": "same"}], ids=str)
def test_ties_send_the_gradient_to_the_first_maximum(params):
    x = numpy.full((2, 3, 6, 7), 1.5)
    out, argmax, dx = pool("max_pool2d", params, x, None, kernels=True)
    assert (out == 1.5).all()
    expected = pool("max_pool2d", params, x, None, kernels=False)
    assert_same((out, argmax, dx), expected)
    if params == {"kernel_size": 2}:  # windows apart: each one's gradient lands on its top-left position
        assert (argmax == 0).all()
        assert (dx[:, :, 0:6:2, 0:6:2] == 1).all() and dx.sum() == out.size


def test_a_nan_wins_its_window_and_nan_or_inf_gradients_spread_as_in_the_numpy_form():
    rng = numpy.random.default_rng(1)
    x = rng.normal(size=(2, 2, 7, 7))
    x[0, 0, 0, 0] = x[1, 1, 3, 4] = numpy.nan
    for params in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                   {"kernel_size": 3, "stride": 1, "padding": "same"}):
        g = rng.normal(size=output_shape("max_pool2d", params, x))
        g[0, 1, 1, 1], g[1, 0, 2, 2] = numpy.inf, numpy.nan
        for op in ("max_pool2d", "avg_pool2d"):
            actual = pool(op, params, x, g, kernels=True)
            with numpy.errstate(invalid="ignore"):  # inf * 0 in the NumPy form
                expected = pool(op, params, x, g, kernels=False)
            assert numpy.isnan(actual[0][0, 0, 0, 0]) and numpy.isnan(actual[0][1, 1]).any()
            for mine, theirs in zip(actual, expected):
                if theirs is not None:
                    numpy.testing.assert_array_equal(mine, theirs)  # NaN where NaN (equal_nan by default)


def test_padding_never_wins_even_against_minus_infinity():
    """A window of -inf values and padding: the NumPy form's padding is -inf as well, and holds its
    first maximum only where offset 0 does; the kernels agree on the argmax and the gradient."""
    x = numpy.full((1, 1, 5, 5), -numpy.inf)
    x[0, 0, 2, 2] = 3.0
    params = {"kernel_size": 3, "stride": 2, "padding": 1}
    actual = pool("max_pool2d", params, x, None, kernels=True)
    assert_same(actual, pool("max_pool2d", params, x, None, kernels=False))
    assert actual[0][0, 0, 1, 1] == 3.0


def test_windows_of_more_than_256_offsets_keep_their_argmax_in_int32():
    rng = numpy.random.default_rng(2)
    x = rng.normal(size=(2, 2, 3, 301))
    params = {"kernel_size": [1, 300], "stride": 1}
    actual = pool("max_pool2d", params, x, None, kernels=True)
    assert actual[1].dtype == numpy.int32 and actual[1].max() > 255
    assert_same(actual, pool("max_pool2d", params, x, None, kernels=False))


def test_a_strided_view_gives_what_a_contiguous_copy_gives():
    rng = numpy.random.default_rng(3)
    x = rng.normal(size=(6, 8, 3, 4)).astype("float32").transpose(0, 2, 3, 1)  # (6, 3, 4, 8), not contiguous
    for op in ("max_pool2d", "avg_pool2d"):
        assert_same(pool(op, {"kernel_size": 2}, x, None, kernels=True, threads=2),
                    pool(op, {"kernel_size": 2}, numpy.ascontiguousarray(x), None, kernels=False))
