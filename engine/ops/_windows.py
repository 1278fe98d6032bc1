"""Sliding windows over the spatial axes of (N, C, H, W) tensors, shared by convolution and
pooling: the geometry (padding, output sizes) checked without data, the window view of a padded
input (im2col without a copy) and its adjoint, the scatter-add back onto the input (col2im).

One-dimensional ops run as two-dimensional ones with H = 1.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy

from engine.backend import array_module
from engine.errors import ShapeError
from engine.ops import _numba
from engine.ops._util import format_shape


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where the windows of one op lie over a (H, W) input: kernel, stride and dilation per axis,
    padding as (before, after) per axis, and the output size per axis."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]
    size: tuple[int, int]
    out: tuple[int, int]

    @functools.cached_property
    def padded(self) -> tuple[int, int]:
        return tuple(s + b + a for s, (b, a) in zip(self.size, self.pads))

    @functools.cached_property
    def offsets(self) -> list[tuple[int, int]]:
        """Each kernel offset (i, j) as its first row and column in the padded input."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return [(i * dh, j * dw) for i in range(kh) for j in range(kw)]

    @functools.cached_property
    def flat_rows(self) -> bool:
        """Whether ``col2im`` takes Wp (not Wo) values per output row and adds each kernel offset
        as runs of whole rows of the flattened padded input (stride 1 along the width makes an
        offset one flat shift). Worth it while the Wp - Wo extra zeros per row cost less than
        adding Wo-long pieces would (about while Wp <= 1.5 Wo + 4)."""
        return self.stride[1] == 1 and 2 * self.padded[1] <= 3 * self.out[1] + 8

    def window_slice(self, row: int, column: int) -> tuple[slice, slice]:
        """The padded input's values that kernel offset (row, column) meets, one per output position."""
        (sh, sw), (ho, wo) = self.stride, self.out
        return slice(row, row + sh * (ho - 1) + 1, sh), slice(column, column + sw * (wo - 1) + 1, sw)


def spatial(value: tuple, rank: int, name: str) -> tuple[int, ...]:
    """A per-axis parameter: one value for every axis, or one value per axis."""
    if len(value) == 1:
        return tuple(value) * rank
    if len(value) != rank:
        raise ShapeError(f"parameter '{name}' needs 1 or {rank} values, got {list(value)}", field=f"params.{name}")
    return tuple(value)


