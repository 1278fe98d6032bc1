"""The ``Dataset`` container, lazy row selections, label encoding and task inference, and
mini-batch iteration."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import numpy

from engine import backend
from engine.errors import DataError

TASKS = ("classification", "binary", "regression")
# An integer or text target with at most this many distinct values is taken for class labels.
MAX_INFERRED_CLASSES = 20


@dataclasses.dataclass
class Dataset:
    """Named arrays that share their first axis (the rows), and what they mean.

    ``arrays["x"]`` usually holds the features and ``arrays[target]`` the labels: int64 class
    indices for "classification" and "binary" tasks, float32 values for "regression".
    """

    arrays: dict[str, numpy.ndarray]
    task: str
    name: str = ""
    num_classes: int | None = None
    label_names: list[str] | None = None
    feature_names: list[str] | None = None
    description: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)
    target: str = "y"  # the array holding labels or regression targets
    # Per-channel {"mean": [...], "std": [...]} of image arrays by array name, measured once (at
    # conversion, or when a built-in is loaded): what the "per_channel" normalization uses.
    channel_statistics: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        where = f"dataset '{self.name}'" if self.name else "dataset"
        self.arrays = {key: (value if hasattr(value, "shape") else numpy.asarray(value))
                       for key, value in self.arrays.items()}
        if self.task not in TASKS:
            raise DataError(f"{where}: unknown task '{self.task}'; expected one of {', '.join(TASKS)}")
        if not self.arrays:
            raise DataError(f"{where}: has no arrays")
        lengths = {key: (array.shape[0] if array.ndim else None) for key, array in self.arrays.items()}
        if None in lengths.values() or len(set(lengths.values())) > 1:
            described = ", ".join(f"'{key}' {length}" for key, length in lengths.items())
            raise DataError(f"{where}: arrays must share their first axis (rows), but have {described}")

    def __len__(self) -> int:
        return next(iter(self.arrays.values())).shape[0]

    @property
    def labels(self) -> numpy.ndarray | None:
        """The target array, or None for unlabeled data."""
        return self.arrays.get(self.target)

    def schema(self) -> dict:
        """What the data looks like, JSON-ready: per-row shape and dtype of each array, and the task."""
        return {
            "name": self.name,
            "task": self.task,
            "rows": len(self),
            "arrays": {
                key: {"shape": list(array.shape[1:]), "dtype": str(array.dtype)} for key, array in self.arrays.items()
            },
            "target": self.target if self.target in self.arrays else None,
            "num_classes": self.num_classes,
            "label_names": self.label_names,
            "feature_names": self.feature_names,
            "description": self.description,
            "metadata": self.metadata,
        }

    def preview(self, rows: int = 5) -> dict:
        """The first ``rows`` rows of each array as nested lists (non-finite numbers become None)."""
        shown = min(rows, len(self))
        return {
            "rows": shown,
            "total_rows": len(self),
            "arrays": {key: _json_values(array[:shown]) for key, array in self.arrays.items()},
            "label_names": self.label_names,
            "feature_names": self.feature_names,
        }

    def subset(self, indices) -> Dataset:
        """The rows at ``indices`` (integer positions or a boolean mask), in that order."""
        indices = numpy.asarray(indices)
        if indices.dtype != bool:
            indices = indices.astype(numpy.int64, copy=False)
        return dataclasses.replace(self, arrays={key: array[indices] for key, array in self.arrays.items()},
                                   metadata=dict(self.metadata))

    def shuffled(self, seed: int) -> Dataset:
        """The same rows in an order drawn from ``seed``."""
        return self.subset(numpy.random.default_rng(seed).permutation(len(self)))

    def rows(self, indices) -> Dataset:
        """The rows at ``indices`` (integer positions) without copying them: each array becomes a
        ``RowSelection`` that reads its rows when indexed, so a split of a memory-mapped store
        stays on disk."""
        indices = numpy.asarray(indices, dtype=numpy.int64)
        return dataclasses.replace(self,
                                   arrays={key: RowSelection(array, indices) for key, array in self.arrays.items()},
                                   metadata=dict(self.metadata))

    def split(self, validation_fraction: float, *, seed: int = 0, stratify: bool = True) -> tuple[Dataset, Dataset]:
        """Two disjoint datasets, (train, validation), that together hold every row once; each keeps
        the original row order. Classification data is split per class (stratified) so both parts
        keep the class proportions. The parts select their rows lazily (``rows``)."""
        rows = len(self)
        if not 0.0 < validation_fraction < 1.0:
            raise DataError(f"validation_fraction must be between 0 and 1 (exclusive), got {validation_fraction!r}")
        if rows < 2:
            raise DataError(f"dataset '{self.name}' has {rows} row(s); splitting needs at least 2")
        validation_rows = min(max(round(rows * validation_fraction), 1), rows - 1)
        rng = numpy.random.default_rng(seed)
        labels = self.labels
        if stratify and self.task != "regression" and labels is not None:
            chosen = _stratified_choice(labels.reshape(rows, -1)[:, 0], validation_rows, rng)
        else:
            chosen = rng.permutation(rows)[:validation_rows]
        in_validation = numpy.zeros(rows, dtype=bool)
        in_validation[chosen] = True
        return self.rows(numpy.flatnonzero(~in_validation)), self.rows(numpy.flatnonzero(in_validation))


class RowSelection:
    """The rows ``indices`` of ``base`` (an array, memory-mapped or not), read only when indexed.

    Indexing the first axis (an integer, a slice, an index array) reads just those rows and returns
    a plain array; ``numpy.asarray`` reads them all. Enough of the ndarray's face (shape, dtype,
    ndim, len, reshape, astype) for the code that takes a dataset's arrays."""

    def __init__(self, base, indices: numpy.ndarray):
        if isinstance(base, RowSelection):  # a selection of a selection picks from the first base
            base, indices = base.base, base.indices[indices]
        self.base = base
        self.indices = indices

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.indices), *self.base.shape[1:])

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return self.base.ndim

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.base.dtype.itemsize

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # the rows first, then the rest of the key on what they are
            if not key:
                return self[:]
            rows = self[key[0]]
            return rows[key[1:]] if isinstance(key[0], int | numpy.integer) else rows[(slice(None), *key[1:])]
        if isinstance(key, int | numpy.integer):
            return self.base[int(self.indices[key])]
        xp = backend.array_module(self.base)
        picked = self.indices[key if isinstance(key, slice) else backend.to_numpy(key)]
        return self.base[xp.asarray(picked) if xp is not numpy else picked]

    def __array__(self, dtype=None, copy=None):
        values = numpy.asarray(backend.to_numpy(self.base[self.indices]))
        return values if dtype is None else values.astype(dtype, copy=False)

    def reshape(self, *shape):
        return numpy.asarray(self).reshape(*shape)

    def astype(self, dtype, copy: bool = True):
        return numpy.asarray(self).astype(dtype, copy=copy)

    def __repr__(self) -> str:
        return f"RowSelection(rows={len(self)}, shape={list(self.shape)}, dtype={self.dtype})"


