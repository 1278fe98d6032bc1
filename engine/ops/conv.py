"""Convolutions over (N, C, L) and (N, C, H, W) as matrix products over im2col windows.

out[n, f, y, x] = b[f] + sum_{c in group(f), i, j} W[f, c, i, j] * x_pad[n, c, y*sh + i*dh, x*sw + j*dw]

The batch is split across the engine's threads (``engine.parallel``), and each thread's share goes
in chunks of samples whose window columns fit in cache, recomputed in the backward pass rather than
kept. dW = sum over chunks of columns @ g^T, added in chunk order. The input's gradient is, for
stride 1, a correlation of the padded gradient with the spatially flipped kernel (the same
im2col and product as the forward pass); otherwise W^T @ g scattered back by col2im.
"""

from __future__ import annotations

import functools
import math
from typing import ClassVar

import numpy

from engine import parallel
from engine.backend import array_module
from engine.errors import ShapeError
from engine.initializers import INITIALIZER_NAMES
from engine.ops import _offsets, _windows
from engine.ops._util import PieceWorkspace, format_shape, scratch, zero_bordered
from engine.ops.linalg import PRODUCT_TERMS_PER_ELEMENT
from engine.registry import Op, Param, Port, TensorType, Weight, register


def window_params(*, kernel_default=None, stride_default=(1,), padding_default=(0,), dilation: bool = True,
                  padding_choices=("valid", "same")) -> tuple[Param, ...]:
    """The kernel, stride, padding (and dilation) parameters that windowed ops share."""
    params = [
        Param("kernel_size", "int_list", *(() if kernel_default is None else (kernel_default,)),
              doc="window size: one int for every spatial axis, or one per axis", minimum=1, maximum=1024),
        Param("stride", "int_list", stride_default, "step between windows: one int, or one per axis",
              minimum=1, maximum=1024, nullable=stride_default is None),
        Param("padding", "padding", padding_default,
              "zeros added on each side: an int, one per axis, 'valid' (none) or 'same' (output size = "
              "ceil(input / stride))", minimum=0, maximum=1024, choices=padding_choices),
    ]
    if dilation:
        params.append(Param("dilation", "int_list", (1,), "spacing between kernel taps: one int, or one per axis",
                            minimum=1, maximum=1024))
    return tuple(params)


