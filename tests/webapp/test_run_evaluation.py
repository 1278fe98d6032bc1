"""A run's evaluation: computed by workers.evaluation from the trained model when a run succeeds,
stored on the run, and served by GET /api/runs/<id>/evaluation."""

from __future__ import annotations

import base64
import io

import numpy
import pytest
from PIL import Image

import engine
from engine import data as engine_data
from engine import zoo
from tests.webapp.test_runs_api import make_run
from webapp.datasets.images import image_layout
from webapp.runs.models import Run
from workers.evaluation import MAX_SAMPLES, evaluate_trainer, record_run_evaluation

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def digits_trained():
    dataset = engine_data.load_builtin("digits")
    trainer = engine.Trainer(zoo.load("mlp"), dataset, config={"epochs": 2, "batch_size": 64})
    trainer.run()
    return trainer, dataset


def test_a_classifier_gets_its_confusion_matrix_scores_and_samples(digits_trained):
    trainer, dataset = digits_trained
    evaluation = evaluate_trainer(trainer, dataset, image_layout=image_layout([64], hint=[1, 8, 8]))
    assert evaluation["state"] == "ready" and evaluation["kind"] == "classification"
    assert evaluation["split"] == "validation" and evaluation["rows"] == len(trainer.validation_data) == 359
    assert evaluation["class_names"] == [str(digit) for digit in range(10)]

    matrix = numpy.array(evaluation["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 359
    assert matrix.sum(axis=1).tolist() == numpy.bincount(trainer.validation_data.labels, minlength=10).tolist()
    assert evaluation["accuracy"] == pytest.approx(trainer.evaluate(trainer.validation_data)["accuracy"])
    seven = evaluation["per_class"][7]
    assert seven["name"] == "7" and seven["support"] == matrix[7].sum()
    assert seven["recall"] == pytest.approx(matrix[7, 7] / matrix[7].sum())
    assert seven["precision"] == pytest.approx(matrix[7, 7] / matrix[:, 7].sum())

    samples = evaluation["samples"]
    assert len(samples) == MAX_SAMPLES and evaluation["image_shape"] == [1, 8, 8]
    mistakes = [sample for sample in samples if not sample["correct"]]
    assert 0 < len(mistakes) <= MAX_SAMPLES // 2, "mistakes first, up to half"
    for sample in samples:
        # The index is the sample's row in the whole dataset: its label and pixels are that row's.
        assert dataset.labels[sample["index"]] == sample["true"] and sample["true_name"] == str(sample["true"])
        assert sample["correct"] == (sample["true"] == sample["predicted"])
        probabilities = [top["probability"] for top in sample["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert sample["top"][0]["class"] == sample["predicted"] and sum(probabilities) <= 1 + 1e-9
        image = Image.open(io.BytesIO(base64.b64decode(sample["image"].split(",", 1)[1])))
        assert image.size == (8, 8)
    first = samples[0]
    pixels = numpy.asarray(Image.open(io.BytesIO(base64.b64decode(first["image"].split(",", 1)[1]))))
    expected = dataset.arrays["x"][first["index"]].reshape(8, 8) / 16 * 255
    assert numpy.abs(pixels - expected).max() <= 1, "the image is the sample's own pixels"


def test_a_regression_gets_pairs_and_residual_statistics():
    dataset = engine_data.load_builtin("sine", n_samples=300)
    trainer = engine.Trainer(zoo.load("regression_mlp"), dataset, config={"epochs": 3, "batch_size": 32})
    trainer.run()
    evaluation = evaluate_trainer(trainer, dataset)
    assert evaluation["state"] == "ready" and evaluation["kind"] == "regression" and evaluation["rows"] == 60
    pairs = evaluation["pairs"]
    assert len(pairs["index"]) == len(pairs["true"]) == len(pairs["predicted"]) == 60 and evaluation["outputs"] == 1
    predicted = trainer.evaluate(trainer.validation_data)
    residuals = evaluation["residuals"]
    assert residuals["count"] == 60 and residuals["mae"] == pytest.approx(predicted["mae"], rel=1e-4)
    assert residuals["rmse"] == pytest.approx(predicted["mse"] ** 0.5, rel=1e-4)
    assert sum(residuals["histogram"]["counts"]) == 60 and len(residuals["histogram"]["edges"]) == 21
    for index, true in zip(pairs["index"], pairs["true"], strict=True):
        assert dataset.labels[index] == pytest.approx(true)


def test_a_binary_classifier_has_two_classes():
    dataset = engine_data.load_builtin("breast_cancer")
    trainer = engine.Trainer(zoo.load("logistic_regression"), dataset, config={"epochs": 2})
    trainer.run()
    evaluation = evaluate_trainer(trainer, dataset)
    assert evaluation["class_names"] == dataset.label_names
    assert numpy.array(evaluation["confusion_matrix"]).shape == (2, 2)
    assert all("image" not in sample for sample in evaluation["samples"])
    assert all(len(sample["top"]) == 2 for sample in evaluation["samples"])


def test_without_a_validation_split_the_training_data_is_evaluated():
    dataset = engine_data.load_builtin("iris")
    trainer = engine.Trainer(zoo.load("softmax_regression") | {"inputs": {
        "x": {"shape": [None, 4], "dtype": "float32"}, "y": {"shape": [None], "dtype": "int64"}}},
        dataset, config={"epochs": 1, "validation_fraction": 0.0})
    trainer.run()
    evaluation = evaluate_trainer(trainer, dataset)
    assert evaluation["split"] == "training" and evaluation["rows"] == 150
    assert len(evaluation["class_names"]) == 10, "the graph's ten outputs are classes, too"
    assert evaluation["class_names"][:3] == ["setosa", "versicolor", "virginica"]
    assert evaluation["per_class"][5]["precision"] is None or evaluation["per_class"][5]["support"] == 0


def test_recording_stores_it_on_the_running_run_and_never_raises(project, graph_version, digits, digits_trained):
    trainer, dataset = digits_trained
    run = make_run(project, graph_version, digits, state=Run.State.RUNNING)
    stored = record_run_evaluation(run.pk, trainer, dataset)
    run.refresh_from_db()
    assert run.evaluation == stored and stored["state"] == "ready" and stored["image_shape"] == [1, 8, 8]

    broken = make_run(project, graph_version, digits, state=Run.State.RUNNING)
    failed = record_run_evaluation(broken.pk, object(), dataset)  # not a trainer at all
    broken.refresh_from_db()
    assert failed["state"] == "failed" and "AttributeError" in failed["error"] and broken.evaluation == failed


def test_the_api_says_when_there_is_no_evaluation_yet(client, other_client, project, graph_version, digits):
    cases = {
        Run.State.QUEUED: ("pending", {}), Run.State.RUNNING: ("pending", {"state": "ready"}),
        Run.State.FAILED: ("unavailable", {}), Run.State.CANCELLED: ("unavailable", {}),
        Run.State.SUCCEEDED: ("unavailable", {}),
    }
    for run_state, (state, stored) in cases.items():
        run = make_run(project, graph_version, digits, state=run_state, evaluation=stored)
        response = client.get(f"/api/runs/{run.pk}/evaluation")
        assert response.status_code == 200
        body = response.json()
        assert body["state"] == state and body["run_state"] == run_state and body["reason"], body
        assert other_client.get(f"/api/runs/{run.pk}/evaluation").status_code == 404


def test_the_api_serves_a_succeeded_runs_evaluation(client, project, graph_version, digits, digits_trained):
    trainer, dataset = digits_trained
    run = make_run(project, graph_version, digits, state=Run.State.RUNNING)
    record_run_evaluation(run.pk, trainer, dataset)
    Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED)
    body = client.get(f"/api/runs/{run.pk}/evaluation").json()
    assert body["state"] == "ready" and body["run_state"] == "succeeded"
    assert len(body["confusion_matrix"]) == 10 and len(body["samples"]) == MAX_SAMPLES
    assert body["samples"][0]["image"].startswith("data:image/png;base64,")


def test_resuming_a_run_clears_its_evaluation(client, project, graph_version, digits, enqueued):
    run = make_run(project, graph_version, digits, state=Run.State.FAILED, evaluation={"state": "failed",
                                                                                       "error": "x"})
    assert client.post(f"/api/runs/{run.pk}/resume").status_code == 200
    run.refresh_from_db()
    assert run.evaluation == {}
