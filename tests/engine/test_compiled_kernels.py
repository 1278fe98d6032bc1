"""The compiled CPU kernels (engine/ops/_numba.py) against the NumPy form of their ops: batch
normalization's forward, running statistics and gradients (features and images, both float types,
eval and training), layer normalization, and ReLU's output and gradient, on one thread and split
across two. (The op table's numerical gradient checks run the kernels, as they are the default on
NumPy; Adam's kernel is tested in test_optimizers.py, GELU's in test_gelu.py.)"""

from __future__ import annotations

import numpy
import pytest

from engine import parallel
from engine.ops import _numba, _offsets, _windows, conv, normalization
from engine.testing import run_op

pytest.importorskip("numba")  # a dependency of the engine's CPU extra; without it only the NumPy form runs

SHAPES = [(5, 3), (2, 3, 2, 2), (7, 4, 5), (16, 8, 6, 6)]


def forward_and_backward(x, g, params, training, *, kernels: bool, threads: int):
    _numba.ENABLED = kernels
    try:
        with parallel.threads(threads, grain=1):
            (out,), ctx, op, p, weights = run_op("batch_norm", params, [x], training=training, seed=3)
            grads = op.backward(ctx, p, g)
    finally:
        _numba.ENABLED = True
    return out, ctx.updates, grads


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_kernels_give_what_the_numpy_form_gives(dtype, tolerance, shape, training, affine, threads):
    rng = numpy.random.default_rng(sum(shape))
    x = (rng.normal(size=shape) * 3 + 5).astype(dtype)  # an offset mean, as activations have
    g = rng.normal(size=shape).astype(dtype)
    params = {"affine": affine}
    assert normalization._batch_norm_kernels(numpy) is not None  # the kernels run, not the NumPy form twice
    with parallel.threads(threads, grain=1):  # and on two threads, in two pieces
        assert len(parallel.split(shape[0], normalization._kernel_work(x))) == threads
    expected = forward_and_backward(x, g, params, training, kernels=False, threads=threads)
    actual = forward_and_backward(x, g, params, training, kernels=True, threads=threads)
    numpy.testing.assert_allclose(actual[0], expected[0], rtol=tolerance, atol=tolerance)
    assert actual[0].dtype == expected[0].dtype
    for name, value in (expected[1] or {}).items():
        numpy.testing.assert_allclose(actual[1][name], value, rtol=tolerance, atol=tolerance)
        assert actual[1][name].dtype == value.dtype, name
    for mine, theirs in zip(actual[2], expected[2]):
        if theirs is None:
            assert mine is None
            continue
        numpy.testing.assert_allclose(mine, theirs, rtol=tolerance, atol=10 * tolerance)
        assert mine.dtype == theirs.dtype


def test_two_threads_give_the_same_bits_every_time():
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(64, 8, 12, 12)).astype("float32")
    g = rng.normal(size=x.shape).astype("float32")
    runs = [forward_and_backward(x, g, {}, True, kernels=True, threads=2) for _ in range(3)]
    for other in runs[1:]:
        assert numpy.array_equal(other[0], runs[0][0])
        for mine, theirs in zip(other[2], runs[0][2]):
            assert numpy.array_equal(mine, theirs)


