"""Convolutions on the CPU as one matrix product per kernel offset, without im2col columns.

A sample's input planes, copied once into a zero-bordered work array, hold every window value. With
stride 1 the array is the row-padded planes (Hp + 1 rows of Wp): kernel offset (i, j) meets the flat
run starting at i*dh*Wp + j*dw of each plane, Ho*Wp long (the Wp - Wo values past each row's end
are dropped from the output, or meet zeros of the gradient). With stride (sh, sw) the padded input
is split into its sh*sw phase planes, [a, b] holding padded[y*sh + a, x*sw + b]: offset (i, j) then
meets a stride-1 run of phase ((i*dh) % sh, (j*dw) % sw) from row (i*dh) // sh, column (j*dw) // sw.
So, each offset's run being an (C, Ho*Wq) matrix with a fixed distance between its rows:

- the forward pass is out (F, Ho*Wq) = sum over offsets of W_ij (F, C) @ run_ij, products that BLAS
  adds into one output (GEMM's beta = 1);
- the weight gradient is dW_ij (F, C) += g (F, Ho*Wq) @ run_ij^T, for every sample;
- the input's gradient adds W_ij^T @ g (C, Ho*Wq) into each offset's run of zeroed work planes, one
  product after another (where runs overlap, the adds follow each other), and reads the sample's
  positions back out of them: col2im without its columns.

A piece of the batch (``engine.parallel``) is one call of a compiled kernel that copies, multiplies
and writes back sample after sample without the GIL: the im2col path makes a dozen short NumPy calls
per sample, for which two threads queue. The products call BLAS directly (``_blas``: NumPy's
OpenBLAS, else SciPy's), which the engine's thread setting holds to one thread inside a piece.

Per sample on one thread (OpenBLAS, AVX-512), forward, against im2col and one product in blocks:
16 -> 16 channels at 32x32, 51-53 us against 61-64; 32 -> 32 at 16x16, 51 against 69-72; 16 -> 32
at 32x32 106-119 against 104-134; 64 -> 64 at 16x16, 255-298 against 241 (the narrow products lose
once both sides pass 32 channels); 3 -> 16, 15 against 13 (too few channels for a product each).
Several samples in one product per offset (the samples' planes one after another) ran 1.6-2x
slower than a product per sample.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy

from engine.ops import _blas, _numba

# Channels per group of the reduction (C/G forward, F/G for the input's gradient) from which, and of
# the output (F/G forward, C/G for the input's gradient) up to which, products per offset win. From 3
# (an RGB stem), though its forward pass alone ran 15% slower per sample on one thread: in the model,
# where the kernel splits across threads without the GIL, steps ran 1-3% faster on 2 threads (the small
# ResNet, VGG, LeNet-5 at batch 32) and the same on 1.
MIN_REDUCED = 3
MAX_PRODUCED = 32
# The weight gradient by offsets wins from fewer channels: its products reduce over Ho*Wp values (from 3,
# an RGB stem: 0-4% off the small ResNet's and VGG's steps against im2col on 2 threads, 0-2% on 1).
MIN_WEIGHT_CHANNELS = 3


def usable(xp, geo, dtype, channels: int) -> bool:
    """Whether the kernels here can take a convolution of this geometry and dtype at all."""
    if not (_numba.available(xp) and numpy.dtype(dtype) in (numpy.float32, numpy.float64)):
        return False
    planes = layout(geo, channels)
    # A phase no offset reads (a kernel smaller than its stride: a 1x1 stride-2 projection) would be copied
    # and zeroed for nothing: such a shortcut ran 5% slower steps of the small ResNet this way than by im2col.
    # (A plane's offsets must fit BLAS's sizes, which may be 32-bit.)
    return planes.every_phase_read and planes.plane < 2**31 and _blas.gemm(dtype) is not None


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """A sample's padded planes in the kernels' work array: ``phases`` (sh*sw) blocks of C planes of
    ``rows`` x ``width`` values each (``plane``), and each kernel offset's run: its first index
    (``taps``, int64, read-only: phase and channel 0 included) and its length (Ho * width)."""

    stride: tuple[int, int]
    top: int
    left: int
    rows: int
    width: int
    taps: numpy.ndarray
    length: int
    channels: int
    every_phase_read: bool

    @property
    def plane(self) -> int:
        return self.rows * self.width

    @property
    def size(self) -> int:
        return self.stride[0] * self.stride[1] * self.channels * self.plane

    @property
    def arguments(self) -> tuple:
        """What the kernels take after their arrays: taps, top, left, stride_h, stride_w, plane, width."""
        return (self.taps, self.top, self.left, *self.stride, self.plane, self.width)


@functools.lru_cache(maxsize=256)
def layout(geo, channels: int) -> Layout:
    """The work array's layout for a convolution of ``geo`` over ``channels`` input channels."""
    (sh, sw), (dh, dw), (kh, kw) = geo.stride, geo.dilation, geo.kernel
    (hp, wp), (ho, _) = geo.padded, geo.out
    width, height = -(-wp // sw), -(-hp // sh)
    places = [((i * dh) % sh * sw + (j * dw) % sw, (i * dh) // sh, (j * dw) // sw)  # (phase, row, column)
              for i in range(kh) for j in range(kw)]
    # Room for every run within its plane: a run reaches row + Ho rows down, one more from a column past 0.
    rows = max(height, *(row + ho + (column > 0) for _, row, column in places))
    taps = numpy.array([phase * channels * rows * width + row * width + column for phase, row, column in places],
                       dtype=numpy.int64)
    taps.flags.writeable = False  # shared: the layout is cached
    every_phase_read = len({phase for phase, _, _ in places}) == sh * sw
    return Layout(geo.stride, geo.pads[0][0], geo.pads[1][0], rows, width, taps, ho * width, channels,
                  every_phase_read)


def wins(reduced: int, produced: int) -> bool:
    """Whether products per offset beat im2col for a correlation reducing ``reduced`` channels per
    group into ``produced`` (the measurements above)."""
    return reduced >= MIN_REDUCED and produced <= MAX_PRODUCED


@functools.cache
def kernels(dtype) -> tuple:
    """(correlate, gradients) compiled for ``dtype`` (float32 or float64), once per process."""
    import numba  # noqa: PLC0415 - present: usable() asked _numba.available first
    product = _blas.gemm(dtype)
    gemm, index = product.function, product.index
    scalar = numpy.dtype(dtype).type
    # Not cached on disk: the BLAS function's address differs from process to process.
    compile_ = functools.partial(numba.njit, nogil=True, error_model="numpy")

    @compile_
    def run(c, y, phase, top, left, stride_h, stride_w, plane, width, channels, width_in):
        """Where row y of input plane c goes among the phase planes, for the columns of one column phase:
        (first flat index, first column, count); column x0 + t*sw lies at first + t. Position (y + top,
        x + left) of the padded input is phase ((y + top) % sh, (x + left) % sw), row (y + top) // sh,
        column (x + left) // sw."""
        row = y + top
        x0 = (phase - left) % stride_w
        first = (((row % stride_h) * stride_w + phase) * channels + c) * plane + (row // stride_h) * width
        return first + (x0 + left) // stride_w, x0, (width_in - x0 + stride_w - 1) // stride_w

    @compile_
    def place(planes, flat, top, left, stride_h, stride_w, plane, width):
        """One sample's planes (C, H, W) into the inside of the zero-bordered phase planes (``flat``).
        ``planes`` is only read (it may be read-only)."""
        channels, height, width_in = planes.shape
        for c in range(channels):
            for y in range(height):
                for phase in range(stride_w):
                    start, x0, count = run(c, y, phase, top, left, stride_h, stride_w, plane, width, channels,
                                           width_in)
                    if stride_w == 1:  # a contiguous row: a copy that vectorizes
                        flat[start:start + count] = planes[c, y, :]
                    else:
                        for t in range(count):
                            flat[start + t] = planes[c, y, x0 + t * stride_w]

    @compile_
    def gather(flat, planes, top, left, stride_h, stride_w, plane, width):
        """``place`` the other way: the sample's positions of the phase planes back into planes (C, H, W)."""
        channels, height, width_in = planes.shape
        for c in range(channels):
            for y in range(height):
                for phase in range(stride_w):
                    start, x0, count = run(c, y, phase, top, left, stride_h, stride_w, plane, width, channels,
                                           width_in)
                    if stride_w == 1:
                        planes[c, y, :] = flat[start:start + count]
                    else:
                        for t in range(count):
                            planes[c, y, x0 + t * stride_w] = flat[start + t]

    def correlate(source, weights, bias, out, flat, product, taps, top, left, stride_h, stride_w, plane, width):
        """out[s] (F, Ho, Wo) = bias + sum over offsets k of weights[g, k] (F/G, C/G) @ offset k's run of
        source[s] (C, H, W) in the work planes, per group g."""
        count, channels = source.shape[:2]
        filters, out_height, out_width = out.shape[1:]
        groups, offsets, per_group_out, per_group_in = weights.shape
        length = out_height * width
        products = product.reshape(filters * length)
        sizes = numpy.array([length, per_group_out, per_group_in, plane, per_group_in, length], dtype=index)
        factors = numpy.array([1.0, 0.0, 1.0], dtype=scalar)
        no_transpose = numpy.array([78], dtype=numpy.uint8)  # 'N'
        for s in range(count):
            place(source[s], flat, top, left, stride_h, stride_w, plane, width)
            for g in range(groups):
                for k in range(offsets):
                    gemm(no_transpose.ctypes.data, no_transpose.ctypes.data, sizes[0:].ctypes.data,
                         sizes[1:].ctypes.data, sizes[2:].ctypes.data, factors[0:].ctypes.data,
                         flat[g * per_group_in * plane + taps[k]:].ctypes.data, sizes[3:].ctypes.data,
                         weights[g, k].ctypes.data, sizes[4:].ctypes.data, factors[1 if k == 0 else 2:].ctypes.data,
                         products[g * per_group_out * length:].ctypes.data, sizes[5:].ctypes.data)
            for f in range(filters):
                shift = bias[f] if bias.shape[0] else scalar(0.0)
                for y in range(out_height):
                    for x in range(out_width):
                        out[s, f, y, x] = product[f, y * width + x] + shift

    @compile_
    def widen(grads, wide, width):
        """A sample's gradient (F, Ho, Wo) into rows of ``width`` (zero past Wo: never written there)."""
        filters, out_height, out_width = grads.shape
        for f in range(filters):
            for y in range(out_height):
                for x in range(out_width):
                    wide[f, y * width + x] = grads[f, y, x]

    def gradients(images, grads, weights, total, bias_total, dx, flat, gradient_planes, wide, taps, top, left,
                  stride_h, stride_w, plane, width):
        """Both gradients of some samples in one pass over them. Weights (when ``total`` is not empty):
        total[g, k] (F/G, C/G) += grads[s] (F/G, Ho*Wq, zero past Wo) @ offset k's run of images[s],
        transposed, and bias_total (F,) += the gradient's sums (when not empty). Input (when ``dx`` is
        not empty): weights[g, k]^T (C/G, F/G) @ grads[s] added into offset k's run of the zeroed
        ``gradient_planes``, and the sample's positions read back out into dx[s]."""
        count = grads.shape[0]
        filters, out_height = grads.shape[1:3]
        groups, offsets, per_group_out, per_group_in = weights.shape
        length = out_height * width
        grad = wide.reshape(filters * length)
        weight_sizes = numpy.array([per_group_in, per_group_out, length, plane, length, per_group_in],
                                   dtype=index)
        input_sizes = numpy.array([length, per_group_in, per_group_out, length, per_group_in, plane],
                                  dtype=index)
        one = numpy.array([1.0], dtype=scalar)
        codes = numpy.array([84, 78, 84], dtype=numpy.uint8)  # 'T', 'N', 'T'
        for s in range(count):
            widen(grads[s], wide, width)
            if bias_total.shape[0]:
                for f in range(filters):
                    bias_total[f] += grads[s, f].sum()
            if total.shape[0]:
                place(images[s], flat, top, left, stride_h, stride_w, plane, width)
                for g in range(groups):
                    for k in range(offsets):
                        gemm(codes[0:].ctypes.data, codes[1:].ctypes.data, weight_sizes[0:].ctypes.data,
                             weight_sizes[1:].ctypes.data, weight_sizes[2:].ctypes.data, one.ctypes.data,
                             flat[g * per_group_in * plane + taps[k]:].ctypes.data, weight_sizes[3:].ctypes.data,
                             grad[g * per_group_out * length:].ctypes.data, weight_sizes[4:].ctypes.data,
                             one.ctypes.data, total[g, k].ctypes.data, weight_sizes[5:].ctypes.data)
            if dx.shape[0]:
                gradient_planes[:] = 0.0
                for g in range(groups):
                    for k in range(offsets):
                        gemm(codes[1:].ctypes.data, codes[2:].ctypes.data, input_sizes[0:].ctypes.data,
                             input_sizes[1:].ctypes.data, input_sizes[2:].ctypes.data, one.ctypes.data,
                             grad[g * per_group_out * length:].ctypes.data, input_sizes[3:].ctypes.data,
                             weights[g, k].ctypes.data, input_sizes[4:].ctypes.data, one.ctypes.data,
                             gradient_planes[g * per_group_in * plane + taps[k]:].ctypes.data,
                             input_sizes[5:].ctypes.data)
                gather(gradient_planes, dx[s], top, left, stride_h, stride_w, plane, width)

    return compile_(correlate), compile_(gradients)
