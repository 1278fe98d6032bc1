"""Streaming evaluation metrics: feed batches with ``update``, read ``result`` at the end.

Every metric keeps float64 (or integer) running state, so the result after any split of the data
into batches equals the result on the whole data at once (to rounding). ``METRICS`` is the
registry by name; ``get`` builds a metric from a name, a ``{"name": ..., **options}`` dict or an
instance; ``compute`` is the one-shot form.

Input conventions (NumPy or CuPy arrays, or anything ``numpy.asarray`` accepts):

- Classification: ``y_true`` holds class indices, shape (N,), or one-hot rows, shape (N, C).
  ``y_pred`` holds probabilities, shape (N, C); for binary tasks it may hold the probability of
  the positive class, shape (N,) or (N, 1), and the predicted class is ``p >= 0.5``. A (N, 2)
  table is a two-class table whose column 1 is the positive class. Metrics that only need the
  predicted class (accuracy, precision, recall, f1, confusion_matrix) also take integer class
  indices of shape (N,) as ``y_pred``.
- Regression: ``y_true`` and ``y_pred`` are floats of the same shape, (N,) or (N, K); (N,) and
  (N, 1) are interchangeable. Several outputs are averaged uniformly, like scikit-learn.
"""

from __future__ import annotations

import abc
import copy
import inspect
from typing import Any, ClassVar

import numpy as np
import scipy.stats

from engine.backend import to_numpy
from engine.errors import EngineError, ShapeError

METRICS: dict[str, type[Metric]] = {}

AVERAGES = ("binary", "macro", "micro")


def _register(cls: type[Metric]) -> type[Metric]:
    METRICS[cls.name] = cls
    return cls


class Metric(abc.ABC):
    """A streaming metric: ``reset()``, then ``update(y_true, y_pred)`` per batch, then ``result()``."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]

    def __init__(self) -> None:
        self.reset()

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget every batch seen so far."""

    @abc.abstractmethod
    def update(self, y_true, y_pred) -> None:
        """Add one batch."""

    @abc.abstractmethod
    def result(self):
        """The metric over every batch since the last reset."""

    def options(self) -> dict[str, Any]:
        """The options this metric was built with, so ``get({"name": m.name, **m.options()})`` copies it."""
        return {key: getattr(self, key) for key in _option_names(type(self))}

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.options().items())
        return f"{type(self).__name__}({options})"

    def _require_samples(self, count: int) -> None:
        if count == 0:
            raise EngineError(f"{self.name}: no samples seen yet; call update() with a batch before result()")


# ---------------------------------------------------------------------------------------------
# Registry access


def get(spec, **kwargs) -> Metric:
    """A metric from a registry name (``"f1"``), a dict (``{"name": "f1", "average": "macro"}``)
    or a ``Metric`` instance (returned as is). ``kwargs`` are options added to the spec's."""
    if isinstance(spec, Metric):
        if kwargs:
            raise EngineError(
                f"metric options {sorted(kwargs)} cannot be given together with a Metric instance "
                f"({spec!r}); pass a name or a dict instead"
            )
        return spec
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, dict):
        if "name" not in spec:
            raise EngineError(f"metric spec {spec!r} has no 'name'; valid names: {', '.join(METRICS)}")
        options = dict(spec)
        name = options.pop("name")
    else:
        raise EngineError(
            f"a metric spec must be a name, a dict with a 'name' or a Metric, got {type(spec).__name__}"
        )
    if name not in METRICS:
        raise EngineError(f"unknown metric {name!r}; valid names: {', '.join(METRICS)}")
    cls = METRICS[name]
    options.update(kwargs)
    valid = _option_names(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listing = ", ".join(valid) if valid else "none"
        raise EngineError(f"metric {name!r} has no option(s) {', '.join(unknown)}; valid options: {listing}")
    return cls(**options)


def compute(spec, y_true, y_pred, **kwargs):
    """The metric on the whole data at once. A Metric instance given as spec is copied, not changed."""
    metric = get(spec, **kwargs)
    if metric is spec:
        metric = copy.deepcopy(spec)
    metric.reset()
    metric.update(y_true, y_pred)
    return metric.result()


def _option_names(cls: type[Metric]) -> list[str]:
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    return [parameter.name for parameter in parameters]


# ---------------------------------------------------------------------------------------------
# Option checks


def _check_int(metric: str, option: str, value, *, minimum: int, nullable: bool = False):
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if nullable else "")
        raise EngineError(f"{metric}: option {option} must be {expected}, got {value!r}")
    return int(value)


