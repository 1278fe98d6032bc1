"""Stride-1 convolutions on the CPU as one matrix product per kernel offset, without im2col columns.

A sample's input planes, copied once into a zero-bordered row-padded work array (``_windows.
row_padded_shape``), hold every window value: for kernel offset (i, j), the values that offset meets
are the flat run starting at i*dh*Wp + j*dw of each plane, Ho*Wp long (the Wp - Wo values past each
row's end are dropped from the output, or meet zeros of the gradient). So

- the forward pass (and the input's gradient, the same correlation of the padded output gradient
  with the flipped kernel) is out (F, Ho*Wp) = sum over offsets of W_ij (F, C) @ run_ij (C, Ho*Wp),
  products that BLAS adds into one output (GEMM's beta = 1);
- the weight gradient is dW_ij (F, C) += g (F, Ho*Wp) @ run_ij^T, for every sample.

A piece of the batch (``engine.parallel``) is one call of a compiled kernel that copies, multiplies
and writes back sample after sample without the GIL: the im2col path makes a dozen short NumPy calls
per sample, for which two threads queue. The products go through SciPy's BLAS (``scipy.linalg.
cython_blas``), which the engine's thread setting holds to one thread inside a piece like NumPy's.

Per sample on one thread (OpenBLAS, AVX-512), against im2col and one product in blocks: 16 -> 16
channels at 32x32, 51-53 us against 61-64; 32 -> 32 at 16x16, 51 against 69-72; 16 -> 32 at 32x32
106-119 against 104-134; 64 -> 64 at 16x16, 255-298 against 241 (the narrow products lose once
both sides pass 32 channels); 3 -> 16, 15 against 13 (too few channels for a product each).
"""

from __future__ import annotations

import ctypes
import functools

import numpy

from engine.ops import _numba

# Channels per group of the reduction (C/G forward, F/G for the input's gradient) from which, and of
# the output (F/G forward, C/G for the input's gradient) up to which, products per offset win.
MIN_REDUCED = 8
MAX_PRODUCED = 32
# The weight gradient by offsets wins from fewer channels: its products reduce over Ho*Wp values (from 3,
# an RGB stem: 0-4% off the small ResNet's and VGG's steps against im2col on 2 threads, 0-2% on 1).
MIN_WEIGHT_CHANNELS = 3


def usable(xp, geo, dtype) -> bool:
    """Whether the kernels here can take a convolution of this geometry and dtype at all."""
    return (_numba.available(xp) and geo.stride == (1, 1) and numpy.dtype(dtype) in (numpy.float32, numpy.float64)
            and (geo.padded[0] + 1) * geo.padded[1] < 2**31 and _gemm_available())  # BLAS's 32-bit sizes


def wins(reduced: int, produced: int) -> bool:
    """Whether products per offset beat im2col for a correlation reducing ``reduced`` channels per
    group into ``produced`` (the measurements above)."""
    return reduced >= MIN_REDUCED and produced <= MAX_PRODUCED


@functools.cache
def _gemm_available() -> bool:
    try:
        _gemm("s")
    except (ImportError, ValueError, AttributeError):  # no SciPy BLAS to call: im2col instead
        return False
    return True


@functools.cache
def _gemm(kind: str):
    """SciPy's Fortran ``sgemm`` or ``dgemm`` as a ctypes function (every argument a pointer)."""
    import scipy.linalg.cython_blas  # noqa: F401, PLC0415 - loads SciPy's BLAS before its address is read
    from numba.extending import get_cython_function_address  # noqa: PLC0415

    from engine import parallel  # noqa: PLC0415 - engine.parallel does not import the ops

    parallel.find_blas_libraries()  # the thread setting then holds SciPy's BLAS too
    address = get_cython_function_address("scipy.linalg.cython_blas", f"{kind}gemm")
    return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)(address)