def test_a_nan_in_the_batch_reaches_its_channel_only():
    """The layer statistics find where a NaN starts: the kernels keep IEEE propagation."""
    x = numpy.ones((4, 3, 2, 2))
    x[:, 1] = numpy.arange(16).reshape(4, 2, 2)
    x[2, 1, 0, 0] = numpy.nan
    out, _, _ = forward_and_backward(x, numpy.ones_like(x), {}, True, kernels=True, threads=1)
    assert numpy.isnan(out[:, 1]).all()
    assert numpy.isfinite(out[:, [0, 2]]).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_activation_gradients_by_the_kernels_are_the_numpy_ones(activation, dtype, threads, monkeypatch):
    rng = numpy.random.default_rng(1)
    x = rng.normal(size=(9, 4, 7, 5)).astype(dtype)
    x[0, 0, 0, :3] = [numpy.nan, -numpy.inf, numpy.inf]
    g = rng.normal(size=x.shape).astype(dtype)
    g[1, 0, 0, 0] = numpy.nan  # a NaN gradient stays NaN, as NumPy's product keeps it
    x[1, 0, 0, 0] = -1.0
    x[1, 0, 0, 1] = -0.0  # NumPy's maximum(-0.0, 0) is +0.0
    results = []
    for kernels in (True, False):
        monkeypatch.setattr(_numba, "ENABLED", kernels)
        with parallel.threads(threads, grain=1):
            (out,), ctx, op, p, _ = run_op(activation, {}, [x], training=True)
            (dx,) = op.backward(ctx, p, g)
        results.append((out, dx))
    (out_kernel, dx_kernel), (out_numpy, dx_numpy) = results
    numpy.testing.assert_array_equal(out_kernel, out_numpy)
    assert numpy.array_equal(numpy.signbit(out_kernel), numpy.signbit(out_numpy))
    tolerance = 0 if activation == "relu" else 4 * numpy.finfo(dtype).eps  # the same product, perhaps fused
    numpy.testing.assert_allclose(dx_kernel, dx_numpy, rtol=tolerance, atol=tolerance)
    assert dx_kernel.dtype == numpy.dtype(dtype)
    assert numpy.isnan(dx_kernel[1, 0, 0, 0])


