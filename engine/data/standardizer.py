"""Per-feature standardization, fitted on the training data only and saved with the model."""

from __future__ import annotations

import numpy

from engine import backend
from engine.errors import DataError

# A feature whose spread is below float32 resolution is constant; it is centred but not scaled.
_CONSTANT_TOLERANCE = float(numpy.finfo(numpy.float32).eps)


class Standardizer:
    """``(x - mean) / std`` per feature: statistics over the rows (axis 0), so each position of
    a row's shape (a column, a pixel, a time step's feature) gets its own; std 0 counts as 1."""

    def __init__(self, mean=None, std=None):
        self.mean = None if mean is None else numpy.asarray(mean, dtype=numpy.float64)
        self.std = None if std is None else numpy.asarray(std, dtype=numpy.float64)
        if (self.mean is None) != (self.std is None) or (self.mean is not None and self.mean.shape != self.std.shape):
            raise DataError("a standardizer needs a mean and a std of the same shape")

    def fit(self, x) -> Standardizer:
        values = numpy.asarray(backend.to_numpy(x), dtype=numpy.float64)
        if values.ndim == 0 or len(values) == 0:
            raise DataError("cannot fit a standardizer on no rows")
        self.mean = values.mean(axis=0)
        std = values.std(axis=0)
        self.std = numpy.where(std <= _CONSTANT_TOLERANCE * (1.0 + numpy.abs(self.mean)), 1.0, std)
        return self

    @property
    def shape(self) -> tuple[int, ...]:
        self._check_fitted()
        return self.mean.shape

    def transform(self, x):
        """Standardized ``x`` (rows of the fitted shape) in float32 for float32 input, else float64."""
        self._check_fitted()
        if self.mean.ndim and tuple(x.shape[1:]) != self.mean.shape:
            raise DataError(f"the standardizer was fitted on rows of shape {list(self.mean.shape)}, "
                            f"got rows of shape {list(x.shape[1:])}")
        xp = backend.array_module(x)
        dtype = numpy.result_type(x.dtype, numpy.float32)
        return ((x - xp.asarray(self.mean)) / xp.asarray(self.std)).astype(dtype, copy=False)

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

    def _check_fitted(self) -> None:
        if self.mean is None:
            raise DataError("the standardizer is not fitted yet; call fit(train_features) first")

    def __repr__(self) -> str:
        return f"Standardizer(shape={list(self.mean.shape) if self.mean is not None else None})"
