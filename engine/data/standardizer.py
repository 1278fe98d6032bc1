"""Per-feature standardization, fitted on the training data only and saved with the model.

The statistics are gathered in one streaming pass over chunks of rows (float64 sums merged by
Chan's rule), so a memory-mapped dataset larger than memory is fitted without loading it."""

from __future__ import annotations

import math

import numpy

from engine import backend
from engine.data.dataset import RowSelection
from engine.errors import DataError
from engine.ops import _numba

# A feature whose spread is below float32 resolution is constant; it is centred but not scaled.
_CONSTANT_TOLERANCE = float(numpy.finfo(numpy.float32).eps)
# Rows are read and summed in chunks of about this many float64 bytes.
CHUNK_BYTES = 16 << 20


def chunk_rows(array, chunk_bytes: int = CHUNK_BYTES) -> int:
    """How many rows of ``array`` make a chunk of about ``chunk_bytes`` as float64 (at least one)."""
    row_values = math.prod(array.shape[1:]) if len(array.shape) > 1 else 1
    return max(1, chunk_bytes // (8 * max(row_values, 1)))


def streaming_moments(array, axes: tuple[int, ...] = (0,)) -> tuple[int, numpy.ndarray, numpy.ndarray]:
    """(count, mean, sum of squared deviations) over ``axes`` (0 always among them), in float64,
    read in chunks of rows and merged by Chan's parallel update, so only a chunk is in memory."""
    total, mean, squares = 0, None, None
    step = chunk_rows(array)
    for start in range(0, len(array), step):
        chunk = numpy.asarray(backend.to_numpy(array[start:start + step]), dtype=numpy.float64)
        count = math.prod(chunk.shape[axis] for axis in axes)
        chunk_mean = chunk.mean(axis=axes)
        keep = numpy.expand_dims(chunk_mean, axes)
        chunk_squares = numpy.square(chunk - keep).sum(axis=axes)
        if mean is None:
            total, mean, squares = count, chunk_mean, chunk_squares
            continue
        delta = chunk_mean - mean
        merged = total + count
        mean = mean + delta * (count / merged)
        squares = squares + chunk_squares + numpy.square(delta) * (total * count / merged)
        total = merged
    return total, mean, squares


def channel_statistics(array) -> dict:
    """Per-channel ``{"mean": [...], "std": [...]}`` of a feature array, in one streaming pass:
    over the channels (axis 1) of images stored as (N, C, H, W), else over all its values as one
    channel (which holds for any single-channel view of them)."""
    axes = (0, 2, 3) if len(array.shape) == 4 else tuple(range(len(array.shape)))
    count, mean, squares = streaming_moments(array, axes)
    return {"mean": numpy.atleast_1d(mean).tolist(), "std": numpy.atleast_1d(numpy.sqrt(squares / count)).tolist()}


def dataset_channel_statistics(dataset) -> dict:
    """``channel_statistics`` of each float feature array of a dataset (not its target), by name."""
    return {name: channel_statistics(array) for name, array in dataset.arrays.items()
            if name != dataset.target and array.dtype.kind == "f" and len(array.shape) >= 2 and len(array)}


class Standardizer:
    """``(x - mean) / std`` per feature: statistics over the rows (axis 0), so each position of
    a row's shape (a column, a pixel, a time step's feature) gets its own; std 0 counts as 1."""

    def __init__(self, mean=None, std=None):
        self.mean = None if mean is None else numpy.asarray(mean, dtype=numpy.float64)
        self.std = None if std is None else numpy.asarray(std, dtype=numpy.float64)
        if (self.mean is None) != (self.std is None) or (self.mean is not None and self.mean.shape != self.std.shape):
            raise DataError("a standardizer needs a mean and a std of the same shape")
        self._float32 = None  # (mean, 1 / std) rounded to float32, made on first use
        self._flat_rows = (None,)  # (row shape, mean, 1 / std) flattened over a row, for gather_float32

    def fit(self, x, *, axes: tuple[int, ...] = (0,)) -> Standardizer:
        """Statistics over ``axes`` of ``x`` (an array, memory-mapped or not, or a ``RowSelection``),
        read a chunk of rows at a time. ``axes=(0, 2, 3)`` of images (N, C, H, W) gives one mean and
        std per channel, kept as shape (C, 1, 1) so they broadcast over a sample."""
        if not hasattr(x, "shape"):
            x = numpy.asarray(x)
        if len(x.shape) == 0 or len(x) == 0:
            raise DataError("cannot fit a standardizer on no rows")
        count, mean, squares = streaming_moments(x, axes)
        std = numpy.sqrt(squares / count)
        shape = tuple(1 if axis in axes else size for axis, size in enumerate(x.shape))[1:]
        self.mean = mean.reshape(shape)
        self.std = numpy.where(std <= _CONSTANT_TOLERANCE * (1.0 + numpy.abs(mean)), 1.0, std).reshape(shape)
        self._float32 = None
        self._flat_rows = (None,)
        return self

    @property
    def shape(self) -> tuple[int, ...]:
        self._check_fitted()
        return self.mean.shape

    def transform(self, x):
        """Standardized ``x`` (rows of the fitted shape) in float32 for float32 input, else float64."""
        self._check_fitted()
        self._check_row_shape(x)
        xp = backend.array_module(x)
        dtype = numpy.result_type(x.dtype, numpy.float32)
        return ((x - xp.asarray(self.mean)) / xp.asarray(self.std)).astype(dtype, copy=False)

    def transform_float32(self, x, *, in_place: bool = False):
        """Standardized float32 rows computed in float32: ``(x - mean) * (1 / std)`` with both
        statistics rounded to float32. What the trainer applies to every batch it reads from a store
        (and to in-memory arrays alike, so the two train the same): several times cheaper than
        ``transform``'s float64 arithmetic and within a few float32 units in the last place of it,
        the precision the stored float32 values have themselves. ``in_place`` writes the result
        over ``x`` (a batch freshly gathered from a store), which saves allocating a batch-sized
        array per step: a new 400 KB array costs more than the arithmetic (fresh pages fault in)."""
        self._check_fitted()
        if x.dtype != numpy.float32:
            raise DataError(f"transform_float32 takes float32 rows, got {x.dtype}")
        mean, reciprocal = self._float32_statistics()
        self._check_row_shape(x)
        xp = backend.array_module(x)
        result = xp.subtract(x, xp.asarray(mean), out=x if in_place else None)
        return xp.multiply(result, xp.asarray(reciprocal), out=result)

    def gather_float32(self, array, rows):
        """``transform_float32(array[rows])`` in one pass: each row is read from ``array`` (float32
        rows, typically a memory-mapped store's) and written standardized, so a store's batch costs
        what a gather from memory does. Bit-identical to ``transform_float32`` (the same float32
        subtraction and multiplication, uncontracted); without numba, the gather and then that."""
        self._check_fitted()
        if array.dtype != numpy.float32:
            raise DataError(f"gather_float32 takes float32 rows, got {array.dtype}")
        self._check_row_shape(array)
        rows = numpy.asarray(rows)
        indices = rows.ndim == 1 and rows.dtype.kind in "iu"
        if indices and isinstance(array, RowSelection):  # a lazy split: pick from the array it selects from
            array, rows = array.base, array.indices[rows]
        if not (indices and isinstance(array, numpy.ndarray) and _numba.available(backend.array_module(array))
                and array.flags.c_contiguous):
            return self.transform_float32(array[rows], in_place=True)
        if rows.size and (int(rows.min()) < -len(array) or int(rows.max()) >= len(array)):
            raise DataError(f"row indices out of range for {len(array)} rows")
        row_shape = tuple(array.shape[1:])
        mean, reciprocal = self._float32_rows(row_shape)
        out = numpy.empty((len(rows), *row_shape), dtype=numpy.float32)
        width = math.prod(row_shape)
        if rows.size:
            _numba.compile_kernel(_gather_standardize, strict=True)(
                array.reshape(len(array), width), rows.astype(numpy.int64, copy=False), mean, reciprocal,
                out.reshape(len(rows), width))
        return out

    def _float32_statistics(self) -> tuple[numpy.ndarray, numpy.ndarray]:
        """The mean and 1 / std rounded to float32 (made once)."""
        if self._float32 is None:
            self._float32 = (self.mean.astype(numpy.float32), (1.0 / self.std).astype(numpy.float32))
        return self._float32

    def _float32_rows(self, row_shape: tuple[int, ...]) -> tuple[numpy.ndarray, numpy.ndarray]:
        """The float32 mean and 1 / std spread over a whole row and flattened, for ``gather_float32``."""
        if self._flat_rows[0] != row_shape:
            mean, reciprocal = self._float32_statistics()
            self._flat_rows = (row_shape, numpy.ascontiguousarray(numpy.broadcast_to(mean, row_shape)).ravel(),
                               numpy.ascontiguousarray(numpy.broadcast_to(reciprocal, row_shape)).ravel())
        return self._flat_rows[1], self._flat_rows[2]

    def inverse_transform(self, x):
        """Back to the original scale (for regression predictions); broadcasts like NumPy."""
        self._check_fitted()
        xp = backend.array_module(x)
        dtype = numpy.result_type(x.dtype, numpy.float32)
        return (x * xp.asarray(self.std) + xp.asarray(self.mean)).astype(dtype, copy=False)

    def to_dict(self) -> dict:
        """JSON-ready: ``{"mean": nested lists, "std": nested lists}`` (plain floats for a 0-d fit)."""
        self._check_fitted()
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> Standardizer:
        missing = [key for key in ("mean", "std") if key not in (data or {})]
        if missing:
            raise DataError(f"a saved standardizer needs 'mean' and 'std', missing {missing}")
        try:
            return cls(mean=data["mean"], std=data["std"])
        except (TypeError, ValueError) as error:
            raise DataError(f"a saved standardizer holds malformed numbers: {error}") from error

    def _check_row_shape(self, x) -> None:
        row_shape = tuple(x.shape[1:])
        if self.mean.ndim and (len(row_shape) != self.mean.ndim
                               or any(m not in (1, r) for m, r in zip(self.mean.shape, row_shape))):
            raise DataError(f"the standardizer was fitted on rows of shape {list(self.mean.shape)}, "
                            f"got rows of shape {list(row_shape)}")

    def _check_fitted(self) -> None:
        if self.mean is None:
            raise DataError("the standardizer is not fitted yet; call fit(train_features) first")

    def __repr__(self) -> str:
        return f"Standardizer(shape={list(self.mean.shape) if self.mean is not None else None})"


def _gather_standardize(source, rows, mean, reciprocal, out):
    """out[i] = (source[rows[i]] - mean) * reciprocal, over flattened float32 rows (numba kernel)."""
    count = rows.shape[0]
    length = source.shape[0]
    width = source.shape[1]
    for i in range(count):
        row = rows[i]
        if row < 0:
            row += length
        for j in range(width):
            out[i, j] = (source[row, j] - mean[j]) * reciprocal[j]
