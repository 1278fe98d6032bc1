"""Array backends. This is the only module that imports CuPy, and only when asked for.

Ops never call ``np.`` on data: they ask ``array_module(x)`` for the module of their arrays
(Chainer's ``get_array_module``), so the same code runs on NumPy and on CuPy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
import types

import numpy

from engine.errors import BackendError

DEVICES = ("cpu", "gpu")
_cupy = None  # set once CuPy has been imported successfully


def _import_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy  # noqa: PLC0415 - optional: only a GPU machine has it
            cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # ImportError, or CUDA present but no usable device
            raise BackendError(
                "device 'gpu' needs CuPy and a CUDA GPU, but they are not usable here "
                f"({type(error).__name__}: {error}). Install 'cupy-cuda12x' on a machine with an "
                "NVIDIA GPU, or use device='cpu'."
            ) from error
        _cupy = cupy
    return _cupy


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        _import_cupy()
    except BackendError:
        return False
    return True


def get_xp(device: str = "cpu") -> types.ModuleType:
    """The array module for a device name: NumPy for 'cpu', CuPy for 'gpu'."""
    if device == "cpu":
        return numpy
    if device == "gpu":
        return _import_cupy()
    raise BackendError(f"unknown device '{device}': expected one of {', '.join(DEVICES)}")


def array_module(*arrays) -> types.ModuleType:
    """The array module (numpy or cupy) that owns these arrays."""
    if _cupy is not None:
        for array in arrays:
            if isinstance(array, _cupy.ndarray):
                return _cupy
    return numpy


def to_numpy(array):
    """A NumPy copy (or the array itself) of a NumPy or CuPy array."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return numpy.asarray(array)


@functools.cache
def special(xp: types.ModuleType) -> types.ModuleType:
    """``scipy.special`` for NumPy, ``cupyx.scipy.special`` for CuPy (erf and friends)."""
    if xp is numpy:
        import scipy.special  # noqa: PLC0415 - loads on first use

        return scipy.special
    import cupyx.scipy.special  # noqa: PLC0415

    return cupyx.scipy.special


@functools.cache
def retain_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse instead of giving it back to the kernel.

    A training step frees its activations and gradients and allocates the same sizes again at the
    next one; by default glibc returns arrays of a few MiB to the kernel on free (mmap and heap
    trimming), and each step then page-faults them back in, zeroed, at a cost of several percent of
    a convolutional step. With the thresholds raised the memory stays in the process, so the
    resident size stays at the training peak rather than below it. Applied once per process, on
    Linux with glibc only; returns whether it was applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    m_trim_threshold, m_mmap_threshold, limit = -1, -3, 1 << 30
    return bool(mallopt(m_mmap_threshold, limit)) and bool(mallopt(m_trim_threshold, limit))
