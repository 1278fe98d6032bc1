"""What a trained model does on held-out data, for the run page: computed once, when a run
succeeds, and stored on the run (``Run.evaluation``, served by ``GET /api/runs/<id>/evaluation``).

``evaluate`` is a pure function of a ``Predictor`` and a dataset split. For classifiers it gives
the confusion matrix (rows: true class, columns: predicted) with the class names, precision,
recall and F1 per class, and up to ``MAX_SAMPLES`` sample predictions (mistakes first) with their
most probable classes and, for image data, the sample as a PNG data URL. For regression it gives
up to ``MAX_PAIRS`` (true, predicted) pairs as columns and the residuals' statistics and histogram.

``evaluate_trainer`` evaluates a trainer's model on its validation split (the training split when
there is none); ``record_run_evaluation`` does that for a run and stores the result, and never
raises: an evaluation that fails is stored as ``{"state": "failed", "error": ...}`` and the run
keeps its outcome.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy

from engine import metrics as engine_metrics
from engine import serialization
from engine.data import Dataset
from engine.inference import Predictor
from webapp.datasets import images

log = logging.getLogger(__name__)

MAX_SAMPLES = 24
MAX_PAIRS = 500
TOP_CLASSES = 3
HISTOGRAM_BINS = 20


def evaluate(predictor: Predictor, dataset: Dataset, *, split: str = "validation", rows=None,
             image_layout: images.ImageLayout | None = None, seed: int = 0) -> dict:
    """The evaluation of ``predictor`` on ``dataset`` (a split of the training data, raw, as the
    worker loads it). ``rows`` are the split's row numbers in the whole dataset (sample indices
    refer to them when given); ``image_layout`` says how to draw image samples."""
    labels = _labels(predictor, dataset)
    base = {"state": "ready", "split": split, "rows": len(dataset), "task": dataset.task}
    if labels is None:
        return {**base, "state": "unavailable", "reason": f"the {split} split has no labels to compare with"}
    if not len(dataset):
        return {**base, "state": "unavailable", "reason": f"the {split} split is empty"}
    prediction = predictor.predict(_features(predictor, dataset))
    rows = numpy.arange(len(dataset)) if rows is None else numpy.asarray(rows)
    if "probabilities" in prediction:
        return {**base, **_classification(predictor, dataset, labels, prediction, rows, image_layout, seed)}
    if "values" in prediction:
        return {**base, **_regression(labels, prediction["values"], rows, seed)}
    return {**base, "state": "unavailable",
            "reason": "the graph has no output for the value its loss judges, so there are no predictions to show"}


def evaluate_trainer(trainer, dataset: Dataset, *, image_layout: images.ImageLayout | None = None) -> dict:
    """``evaluate`` of the trainer's model (as it is now, after training) on its validation
    split, or on its training split when it has none. ``dataset`` is the whole dataset the
    trainer split: the samples' indices are its row numbers."""
    # Without the label names: the predictor would look up a name for every predicted class, and a
    # graph may have more outputs than the data has classes. The split's names are used instead.
    schema = {**trainer.input_schema(), "label_names": None}
    predictor = Predictor(serialization.Artifact(
        path=Path("trained-model"), manifest={"input_schema": schema}, spec=trainer.spec,
        weights=trainer.model.state_arrays(), optimizer_arrays=None, trainer_state=None,
    ))
    split, part = "validation", trainer.validation_data
    if part is None or not len(part):
        split, part = "training", trainer.train_data
    return evaluate(predictor, part, split=split, rows=_rows_of(trainer, dataset, split, part),
                    image_layout=image_layout, seed=trainer.config.seed)


def record_run_evaluation(run_id: int, trainer, dataset: Dataset) -> dict:
    """Evaluate the run's trained model and store the result on the run; never raises."""
    from webapp.datasets.selectors import dataset_image_layout  # noqa: PLC0415 - Django models load first
    from webapp.runs.models import Run  # noqa: PLC0415
    from webapp.runs.services import run_evaluation_save  # noqa: PLC0415

    try:
        run = Run.objects.select_related("dataset").get(pk=run_id)
        evaluation = evaluate_trainer(trainer, dataset, image_layout=dataset_image_layout(run.dataset))
    except Exception as error:  # an evaluation never fails the run it describes
        log.exception("run %s: evaluation failed", run_id)
        evaluation = {"state": "failed", "error": f"{type(error).__name__}: {error}"}
    try:
        run_evaluation_save(run_id=run_id, evaluation=evaluation)
    except Exception:
        log.exception("run %s: the evaluation could not be stored", run_id)
    return evaluation


