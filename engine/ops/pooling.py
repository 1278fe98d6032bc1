"""Pooling and resampling over (N, C, H, W): max and average pooling over strided windows, global
average pooling, nearest-neighbour upsampling. Window ops loop over the kh * kw kernel offsets,
each step vectorized over the whole batch; max pooling keeps the offset of each maximum for its
backward.

On NumPy arrays max and average pooling run as numba kernels (``engine/ops/_numba.py``), compiled
for each window shape and stride on first use, one call per piece of the batch: they read the
unpadded input (padding by bounds checks, never copied), go through the offsets in the same order
with the same arithmetic as the NumPy form, so that both give the same bits (up to the sign of a
zero and a NaN's payload), and let go of the GIL, so that the pieces run at once on the engine's
threads."""

from __future__ import annotations

import functools
from typing import ClassVar, NamedTuple

import numpy

from engine import parallel
from engine.backend import array_module
from engine.errors import ShapeError
from engine.ops import _numba, _windows
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
        out = xp.empty((*x.shape[:2], *geo.out), dtype=x.dtype)
        last = len(geo.offsets) - 1
        argmax = xp.empty(out.shape, dtype=xp.uint8 if last < 256 else xp.int32)
        ctx.geo, ctx.argmax = geo, argmax
        kernels = _pool_kernels(xp, geo)
        if kernels is not None:
            x = xp.ascontiguousarray(x)
            bounds = _forward_bounds(geo)
            parallel.run(len(x), lambda low, high: kernels.max_forward(x[low:high], out[low:high], argmax[low:high],
                                                                       *bounds), work=_kernel_work(x))
            return out
        padded = _windows.pad(x, geo, -xp.inf)
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
        return out

    def backward(self, ctx, p, g):
        geo, argmax = ctx.geo, ctx.argmax
        xp = array_module(g)
        kernels = _pool_kernels(xp, geo)
        if kernels is not None:
            g = xp.ascontiguousarray(g)
            dx = xp.empty((*g.shape[:2], *geo.size), dtype=g.dtype)
            bounds = _backward_bounds(geo)
            parallel.run(len(g), lambda low, high: kernels.max_backward(g[low:high], argmax[low:high], dx[low:high],
                                                                        *bounds), work=_kernel_work(dx))
            return (dx,)
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
        out = xp.empty((*x.shape[:2], *geo.out), dtype=x.dtype)
        ctx.geo = geo
        kernels = _pool_kernels(xp, geo)
        if kernels is not None:
            x = xp.ascontiguousarray(x)
            bounds, share = _forward_bounds(geo), _share(x.dtype, geo)
            parallel.run(len(x), lambda low, high: kernels.avg_forward(x[low:high], out[low:high], share, *bounds),
                         work=_kernel_work(x))
            return out
        padded = _windows.pad(x, geo)
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
        return out

    def backward(self, ctx, p, g):
        geo = ctx.geo
        xp = array_module(g)
        kernels = _pool_kernels(xp, geo)
        if kernels is not None:
            g = xp.ascontiguousarray(g)
            dx = xp.empty((*g.shape[:2], *geo.size), dtype=g.dtype)
            bounds, share = _backward_bounds(geo), _share(g.dtype, geo)
            parallel.run(len(g), lambda low, high: kernels.avg_backward(g[low:high], dx[low:high], share, *bounds),
                         work=_kernel_work(dx))
            return (dx,)
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


def _kernel_work(images) -> int:
    return _numba.piece_work(images.size)


