"""Compiled CPU kernels (numba) for ops whose NumPy form takes several passes over memory and many
short calls: one kernel call per piece of the batch does the whole chain in one or two passes, and
lets go of the GIL for all of it, so that the engine's threads (``engine.parallel``) run their
pieces at once instead of queueing for the GIL between short NumPy calls.

Kernels are compiled on first use (a process that never runs such an op on the CPU never loads
LLVM) and cached on disk where the package directory is writable. Every op keeps its NumPy form,
which CuPy arrays take, and which runs when numba is missing or ``ENABLED`` is off (the tests run
both and compare them).

``fastmath`` allows reassociation and contraction only (so that sums vectorize): results then
depend on the compiled code and the data alone, the same run to run, and NaN and Inf still
propagate as IEEE arithmetic says (the layer statistics find NaN sources by them). Division
follows NumPy's error model (x / 0 is Inf or NaN, no exception), which lets loops vectorize.
Scalars that take part in element-wise arithmetic are passed as arrays of the data's dtype, so
that float32 data is computed in float32 (a Python float would promote every element to float64).
"""

from __future__ import annotations

import functools

import numpy

ENABLED = True  # tests switch it off to check the NumPy path against the kernels
FASTMATH = {"reassoc", "contract"}

# A piece of the batch must hold this many elements (at the default grain) to be worth a hand-off
# to another thread: the kernels take a quarter to one nanosecond an element, against tens of
# microseconds for a hand-off. At 2^19 a small ResNet's batch norm and ReLUs at batch 32 (2^19
# values) ran on one thread while the other idled; at 2^18 its steps ran 10% faster (VGG 4%,
# LeNet-5 3%, an LSTM at batch 128 9%: medians of 6 interleaved trials in one process on 2 cores).
PIECE_VALUES = 1 << 18
# A one-pass kernel that costs about a copy an element (ReLU, the activations' gradients) splits at
# larger sizes: a hand-off to another thread costs 50-70 us on a 2-core virtual machine (the worker's
# wake-up and its wait for the GIL), what such a kernel takes over about 1M elements (ReLU on a
# (32, 16, 32, 32) batch: 58 us on one thread, 110 us split in two; at 2M elements 324 us and 266 us).
LIGHT_PIECE_VALUES = 1 << 20


@functools.cache
def _numba():
    try:
        import numba  # noqa: PLC0415 - optional: the engine runs without it
    except ImportError:
        return None
    return numba


def available(xp) -> bool:
    """Whether compiled kernels run for arrays of ``xp`` (NumPy, numba installed, not switched off)."""
    return ENABLED and xp is numpy and _numba() is not None


def piece_work(size: int, piece_values: int | None = None) -> int:
    """``work`` for ``parallel.split`` of a kernel over ``size`` elements: a kernel's element is
    worth GRAIN / ``piece_values`` (PIECE_VALUES by default) of a simple ufunc's, so that at the
    default grain each piece gets ``piece_values`` elements at least (and a test's grain of 1
    splits any batch)."""
    from engine import parallel  # noqa: PLC0415 - engine.parallel does not import the ops

    return size * parallel.GRAIN // (PIECE_VALUES if piece_values is None else piece_values)


@functools.cache
def compile_kernel(function, *, strict: bool = False):
    """``function`` compiled without the GIL, once per process (and cached on disk where it can be);
    ``strict``: no reassociation or contraction either (the results of plain IEEE arithmetic)."""
    numba = _numba()
    fastmath = False if strict else set(FASTMATH)
    try:
        return numba.njit(cache=True, fastmath=fastmath, nogil=True, error_model="numpy")(function)
    except RuntimeError:  # no writable cache directory: compile once in each process instead
        return numba.njit(fastmath=fastmath, nogil=True, error_model="numpy")(function)