# -- classification ------------------------------------------------------------------------------

def _classification(predictor: Predictor, dataset: Dataset, labels: numpy.ndarray, prediction: dict,
                    rows: numpy.ndarray, image_layout, seed: int) -> dict:
    probabilities = numpy.asarray(prediction["probabilities"], dtype=numpy.float64)
    if probabilities.ndim == 1:  # a binary classifier's positive-class probability
        probabilities = numpy.stack([1.0 - probabilities, probabilities], axis=1)
    predicted = numpy.asarray(prediction["classes"], dtype=numpy.int64)
    table = labels.reshape(len(labels), -1)
    true = (table.argmax(axis=1) if table.shape[1] > 1 else table[:, 0]).astype(numpy.int64)  # one-hot or indices
    names = predictor.schema.get("label_names") or dataset.label_names
    count = max(probabilities.shape[1], int(true.max()) + 1, len(names or []))
    confusion = engine_metrics.get("confusion_matrix", num_classes=count)
    confusion.update(true, predicted)
    matrix = numpy.asarray(confusion.result(), dtype=numpy.int64)
    class_names = [str(names[i]) if names and i < len(names) else str(i) for i in range(count)]
    return {
        "kind": "classification",
        "class_names": class_names,
        "confusion_matrix": matrix.tolist(),
        "accuracy": float(numpy.trace(matrix) / max(matrix.sum(), 1)),
        "per_class": _per_class(matrix, class_names),
        "image_shape": image_layout.shape if image_layout is not None else None,
        "samples": _class_samples(dataset, true, predicted, probabilities, class_names, rows, image_layout, seed),
    }