def _check_choice(metric: str, option: str, value, choices: tuple):
    if value not in choices:
        raise EngineError(
            f"{metric}: option {option} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )
    return value


# ---------------------------------------------------------------------------------------------
# Input conversion: shapes are checked per batch, and every message names the metric.


def _pair(metric: str, y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(to_numpy(y_true))
    y_pred = np.asarray(to_numpy(y_pred))
    if y_true.ndim == 0 or y_pred.ndim == 0 or y_true.shape[0] != y_pred.shape[0]:
        raise ShapeError(
            f"{metric}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; "
            "both need the same number of samples N along the first axis"
        )
    return y_true, y_pred


def _as_class_indices(metric: str, argument: str, values: np.ndarray) -> np.ndarray:
    """Integer class indices from an int, bool or integral float array, each >= 0."""
    if values.dtype == bool:
        return values.astype(np.int64)
    if not np.issubdtype(values.dtype, np.number):
        raise EngineError(f"{metric}: {argument} must hold integer class indices, got dtype {values.dtype}")
    if not np.issubdtype(values.dtype, np.integer):
        if not (np.all(np.isfinite(values)) and np.all(values == np.round(values))):
            raise EngineError(
                f"{metric}: {argument} must hold integer class indices (or one-hot rows), "
                "but it has non-integer values"
            )
    indices = values.astype(np.int64)
    if indices.size and indices.min() < 0:
        raise EngineError(f"{metric}: {argument} holds class {indices.min()}; classes must be >= 0")
    return indices


def _true_classes(metric: str, y_true: np.ndarray, num_columns: int | None) -> np.ndarray:
    """Class indices (N,) from indices (N,) or (N, 1), or one-hot rows (N, C)."""
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        if num_columns is not None and y_true.shape[1] != num_columns:
            raise ShapeError(
                f"{metric}: y_true is one-hot with {y_true.shape[1]} columns but y_pred has "
                f"{num_columns} classes"
            )
        return np.argmax(y_true, axis=1).astype(np.int64)
    if y_true.ndim == 2:
        y_true = y_true[:, 0]
    if y_true.ndim != 1:
        raise ShapeError(
            f"{metric}: y_true must have shape (N,) of class indices or (N, C) one-hot, got {y_true.shape}"
        )
    classes = _as_class_indices(metric, "y_true", y_true)
    if num_columns is not None and classes.size and classes.max() >= num_columns:
        raise EngineError(
            f"{metric}: y_true holds class {classes.max()} but y_pred has {num_columns} classes "
            f"(0 to {num_columns - 1})"
        )
    return classes


def _probabilities(metric: str, y_pred: np.ndarray) -> np.ndarray:
    """Float64 positive-class probabilities (N,) for binary tasks, or a (N, C >= 2) table."""
    if y_pred.ndim == 2 and y_pred.shape[1] == 1:
        y_pred = y_pred[:, 0]
    if y_pred.ndim not in (1, 2):
        raise ShapeError(
            f"{metric}: y_pred must have shape (N,) or (N, 1) of positive-class probabilities, "
            f"or (N, C) of class probabilities, got {y_pred.shape}"
        )
    return y_pred.astype(np.float64)


def _probability_batch(metric: str, y_true, y_pred) -> tuple[np.ndarray, np.ndarray, int]:
    """(true classes, probabilities, number of classes) of one batch."""
    y_true, y_pred = _pair(metric, y_true, y_pred)
    probabilities = _probabilities(metric, y_pred)
    num_classes = 2 if probabilities.ndim == 1 else probabilities.shape[1]
    return _true_classes(metric, y_true, num_classes), probabilities, num_classes


def _class_batch(metric: str, y_true, y_pred) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(true classes, predicted classes, number of classes in y_pred or None) of one batch.

    An integer or boolean y_pred of shape (N,) holds predicted classes; otherwise it holds
    probabilities and the prediction is ``p >= 0.5`` (binary) or the most probable class.
    """
    y_true, y_pred = _pair(metric, y_true, y_pred)
    if y_pred.ndim == 1 and (y_pred.dtype == bool or np.issubdtype(y_pred.dtype, np.integer)):
        return _true_classes(metric, y_true, None), _as_class_indices(metric, "y_pred", y_pred), None
    probabilities = _probabilities(metric, y_pred)
    if probabilities.ndim == 1:
        return _true_classes(metric, y_true, 2), (probabilities >= 0.5).astype(np.int64), 2
    num_classes = probabilities.shape[1]
    predicted = np.argmax(probabilities, axis=1).astype(np.int64)
    return _true_classes(metric, y_true, num_classes), predicted, num_classes


def _check_same_classes(metric: str, expected: int | None, got: int) -> int:
    if expected is not None and expected != got:
        raise ShapeError(
            f"{metric}: this batch's y_pred has {got} classes but earlier batches had {expected}"
        )
    return got


# ---------------------------------------------------------------------------------------------
# Classification


@_register
class Accuracy(Metric):
    """Fraction of samples whose predicted class equals the true class: mean(argmax(p) == y)."""

    name = "accuracy"
    higher_is_better = True

    def reset(self) -> None:
        self.correct = 0
        self.count = 0

    def update(self, y_true, y_pred) -> None:
        true, predicted, _ = _class_batch(self.name, y_true, y_pred)
        self.correct += int(np.count_nonzero(true == predicted))
        self.count += true.shape[0]

    def result(self) -> float:
        self._require_samples(self.count)
        return self.correct / self.count


@_register
class TopKAccuracy(Metric):
    """Fraction of samples whose true class is among the k most probable: mean(y in top_k(p))."""

    name = "top_k_accuracy"
    higher_is_better = True

    def __init__(self, k: int = 5):
        self.k = _check_int(self.name, "k", k, minimum=1)
        super().__init__()

    def reset(self) -> None:
        self.hits = 0
        self.count = 0
        self.prediction_classes = None  # columns of y_pred, fixed by the first batch

    def update(self, y_true, y_pred) -> None:
        true, probabilities, num_classes = _probability_batch(self.name, y_true, y_pred)
        self.prediction_classes = _check_same_classes(self.name, self.prediction_classes, num_classes)
        if probabilities.ndim == 1:
            probabilities = np.stack([1.0 - probabilities, probabilities], axis=1)
        # Stable sort, reversed: among tied scores the higher class index ranks first, as in
        # scikit-learn, which also makes p = 0.5 predict the positive class.
        ranked = np.argsort(probabilities, axis=1, kind="stable")[:, ::-1][:, : self.k]
        self.hits += int(np.count_nonzero((ranked == true[:, None]).any(axis=1)))
        self.count += true.shape[0]

    def result(self) -> float:
        self._require_samples(self.count)
        return self.hits / self.count


class _ConfusionCounts(Metric):
    """Shared state: a confusion matrix (rows = true class) that grows as classes appear."""

    def __init__(self, num_classes: int | None = None):
        self.num_classes = _check_int(self.name, "num_classes", num_classes, minimum=1, nullable=True)
        super().__init__()

    def reset(self) -> None:
        size = self.num_classes or 0
        self.matrix = np.zeros((size, size), dtype=np.int64)
        self.seen = np.zeros(size, dtype=bool)  # classes present in y_true or the predictions

    def update(self, y_true, y_pred) -> None:
        true, predicted, num_classes = _class_batch(self.name, y_true, y_pred)
        self._check_classes(true, predicted)
        size = max(self.matrix.shape[0], num_classes or 0, _largest(true) + 1, _largest(predicted) + 1)
        if self.num_classes is not None and size > self.num_classes:
            raise EngineError(
                f"{self.name}: num_classes is {self.num_classes} but this batch needs {size} classes "
                f"(its largest class index or y_pred column is {size - 1})"
            )
        if size > self.matrix.shape[0]:
            grown = np.zeros((size, size), dtype=np.int64)
            grown[: self.matrix.shape[0], : self.matrix.shape[0]] = self.matrix
            self.matrix = grown
            self.seen = np.pad(self.seen, (0, size - self.seen.shape[0]))
        cells = np.bincount(true * size + predicted, minlength=size * size)
        self.matrix += cells.reshape(size, size)
        self.seen[true] = True
        self.seen[predicted] = True

    def _check_classes(self, true: np.ndarray, predicted: np.ndarray) -> None:
        """Hook for subclasses that restrict the classes."""

    def _require_counts(self) -> None:
        self._require_samples(int(self.matrix.sum()))


def _largest(classes: np.ndarray) -> int:
    return int(classes.max()) if classes.size else -1


@_register
class ConfusionMatrix(_ConfusionCounts):
    """Counts C[i][j] of samples of true class i predicted as class j (a list of lists)."""

    name = "confusion_matrix"
    higher_is_better = True  # not a score; kept for a uniform interface

    def result(self) -> list[list[int]]:
        self._require_counts()
        return self.matrix.tolist()


class _PrecisionRecallF1(_ConfusionCounts):
    """Shared averaging of a per-class score computed from true-positive, predicted and true counts.

    ``average``: "binary" scores class ``pos_label`` of a two-class task; "macro" averages the
    per-class scores over the classes seen in y_true or y_pred; "micro" scores the summed counts.
    None picks "binary" when at most two classes are known and "macro" otherwise. A 0/0 score is 0.
    """

    higher_is_better = True

    def __init__(self, average: str | None = None, num_classes: int | None = None, pos_label: int = 1):
        self.average = _check_choice(self.name, "average", average, AVERAGES + (None,))
        self.pos_label = _check_choice(self.name, "pos_label", pos_label, (0, 1))
        super().__init__(num_classes=num_classes)

    def _check_classes(self, true: np.ndarray, predicted: np.ndarray) -> None:
        if self.average != "binary":
            return
        for argument, classes in (("y_true", true), ("y_pred", predicted)):
            if classes.size and classes.max() > 1:
                raise EngineError(
                    f"{self.name}: average='binary' needs classes 0 and 1 only, but {argument} holds "
                    f"class {classes.max()}; use average='macro' or 'micro' for more than two classes"
                )

    def result(self) -> float:
        self._require_counts()
        average = self.average or ("binary" if self.matrix.shape[0] <= 2 else "macro")
        matrix = self.matrix
        if average == "binary":
            matrix = np.pad(matrix, (0, max(0, 2 - matrix.shape[0])))
        true_positives = np.diag(matrix).astype(np.float64)
        predicted_counts = matrix.sum(axis=0).astype(np.float64)
        true_counts = matrix.sum(axis=1).astype(np.float64)
        if average == "binary":
            label = self.pos_label
            return self._score(true_positives[label], predicted_counts[label], true_counts[label])
        if average == "micro":
            return self._score(true_positives.sum(), predicted_counts.sum(), true_counts.sum())
        seen = self.seen
        per_class = zip(true_positives[seen], predicted_counts[seen], true_counts[seen])
        return float(np.mean([self._score(*counts) for counts in per_class]))

    @abc.abstractmethod
    def _score(self, true_positives: float, predicted_count: float, true_count: float) -> float:
        """The score of one class (or of all, for micro) from its counts."""


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else 0.0


@_register
class Precision(_PrecisionRecallF1):
    """Precision = TP / (TP + FP), averaged as ``average`` says."""

    name = "precision"

    def _score(self, true_positives, predicted_count, true_count) -> float:
        return _ratio(true_positives, predicted_count)


@_register
class Recall(_PrecisionRecallF1):
    """Recall = TP / (TP + FN), averaged as ``average`` says."""

    name = "recall"

    def _score(self, true_positives, predicted_count, true_count) -> float:
        return _ratio(true_positives, true_count)


@_register
class F1(_PrecisionRecallF1):
    """F1 = 2 TP / (2 TP + FP + FN), harmonic mean of precision and recall; averaged as ``average`` says."""

    name = "f1"

    def _score(self, true_positives, predicted_count, true_count) -> float:
        return _ratio(2.0 * true_positives, predicted_count + true_count)


@_register
class RocAuc(Metric):
    """Area under the ROC curve = P(score of a positive > score of a negative) + P(tie) / 2.

    Binary from positive-class scores (N,), (N, 1) or a (N, 2) table; for (N, C > 2) tables the
    macro average of the one-vs-rest areas. Keeps every score, so the result is exact.
    """

    name = "roc_auc"
    higher_is_better = True

    def reset(self) -> None:
        self.true_batches: list[np.ndarray] = []
        self.score_batches: list[np.ndarray] = []
        self.prediction_classes = None  # columns of y_pred, fixed by the first batch

    def update(self, y_true, y_pred) -> None:
        true, scores, num_classes = _probability_batch(self.name, y_true, y_pred)
        if not np.all(np.isfinite(scores)):
            raise EngineError(f"{self.name}: y_pred holds NaN or infinite scores")
        self.prediction_classes = _check_same_classes(self.name, self.prediction_classes, num_classes)
        if scores.ndim == 2 and num_classes == 2:
            scores = scores[:, 1]
        self.true_batches.append(true)
        self.score_batches.append(scores)

    def result(self) -> float:
        self._require_samples(sum(batch.shape[0] for batch in self.true_batches))
        true = np.concatenate(self.true_batches)
        scores = np.concatenate(self.score_batches)
        if self.prediction_classes == 2:
            return self._area(true == 1, scores, "")
        areas = [
            self._area(true == label, scores[:, label], f" (class {label} vs rest)")
            for label in range(self.prediction_classes)
        ]
        return float(np.mean(areas))

    def _area(self, positive: np.ndarray, scores: np.ndarray, which: str) -> float:
        positives = int(np.count_nonzero(positive))
        negatives = positive.shape[0] - positives
        if positives == 0 or negatives == 0:
            present = "positive" if positives else "negative"
            raise EngineError(
                f"{self.name}{which}: y_true holds only {present} samples; ROC AUC needs both "
                "classes present"
            )
        ranks = scipy.stats.rankdata(scores)  # tied scores share their average rank
        rank_sum = float(ranks[positive].sum())
        return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


@_register
class LogLoss(Metric):
    """Mean cross-entropy = -mean(log p[y]), with p clipped to [eps, 1 - eps]; binary p is P(y = 1)."""

    name = "log_loss"
    higher_is_better = False

    def __init__(self, eps: float = 1e-7):
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 0.5:
            raise EngineError(f"{self.name}: option eps must be a number in (0, 0.5), got {eps!r}")
        self.eps = float(eps)
        super().__init__()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0
        self.prediction_classes = None  # columns of y_pred, fixed by the first batch

    def update(self, y_true, y_pred) -> None:
        true, probabilities, num_classes = _probability_batch(self.name, y_true, y_pred)
        self.prediction_classes = _check_same_classes(self.name, self.prediction_classes, num_classes)
        probabilities = np.clip(probabilities, self.eps, 1.0 - self.eps)
        if probabilities.ndim == 1:
            likelihood = np.where(true == 1, probabilities, 1.0 - probabilities)
        else:
            likelihood = probabilities[np.arange(true.shape[0]), true]
        self.total -= float(np.log(likelihood).sum())
        self.count += true.shape[0]

    def result(self) -> float:
        self._require_samples(self.count)
        return self.total / self.count


# ---------------------------------------------------------------------------------------------
# Regression


def _regression_batch(metric: str, y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Float64 (N, K) arrays of targets and predictions; (N,) and (N, 1) count as the same shape."""
    y_true, y_pred = _pair(metric, y_true, y_pred)
    targets = y_true[:, None] if y_true.ndim == 1 else y_true
    predictions = y_pred[:, None] if y_pred.ndim == 1 else y_pred
    if targets.ndim != 2 or targets.shape != predictions.shape:
        raise ShapeError(
            f"{metric}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; "
            "they must have the same shape, (N,) or (N, K)"
        )
    return targets.astype(np.float64), predictions.astype(np.float64)


class _MeanError(Metric):
    """Shared state: a running sum of a per-element error and the element count."""

    higher_is_better = False

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0

    def update(self, y_true, y_pred) -> None:
        y_true, y_pred = _regression_batch(self.name, y_true, y_pred)
        self.total += float(self._error(y_true - y_pred).sum())
        self.count += y_true.size

    def result(self) -> float:
        self._require_samples(self.count)
        return self.total / self.count

    @staticmethod
    @abc.abstractmethod
    def _error(difference: np.ndarray) -> np.ndarray:
        """The per-element error of prediction - truth."""


@_register
class MeanSquaredError(_MeanError):
    """Mean squared error = mean((y - y_hat)^2) over all samples and outputs."""

    name = "mse"

    @staticmethod
    def _error(difference):
        return np.square(difference)


@_register
class MeanAbsoluteError(_MeanError):
    """Mean absolute error = mean(|y - y_hat|) over all samples and outputs."""

    name = "mae"

    @staticmethod
    def _error(difference):
        return np.abs(difference)


@_register
class R2(Metric):
    """Coefficient of determination = 1 - SSE / SST per output, averaged over outputs.

    SST comes from a running count, mean and sum of squared deviations merged batch by batch
    (Chan et al.), which avoids the cancellation of sum(y^2) - sum(y)^2 / n on large targets.
    Like scikit-learn: an output with SST = 0 scores 1 if SSE = 0, else 0; fewer than two
    samples give NaN.
    """

    name = "r2"
    higher_is_better = True

    def reset(self) -> None:
        self.count = 0
        self.mean = None  # per output
        self.squared_deviations = None  # sum of (y - mean)^2 per output
        self.squared_errors = None  # SSE per output

    def update(self, y_true, y_pred) -> None:
        y_true, y_pred = _regression_batch(self.name, y_true, y_pred)
        batch_count = y_true.shape[0]
        if batch_count == 0:
            return
        if self.mean is None:
            outputs = y_true.shape[1]
            self.mean = np.zeros(outputs)
            self.squared_deviations = np.zeros(outputs)
            self.squared_errors = np.zeros(outputs)
        elif y_true.shape[1] != self.mean.shape[0]:
            raise ShapeError(
                f"{self.name}: this batch has {y_true.shape[1]} outputs but earlier batches had "
                f"{self.mean.shape[0]}"
            )
        batch_mean = y_true.mean(axis=0)
        batch_deviations = np.square(y_true - batch_mean).sum(axis=0)
        total = self.count + batch_count
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (batch_count / total)
        merge_correction = np.square(delta) * (self.count * batch_count / total)
        self.squared_deviations = self.squared_deviations + batch_deviations + merge_correction
        self.squared_errors = self.squared_errors + np.square(y_true - y_pred).sum(axis=0)
        self.count = total

    def result(self) -> float:
        self._require_samples(self.count)
        if self.count < 2:
            return float("nan")
        varying = self.squared_deviations > 0
        scores = np.where(self.squared_errors == 0, 1.0, 0.0)
        scores[varying] = 1.0 - self.squared_errors[varying] / self.squared_deviations[varying]
        return float(scores.mean())