def _inside(size: int, out: int, kernel: int, stride: int, before: int) -> tuple[int, int]:
    """The output positions [low, high) along one axis whose windows lie inside the image (no padding):
    position y covers y * stride - before ... y * stride - before + kernel - 1."""
    low = min(out, -(-before // stride))
    return low, max(low, min(out, (size - kernel + before) // stride + 1))


def _forward_bounds(geo: _windows.Geometry) -> tuple[int, ...]:
    """The forward kernels' arguments after the arrays: the padding before (top, left), then the
    output rows and columns whose windows lie inside the image (need no bounds checks)."""
    (top, _), (left, _) = geo.pads
    rows = _inside(geo.size[0], geo.out[0], geo.kernel[0], geo.stride[0], top)
    columns = _inside(geo.size[1], geo.out[1], geo.kernel[1], geo.stride[1], left)
    return top, left, *rows, *columns


def _backward_bounds(geo: _windows.Geometry) -> tuple:
    """The backward kernels' arguments after the arrays: the padding before (top, left), the output
    columns whose windows lie inside the image, and whether the windows cover every input position
    once (non-overlapping windows that tile the padded input: no zeros needed first)."""
    (top, _), (left, _) = geo.pads
    columns = _inside(geo.size[1], geo.out[1], geo.kernel[1], geo.stride[1], left)
    covered = all(s == k and o * k == size for s, k, o, size in zip(geo.stride, geo.kernel, geo.out, geo.padded))
    return top, left, *columns, covered


def _share(dtype, geo: _windows.Geometry):
    """1 / (kh * kw) in the arrays' dtype, as the NumPy form's in-place multiply rounds it."""
    return dtype.type(1.0 / (geo.kernel[0] * geo.kernel[1]))


class _Kernels(NamedTuple):
    max_forward: object
    max_backward: object
    avg_forward: object
    avg_backward: object


def _pool_kernels(xp, geo: _windows.Geometry) -> _Kernels | None:
    """The compiled kernels for this window shape and stride where they run (NumPy arrays, numba
    installed), else None."""
    return _compiled_pool_kernels(*geo.kernel, *geo.stride) if _numba.available(xp) else None


@functools.cache
def _compiled_pool_kernels(kh: int, kw: int, sh: int, sw: int) -> _Kernels:
    # No fastmath: the kernels compare, add in the NumPy form's order and scale, and so give its bits
    # (a contracted multiply-add would round once where NumPy rounds twice).
    return _Kernels(*(_numba.compile_kernel(kernel, strict=True) for kernel in _kernel_functions(kh, kw, sh, sw)))


def _kernel_functions(kh: int, kw: int, sh: int, sw: int) -> tuple:
    """The four kernels for windows of kh x kw at strides (sh, sw), which numba compiles as constants
    (a closure's variables): each window then unrolls, and the loop along an output row vectorizes
    (several times faster than with them as arguments). Each kernel goes through one piece of the
    batch, x (n, C, H, W) unpadded: the windows inside the image (outputs [row_low, row_high) x
    [column_low, column_high)) without bounds checks, the others skipping the padding.

    Indices inside the image are cast to unsigned (``at``): numba wraps negative indices around
    otherwise, a select on each index that keeps LLVM from vectorizing."""
    at = numpy.uintp
    last = kh * kw - 1

    def max_forward(x, out, argmax, top, left, row_low, row_high, column_low, column_high):
        """out = the maximum of each window (padding never wins, a NaN always does); argmax = the
        offset i * kw + j of its first maximum (the last offset where the maximum is NaN, as the
        NumPy form finds none equal to it). Inside the image, the offset is kept in x's dtype and a
        NaN is noted apart, so that the loop vectorizes with selects of one lane width."""
        n, channels, height, width = x.shape
        out_height, out_width = out.shape[2], out.shape[3]
        number = x.dtype.type
        for s in range(n):
            for c in range(channels):
                for y in range(out_height):
                    low, high = (column_low, column_high) if row_low <= y < row_high else (0, 0)
                    for q in range(low, high):
                        r0, c0 = y * sh - top, q * sw - left
                        best = x[s, c, at(r0), at(c0)]
                        where = number(0)
                        nan = best != best
                        for i in range(kh):
                            for j in range(kw):
                                v = x[s, c, at(r0 + i), at(c0 + j)]
                                take = v > best
                                nan |= v != v
                                best = v if take else best
                                where = number(i * kw + j) if take else where
                        out[s, c, y, at(q)] = numpy.nan if nan else best
                        argmax[s, c, y, at(q)] = last if nan else int(where)
                    # The other outputs of the row, before and after [low, high), without branches: each
                    # offset loads a value clamped into the image, and counts only if it lies inside.
                    # Padding is -inf in the NumPy form: it never wins, and where all is -inf, offset 0
                    # is the first maximum.
                    for e in range(out_width - (high - low)):
                        q = e if e < low else e + high - low
                        r0, c0 = y * sh - top, q * sw - left
                        best = -numpy.inf
                        where = 0
                        for i in range(kh):
                            r = min(max(r0 + i, 0), height - 1)
                            for j in range(kw):
                                column = min(max(c0 + j, 0), width - 1)
                                v = x[s, c, r, column]
                                inside = (r == r0 + i) & (column == c0 + j)
                                take = inside & ((v > best) | (v != v))
                                best = v if take else best
                                where = i * kw + j if take else where
                        out[s, c, y, q] = best
                        argmax[s, c, y, q] = last if best != best else where

    def avg_forward(x, out, share, top, left, row_low, row_high, column_low, column_high):
        """out = share * the sum of each window's values in offset order (padding adds nothing)."""
        n, channels, height, width = x.shape
        out_height, out_width = out.shape[2], out.shape[3]
        zero = out.dtype.type(0)
        for s in range(n):
            for c in range(channels):
                for y in range(out_height):
                    low, high = (column_low, column_high) if row_low <= y < row_high else (0, 0)
                    for q in range(low, high):
                        r0, c0 = y * sh - top, q * sw - left
                        total = zero
                        for i in range(kh):
                            for j in range(kw):
                                total += x[s, c, at(r0 + i), at(c0 + j)]
                        out[s, c, y, at(q)] = total * share
                    for e in range(out_width - (high - low)):
                        q = e if e < low else e + high - low
                        r0, c0 = y * sh - top, q * sw - left
                        total = zero
                        for i in range(kh):
                            for j in range(kw):
                                if 0 <= r0 + i < height and 0 <= c0 + j < width:
                                    total += x[s, c, r0 + i, c0 + j]
                        out[s, c, y, q] = total * share

    # The backward kernels add each window's gradient onto dx. Where windows overlap, they go through
    # the windows from the last one back (rows, then columns, descending) and add on (after zeros),
    # so that a position's terms come in the order of their offsets, as the NumPy form adds offset
    # after offset. Else they go through each output row once for each kernel row i and write input
    # row y * sh + i - top (padding rows skipped) once, in ascending order (which vectorizes, unlike
    # descending), after zeros where the windows leave gaps (not ``covered``).
    overlapping = sh < kh or sw < kw

    def max_backward(g, argmax, dx, top, left, column_low, column_high, covered):
        """dx = the sum over windows of g * (offset == argmax) at each offset's position. Where windows
        overlap, each window adds its gradient at its first maximum only while the gradient is
        finite (the other terms are zeros); a NaN or Inf one spreads over its window as g * 0 as in
        the NumPy form (a multiply rather than a branch)."""
        n, channels, height, width = dx.shape
        out_height, out_width = g.shape[2], g.shape[3]
        zero, one = dx.dtype.type(0), dx.dtype.type(1)
        for s in range(n):
            for c in range(channels):
                if overlapping or not covered:
                    dx[s, c] = zero
                if overlapping:
                    for y in range(out_height - 1, -1, -1):
                        for q in range(out_width - 1, -1, -1):
                            grad, first = g[s, c, y, q], argmax[s, c, y, q]
                            if grad - grad == zero:
                                r, column = y * sh + first // kw - top, q * sw + first % kw - left
                                if 0 <= r < height and 0 <= column < width:
                                    dx[s, c, r, column] += grad
                                continue
                            for i in range(kh):
                                for j in range(kw):
                                    r, column = y * sh + i - top, q * sw + j - left
                                    if 0 <= r < height and 0 <= column < width:
                                        dx[s, c, r, column] += grad * (one if first == i * kw + j else zero)
                    continue
                for y in range(out_height):
                    for i in range(kh):
                        r = y * sh + i - top
                        if r < 0 or r >= height:
                            continue
                        for q in range(column_low, column_high):  # windows inside the image
                            grad, first = g[s, c, y, at(q)], argmax[s, c, y, at(q)]
                            for j in range(kw):
                                dx[s, c, at(r), at(q * sw + j - left)] = grad * (one if first == i * kw + j else zero)
                        for e in range(out_width - (column_high - column_low)):  # and those before and after
                            q = e if e < column_low else e + column_high - column_low
                            grad, first = g[s, c, y, q], argmax[s, c, y, q]
                            for j in range(kw):
                                if 0 <= q * sw + j - left < width:
                                    dx[s, c, r, q * sw + j - left] = grad * (one if first == i * kw + j else zero)

    def avg_backward(g, dx, share, top, left, column_low, column_high, covered):
        """dx = the sum over windows of g * share at each of the window's positions."""
        n, channels, height, width = dx.shape
        out_height, out_width = g.shape[2], g.shape[3]
        zero = dx.dtype.type(0)
        for s in range(n):
            for c in range(channels):
                if overlapping or not covered:
                    dx[s, c] = zero
                for t in range(out_height):
                    y = out_height - 1 - t if overlapping else t
                    for i in range(kh):
                        r = y * sh + i - top
                        if r < 0 or r >= height:
                            continue
                        if overlapping:
                            for q in range(out_width - 1, -1, -1):
                                value = g[s, c, y, q] * share
                                if column_low <= q < column_high:
                                    for j in range(kw):
                                        dx[s, c, at(r), at(q * sw + j - left)] += value
                                else:
                                    for j in range(kw):
                                        if 0 <= q * sw + j - left < width:
                                            dx[s, c, r, q * sw + j - left] += value
                            continue
                        for q in range(column_low, column_high):
                            value = g[s, c, y, at(q)] * share
                            for j in range(kw):
                                dx[s, c, at(r), at(q * sw + j - left)] = value
                        for e in range(out_width - (column_high - column_low)):
                            q = e if e < column_low else e + column_high - column_low
                            value = g[s, c, y, q] * share
                            for j in range(kw):
                                if 0 <= q * sw + j - left < width:
                                    dx[s, c, r, q * sw + j - left] = value

    return max_forward, max_backward, avg_forward, avg_backward


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