def geometry(shape: tuple, rank: int, kernel, stride, dilation, padding, *, port: str = "x") -> Geometry:
    """Check an input shape (N, C, *spatial) against the window parameters; raise ShapeError
    naming the parameter at fault. ``padding`` is a tuple of ints, "valid" or "same" (the output
    has ceil(size / stride) positions, the extra padding going after, as in TensorFlow)."""
    if len(shape) != rank + 2:
        layout = "(N, C, L)" if rank == 1 else "(N, C, H, W)"
        raise ShapeError(f"needs an input of shape {layout}, got {format_shape(shape)} (rank {len(shape)})",
                         field=f"inputs.{port}")
    sizes = shape[2:]
    if any(s is None for s in sizes):
        raise ShapeError(f"needs known spatial sizes, got {format_shape(shape)}", field=f"inputs.{port}")
    kernel = spatial(kernel, rank, "kernel_size")
    stride = spatial(stride, rank, "stride")
    dilation = spatial(dilation, rank, "dilation")
    pads = []
    for axis, (size, k, s, d) in enumerate(zip(sizes, kernel, stride, dilation)):
        extent = d * (k - 1) + 1
        if padding == "valid":
            pads.append((0, 0))
        elif padding == "same":
            total = max((-(-size // s) - 1) * s + extent - size, 0)
            pads.append((total // 2, total - total // 2))
        else:
            amount = spatial(padding, rank, "padding")[axis]
            pads.append((amount, amount))
    out = []
    axis_names = ("length",) if rank == 1 else ("height", "width")
    for axis, (size, k, s, d, (before, after)) in enumerate(zip(sizes, kernel, stride, dilation, pads)):
        extent = d * (k - 1) + 1
        if size + before + after < extent:
            spread = f" (extent {extent} with dilation {d})" if d > 1 else ""
            raise ShapeError(
                f"kernel_size {k}{spread} is larger than the {axis_names[axis]} of {port} {format_shape(shape)}, "
                f"{size} plus padding {before + after}: use a smaller kernel_size"
                + (" or dilation" if d > 1 else "") + ", more padding, or padding 'same'",
                field="params.kernel_size",
            )
        out.append((size + before + after - extent) // s + 1)
    if rank == 1:  # as two-dimensional with a height of 1
        return Geometry((1, kernel[0]), (1, stride[0]), (1, dilation[0]), ((0, 0), pads[0]), (1, sizes[0]), (1, out[0]))
    return Geometry(kernel, stride, dilation, tuple(pads), tuple(sizes), tuple(out))


def _strided(xp, array, shape: tuple, strides: tuple):
    """A view of ``array``'s memory with the given shape and strides (bytes), never past its end:
    ``as_strided`` without its cost on NumPy (10 us a call through ``__array_interface__``, and the
    convolutions call it per chunk)."""
    if xp is numpy and array.flags.c_contiguous:
        return numpy.ndarray(shape, array.dtype, buffer=array, strides=strides)
    return xp.lib.stride_tricks.as_strided(array, shape=shape, strides=strides)


def strided_view(array, shape: tuple, strides: tuple, item: int):
    """A view of a C-contiguous NumPy ``array``'s memory with ``strides`` counted in elements of ``item``
    bytes; NumPy refuses (ValueError) a view that would reach past the array's end."""
    return numpy.ndarray(shape, array.dtype, buffer=array, strides=tuple(stride * item for stride in strides))


def pad(x, geo: Geometry, value: float = 0.0):
    """x (N, C, H, W) padded with ``value``; x itself when there is no padding."""
    (top, bottom), (left, right) = geo.pads
    if not (top or bottom or left or right):
        return x
    xp = array_module(x)
    n, c, h, w = x.shape
    padded = xp.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    padded[:, :, top:top + h, left:left + w] = x
    return padded


def windows(padded, geo: Geometry):
    """A view (N, C, kh, kw, Ho, Wo) of a padded input: view[n, c, i, j, y, x] is
    padded[n, c, y * sh + i * dh, x * sw + j * dw]. No copy is made; never write to it."""
    xp = array_module(padded)
    n, c = padded.shape[:2]
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = geo.kernel, geo.stride, geo.dilation, geo.out
    s_n, s_c, s_h, s_w = padded.strides
    return _strided(
        xp, padded, shape=(n, c, kh, kw, ho, wo), strides=(s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w)
    )


def im2col(x, geo: Geometry, out=None, padded=None):
    """Padded windows copied into a contiguous (C, kh, kw, N, Ho, Wo) array (``out`` when given):
    one column per output position of every sample, so that a convolution is a single matrix product.
    ``padded``, when given, is a work array of the padded shape whose border is zero already (only
    its inside is written), so that no padded copy is allocated."""
    xp = array_module(x)
    if padded is not None and padded.shape[2:] != x.shape[2:]:
        (top, _), (left, _) = geo.pads
        padded[:, :, top:top + x.shape[2], left:left + x.shape[3]] = x
        x_padded = padded
    else:
        x_padded = pad(x, geo)
    view = windows(x_padded, geo).transpose(1, 2, 3, 0, 4, 5)
    if out is None:
        return xp.ascontiguousarray(view)
    out[...] = view
    return out


def transposed_geometry(geo: Geometry) -> Geometry | None:
    """For a stride-1 window op, the geometry under which the input's gradient is a correlation of
    the output's gradient with the flipped kernel: dx[y] = sum_i W[k - 1 - i] g_pad[y + i * d], g padded
    by (k - 1) * d minus the forward padding on each side. None when that does not hold (a stride
    above 1, or padding wider than the kernel's extent)."""
    if geo.stride != (1, 1):
        return None
    pads = []
    for k, d, (before, after) in zip(geo.kernel, geo.dilation, geo.pads):
        extent = (k - 1) * d
        if before > extent or after > extent:
            return None
        pads.append((extent - before, extent - after))
    return Geometry(geo.kernel, (1, 1), geo.dilation, tuple(pads), geo.out, geo.size)


def row_padded_shape(geo: Geometry, n: int, c: int) -> tuple[int, int, int, int]:
    """(N, C, Hp + 1, Wp): the padded planes that ``col2im`` adds flat rows into, with a spare row
    below each that the last runs' extra (zero) values land in, so that no run reaches into the
    next plane and no two values of one add share memory (safe for CuPy's parallel adds)."""
    (hp, wp), (_, kw), (_, dw) = geo.padded, geo.kernel, geo.dilation
    return n, c, hp + ((kw - 1) * dw > 0), wp


def flat_windows(planes, geo: Geometry):
    """For stride-1 windows, a view (C, kh, kw, N, Ho * Wp) of row-padded planes (N, C, Hp', Wp)
    (``row_padded_shape``): [c, i, j, n, y * Wp + x] is the value at flat offset (y + i * dh) * Wp +
    x + j * dw of plane (n, c), i.e. the window value padded[n, c, y + i * dh, x + j * dw] while x < Wo,
    and a value of the same plane (never past it) for Wo <= x < Wp. Each (c, i, j, n) is one
    contiguous run. No copy is made; never write to it."""
    xp = array_module(planes)
    n, c, rows, wp = planes.shape
    (kh, kw), (dh, dw), item = geo.kernel, geo.dilation, planes.itemsize
    plane = rows * wp
    return _strided(
        xp, planes, shape=(c, kh, kw, n, geo.out[0] * wp),
        strides=(plane * item, dh * wp * item, dw * item, c * plane * item, item),
    )


def _row_runs(planes, geo: Geometry, row: int, column: int):
    """View (C, N, Ho, Wp) of row-padded planes (N, C, Hp', Wp): [c, n, y, x] is the value at flat
    offset (y * sh + row) * Wp + column + x of plane (n, c). Distinct entries never share memory."""
    xp = array_module(planes)
    n, c, rows, wp = planes.shape
    item, plane = planes.itemsize, rows * wp
    return _strided(
        xp, planes.reshape(-1)[row * wp + column:], shape=(c, n, geo.out[0], wp),
        strides=(plane * item, c * plane * item, geo.stride[0] * wp * item, item),
    )


def col2im(cols, geo: Geometry):
    """Adjoint of ``im2col``: sum each window value (C, kh, kw, N, Ho, R) back onto the input
    position it came from; gives (N, C, H, W). One vectorized add per kernel offset. R is Wo, or
    Wp with ``geo.flat_rows``, the values past Wo of each row being zeros."""
    xp = array_module(cols)
    c, kh, kw, n = cols.shape[:4]
    if xp is numpy and _numba.available(xp):
        # One compiled pass over the window values, without the GIL: the per-offset adds below are
        # kh * kw short NumPy calls a chunk, which two threads queue for (LeNet's 5x5 kernels: 25).
        padded = numpy.zeros((n, c, *geo.padded), dtype=cols.dtype)
        _numba.compile_kernel(_col2im_kernel, strict=True)(
            cols, padded, geo.out[1], *geo.stride, *geo.dilation)
        return unpad(padded, geo)
    if geo.flat_rows:
        planes = xp.zeros(row_padded_shape(geo, n, c), dtype=cols.dtype)
        (dh, dw) = geo.dilation
        for i in range(kh):
            for j in range(kw):
                target = _row_runs(planes, geo, i * dh, j * dw)
                target += cols[:, i, j]
        return unpad(planes, geo)
    padded = xp.zeros((c, n, *geo.padded), dtype=cols.dtype)
    for index, (row, column) in enumerate(geo.offsets):
        rows, columns = geo.window_slice(row, column)
        padded[:, :, rows, columns] += cols[:, index // kw, index % kw]
    return unpad(padded, geo).transpose(1, 0, 2, 3)


def _col2im_kernel(cols, padded, width, stride_h, stride_w, dilation_h, dilation_w):
    """padded[n, c, y * sh + i * dh, x * sw + j * dw] += cols[c, i, j, n, y, x] for x < width, the
    kernel offsets (i, j) in the order the NumPy form adds them (numba kernel, plain IEEE sums)."""
    channels, kh, kw, count, height = cols.shape[:5]
    for n in range(count):
        for c in range(channels):
            for i in range(kh):
                for j in range(kw):
                    for y in range(height):
                        row = y * stride_h + i * dilation_h
                        column = j * dilation_w
                        for x in range(width):
                            padded[n, c, row, column + x * stride_w] += cols[c, i, j, n, y, x]


def unpad(padded, geo: Geometry):
    """The input's part of a padded (N, C, Hp, Wp) array."""
    (top, _), (left, _) = geo.pads
    h, w = geo.size
    if padded.shape[2:] == (h, w):
        return padded
    return padded[:, :, top:top + h, left:left + w]
