"""Pooling and resampling over (N, C, H, W): max and average pooling over strided windows, global
average pooling, nearest-neighbour upsampling. Window ops loop over the kh * kw kernel offsets,
each step vectorized over the whole batch; max pooling keeps the offset of each maximum for its
backward."""

from __future__ import annotations

from typing import ClassVar

from engine import parallel
from engine.backend import array_module
from engine.errors import ShapeError
from engine.ops import _windows
from engine.ops._util import format_shape
from engine.ops.conv import window_params
from engine.registry import Op, Param, Port, TensorType, register

IMAGE = Port("x", doc="images (N, C, H, W)", rank=(4, 4))


class Pooling(Op):
    """Shared by max and average pooling: stride defaults to the kernel size (no overlap)."""

    category = "pooling"
    inputs = (IMAGE,)
    params = window_params(kernel_default=(2,), stride_default=None, padding_default=(0,), dilation=False,
                           padding_choices=("valid", "same"))
    pad_value: ClassVar[float] = 0.0

    def geometry(self, p, shape: tuple) -> _windows.Geometry:
        stride = p.kernel_size if p.stride is None else p.stride
        geo = _windows.geometry(shape, 2, p.kernel_size, stride, (1,), p.padding)
        if not isinstance(p.padding, str):
            for (before, _), k, axis in zip(geo.pads, geo.kernel, ("height", "width")):
                if before > k // 2:
                    raise ShapeError(f"padding {before} is more than half the kernel_size {k} along the {axis} "
                                     f"(at most {k // 2}), so some windows would hold padding only: lower the "
                                     f"padding, or use padding 'same'", field="params.padding")
        return geo

    def infer(self, p, x: TensorType) -> TensorType:
        geo = self.geometry(p, x.shape)
        return TensorType((*x.shape[:2], *geo.out), x.dtype)

    def flops(self, p, inputs, outputs):
        kernel = _windows.spatial(p.kernel_size, 2, "kernel_size")
        return kernel[0] * kernel[1] * outputs[0].per_sample_size()


@register
class MaxPool2d(Pooling):
    name = "max_pool2d"
    doc = ("Max pooling of (N, C, H, W): out[n, c, y, x] = max over the window at (y*sh, x*sw) "
           "(padding never wins); the gradient goes to each window's first maximum.")

    def forward(self, ctx, p, x):
        geo = self.geometry(p, x.shape)
        xp = array_module(x)
        padded = _windows.pad(x, geo, -xp.inf)
        out = xp.empty((*x.shape[:2], *geo.out), dtype=x.dtype)
        last = len(geo.offsets) - 1
        argmax = xp.empty(out.shape, dtype=xp.uint8 if last < 256 else xp.int32)
        slices = [geo.window_slice(*offset) for offset in geo.offsets]

        def run(low, high):
            views = [padded[(slice(low, high), slice(None), *window)] for window in slices]
            maxima, index = out[low:high], argmax[low:high]
            maxima[...] = views[0]
            for values in views[1:]:
                xp.maximum(maxima, values, out=maxima)
            # The offset of each window's first maximum, found from the last offset back (integer arithmetic
            # is several times faster than masked assignment): argmax <- k where views[k] == out.
            index[...] = last
            for k in range(last - 1, -1, -1):
                index -= (views[k] == maxima) * (index - index.dtype.type(k))

        parallel.for_rows(xp, len(x), padded[0].size, run)
        ctx.geo, ctx.argmax = geo, argmax
        return out

    def backward(self, ctx, p, g):
        geo, argmax = ctx.geo, ctx.argmax
        xp = array_module(g)
        overlapping = any(s < k for s, k in zip(geo.stride, geo.kernel))
        tiled = not overlapping and all(o * k == size for o, k, size in zip(geo.out, geo.kernel, geo.padded))
        # Windows that tile the input write every position exactly once: no zeros needed first.
        padded = (xp.empty if tiled else xp.zeros)((*g.shape[:2], *geo.padded), dtype=g.dtype)
        slices = [geo.window_slice(*offset) for offset in geo.offsets]

        def run(low, high):
            grads, index = g[low:high], argmax[low:high]
            for k, window in enumerate(slices):
                target = padded[(slice(low, high), slice(None), *window)]
                if overlapping:
                    target += grads * (index == k)
                else:  # each input position lies in one window at most: write in place
                    xp.multiply(grads, index == k, out=target)

        parallel.for_rows(xp, len(g), padded[0].size, run)
        return (_windows.unpad(padded, geo),)


