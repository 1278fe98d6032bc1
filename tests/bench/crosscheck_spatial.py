"""Convolution, pooling and batch normalization against PyTorch (float64): forwards and the
gradients of inputs and weights, within 1e-10 (``make crosscheck`` runs this beside crosscheck.py);
once on one thread, once on two with the work cut into the finest pieces the ops allow (one sample
per chunk and run), so that the split paths agree with PyTorch as well."""

from __future__ import annotations

import contextlib

import numpy

from engine import parallel, testing
from engine.ops import conv

TOLERANCE = 1e-10


def _cases():
    import torch  # noqa: PLC0415 - PyTorch is for make bench only
    import torch.nn.functional as F  # noqa: PLC0415

    rng = numpy.random.default_rng(3)
    x = rng.normal(size=(2, 4, 7, 6))
    # From 8 channels per group each way: forward and gradients by products per kernel offset (engine/ops/_offsets.py)
    wide_x = rng.normal(size=(2, 16, 7, 6))
    for name, params, torch_kwargs, images in [(*case, x) for case in [
        ("conv2d", {"filters": 6, "kernel_size": 3}, {}),
        ("conv2d-stride-padding", {"filters": 6, "kernel_size": [3, 2], "stride": 2, "padding": [1, 0]},
         {"stride": 2, "padding": (1, 0)}),
        ("conv2d-dilation", {"filters": 6, "kernel_size": 3, "dilation": 2, "padding": 2},
         {"dilation": 2, "padding": 2}),
        ("conv2d-groups", {"filters": 6, "kernel_size": 3, "groups": 2, "padding": 1}, {"groups": 2, "padding": 1}),
        ("conv2d-depthwise-same", {"filters": 4, "kernel_size": 3, "groups": 4, "padding": "same"},
         {"groups": 4, "padding": "same"}),
        ("conv2d-same-5x3", {"filters": 6, "kernel_size": [5, 3], "padding": "same"}, {"padding": "same"}),
        ("conv2d-over-padded", {"filters": 6, "kernel_size": 2, "padding": 2}, {"padding": 2}),
    ]] + [(*case, wide_x) for case in [
        ("conv2d-offset-products", {"filters": 12, "kernel_size": 3, "padding": 1}, {"padding": 1}),
        ("conv2d-offset-products-dilated-groups", {"filters": 16, "kernel_size": [3, 2], "dilation": 2, "groups": 2,
                                                   "padding": "same"}, {"dilation": 2, "groups": 2, "padding": "same"}),
        ("conv2d-offset-products-strided", {"filters": 8, "kernel_size": 3, "stride": 2, "padding": 1},
         {"stride": 2, "padding": 1}),
    ]]:
        groups = params.get("groups", 1)
        kernel = params["kernel_size"] if isinstance(params["kernel_size"], list) else [params["kernel_size"]] * 2
        w = rng.normal(size=(params["filters"], images.shape[1] // groups, *kernel))
        b = rng.normal(size=(params["filters"],))
        yield name, ("conv2d", params, [images], [w, b], False), (
            lambda x, w, b, kw=torch_kwargs: F.conv2d(x, w, b, **kw), [images, w, b])
    sequence = rng.normal(size=(2, 3, 9))
    w1 = rng.normal(size=(4, 3, 3))
    yield "conv1d-stride-dilation", ("conv1d", {"filters": 4, "kernel_size": 3, "stride": 2, "dilation": 2,
                                                "use_bias": False}, [sequence], [w1], False), (
        lambda x, w: F.conv1d(x, w, stride=2, dilation=2), [sequence, w1])
    for name, params, function in [
        ("max_pool2d", {"kernel_size": 2}, lambda t: F.max_pool2d(t, 2)),
        ("max_pool2d-overlap-padding", {"kernel_size": 3, "stride": 2, "padding": 1},
         lambda t: F.max_pool2d(t, 3, 2, 1)),
        ("avg_pool2d", {"kernel_size": 2}, lambda t: F.avg_pool2d(t, 2)),
        ("avg_pool2d-overlap-padding", {"kernel_size": 3, "stride": 2, "padding": 1},
         lambda t: F.avg_pool2d(t, 3, 2, 1)),
    ]:
        yield name, (name.split("-")[0], params, [x], [], False), (function, [x])
    # ReLU outputs: windows of zeros tie, and the gradient must go to the same (first) one as PyTorch's.
    rectified = numpy.maximum(x, 0.0)
    yield "max_pool2d-ties", ("max_pool2d", {"kernel_size": 2}, [rectified], [], False), (
        lambda t: F.max_pool2d(t, 2), [rectified])
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    mean, var = rng.normal(size=4), rng.uniform(0.5, 1.5, size=4)
    for training in (True, False):
        mode = "train" if training else "eval"
        yield f"batch_norm-{mode}", ("batch_norm", {"momentum": 0.1}, [x], [gamma, beta, mean, var], training), (
            lambda t, g, b, tr=training: F.batch_norm(t, torch.tensor(mean), torch.tensor(var), g, b, training=tr,
                                                      momentum=0.1, eps=1e-5), [x, gamma, beta])


def check() -> int:
    """Print one line per case; returns the number of mismatches."""
    import torch  # noqa: PLC0415

    failures = 0
    for name, (op, params, inputs, weights, training), (function, torch_inputs) in _cases():
        outputs, ctx, op_object, p, _ = testing.run_op(op, params, inputs, weights, training=training)
        cotangent = numpy.random.default_rng(1).normal(size=outputs[0].shape)
        grads = op_object.backward(ctx, p, cotangent)
        tensors = [torch.tensor(v, requires_grad=True) for v in torch_inputs]
        out = function(*tensors)
        out.backward(torch.tensor(cotangent))
        worst = float(numpy.max(numpy.abs(outputs[0] - out.detach().numpy())))
        mine = list(grads[:len(inputs)]) + [g for g in grads[len(inputs):] if g is not None]
        for value, tensor in zip(mine, tensors):
            worst = max(worst, float(numpy.max(numpy.abs(value - tensor.grad.numpy()))))
        ok = worst <= TOLERANCE
        failures += not ok
        print(f"  {name:34} max |engine - torch| = {worst:.2e}  {'ok' if ok else 'MISMATCH'}")
    return failures


def check_running_statistics() -> int:
    """batch_norm's running averages after three training steps equal PyTorch's."""
    import torch  # noqa: PLC0415

    rng = numpy.random.default_rng(4)
    mean, var = numpy.zeros(3), numpy.ones(3)
    torch_mean, torch_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(3):
        x = rng.normal(2.0, 3.0, size=(5, 3, 2, 2))
        weights = [numpy.ones(3), numpy.zeros(3), mean, var]
        _, ctx, _, _, _ = testing.run_op("batch_norm", {"momentum": 0.2}, [x], weights, training=True)
        mean, var = ctx.updates["running_mean"], ctx.updates["running_var"]
        torch.nn.functional.batch_norm(torch.tensor(x), torch_mean, torch_var, training=True, momentum=0.2)
    worst = max(float(numpy.max(numpy.abs(mean - torch_mean.numpy()))),
                float(numpy.max(numpy.abs(var - torch_var.numpy()))))
    ok = worst <= TOLERANCE
    print(f"  {'batch_norm running mean/var':34} max |engine - torch| = {worst:.2e}  {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


@contextlib.contextmanager
def finest_split():
    """Two threads, one sample per convolution chunk and per run of element-wise work."""
    chunk, run = conv.CHUNK_VALUES, parallel.RUN_VALUES
    conv.CHUNK_VALUES = parallel.RUN_VALUES = 1
    try:
        with parallel.threads(2, grain=1), parallel.owned_cores():
            yield
    finally:
        conv.CHUNK_VALUES, parallel.RUN_VALUES = chunk, run


def main() -> int:
    print(f"convolution, pooling, batch normalization (forward and gradients, float64, tolerance {TOLERANCE:g}), "
          "one thread:")
    with parallel.threads(1):
        failures = check() + check_running_statistics()
    print("the same on two threads, the work split into the finest pieces:")
    with finest_split():
        failures += check() + check_running_statistics()
    return failures
