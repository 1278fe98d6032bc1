"""Array backends. This is the only module that imports CuPy, and only when asked for.

Ops never call ``np.`` on data: they ask ``array_module(x)`` for the module of their arrays
(Chainer's ``get_array_module``), so the same code runs on NumPy and on CuPy.
"""

from __future__ import annotations

import functools
import types

import numpy

from engine.errors import BackendError

DEVICES = ("cpu", "gpu")
_cupy = None  # set once CuPy has been imported successfully


def _import_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy  # noqa: PLC0415 - imported lazily on purpose
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
        import scipy.special  # noqa: PLC0415

        return scipy.special
    import cupyx.scipy.special  # noqa: PLC0415

    return cupyx.scipy.special