@register
class AvgPool2d(Pooling):
    name = "avg_pool2d"
    doc = ("Average pooling of (N, C, H, W): out[n, c, y, x] = mean of the kh * kw window at "
           "(y*sh, x*sw), padded zeros counted in the mean.")

    def forward(self, ctx, p, x):
        geo = self.geometry(p, x.shape)
        xp = array_module(x)
        padded = _windows.pad(x, geo)
        out = xp.empty((*x.shape[:2], *geo.out), dtype=x.dtype)
        slices = [geo.window_slice(*offset) for offset in geo.offsets]
        share = 1.0 / len(slices)

        def run(low, high):
            first, *rest = [padded[(slice(low, high), slice(None), *window)] for window in slices]
            total = out[low:high]
            total[...] = first
            for values in rest:
                total += values
            total *= share

        parallel.for_rows(xp, len(x), padded[0].size, run)
        ctx.geo = geo
        return out

    def backward(self, ctx, p, g):
        geo = ctx.geo
        xp = array_module(g)
        overlapping = any(s < k for s, k in zip(geo.stride, geo.kernel))
        tiled = not overlapping and all(o * k == size for o, k, size in zip(geo.out, geo.kernel, geo.padded))
        padded = (xp.empty if tiled else xp.zeros)((*g.shape[:2], *geo.padded), dtype=g.dtype)
        slices = [geo.window_slice(*offset) for offset in geo.offsets]
        share = 1.0 / len(slices)

        def run(low, high):
            grads = g[low:high] * share
            for window in slices:
                target = padded[(slice(low, high), slice(None), *window)]
                if overlapping:
                    target += grads
                else:
                    target[...] = grads

        parallel.for_rows(xp, len(g), padded[0].size, run)
        return (_windows.unpad(padded, geo),)


def _image(x: TensorType) -> None:
    if x.rank != 4:
        raise ShapeError(f"needs an input of shape (N, C, H, W), got {format_shape(x.shape)} (rank {x.rank})",
                         field="inputs.x")


@register
class GlobalAvgPool2d(Op):
    name = "global_avg_pool2d"
    category = "pooling"
    inputs = (IMAGE,)
    doc = "Mean over the spatial axes: (N, C, H, W) -> (N, C), out[n, c] = mean_{y, x} x[n, c, y, x]."

    def infer(self, p, x: TensorType) -> TensorType:
        _image(x)
        return TensorType(x.shape[:2], x.dtype)

    def flops(self, p, inputs, outputs):
        return inputs[0].per_sample_size()

    def forward(self, ctx, p, x):
        ctx.shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, ctx, p, g):
        n, c, h, w = ctx.shape
        xp = array_module(g)
        dx = xp.empty(ctx.shape, dtype=g.dtype)
        dx[...] = (g * (1.0 / (h * w)))[:, :, None, None]
        return (dx,)


@register
class Upsample2d(Op):
    name = "upsample2d"
    category = "pooling"
    inputs = (IMAGE,)
    doc = ("Nearest-neighbour upsampling of (N, C, H, W) by integer factors: "
           "out[n, c, y, x] = x[n, c, y // sh, x // sw], giving (N, C, H*sh, W*sw).")
    params = (Param("scale_factor", "int_list", (2,), "repeat count per axis: one int, or [sh, sw]",
                    minimum=1, maximum=64),)

    def infer(self, p, x: TensorType) -> TensorType:
        _image(x)
        sh, sw = _windows.spatial(p.scale_factor, 2, "scale_factor")
        h, w = x.shape[2:]
        return TensorType((*x.shape[:2], None if h is None else h * sh, None if w is None else w * sw), x.dtype)

    def flops(self, p, inputs, outputs):
        return 0

    def forward(self, ctx, p, x):
        sh, sw = _windows.spatial(p.scale_factor, 2, "scale_factor")
        n, c, h, w = x.shape
        xp = array_module(x)
        out = xp.broadcast_to(x[:, :, :, None, :, None], (n, c, h, sh, w, sw))
        return out.reshape(n, c, h * sh, w * sw)

    def backward(self, ctx, p, g):
        sh, sw = _windows.spatial(p.scale_factor, 2, "scale_factor")
        n, c, height, width = g.shape
        return (g.reshape(n, c, height // sh, sh, width // sw, sw).sum(axis=(3, 5)),)
