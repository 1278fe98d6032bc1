"""The BLAS matrix product (Fortran ``sgemm``/``dgemm``) that compiled kernels call without the GIL.

NumPy's own OpenBLAS is preferred where its wheel brings one (``scipy-openblas64``: 64-bit sizes,
symbols ``scipy_sgemm_64_``): it is the library NumPy's matmul runs on, a newer build than SciPy's,
and its products of a few rows ran faster on one thread (AVX-512): 16 x 512 @ 512 x 128 in 27.6 us
against 38.4 with SciPy's, 32 x 157 @ 157 x 512 in 64 against 71, the same for the convolutions'
products per offset (5.1-5.9 us either way). Else SciPy's BLAS (``scipy.linalg.cython_blas``,
32-bit sizes), which every SciPy install has. Both are held to the engine's thread setting
(``engine.parallel.find_blas_libraries``): one thread inside a piece of the batch.

Every argument of the Fortran interface is a pointer: kernels keep sizes in an array of
``Product.index`` and pass addresses into it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools

import numpy

_SIGNATURE = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)


@dataclasses.dataclass(frozen=True)
class Product:
    """A GEMM to call from numba: ``function`` (ctypes, 13 pointers) and the integer type of its sizes."""

    function: object
    index: type
    library: str


def _numpy_openblas(kind: str) -> Product | None:
    """NumPy's bundled ILP64 OpenBLAS, looked up through the extension module that links it."""
    from numpy._core import _multiarray_umath  # noqa: PLC0415

    try:
        handle = ctypes.CDLL(_multiarray_umath.__file__)
        function = getattr(handle, f"scipy_{kind}gemm_64_")
    except (OSError, AttributeError):  # another BLAS (MKL, a system library): sizes unknown, not used
        return None
    address = ctypes.cast(function, ctypes.c_void_p).value
    return Product(_SIGNATURE(address), numpy.int64, "numpy scipy-openblas64")


def _scipy_blas(kind: str) -> Product:
    import scipy.linalg.cython_blas  # noqa: F401, PLC0415 - loads SciPy's BLAS before its address is read
    from numba.extending import get_cython_function_address  # noqa: PLC0415

    address = get_cython_function_address("scipy.linalg.cython_blas", f"{kind}gemm")
    return Product(_SIGNATURE(address), numpy.int32, "scipy cython_blas")


@functools.cache
def gemm(dtype) -> Product | None:
    """The product for float32 (``sgemm``) or float64 (``dgemm``) data, or None where there is no BLAS
    to call (no SciPy and no NumPy OpenBLAS: the callers keep their NumPy forms)."""
    from engine import parallel  # noqa: PLC0415 - engine.parallel does not import the ops

    kind = "s" if numpy.dtype(dtype) == numpy.float32 else "d"
    product = _numpy_openblas(kind)
    if product is None:
        try:
            product = _scipy_blas(kind)
        except (ImportError, ValueError, AttributeError):
            return None
    parallel.find_blas_libraries()  # the thread setting then holds a library loaded just now too
    return product
