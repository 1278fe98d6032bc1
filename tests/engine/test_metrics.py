"""Streaming metrics: fed in uneven batches they equal scikit-learn on the whole data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from engine import metrics
from engine.errors import EngineError

TOLERANCE = 1e-10
UNEVEN_BATCHES = (1, 16, 0, 45, 7)  # sizes of the first batches; the last batch takes the rest


def stream(metric, y_true, y_pred, batch_sizes=UNEVEN_BATCHES):
    """Feed the data to the metric in batches of the given sizes, then one batch with the rest."""
    bounds = np.cumsum((0,) + tuple(batch_sizes))
    bounds = np.append(bounds[bounds < len(y_true)], len(y_true))
    metric.reset()
    for start, stop in zip(bounds[:-1], bounds[1:]):
        metric.update(y_true[start:stop], y_pred[start:stop])
    return metric.result()


# --- data -----------------------------------------------------------------------------------
# Each maker returns (y_true, y_pred, reference), where reference is what scikit-learn sees:
# (class labels, predicted labels, scores), or (targets, predictions) for regression.

N = 150
CLASSES = 4


def _rng(seed=0):
    return np.random.default_rng(seed)


def _all_classes(labels, num_classes):
    labels[:num_classes] = np.arange(num_classes)  # every class appears at least once
    return labels


def binary_probabilities(shape="(N,)", seed=0):
    rng = _rng(seed)
    labels = _all_classes(rng.integers(0, 2, N), 2)
    positive = np.clip(0.35 * labels + rng.uniform(0.05, 0.7, N), 0.01, 0.99)
    y_pred = {"(N,)": positive, "(N, 1)": positive[:, None], "(N, 2)": np.stack([1 - positive, positive], 1)}[shape]
    return labels, y_pred, (labels, (positive >= 0.5).astype(int), positive)


def multiclass_probabilities(num_classes=CLASSES, seed=1, one_hot=False):
    rng = _rng(seed)
    labels = _all_classes(rng.integers(0, num_classes, N), num_classes)
    logits = rng.normal(size=(N, num_classes)) + 1.5 * np.eye(num_classes)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = np.eye(num_classes)[labels] if one_hot else labels
    return y_true, probabilities, (labels, probabilities.argmax(axis=1), probabilities)


def integer_predictions(seed=2):
    """Predicted class indices as y_pred; class 5 is only ever predicted, never true."""
    rng = _rng(seed)
    labels = _all_classes(rng.integers(0, 5, N), 5)
    predicted = np.where(rng.uniform(size=N) < 0.6, labels, rng.integers(0, 6, N))
    return labels, predicted, (labels, predicted, None)


def tied_binary_scores(seed=3):
    """Scores rounded to one decimal, so many positives and negatives tie."""
    labels, positive, _ = binary_probabilities(seed=seed)
    scores = np.round(positive, 1)
    return labels, scores, (labels, (scores >= 0.5).astype(int), scores)


def clipped_binary_probabilities():
    """Some probabilities are exactly 0 or 1; scikit-learn gets them already clipped."""
    labels, positive, _ = binary_probabilities(seed=4)
    positive = positive.copy()
    positive[:6] = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    clipped = np.clip(positive, 1e-7, 1 - 1e-7)
    return labels, positive, (labels, None, clipped)


def regression(outputs=None, offset=0.0, seed=5):
    rng = _rng(seed)
    shape = (N,) if outputs is None else (N, outputs)
    targets = offset + rng.normal(size=shape)
    predictions = targets + 0.5 * rng.normal(size=shape)
    return targets, predictions, (targets, predictions)


def regression_with_constant_output():
    targets, predictions, _ = regression(outputs=3)
    targets[:, 1] = 2.0
    predictions[:, 1] = 2.0  # SST = SSE = 0: scikit-learn scores this output 1
    return targets, predictions, (targets, predictions)


def _labels(reference):
    return reference[0], reference[1]


# --- metric on our side, reference on scikit-learn's side, data --------------------------------

CASES = [
    # spec, data, scikit-learn on the whole data
    ("accuracy", multiclass_probabilities(), lambda r: sk.accuracy_score(*_labels(r))),
    ("accuracy", multiclass_probabilities(one_hot=True), lambda r: sk.accuracy_score(*_labels(r))),
    ("accuracy", binary_probabilities(), lambda r: sk.accuracy_score(*_labels(r))),
    ("accuracy", integer_predictions(), lambda r: sk.accuracy_score(*_labels(r))),
    *[
        ({"name": "top_k_accuracy", "k": k}, multiclass_probabilities(num_classes=6),
         lambda r, k=k: sk.top_k_accuracy_score(r[0], r[2], k=k, labels=range(6)))
        for k in (1, 2, 3)
    ],
    ("top_k_accuracy", multiclass_probabilities(num_classes=8),
     lambda r: sk.top_k_accuracy_score(r[0], r[2], k=5, labels=range(8))),
    ({"name": "top_k_accuracy", "k": 1}, binary_probabilities(),
     lambda r: sk.top_k_accuracy_score(r[0], r[2], k=1)),
    *[
        (name, binary_probabilities(shape), lambda r, function=function: function(*_labels(r)))
        for name, function in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score))
        for shape in ("(N,)", "(N, 1)", "(N, 2)")
    ],
    *[
        ({"name": name, "average": average}, data,
         lambda r, function=function, average=average: function(*_labels(r), average=average, zero_division=0))
        for name, function in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score))
        for average in ("macro", "micro")
        for data in (multiclass_probabilities(), multiclass_probabilities(one_hot=True), integer_predictions())
    ],
    ({"name": "f1", "average": "binary", "pos_label": 0}, binary_probabilities(),
     lambda r: sk.f1_score(*_labels(r), pos_label=0)),
    ("f1", multiclass_probabilities(), lambda r: sk.f1_score(*_labels(r), average="macro")),  # default
    ("roc_auc", binary_probabilities(), lambda r: sk.roc_auc_score(r[0], r[2])),
    ("roc_auc", binary_probabilities("(N, 2)"), lambda r: sk.roc_auc_score(r[0], r[2])),
    ("roc_auc", tied_binary_scores(), lambda r: sk.roc_auc_score(r[0], r[2])),
    ("roc_auc", multiclass_probabilities(), lambda r: sk.roc_auc_score(r[0], r[2], multi_class="ovr")),
    ("log_loss", binary_probabilities(), lambda r: sk.log_loss(r[0], y_proba=r[2])),
    ("log_loss", binary_probabilities("(N, 2)"), lambda r: sk.log_loss(r[0], y_proba=r[2])),
    ("log_loss", multiclass_probabilities(), lambda r: sk.log_loss(r[0], y_proba=r[2])),
    ("log_loss", clipped_binary_probabilities(), lambda r: sk.log_loss(r[0], y_proba=r[2])),
    ("mse", regression(), lambda r: sk.mean_squared_error(*r)),
    ("mse", regression(outputs=3), lambda r: sk.mean_squared_error(*r)),
    ("mae", regression(), lambda r: sk.mean_absolute_error(*r)),
    ("mae", regression(outputs=3), lambda r: sk.mean_absolute_error(*r)),
    ("r2", regression(), lambda r: sk.r2_score(*r)),
    ("r2", regression(outputs=3), lambda r: sk.r2_score(*r)),
    ("r2", regression(offset=1e4), lambda r: sk.r2_score(*r)),  # large mean, small spread
    ("r2", regression_with_constant_output(), lambda r: sk.r2_score(*r)),
]


def _case_id(case):
    spec, (y_true, y_pred, _), _ = case
    name = spec if isinstance(spec, str) else "-".join(str(value) for value in spec.values())
    return f"{name}-true{y_true.shape}-pred{y_pred.shape}-{y_pred.dtype}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_streaming_equals_sklearn_on_the_whole_data(case):
    spec, (y_true, y_pred, reference), sklearn_function = case
    result = stream(metrics.get(spec), y_true, y_pred)
    assert isinstance(result, float)
    assert result == pytest.approx(sklearn_function(reference), rel=TOLERANCE, abs=TOLERANCE)


@pytest.mark.parametrize(
    "data",
    [multiclass_probabilities(), binary_probabilities(), integer_predictions()],
    ids=["probabilities", "binary", "class-indices"],
)
def test_confusion_matrix_equals_sklearn(data):
    y_true, y_pred, (labels, predicted, _) = data
    result = stream(metrics.get("confusion_matrix"), y_true, y_pred)
    size = len(result)
    assert result == sk.confusion_matrix(labels, predicted, labels=range(size)).tolist()


def test_confusion_matrix_keeps_num_classes_rows_even_for_unseen_classes():
    assert metrics.compute("confusion_matrix", [0, 1, 1], np.array([0, 1, 0]), num_classes=3) == [
        [1, 0, 0],
        [1, 1, 0],
        [0, 0, 0],
    ]


def test_confusion_matrix_grows_as_classes_appear():
    metric = metrics.get("confusion_matrix")
    metric.update([0, 1], np.array([0, 1]))
    metric.update([3], np.array([2]))
    assert metric.result() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]


def test_reset_forgets_earlier_batches():
    y_true, y_pred, _ = multiclass_probabilities()
    metric = metrics.get("f1", average="macro")
    metric.update(y_true[:50], y_pred[::-1][:50])
    metric.reset()
    metric.update(y_true, y_pred)
    assert metric.result() == metrics.compute({"name": "f1", "average": "macro"}, y_true, y_pred)


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
def test_every_metric_says_its_name_and_direction(name):
    metric = metrics.get(name)
    assert metric.name == name
    assert isinstance(metric.higher_is_better, bool)
    assert type(metric).__doc__


def test_get_takes_a_name_a_dict_or_an_instance():
    by_name = metrics.get("f1", average="micro")
    by_dict = metrics.get({"name": "f1", "average": "micro"})
    assert by_name.options() == by_dict.options() == {"average": "micro", "num_classes": None, "pos_label": 1}
    assert metrics.get(by_dict) is by_dict
    assert metrics.get({"name": by_dict.name, **by_dict.options()}).options() == by_dict.options()


def test_compute_leaves_a_metric_instance_unchanged():
    metric = metrics.get("accuracy")
    metric.update([0, 1], np.array([0, 0]))
    assert metrics.compute(metric, [1, 1], np.array([1, 1])) == 1.0
    assert metric.result() == 0.5


def test_float_class_indices_are_accepted():
    assert metrics.compute("accuracy", np.array([0.0, 1.0, 2.0]), np.eye(3)) == 1.0


# --- errors ---------------------------------------------------------------------------------

ERRORS = [
    # call, text the message must contain
    (lambda: metrics.get("f2"), "unknown metric 'f2'; valid names: accuracy, top_k_accuracy"),
    (lambda: metrics.get({"average": "macro"}), "has no 'name'"),
    (lambda: metrics.get(3), "must be a name, a dict"),
    (lambda: metrics.get("f1", averaging="macro"), "no option(s) averaging; valid options: average, num_classes"),
    (lambda: metrics.get("mse", k=3), "valid options: none"),
    (lambda: metrics.get("f1", average="weighted"), "average must be one of 'binary', 'macro', 'micro'"),
    (lambda: metrics.get("top_k_accuracy", k=0), "k must be an integer >= 1"),
    (lambda: metrics.get(metrics.get("f1"), average="macro"), "cannot be given together with a Metric"),
    (lambda: metrics.compute("accuracy", [0, 1, 1], np.eye(2)),
     "accuracy: y_true has shape (3,) but y_pred has shape (2, 2)"),
    (lambda: metrics.compute("mse", np.zeros((4, 2)), np.zeros((4, 3))),
     "mse: y_true has shape (4, 2) but y_pred has shape (4, 3)"),
    (lambda: metrics.compute("roc_auc", [1, 1, 1], np.array([0.2, 0.6, 0.9])), "only positive samples"),
    (lambda: metrics.compute("roc_auc", [0, 1, 1], np.eye(3)), "class 2 vs rest"),
    (lambda: metrics.compute("f1", [0, 1, 2], np.eye(3), average="binary"), "use average='macro' or 'micro'"),
    (lambda: metrics.compute("log_loss", [0, 3], np.full((2, 3), 1 / 3)),
     "y_true holds class 3 but y_pred has 3 classes (0 to 2)"),
    (lambda: metrics.compute("log_loss", [0, 2], np.array([0.2, 0.7])),
     "y_true holds class 2 but y_pred has 2 classes (0 to 1)"),
    (lambda: metrics.compute("accuracy", [0, 0.5], np.eye(2)), "must hold integer class indices"),
    (lambda: metrics.compute("confusion_matrix", [0, 4], np.array([0, 1]), num_classes=3), "num_classes is 3"),
    (lambda: metrics.get("accuracy").result(), "accuracy: no samples seen yet"),
]


@pytest.mark.parametrize("call, message", ERRORS, ids=[message for _, message in ERRORS])
def test_mistakes_raise_engine_error_that_says_what_is_wrong(call, message):
    with pytest.raises(EngineError) as error:
        call()
    assert message in str(error.value)


def test_class_count_must_not_change_between_batches():
    metric = metrics.get("log_loss")
    metric.update([0, 1], np.full((2, 3), 1 / 3))
    with pytest.raises(EngineError, match="has 4 classes but earlier batches had 3"):
        metric.update([0, 1], np.full((2, 4), 1 / 4))


# --- property: any split into batches gives the one-shot result --------------------------------

DATA_FOR = {
    "accuracy": lambda seed: multiclass_probabilities(seed=seed),
    "top_k_accuracy": lambda seed: multiclass_probabilities(num_classes=7, seed=seed),
    "confusion_matrix": lambda seed: integer_predictions(seed=seed),
    "precision": lambda seed: binary_probabilities(seed=seed),
    "recall": lambda seed: multiclass_probabilities(seed=seed),
    "f1": lambda seed: integer_predictions(seed=seed),
    "roc_auc": lambda seed: tied_binary_scores(seed=seed),
    "log_loss": lambda seed: multiclass_probabilities(seed=seed),
    "mse": lambda seed: regression(outputs=2, seed=seed),
    "mae": lambda seed: regression(seed=seed),
    "r2": lambda seed: regression(outputs=2, offset=100.0, seed=seed),
}


def test_property_covers_every_metric():
    assert set(DATA_FOR) == set(metrics.METRICS)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(DATA_FOR)),
    seed=st.integers(0, 1000),
    batch_sizes=st.lists(st.integers(0, 60), max_size=8),
)
def test_any_batch_split_gives_the_one_shot_result(name, seed, batch_sizes):
    y_true, y_pred, _ = DATA_FOR[name](seed)
    streamed = stream(metrics.get(name), y_true, y_pred, batch_sizes)
    one_shot = metrics.compute(name, y_true, y_pred)
    if name == "confusion_matrix":
        assert streamed == one_shot
    else:
        assert streamed == pytest.approx(one_shot, rel=1e-12, abs=1e-12)