def _stratified_choice(labels: numpy.ndarray, count: int, rng: numpy.random.Generator) -> numpy.ndarray:
    """``count`` row indices, drawn per class in proportion to the class sizes (largest remainder)."""
    classes, class_of_row, sizes = numpy.unique(labels, return_inverse=True, return_counts=True)
    exact = sizes * (count / len(labels))
    per_class = numpy.floor(exact).astype(numpy.int64)
    # Hand the rows left over to the classes with the largest remainders; ties go in a seeded order.
    tie_order = rng.permutation(len(classes))
    by_remainder = tie_order[numpy.argsort(-(exact - per_class)[tie_order], kind="stable")]
    per_class[by_remainder[: count - per_class.sum()]] += 1
    chosen = [
        rng.permutation(numpy.flatnonzero(class_of_row == index))[:take] for index, take in enumerate(per_class)
    ]
    return numpy.concatenate(chosen)


def _json_values(array: numpy.ndarray) -> list:
    if array.dtype.kind == "f":
        values = array.astype(numpy.float64)
        return numpy.where(numpy.isfinite(values), values, None).tolist()
    return array.tolist()


def iter_batches(arrays: dict, batch_size: int, *, order=None, drop_last: bool = False) -> Iterator[dict]:
    """Mini-batches of every array in ``arrays`` (NumPy or CuPy), ``batch_size`` rows each.

    ``order`` is the row order (a permutation, or any 1-D integer index array) drawn by the
    caller from its own seeded generator, so that a resumed run sees the same batches; without
    it, rows come in storage order. The last batch is smaller unless ``drop_last``.
    """
    if not isinstance(batch_size, int | numpy.integer) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not arrays:
        raise DataError("iter_batches needs at least one array")
    lengths = {key: len(array) for key, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"arrays must have the same number of rows, got {lengths}")
    rows = next(iter(lengths.values()))
    if order is not None:
        order = numpy.asarray(backend.to_numpy(order))
        if order.ndim != 1 or order.dtype.kind not in "iu":
            raise DataError(f"order must be a 1-D integer array, got shape {order.shape} and dtype {order.dtype}")
        rows = len(order)
        # One copy of the order per array library (NumPy, CuPy), so indexing stays on the device.
        order_for = {}
        for array in arrays.values():
            xp = backend.array_module(array)
            if xp not in order_for:
                order_for[xp] = xp.asarray(order)
    batches = rows // batch_size if drop_last else math.ceil(rows / batch_size)
    for start in range(0, batches * batch_size, batch_size):
        if order is None:
            yield {key: array[start:start + batch_size] for key, array in arrays.items()}
        else:
            yield {
                key: array[order_for[backend.array_module(array)][start:start + batch_size]]
                for key, array in arrays.items()
            }