def _per_class(matrix: numpy.ndarray, class_names: list[str]) -> list[dict]:
    """Precision, recall and F1 of each class (None where undefined: nothing predicted or present)."""
    hits = numpy.diag(matrix).astype(numpy.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    scores = []
    for index, name in enumerate(class_names):
        precision = hits[index] / predicted[index] if predicted[index] else None
        recall = hits[index] / support[index] if support[index] else None
        f1 = (2 * precision * recall / (precision + recall)
              if precision is not None and recall is not None and precision + recall > 0 else None)
        scores.append({"class": index, "name": name, "precision": _number(precision), "recall": _number(recall),
                       "f1": _number(f1), "support": int(support[index]), "predicted": int(predicted[index])})
    return scores


def _class_samples(dataset: Dataset, true, predicted, probabilities, class_names, rows, image_layout,
                   seed: int) -> list[dict]:
    """Up to MAX_SAMPLES predictions: up to half of them mistakes, the rest right, in row order."""
    rng = numpy.random.default_rng(seed)
    wrong = numpy.flatnonzero(true != predicted)
    right = numpy.flatnonzero(true == predicted)
    chosen_wrong = rng.permutation(wrong)[: max(MAX_SAMPLES // 2, MAX_SAMPLES - len(right))]
    chosen_right = rng.permutation(right)[: MAX_SAMPLES - len(chosen_wrong)]
    chosen = numpy.sort(numpy.concatenate([chosen_wrong, chosen_right]))
    top = numpy.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_CLASSES]
    drawer = _Drawer(dataset, image_layout)
    samples = []
    for position in chosen:
        samples.append({
            "index": int(rows[position]),
            "true": int(true[position]),
            "true_name": class_names[true[position]],
            "predicted": int(predicted[position]),
            "predicted_name": class_names[predicted[position]],
            "correct": bool(true[position] == predicted[position]),
            "top": [{"class": int(c), "name": class_names[c], "probability": _number(probabilities[position, c])}
                    for c in top[position]],
            **drawer.draw(position),
        })
    return samples


class _Drawer:
    """The sample's image for image data (pixel values scaled by the split's range)."""

    def __init__(self, dataset: Dataset, layout: images.ImageLayout | None):
        name = images.feature_array_name(dataset.schema()) if layout is not None else None
        self.pixels = dataset.arrays.get(name) if name else None
        self.layout = layout
        if self.pixels is not None:
            self.low, self.high = images.value_range(self.pixels)

    def draw(self, position: int) -> dict:
        if self.pixels is None:
            return {}
        return {"image": images.sample_image(self.pixels[position], self.layout, low=self.low, high=self.high)}


# -- regression ----------------------------------------------------------------------------------

def _regression(labels: numpy.ndarray, values, rows: numpy.ndarray, seed: int) -> dict:
    true = numpy.asarray(labels, dtype=numpy.float64).reshape(len(labels), -1)
    predicted = numpy.asarray(values, dtype=numpy.float64).reshape(len(labels), -1)
    outputs = true.shape[1]
    chosen = numpy.sort(numpy.random.default_rng(seed).permutation(len(true))[:MAX_PAIRS])
    residuals = (predicted - true).ravel()
    residuals = residuals[numpy.isfinite(residuals)]
    return {
        "kind": "regression",
        "outputs": outputs,
        "pairs": {"index": [int(rows[i]) for i in chosen], "true": [_numbers(true[i]) for i in chosen],
                  "predicted": [_numbers(predicted[i]) for i in chosen]},
        "residuals": _residual_statistics(residuals, true.ravel()),
    }


def _residual_statistics(residuals: numpy.ndarray, true: numpy.ndarray) -> dict:
    """Mean, spread and extremes of predicted - true, R², and a histogram of the residuals."""
    if not residuals.size:
        return {"count": 0}
    counts, edges = numpy.histogram(residuals, bins=HISTOGRAM_BINS)
    finite_true = true[numpy.isfinite(true)]
    variance = float(numpy.var(finite_true)) if finite_true.size else 0.0
    mse = float(numpy.mean(residuals ** 2))
    return {
        "count": int(residuals.size),
        "mean": float(residuals.mean()),
        "std": float(residuals.std()),
        "mae": float(numpy.abs(residuals).mean()),
        "rmse": float(numpy.sqrt(mse)),
        "min": float(residuals.min()),
        "max": float(residuals.max()),
        "median": float(numpy.median(residuals)),
        "r2": float(1.0 - mse / variance) if variance > 0 else None,
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
    }


# -- shared --------------------------------------------------------------------------------------

def _features(predictor: Predictor, dataset: Dataset) -> dict:
    """The dataset's array for each of the model's feature inputs (by the training binding)."""
    inputs = predictor.schema.get("inputs", {})
    return {name: dataset.arrays[inputs.get(name, {}).get("source", name)] for name in predictor.feature_inputs}


def _labels(predictor: Predictor, dataset: Dataset) -> numpy.ndarray | None:
    label_input = predictor.label_input
    source = predictor.schema.get("inputs", {}).get(label_input, {}).get("source") if label_input else None
    return dataset.arrays.get(source) if source else dataset.labels


def _rows_of(trainer, dataset: Dataset, split: str, part: Dataset) -> numpy.ndarray | None:
    """The row numbers in ``dataset`` of the trainer's split: the trainer's own split (same
    fraction, same seed, same labels) drawn again on the row numbers; None when that does not give
    the same rows."""
    if len(dataset) == len(part):
        return numpy.arange(len(dataset))
    fraction, labels = trainer.config.validation_fraction, dataset.labels
    if not 0 < fraction < 1 or len(trainer.train_data) + len(part) != len(dataset):
        return None
    arrays = {"_row": numpy.arange(len(dataset))}
    if labels is not None:
        arrays[dataset.target] = labels
    numbered = Dataset(arrays=arrays, task=dataset.task, target=dataset.target)
    training, validation = numbered.split(fraction, seed=trainer.config.seed)
    rows = (validation if split == "validation" else training).arrays["_row"]
    if len(rows) != len(part) or (labels is not None and not numpy.array_equal(labels[rows], part.labels)):
        return None
    return rows


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if numpy.isfinite(value) else None


def _numbers(values: numpy.ndarray):
    converted = [_number(value) for value in values]
    return converted[0] if len(converted) == 1 else converted