class Convolution(Op):
    """Shared by conv1d and conv2d: ``rank`` spatial axes, computed as two-dimensional."""

    rank: ClassVar[int]
    category = "layers"
    params = (
        Param("filters", "int", doc="output channels", minimum=1, maximum=65_536),
        *window_params(),
        Param("groups", "int", 1, "split channels into groups convolved separately (channels and filters "
                                  "must both divide by it); groups = channels is a depthwise convolution",
              minimum=1, maximum=65_536),
        Param("use_bias", "bool", True, "add a learned bias per filter"),
        Param("kernel_init", "choice", "he_uniform", "initializer of W", choices=INITIALIZER_NAMES),
        Param("bias_init", "choice", "zeros", "initializer of b", choices=INITIALIZER_NAMES),
    )

    def geometry(self, p, shape: tuple) -> _windows.Geometry:
        return _windows.geometry(shape, self.rank, p.kernel_size, p.stride, p.dilation, p.padding)

    def infer(self, p, x: TensorType) -> TensorType:
        geo = self.geometry(p, x.shape)
        channels = x.shape[1]
        if channels is None:
            raise ShapeError("needs a known channel axis (axis 1)", field="inputs.x")
        if channels % p.groups or p.filters % p.groups:
            culprit = (f"the {channels} input channels of x {format_shape(x.shape)}" if channels % p.groups
                       else f"filters {p.filters}")
            common = math.gcd(channels, p.filters)
            choices = ", ".join(str(d) for d in range(1, common + 1) if common % d == 0)
            raise ShapeError(f"groups {p.groups} does not divide {culprit}; groups must divide both the input "
                             f"channels ({channels}) and filters ({p.filters}): one of {choices}",
                             field="params.groups")
        spatial = geo.out[-self.rank:]
        return TensorType((x.shape[0], p.filters, *spatial), x.dtype)

    def weights(self, p, x: TensorType) -> list[Weight]:
        kernel = _windows.spatial(p.kernel_size, self.rank, "kernel_size")
        area = math.prod(kernel)
        fan_in, fan_out = x.shape[1] // p.groups * area, p.filters * area
        weights = [Weight("W", (p.filters, x.shape[1] // p.groups, *kernel), p.kernel_init, fan_in, fan_out)]
        if p.use_bias:
            weights.append(Weight("b", (p.filters,), p.bias_init, fan_in, fan_out))
        return weights

    def flops(self, p, inputs, outputs):
        kernel = _windows.spatial(p.kernel_size, self.rank, "kernel_size")
        return 2 * inputs[0].shape[1] // p.groups * math.prod(kernel) * outputs[0].per_sample_size()

    def forward(self, ctx, p, x, W, b=None):
        geo = self.geometry(p, x.shape)
        n, channels = x.shape[:2]
        images = x.reshape(n, channels, *geo.size)
        groups, filters = p.groups, p.filters
        xp = array_module(x)
        (ho, wo), row = geo.out, _row_width(geo)
        kernel = W.reshape(groups, filters // groups, -1)
        if _strided_pointwise(geo, groups):
            out = _pointwise_forward(ctx, images, W, b, geo)
            ctx.geo, ctx.images, ctx.kernel, ctx.x_shape = geo, images, kernel, x.shape
            return out.reshape(n, filters, *geo.out[-self.rank:])
        out = xp.empty((n, filters, ho, wo), dtype=x.dtype)
        window_values = kernel.shape[-1] * groups * ho * row  # per sample
        if xp is numpy and _offsets.usable(xp, geo, x.dtype, channels) and _offsets.wins(channels // groups,
                                                                                         filters // groups):
            _correlate_by_offsets(ctx, images, W, b, geo, groups, out, _offsets_split_work(n, window_values))
            ctx.geo, ctx.images, ctx.kernel, ctx.x_shape = geo, images, kernel, x.shape
            return out.reshape(n, filters, *geo.out[-self.rank:])
        bias = None if b is None else b[:, None, None, None]

        def piece(index, start, stop):
            work = PieceWorkspace(ctx, index)
            for low, high in _chunks(xp, start, stop, window_values):
                cols = _columns(work, images[low:high], geo, groups, "cols", "padded")
                _blocked_product(work, "product", kernel, cols, high - low, ho, row, wo, out[low:high], bias)

        _split(xp, n, piece, _split_work(n, window_values))
        ctx.geo, ctx.images, ctx.kernel, ctx.x_shape = geo, images, kernel, x.shape
        return out.reshape(n, filters, *geo.out[-self.rank:])

    def backward(self, ctx, p, g):
        geo, images, kernel = ctx.geo, ctx.images, ctx.kernel
        needs = ctx.needs
        n, filters = g.shape[:2]
        groups, channels = p.groups, images.shape[1]
        xp = array_module(g)
        (ho, wo), row = geo.out, _row_width(geo)
        grads = g.reshape(n, filters, ho, wo)
        if getattr(ctx, "sampled", None) is not None:  # forward took _pointwise_forward
            dx, dW, db = _pointwise_backward(ctx, kernel.reshape(filters, channels), grads, geo, needs, p.use_bias)
            dx = None if dx is None else dx.reshape(ctx.x_shape)
            dW = None if dW is None else dW.reshape(filters, channels, *geo.kernel[-self.rank:])
            return (dx, dW, db) if p.use_bias else (dx, dW)
        window_values = kernel.shape[-1] * groups * ho * row
        if xp is numpy and _offsets.usable(xp, geo, g.dtype, channels):
            per_in, per_out = channels // groups, filters // groups
            if ((not needs[1] or (per_in >= _offsets.MIN_WEIGHT_CHANNELS and per_out <= _offsets.MAX_PRODUCED))
                    and (not needs[0] or _offsets.wins(per_out, per_in))):
                dx, dW, db = _backward_by_offsets(ctx, images, kernel.reshape(filters, -1, *geo.kernel), grads, geo,
                                                  groups, needs, p.use_bias, _offsets_split_work(n, window_values))
                dx = None if dx is None else dx.reshape(ctx.x_shape)
                if dW is not None:
                    dW = dW.reshape(filters, -1, *geo.kernel[-self.rank:])
                return (dx, dW, db) if p.use_bias else (dx, dW)
        flipped_geo = _windows.transposed_geometry(geo) if needs[0] else None
        if flipped_geo is not None and filters * flipped_geo.out[0] * flipped_geo.padded[1] > 2 * channels * ho * row:
            # The flipped correlation copies F*kh*kw values per input position, col2im adds C*kh*kw per output
            # position: with many more filters than channels (or wide padding), col2im moves less memory.
            flipped_geo = None
        if flipped_geo is not None:
            # W (G, F/G, C/G, kh, kw) flipped in space, as (G, C/G, F/G * kh * kw): dx is g's windows times it.
            kh, kw = geo.kernel
            flipped = kernel.reshape(groups, filters // groups, channels // groups, kh, kw)[..., ::-1, ::-1]
            flipped = xp.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4)).reshape(groups, channels // groups, -1)
        dx = xp.empty(images.shape, dtype=g.dtype) if needs[0] else None
        pieces = len(parallel.split(n, _split_work(n, window_values))) if xp is numpy else 1
        by_offsets = needs[1] and _weight_grad_by_offsets(xp, geo, groups, channels, filters)
        if not needs[1]:
            dW_parts = None
        elif by_offsets:  # (piece, kh, kw, G, F/G, C/G)
            dW_parts = xp.zeros((pieces, *geo.kernel, groups, filters // groups, channels // groups), dtype=g.dtype)
        else:  # (piece, G, C/G*kh*kw, F/G)
            dW_parts = xp.zeros((pieces, groups, kernel.shape[-1], filters // groups), dtype=g.dtype)
        db_parts = xp.zeros((pieces, filters), dtype=g.dtype) if p.use_bias and needs[2] else None

        def piece(index, start, stop):
            work = PieceWorkspace(ctx, index)
            for low, high in _chunks(xp, start, stop, window_values):
                count = high - low
                # (F, n, Ho, R), zero past Wo: the columns' values there (see _columns) then add nothing.
                wide = zero_bordered(work, "grad", (filters, count, ho, row), g.dtype, xp)
                wide[..., :wo] = grads[low:high].transpose(1, 0, 2, 3)
                if db_parts is not None:
                    db_parts[index] += wide.sum(axis=(1, 2, 3))
                grad = wide.reshape(groups, filters // groups, -1)
                if by_offsets:
                    _weight_product_by_offsets(work, images[low:high], wide, geo, groups, dW_parts[index])
                elif dW_parts is not None:  # dW^T (G, C/G*kh*kw, F/G) = cols @ grad^T
                    cols = _columns(work, images[low:high], geo, groups, "cols", "padded")
                    product = scratch(work, "dW", dW_parts.shape[1:], g.dtype, xp)
                    xp.matmul(cols, grad.swapaxes(-1, -2), out=product)
                    dW_parts[index] += product
                if dx is None:
                    continue
                if flipped_geo is not None:  # dx (G, C/G, n*H*R') = flipped W @ windows of the padded g
                    # The dW product is done with the chunk's columns: their memory takes the windows of g.
                    windows = _columns(work, grads[low:high], flipped_geo, groups, "cols", "padded_grad")
                    height, width = geo.size
                    _blocked_product(work, "product", flipped, windows, count, height, flipped_geo.padded[1], width,
                                     dx[low:high])
                else:
                    dx[low:high] = _scatter_windows(work, kernel, wide[..., :wo], geo, channels, count)

        _split(xp, n, piece, _split_work(n, window_values))
        dW = db = None
        if by_offsets:  # (kh, kw, G, F/G, C/G) -> (F, C/G, kh, kw)
            dW = dW_parts.sum(axis=0).transpose(2, 3, 4, 0, 1).reshape(filters, -1, *geo.kernel[-self.rank:])
        elif dW_parts is not None:
            dW = dW_parts.sum(axis=0).swapaxes(-1, -2).reshape(filters, -1, *geo.kernel[-self.rank:])
        if db_parts is not None:
            db = db_parts.sum(axis=0)
        dx = None if dx is None else dx.reshape(ctx.x_shape)
        if not p.use_bias:
            return dx, dW
        return dx, dW, db


def _strided_pointwise(geo, groups: int) -> bool:
    """A 1x1 convolution with a stride above 1 and no padding (a residual block's projection): the
    product of W and the sampled input, without windows. Through im2col its backward pass, col2im
    into a zeroed input of four times the output's size, took 1.29 ms of a small ResNet's step at
    batch 32, serial (too little work to split); this way 0.47 ms, its forward pass 0.15 against 0.27
    (on one thread, in isolation)."""
    return (geo.kernel == (1, 1) and geo.stride != (1, 1) and groups == 1
            and geo.pads == ((0, 0), (0, 0)))


def _pointwise_forward(ctx, images, W, b, geo):
    """out (N, F, Ho*Wo) = W (F, C) @ the input at every stride-th position (N, C, Ho*Wo), kept in
    ``ctx.sampled`` for the weight gradient; pieces of the batch on the engine's threads."""
    xp = array_module(images)
    (sh, sw), (n, channels), filters = geo.stride, images.shape[:2], W.shape[0]
    (ho, wo) = geo.out
    sampled = xp.empty((n, channels, ho, wo), dtype=images.dtype)
    out = xp.empty((n, filters, ho * wo), dtype=images.dtype)
    kernel = W.reshape(filters, channels)

    def piece(index, start, stop):
        sampled[start:stop] = images[start:stop, :, ::sh, ::sw]
        xp.matmul(kernel, sampled[start:stop].reshape(stop - start, channels, -1), out=out[start:stop])
        if b is not None:
            out[start:stop] += b[:, None]

    _split(xp, n, piece, _pointwise_work(n, channels, filters, ho * wo))
    ctx.sampled = sampled.reshape(n, channels, -1)
    return out


def _pointwise_work(n: int, channels: int, filters: int, positions: int) -> int:
    """``work`` for ``parallel.split``: the products' multiply-adds, at linalg's rate."""
    return n * channels * filters * positions // PRODUCT_TERMS_PER_ELEMENT


def _pointwise_backward(ctx, W, grads, geo, needs, use_bias: bool):
    """dx (zero but at the sampled positions, where it is W^T g), dW = sum over samples of g @
    sampled^T (partial sums per piece, added in piece order), db; W as (F, C)."""
    xp = array_module(grads)
    (sh, sw), (n, filters), images = geo.stride, grads.shape[:2], ctx.images
    channels = W.shape[1]
    flat = grads.reshape(n, filters, -1)
    work = _pointwise_work(n, channels, filters, flat.shape[2])
    pieces = len(parallel.split(n, work)) if xp is numpy else 1
    dW_parts = xp.empty((pieces, filters, channels), dtype=grads.dtype) if needs[1] else None
    dx = xp.empty(images.shape, dtype=grads.dtype) if needs[0] else None
    transposed = W.T

    def piece(index, start, stop):
        if dW_parts is not None:
            dW_parts[index] = xp.tensordot(flat[start:stop], ctx.sampled[start:stop], axes=([0, 2], [0, 2]))
        if dx is not None:
            dx[start:stop] = 0
            dx[start:stop, :, ::sh, ::sw] = xp.matmul(transposed, flat[start:stop]).reshape(
                stop - start, channels, *grads.shape[2:])

    _split(xp, n, piece, work)
    dW = None if dW_parts is None else dW_parts.sum(axis=0)
    db = flat.sum(axis=(0, 2)) if use_bias and needs[2] else None
    return dx, dW, db


def _offset_weights(W, groups: int, dtype):
    """W (F, C/G, kh, kw) as (G, kh*kw, F/G, C/G): each group's and offset's weights one contiguous matrix."""
    filters, per_group = W.shape[:2]
    return numpy.ascontiguousarray(W.reshape(groups, filters // groups, per_group, -1).transpose(0, 3, 1, 2),
                                   dtype=dtype)


def _correlate_by_offsets(ctx, images, W, b, geo, groups: int, out, work: int) -> None:
    """out (n, F, Ho, Wo) = the convolution of images (n, C, H, W) by W (F, C/G, kh, kw) plus b, one
    compiled kernel call (``_offsets``) per piece of the batch."""
    dtype = images.dtype
    weights = _offset_weights(W, groups, dtype)
    bias = numpy.empty(0, dtype=dtype) if b is None else numpy.ascontiguousarray(b, dtype=dtype)
    correlate = _offsets.kernels(dtype)[0]
    layout = _offsets.layout(geo, images.shape[1])

    def piece(index, start, stop):
        pieces = PieceWorkspace(ctx, index)
        flat = zero_bordered(pieces, "offsets_planes", (layout.size,), dtype, numpy)
        product = scratch(pieces, "product", (out.shape[1], layout.length), dtype, numpy)
        correlate(images[start:stop], weights, bias, out[start:stop], flat, product, *layout.arguments)

    parallel.run_pieces(images.shape[0], piece, work=work)


def _backward_by_offsets(ctx, images, W, grads, geo, groups: int, needs, use_bias: bool, work: int):
    """(dx, dW (F, C/G*kh*kw), db) of a convolution by products per kernel offset (``_offsets``): one
    compiled kernel call per piece takes both gradients; the pieces' weight and bias sums are added in
    piece order."""
    n, channels = images.shape[:2]
    filters, per_group = W.shape[:2]
    per_out, dtype = filters // groups, grads.dtype
    layout = _offsets.layout(geo, channels)
    pieces = len(parallel.split(n, work))
    weighted, biased = needs[1], use_bias and needs[2]
    totals = numpy.zeros((pieces, *((groups, len(layout.taps), per_out, per_group) if weighted else (0, 0, 0, 0))),
                         dtype=dtype)
    bias_totals = numpy.zeros((pieces, filters if biased and weighted else 0), dtype=dtype)
    dx = numpy.empty(images.shape if needs[0] else (0, *images.shape[1:]), dtype=dtype)
    weights = _offset_weights(W, groups, dtype)
    gradients = _offsets.kernels(dtype)[1]

    def piece(index, start, stop):
        work_arrays = PieceWorkspace(ctx, index)
        flat = zero_bordered(work_arrays, "offsets_planes", (layout.size,), dtype, numpy)
        planes = scratch(work_arrays, "offsets_gradient_planes", (layout.size if needs[0] else 0,), dtype, numpy)
        wide = zero_bordered(work_arrays, "offsets_wide", (filters, layout.length), dtype, numpy)
        gradients(images[start:stop], grads[start:stop], weights, totals[index], bias_totals[index],
                  dx[start:stop], flat, planes, wide, *layout.arguments)

    parallel.run_pieces(n, piece, work=work)
    dW = db = None
    if weighted:
        kh, kw = geo.kernel
        # (G, kh*kw, F/G, C/G) -> (F, C/G, kh, kw)
        dW = totals.sum(axis=0).reshape(groups, kh, kw, per_out, per_group).transpose(0, 3, 4, 1, 2)
        dW = dW.reshape(filters, per_group * kh * kw)
        if biased:
            db = bias_totals.sum(axis=0)
    if biased and db is None:
        db = grads.sum(axis=(0, 2, 3))
    return (dx if needs[0] else None), dW, db


# Samples per chunk are chosen so that a chunk's window columns fill about an L2 cache (float32, 1 MiB):
# the product then reads them from cache, and no step holds the whole batch's columns. (2 MiB ran
# no faster on one thread and kept twice the work arrays: LeNet-5 at batch 32 then held 2.1x
# PyTorch's step memory, 1.3x with these.)
CHUNK_VALUES = 1 << 18


def _chunks(xp, start: int, stop: int, values_per_sample: int):
    """(low, high) runs of samples of [start, stop) for one piece, of CHUNK_VALUES window values at
    most (one sample at least); the whole range on a GPU. (Pieces sharing CHUNK_VALUES between
    them, to keep the work arrays from growing with the thread count, ran 10-20% slower on two
    threads: twice the chunks, twice the interpreter work between the products under the GIL.)"""
    if xp is not numpy:
        return [(start, stop)]
    most = max(1, CHUNK_VALUES // max(values_per_sample, 1))
    count = -(-(stop - start) // most)  # as few chunks as fit, of even sizes (16 samples: 6+5+5, not 7+7+2)
    return [(start + (stop - start) * k // count, start + (stop - start) * (k + 1) // count) for k in range(count)]


# Window values (an im2col copy and its share of the product) per element of a simple ufunc in the
# pool's grain: a convolution splits across threads from 4 x 2 x grain (1M) window values on, as a
# hand-off costs 50-70 us on a 2-core virtual machine. (LeNet-5's first layer at batch 32, 717k
# values, ran its steps 6-7% faster unsplit; a small ResNet's and VGG's steps did not move.)
WINDOW_VALUES_PER_ELEMENT = 4


def _split_work(n: int, window_values: int) -> int:
    """``work`` for ``parallel.split`` of a convolution of ``n`` samples of ``window_values`` each."""
    return n * window_values // WINDOW_VALUES_PER_ELEMENT


# The same for the compiled products per offset (``_offsets``), which hold no GIL between the
# samples of a piece: a window value there is worth this many simple ufunc elements.
OFFSET_WINDOW_VALUES_PER_ELEMENT = 1


def _offsets_split_work(n: int, window_values: int) -> int:
    return n * window_values // OFFSET_WINDOW_VALUES_PER_ELEMENT


def _split(xp, n: int, piece, work: int) -> None:
    """The batch across the engine's threads on NumPy (``engine.parallel``); one piece on CuPy."""
    if xp is numpy:
        parallel.run_pieces(n, piece, work=work)
    else:
        piece(0, 0, n)


def _row_width(geo) -> int:
    """Values per output row in a chunk's columns and products: the padded width Wp for stride-1
    windows (each kernel offset is then one contiguous run of the flattened padded input, copied
    several times faster than Wo-long pieces; the Wp - Wo extra values of each row are dropped),
    else Wo. (Strided windows split into phase planes to get the same runs were slower: the extra
    copies cost more than the runs save.)"""
    return geo.padded[1] if geo.stride == (1, 1) else geo.out[1]


def _columns(work, images, geo, groups: int, name: str, padded_name: str):
    """im2col of some samples into the piece's work arrays, as (G, C/G*kh*kw, n*Ho*R), R = _row_width."""
    xp = array_module(images)
    count, channels = images.shape[:2]
    if geo.stride == (1, 1):
        padded = zero_bordered(work, padded_name, _windows.row_padded_shape(geo, count, channels), images.dtype, xp)
        (top, _), (left, _) = geo.pads
        padded[:, :, top:top + images.shape[2], left:left + images.shape[3]] = images
        view = _windows.flat_windows(padded, geo)
        cols = scratch(work, name, view.shape, images.dtype, xp)
        cols[...] = view
        return cols.reshape(groups, -1, count * geo.out[0] * geo.padded[1])
    cols = scratch(work, name, (channels, *geo.kernel, count, *geo.out), images.dtype, xp)
    padded = None
    if geo.padded != geo.size:
        padded = zero_bordered(work, padded_name, (count, channels, *geo.padded), images.dtype, xp)
    _windows.im2col(images, geo, out=cols, padded=padded)
    return cols.reshape(groups, -1, count * geo.out[0] * geo.out[1])


# Output rows per block of the product: W @ columns runs 20-40% faster (OpenBLAS, AVX-512, one
# thread) as a batch of products of about this many columns each than as one wide product.
BLOCK_COLUMNS = 96


def _blocked_product(work, name: str, kernel, cols, count: int, height: int, row: int, width: int, out, bias=None):
    """out (n, F, H, W) = kernel (G, F/G, K) @ cols (G, K, n*H*R), cut at R = ``row`` values a row down
    to W, plus ``bias`` (F, 1, 1, 1); the product taken in blocks of whole output rows of one sample."""
    xp = array_module(cols)
    groups, per_group = kernel.shape[:2]
    rows = _block_rows(xp, height, row)
    blocks = count * height // rows
    blocked = cols.reshape(groups, -1, blocks, rows * row).transpose(2, 0, 1, 3)  # (B, G, K, rows*R)
    product = scratch(work, name, (blocks, groups, per_group, rows * row), cols.dtype, xp)
    xp.matmul(kernel, blocked, out=product)
    # (n, H/rows, F, rows, R) -> (n, F, H/rows, rows, W)
    product = product.reshape(count, height // rows, groups * per_group, rows, row)[..., :width]
    product = product.transpose(0, 2, 1, 3, 4)
    target = out.reshape(count, groups * per_group, height // rows, rows, width)
    if bias is not None:
        xp.add(product, bias, out=target)
    else:
        target[...] = product


def _block_rows(xp, height: int, row: int) -> int:
    """The divisor of ``height`` whose rows of ``row`` values come nearest BLOCK_COLUMNS (whole
    samples on a GPU, where one wide product is best)."""
    return height if xp is not numpy else _nearest_block_rows(height, row)


@functools.cache
def _nearest_block_rows(height: int, row: int) -> int:
    # Cached: a convolution asks once per chunk, and the search took 1% of a small ResNet's step.
    divisors = [d for d in range(1, height + 1) if height % d == 0]
    return min(divisors, key=lambda d: abs(math.log(d * row / BLOCK_COLUMNS)))


# The weight gradient of a stride-1 convolution as one product per kernel offset (``_weight_product_by_offsets``)
# from C/G >= 4 input and up to F/G <= 32 output channels per group: there the im2col copy costs as much as
# the product it feeds (a copy per window value against 2 F multiply-adds). Per sample on one thread
# (OpenBLAS, AVX-512): 16 -> 16 channels at 32x32, 62-78 us against 92-188 us; 32 -> 32 at 16x16, 53-63
# against 68-82; 8 -> 16 at 32x32, 25 against 45; 6 -> 16 at 14x14 with 5x5 kernels, 10 against 13. With
# 64 filters the nine narrow products ran 14-26% slower than one wide product, with 3 channels 22% slower.
OFFSET_MIN_CHANNELS = 4
OFFSET_MAX_FILTERS = 32


def _weight_grad_by_offsets(xp, geo, groups: int, channels: int, filters: int) -> bool:
    """Whether ``_weight_product_by_offsets`` takes the weight gradient (NumPy, stride 1, see above)."""
    return (xp is numpy and geo.stride == (1, 1) and channels // groups >= OFFSET_MIN_CHANNELS
            and filters // groups <= OFFSET_MAX_FILTERS)


def _weight_product_by_offsets(work, images, wide, geo, groups: int, total) -> None:
    """total (kh, kw, G, F/G, C/G) += the weight gradient of some samples of a stride-1 convolution, without
    im2col columns: for each kernel offset (i, j), sum over samples of g (G, F/G, Ho*Wp) @ x^T, where x
    (C/G, Ho*Wp) is the row-padded input planes read from flat offset i*dh*Wp + j*dw (the same values as
    ``_windows.flat_windows``, as a strided view). ``wide`` is the gradient (F, n, Ho, Wp), zero past Wo, so
    the values the view reads past each row's Wo add nothing. One product call for all the samples and
    offsets; the samples' products are added in sample order."""
    count, channels = images.shape[:2]
    padded = zero_bordered(work, "padded", _windows.row_padded_shape(geo, count, channels), images.dtype, numpy)
    (top, _), (left, _) = geo.pads
    padded[:, :, top:top + images.shape[2], left:left + images.shape[3]] = images
    rows, width = padded.shape[2:]
    (kh, kw), (dh, dw), item = geo.kernel, geo.dilation, padded.itemsize
    length, plane, per_group = geo.out[0] * width, rows * width, channels // groups
    # (n, kh, kw, G, Ho*Wp, C/G): [s, i, j, g, t, c] = flat value t + i*dh*Wp + j*dw of plane (s, g*C/G + c)
    shifted = _windows.strided_view(padded, (count, kh, kw, groups, length, per_group),
                                    (channels * plane, dh * width, dw, per_group * plane, 1, plane), item)
    filters = wide.shape[0]
    grads = wide.reshape(filters, count, length).transpose(1, 0, 2).reshape(count, 1, 1, groups, -1, length)
    product = scratch(work, "dW", (count, kh, kw, groups, filters // groups, per_group), wide.dtype, numpy)
    numpy.matmul(grads, shifted, out=product)
    for sample in product:
        total += sample


def _scatter_windows(work, kernel, grad, geo, channels: int, count: int):
    """dx of some samples by col2im of W^T @ grad (F, n, Ho, Wo) (strided or over-padded convolutions)."""
    xp = array_module(grad)
    groups, filters = kernel.shape[0], kernel.shape[0] * kernel.shape[1]
    (ho, wo), row = geo.out, geo.padded[1] if geo.flat_rows else geo.out[1]
    if row > wo:  # col2im's flat rows: Wp gradient values per output row, zero past Wo
        wide = zero_bordered(work, "wide_grad", (filters, count, ho, row), grad.dtype, xp)
        wide[..., :wo] = grad
        grad = wide.reshape(groups, filters // groups, -1)
    else:
        grad = xp.ascontiguousarray(grad).reshape(groups, filters // groups, -1)
    dcols = scratch(work, "cols", (groups, kernel.shape[-1], grad.shape[-1]), grad.dtype, xp)
    xp.matmul(kernel.swapaxes(-1, -2), grad, out=dcols)  # (G, C/G*kh*kw, n*Ho*R)
    return _windows.col2im(dcols.reshape(channels, *geo.kernel, count, ho, row), geo)


@register
class Conv2d(Convolution):
    name = "conv2d"
    rank = 2
    inputs = (Port("x", doc="images (N, C, H, W)", rank=(4, 4)),)
    doc = ("2-D convolution of (N, C, H, W) by W (filters, C/groups, kh, kw): out[n, f] = b[f] + "
           "sum_c W[f, c] * x[n, c] over each strided, dilated window; gives (N, filters, H', W').")


@register
class Conv1d(Convolution):
    name = "conv1d"
    rank = 1
    inputs = (Port("x", doc="sequences, channels first: (N, C, L)", rank=(3, 3)),)
    doc = ("1-D convolution of (N, C, L) by W (filters, C/groups, k): out[n, f, t] = b[f] + "
           "sum_{c, i} W[f, c, i] * x[n, c, t*stride + i*dilation]; gives (N, filters, L').")