@pytest.mark.parametrize("dtype, tolerance", [("float32", 2e-6), ("float64", 1e-13)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_by_the_kernel_is_the_numpy_one(dtype, tolerance, reduction, monkeypatch):
    rng = numpy.random.default_rng(2)
    logits = (rng.normal(size=(6, 5, 7)) * 4).astype(dtype)
    labels = rng.integers(0, 7, size=(6, 5))
    results = []
    for kernels in (True, False):
        monkeypatch.setattr(_numba, "ENABLED", kernels)
        (loss,), ctx, op, p, _ = run_op("softmax_cross_entropy", {"reduction": reduction}, [logits, labels])
        grad, _ = op.backward(ctx, p, numpy.array(1.5, dtype=dtype))
        results.append((loss, grad))
    (loss_kernel, grad_kernel), (loss_numpy, grad_numpy) = results
    assert loss_kernel.dtype == loss_numpy.dtype == numpy.dtype(dtype)
    numpy.testing.assert_allclose(loss_kernel, loss_numpy, rtol=tolerance)
    numpy.testing.assert_allclose(grad_kernel, grad_numpy, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("bad", [-1, 7])
def test_a_label_out_of_range_is_named_by_the_kernel_path_too(bad):
    logits = numpy.zeros((4, 7), dtype="float32")
    labels = numpy.array([0, 3, bad, 6])
    with pytest.raises(ValueError, match=rf"labels must be class indices in \[0, 7\), got values from {min(bad, 0)} "):
        run_op("softmax_cross_entropy", {}, [logits, labels])


def test_a_nan_logit_gives_a_nan_loss_not_an_error():
    logits = numpy.zeros((3, 4), dtype="float32")
    logits[1, 2] = numpy.nan
    (loss,), *_ = run_op("softmax_cross_entropy", {}, [logits, numpy.array([0, 1, 2])])
    assert numpy.isnan(loss)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kernel, stride, dilation, padding", [
    ((5, 5), (1, 1), (1, 1), (0, 0)),  # LeNet's second convolution: flat rows
    ((3, 3), (2, 2), (1, 1), (1, 1)),  # a ResNet's strided convolution
    ((3, 2), (1, 3), (2, 1), "same"),  # dilated, uneven strides, padding uneven on a side
    ((1, 1), (2, 2), (1, 1), "valid"),  # a 1x1 projection with stride
    ((3, 3), (1, 1), (1, 1), (4, 9)),  # padding wider than the kernel: not flat rows
])
def test_col2im_by_the_kernel_is_the_numpy_one(dtype, kernel, stride, dilation, padding, monkeypatch):
    geo = _windows.geometry((3, 4, 9, 11), 2, kernel, stride, dilation, padding)
    row = geo.padded[1] if geo.flat_rows else geo.out[1]
    rng = numpy.random.default_rng(2)
    cols = rng.normal(size=(4, *geo.kernel, 3, geo.out[0], row)).astype(dtype)
    cols[..., geo.out[1]:] = 0  # flat rows carry zeros past the output's width
    results = []
    for kernels in (True, False):
        monkeypatch.setattr(_numba, "ENABLED", kernels)
        results.append(numpy.ascontiguousarray(_windows.col2im(cols, geo)))
    assert results[0].shape == (3, 4, 9, 11) and results[0].dtype == numpy.dtype(dtype)
    numpy.testing.assert_array_equal(*results)


@pytest.mark.parametrize("params", [{"filters": 16, "kernel_size": [5], "padding": "valid"},
                                    {"filters": 8, "kernel_size": [3], "stride": [2], "padding": "same"}])
def test_a_convolutions_input_gradient_by_the_kernel_is_the_numpy_one(params, monkeypatch):
    monkeypatch.setattr(_offsets, "MIN_REDUCED", 10**9)  # im2col and col2im, not products per offset
    monkeypatch.setattr(_offsets, "MIN_WEIGHT_CHANNELS", 10**9)
    rng = numpy.random.default_rng(4)
    x = rng.normal(size=(5, 6, 14, 14)).astype(numpy.float32)
    results = []
    for kernels in (True, False):
        monkeypatch.setattr(_numba, "ENABLED", kernels)
        with parallel.threads(2, grain=1):
            (out,), ctx, op, p, _ = run_op("conv2d", params, [x], training=True, seed=1)
            g = numpy.random.default_rng(5).normal(size=out.shape).astype(numpy.float32)
            grads = op.backward(ctx, p, g)
        results.append((out, grads[0]))
    numpy.testing.assert_array_equal(results[0][0], results[1][0])
    numpy.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("dtype, tolerance", [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("params", [
    {"filters": 16, "kernel_size": [3], "padding": 1},
    {"filters": 12, "kernel_size": [3, 2], "dilation": [2, 1], "groups": 2, "padding": "same", "use_bias": False},
    {"filters": 8, "kernel_size": [5], "padding": "valid"},
    {"filters": 16, "kernel_size": [3], "stride": [2], "padding": 1},
    {"filters": 8, "kernel_size": [3, 4], "stride": [3, 2], "dilation": [2, 1], "groups": 2, "padding": "same"},
    {"filters": 8, "kernel_size": [3], "padding": 4},  # over-padded: windows wholly in the padding
])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_convolution_by_products_per_offset_is_the_im2col_one(dtype, tolerance, params, threads, monkeypatch):
    """Output and all three gradients of a convolution by the compiled kernels that call BLAS once per
    kernel offset (engine/ops/_offsets.py; strided ones over the input's stride phases) against im2col
    and one product, on one thread and split in pieces; and the same bits again on a second run."""
    rng = numpy.random.default_rng(6)
    x = rng.normal(size=(5, 16, 9, 8)).astype(dtype)
    x[2, 3, 4, 5] = numpy.nan  # reaches its sample's outputs and the weights' gradient, not other samples
    calls = []
    original = _offsets.kernels
    monkeypatch.setattr(_offsets, "kernels", lambda dtype: calls.append(dtype) or original(dtype))

    def run():
        with parallel.threads(threads, grain=1):
            (out,), ctx, op, p, _ = run_op("conv2d", params, [x], training=True, seed=1)
            g = numpy.random.default_rng(7).normal(size=out.shape).astype(dtype)
            return (out, *op.backward(ctx, p, g))

    by_offsets, again = run(), run()
    assert calls  # the products per offset ran
    for got, repeated in zip(by_offsets, again):
        numpy.testing.assert_array_equal(got, repeated)
    monkeypatch.setattr(_offsets, "MIN_REDUCED", 10**9)
    monkeypatch.setattr(_offsets, "MIN_WEIGHT_CHANNELS", 10**9)
    monkeypatch.setattr(conv, "OFFSET_MIN_CHANNELS", 10**9)
    calls.clear()
    by_columns = run()
    assert not calls
    assert len(by_offsets) == len(by_columns) == (3 if params.get("use_bias", True) else 2) + 1
    for got, expected in zip(by_offsets, by_columns):
        assert got.dtype == numpy.dtype(dtype)
        numpy.testing.assert_array_equal(numpy.isnan(got), numpy.isnan(expected))
        scale = numpy.nanmax(numpy.abs(expected))
        numpy.testing.assert_allclose(got, expected, rtol=0, atol=tolerance * scale)


@pytest.mark.parametrize("stride", [1, 2])
def test_a_convolution_by_products_per_offset_takes_read_only_arrays(stride):
    """Inputs, weights and gradients read from a file or another process's buffer come read-only (an
    imported ONNX model's initializers, a memory-mapped dataset): the kernels only read them."""
    rng = numpy.random.default_rng(10)
    x, W, b = rng.normal(size=(3, 8, 7, 6)), rng.normal(size=(8, 8, 3, 3)), rng.normal(size=8)
    for array in (x, W, b):
        array.setflags(write=False)
    params = {"filters": 8, "kernel_size": [3], "stride": [stride], "padding": 1}
    (out,), ctx, op, p, _ = run_op("conv2d", params, [x], [W, b], training=True)
    g = rng.normal(size=out.shape)
    g.setflags(write=False)
    dx, dW, db = op.backward(ctx, p, g)
    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == b.shape
    numpy.testing.assert_allclose(db, g.sum(axis=(0, 2, 3)), rtol=1e-12)
    # out is linear in W: <g, out - b> = <dW, W>
    numpy.testing.assert_allclose(numpy.sum(g * (out - b[None, :, None, None])), numpy.sum(dW * W), rtol=1e-10)
    # and in x: <g, out - b> = <dx, x>
    numpy.testing.assert_allclose(numpy.sum(g * (out - b[None, :, None, None])), numpy.sum(dx * x), rtol=1e-10)


@pytest.mark.parametrize("needs", [(False, True, True), (True, False, False), (True, False, True),
                                   (False, False, True)])
def test_a_convolution_by_products_per_offset_gives_just_the_gradients_asked_for(needs, monkeypatch):
    """An input that needs no gradient (an image) or frozen weights: the gradients asked for are the
    im2col path's, the others None."""
    rng = numpy.random.default_rng(8)
    x = rng.normal(size=(4, 8, 7, 6))
    params = {"filters": 8, "kernel_size": [3], "stride": [2], "padding": 1}

    def run():
        with parallel.threads(2, grain=1):
            (out,), ctx, op, p, _ = run_op("conv2d", params, [x], training=True, seed=1, needs=needs)
            return op.backward(ctx, p, numpy.random.default_rng(9).normal(size=out.shape))

    by_offsets = run()
    monkeypatch.setattr(_offsets, "MIN_REDUCED", 10**9)
    monkeypatch.setattr(_offsets, "MIN_WEIGHT_CHANNELS", 10**9)
    by_columns = run()
    for needed, got, expected in zip(needs, by_offsets, by_columns):
        assert (got is None) == (expected is None) == (not needed)
        if needed:
            numpy.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tolerance", [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("params", [{}, {"affine": False}, {"axes": 2, "epsilon": 1e-3}])
@pytest.mark.parametrize("threads", [1, 2])
def test_layer_norm_by_the_kernels_is_the_numpy_one(dtype, tolerance, params, threads, monkeypatch):
    """The compiled layer norm (statistics and gradient means in float64) against the NumPy passes:
    output, normalized values and all three gradients, on one thread and split in two pieces."""
    rng = numpy.random.default_rng(5)
    x = (rng.normal(size=(6, 5, 16)) * 4 + 3).astype(dtype)  # an offset mean, as activations have
    x[1, 2, 3] = numpy.nan  # reaches its own row (its sample's, with axes 2) and the weights' gradients
    g = rng.normal(size=x.shape).astype(dtype)
    results = []
    for kernels in (True, False):
        monkeypatch.setattr(_numba, "ENABLED", kernels)
        with parallel.threads(threads, grain=1):
            (out,), ctx, op, p, _ = run_op("layer_norm", params, [x], training=True, seed=1)
            grads = op.backward(ctx, p, g)
        results.append((out, ctx.x_hat, *grads))
    for compiled, plain in zip(*results):
        assert compiled.dtype == plain.dtype == numpy.dtype(dtype)
        assert numpy.array_equal(numpy.isnan(compiled), numpy.isnan(plain))  # the NaN reaches the same values
        numpy.testing.assert_allclose(compiled, plain, rtol=tolerance, atol=tolerance * 10)


@pytest.mark.parametrize("shape", [(128, 512), (37, 5), (1, 17), (16, 16)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_the_compiled_transpose_is_the_transpose(shape, dtype, order):
    """linalg.transposed (the recurrent layers' U^T a step): exactly matrix.T, C-contiguous, for shapes
    that are not whole blocks of 16 rows too."""
    from engine.ops import linalg  # noqa: PLC0415

    matrix = numpy.asarray(numpy.random.default_rng(1).normal(size=shape).astype(dtype), order=order)
    result = linalg.transposed(matrix)
    assert result.flags.c_contiguous and result.dtype == matrix.dtype
    numpy.testing.assert_array_equal(result, matrix.T)


@pytest.mark.parametrize("dtype, tolerance", [("float32", 2e-6), ("float64", 1e-14)])
@pytest.mark.parametrize("params", [
    {"filters": 32, "kernel_size": 1, "stride": 2},
    {"filters": 6, "kernel_size": 1, "stride": [3, 2], "use_bias": False},
])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_strided_pointwise_convolution_is_the_im2col_one(dtype, tolerance, params, threads, monkeypatch):
    """A 1x1 convolution with a stride (a residual projection) as one product with the sampled input
    (conv._pointwise_forward and _backward), whole and split in pieces: the output and every gradient
    of im2col's path, and the same bits on a second run."""
    rng = numpy.random.default_rng(8)
    x = rng.normal(size=(5, 16, 9, 8)).astype(dtype)

    def run():
        with parallel.threads(threads, grain=1):
            (out,), ctx, op, p, _ = run_op("conv2d", params, [x], seed=2)
            g = rng_g.normal(size=out.shape).astype(dtype)
            return (out, *op.backward(ctx, p, g)), ctx

    rng_g = numpy.random.default_rng(9)
    pointwise, ctx = run()
    assert getattr(ctx, "sampled", None) is not None  # the product with the sampled input ran
    rng_g = numpy.random.default_rng(9)
    again, _ = run()
    for got, repeated in zip(pointwise, again, strict=True):
        numpy.testing.assert_array_equal(got, repeated)
    monkeypatch.setattr(conv, "_strided_pointwise", lambda geo, groups: False)
    rng_g = numpy.random.default_rng(9)
    by_columns, ctx = run()
    assert getattr(ctx, "sampled", None) is None
    for got, expected in zip(pointwise, by_columns, strict=True):
        assert got.dtype == numpy.dtype(dtype)
        numpy.testing.assert_allclose(got, expected, rtol=0, atol=tolerance * numpy.abs(expected).max())