def from_arrays(x: numpy.ndarray, y: numpy.ndarray | None = None, *, task: str | None = None, name: str = "",
                feature_names: list[str] | None = None, label_names: list[str] | None = None,
                description: str = "", metadata: dict | None = None, source: str | None = None) -> Dataset:
    """A dataset from features ``x`` and an optional target ``y`` given as they come from a file.

    Float features become float32; integer features stay integers (as int64, e.g. category ids),
    except unsigned bytes (pixels), which become float32. Without ``task``, an integer or text
    target with at most ``MAX_INFERRED_CLASSES`` distinct values means classification ("binary"
    with two classes), anything else regression. Class labels are encoded as 0..K-1 in sorted
    order of their values, whose text becomes ``label_names`` unless given. ``source`` names the
    file in error messages.
    """
    where = source or name or "data"
    x = numpy.asarray(x)
    if x.ndim == 0:
        raise DataError(f"{where}: the features must be an array with one row per sample, got a scalar")
    if x.dtype.kind == "f" or x.dtype.kind == "b" or x.dtype == numpy.uint8:
        x = x.astype(numpy.float32)
    elif x.dtype.kind in "iu":
        x = x.astype(numpy.int64)
    else:
        raise DataError(f"{where}: the features must be numbers, got dtype {x.dtype}")
    arrays = {"x": x}
    num_classes = None
    if y is None:
        task = task or "classification"
        label_names = None
    else:
        y = numpy.asarray(y)
        if y.ndim == 0 or len(y) != len(x):
            found = "a scalar" if y.ndim == 0 else f"{len(y)} rows"
            raise DataError(f"{where}: the features have {len(x)} rows but the target has {found}")
        task = task or infer_task(y)
        if task in ("classification", "binary"):
            y, found_names = encode_labels(y, task=task, where=where)
            num_classes = len(found_names)
            if label_names is not None and len(label_names) != num_classes:
                raise DataError(f"{where}: {len(label_names)} label names given for {num_classes} classes "
                                f"({_some(numpy.array(found_names))})")
            label_names = label_names or found_names
        elif task == "regression":
            if y.dtype.kind not in "fiub":
                raise DataError(f"{where}: a regression target must be numbers, got dtype {y.dtype}")
            y = y.astype(numpy.float32)
        else:
            raise DataError(f"{where}: unknown task '{task}'; expected one of {', '.join(TASKS)}")
        arrays["y"] = y
    return Dataset(arrays=arrays, task=task, name=name, num_classes=num_classes, label_names=label_names,
                   feature_names=feature_names, description=description, metadata=dict(metadata or {}))


def infer_task(y: numpy.ndarray) -> str:
    """'classification' or 'binary' for integer or text targets with few distinct values, else 'regression'."""
    if y.dtype.kind not in "iubUSO" or (y.ndim > 1 and y.shape[1:] != (1,)):
        return "regression"
    distinct = len(numpy.unique(y))
    if y.dtype.kind in "USO" or distinct <= MAX_INFERRED_CLASSES:
        return "binary" if distinct == 2 else "classification"
    return "regression"


def encode_labels(y: numpy.ndarray, *, task: str = "classification",
                  where: str = "data") -> tuple[numpy.ndarray, list[str]]:
    """Class indices 0..K-1 (int64, shape (N,)) in sorted order of the values, and the values as text.
    Binary 0/1 labels are kept as they are."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: class labels must be one value per row, got shape {list(y.shape)}")
    if y.dtype.kind == "f":
        if not numpy.all(numpy.isfinite(y)) or numpy.any(y != numpy.round(y)):
            raise DataError(f"{where}: class labels must be whole numbers or text, but the target holds fractions; "
                            "use task='regression' for numeric targets")
        y = y.astype(numpy.int64)
    elif y.dtype.kind == "O":
        y = y.astype(str)
    if task == "binary" and y.dtype.kind in "iub" and numpy.isin(y, (0, 1)).all():
        return y.astype(numpy.int64), ["0", "1"]  # 0/1 stay as they are, even where one is absent
    values, indices = numpy.unique(y, return_inverse=True)
    if task == "binary" and len(values) > 2:
        raise DataError(f"{where}: a binary task needs two classes, but the target has {len(values)}: "
                        f"{_some(values)}")
    return indices.reshape(-1).astype(numpy.int64), [str(value) for value in values.tolist()]


def _some(values, limit: int = 10) -> str:
    shown = ", ".join(repr(value) for value in values[:limit].tolist())
    return shown + (", ..." if len(values) > limit else "")