@functools.cache
def kernels(dtype) -> tuple:
    """(correlate, weight_gradient) compiled for ``dtype`` (float32 or float64), once per process."""
    numba = _numba._numba()
    gemm = _gemm("s" if numpy.dtype(dtype) == numpy.float32 else "d")
    scalar = numpy.dtype(dtype).type
    # Not cached on disk: the BLAS function's address differs from process to process.
    compile_ = functools.partial(numba.njit, nogil=True, error_model="numpy")

    @compile_
    def place(planes, padded, top, left):
        """One sample's planes (C, H, W) into the inside of the zero-bordered padded planes."""
        channels, height, width = planes.shape
        for c in range(channels):
            for y in range(height):
                for x in range(width):
                    padded[c, top + y, left + x] = planes[c, y, x]

    def correlate(source, weights, bias, out, padded, product, offsets, top, left):
        """out[s] (F, Ho, Wo) = bias + sum over offsets k of weights[g, k] (F/G, C/G) @ the run of
        source[s] (C, H, W) padded (at ``top``, ``left``) from flat offset offsets[k], per group g."""
        count, channels = source.shape[:2]
        filters, out_height, out_width = out.shape[1:]
        rows, padded_width = padded.shape[1:]
        groups, taps, per_group_out, per_group_in = weights.shape
        plane, length = rows * padded_width, out_height * padded_width
        flat, products = padded.reshape(channels * plane), product.reshape(filters * length)
        sizes = numpy.array([length, per_group_out, per_group_in, plane, per_group_in, length], dtype=numpy.int32)
        factors = numpy.array([1.0, 0.0, 1.0], dtype=scalar)
        no_transpose = numpy.array([78], dtype=numpy.uint8)  # 'N'
        for s in range(count):
            place(source[s], padded, top, left)
            for g in range(groups):
                for k in range(taps):
                    gemm(no_transpose.ctypes.data, no_transpose.ctypes.data, sizes[0:].ctypes.data,
                         sizes[1:].ctypes.data, sizes[2:].ctypes.data, factors[0:].ctypes.data,
                         flat[g * per_group_in * plane + offsets[k]:].ctypes.data, sizes[3:].ctypes.data,
                         weights[g, k].ctypes.data, sizes[4:].ctypes.data, factors[1 if k == 0 else 2:].ctypes.data,
                         products[g * per_group_out * length:].ctypes.data, sizes[5:].ctypes.data)
            for f in range(filters):
                shift = bias[f] if bias.shape[0] else scalar(0.0)
                for y in range(out_height):
                    for x in range(out_width):
                        out[s, f, y, x] = product[f, y * padded_width + x] + shift

    def weight_gradient(images, grads, total, bias_total, padded, wide, offsets, top, left):
        """total[g, k] (F/G, C/G) += sum over samples of grads[s] (F/G, Ho*Wp, zero past Wo) @ the run
        of images[s] padded from offsets[k], transposed; bias_total (F,) += the gradient's sums."""
        count, channels = images.shape[:2]
        filters, out_height, out_width = grads.shape[1:]
        rows, padded_width = padded.shape[1:]
        groups, taps, per_group_out, per_group_in = total.shape
        plane, length = rows * padded_width, out_height * padded_width
        flat, grad = padded.reshape(channels * plane), wide.reshape(filters * length)
        sizes = numpy.array([per_group_in, per_group_out, length, plane, length, per_group_in], dtype=numpy.int32)
        factors = numpy.array([1.0], dtype=scalar)
        codes = numpy.array([84, 78], dtype=numpy.uint8)  # 'T', 'N'
        for s in range(count):
            place(images[s], padded, top, left)
            for f in range(filters):
                for y in range(out_height):
                    for x in range(out_width):
                        wide[f, y * padded_width + x] = grads[s, f, y, x]
                if bias_total.shape[0]:
                    bias_total[f] += grads[s, f].sum()
            for g in range(groups):
                for k in range(taps):
                    gemm(codes[0:].ctypes.data, codes[1:].ctypes.data, sizes[0:].ctypes.data, sizes[1:].ctypes.data,
                         sizes[2:].ctypes.data, factors.ctypes.data,
                         flat[g * per_group_in * plane + offsets[k]:].ctypes.data, sizes[3:].ctypes.data,
                         grad[g * per_group_out * length:].ctypes.data, sizes[4:].ctypes.data,
                         factors.ctypes.data, total[g, k].ctypes.data, sizes[5:].ctypes.data)

    return compile_(correlate), compile_(weight_gradient)


def offsets(geo) -> numpy.ndarray:
    """Each kernel offset's first flat index in a row-padded plane of ``geo``."""
    width = geo.padded[1]
    return numpy.array([row * width + column for row, column in geo.offsets], dtype=numpy.int64)
