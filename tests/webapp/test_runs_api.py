"""Runs over REST: start (queued after commit), cancel, resume, rename and tag, delete, list,
metrics with downsampling, checkpoints. Training itself is tests/platform/'s."""

from __future__ import annotations

import socket

import pytest

from engine import zoo
from tests.webapp.helpers import error_of
from webapp.datasets.services import dataset_create_builtin
from webapp.projects.converter import spec_to_editor_document
from webapp.projects.services import graph_version_create, project_create
from webapp.runs import dispatch
from webapp.runs.models import Checkpoint, MetricPoint, Run
from webapp.runs.selectors import run_metric_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def start(client, project, graph_version, digits, enqueued, django_capture_on_commit_callbacks):
    """POST a run of the MLP on digits (with ``overrides``), running the on-commit callbacks."""

    def start_run(**overrides):
        body = {"graph_version": graph_version.pk, "dataset": digits.pk,
                "hyperparameters": {"epochs": 2, "batch_size": 64}, **overrides}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"/api/projects/{project.pk}/runs", body, format="json")

    return start_run


def make_run(project, graph_version, dataset, **fields) -> Run:
    return Run.objects.create(project=project, graph_version=graph_version, dataset=dataset, **fields)


def test_starting_a_run_saves_it_queued_and_queues_it_after_commit(start, enqueued):
    response = start(name="first", tags=["baseline", "baseline", " mlp "], device="cpu", workers=2)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "queued" and body["name"] == "first" and body["workers"] == 2
    assert body["tags"] == ["baseline", "mlp"] and body["attempt"] == 0
    assert body["hyperparameters"]["epochs"] == 2
    assert body["hyperparameters"]["optimizer"] == {"name": "adam", "lr": 1e-3}
    assert "device" not in body["hyperparameters"] and "checkpoint_dir" not in body["hyperparameters"]
    assert body["graph_version_number"] == 1 and body["dataset_name"] == "digits"
    enqueued.assert_called_once_with(body["id"])


def test_nothing_is_queued_when_the_transaction_does_not_commit(client, project, graph_version, digits, enqueued):
    # Without running the on-commit callbacks (the test's transaction never commits), nothing is queued.
    response = client.post(f"/api/projects/{project.pk}/runs",
                           {"graph_version": graph_version.pk, "dataset": digits.pk}, format="json")
    assert response.status_code == 201
    enqueued.assert_not_called()


@pytest.mark.parametrize(("hyperparameters", "field", "words"), [
    ({"epochs": 0}, "epochs", "epochs must be a positive integer"),
    ({"epochs": "ten"}, "epochs", "epochs must be an integer"),
    ({"batch_size": 2.5}, "batch_size", "batch_size must be an integer"),
    ({"learning_rate": 0.1}, "learning_rate", "unknown training option 'learning_rate'"),
    ({"optimizer": {"name": "adamw2"}}, "optimizer.name", "unknown optimizer 'adamw2'"),
    ({"optimizer": {"name": "sgd", "momentun": 0.9}}, "optimizer", "unknown option(s) 'momentun'"),
    ({"validation_fraction": "a fifth"}, "validation_fraction", "must be a number"),
    ({"validation_fraction": 1.5}, "validation_fraction", "validation_fraction must be in [0, 1)"),
    ({"metrics": ["accuracy", "precission"]}, "metrics", "unknown metric 'precission'"),
    ({"early_stopping": {"patience": 0}}, "early_stopping.patience", "patience must be a positive integer"),
    ({"standardize": "yes"}, "standardize", "standardize must be true or false"),
    ({"device": "gpu"}, "device", "set the run's 'device' field instead"),
    ({"checkpoint_dir": "/etc"}, "checkpoint_dir", "checkpoints are written by the platform"),
    ({"seed": -1}, "seed", "seed must be an integer >= 0, got -1"),
])
def test_bad_hyperparameters_are_a_400_naming_the_field(start, enqueued, hyperparameters, field, words):
    response = start(hyperparameters=hyperparameters)
    assert response.status_code == 400
    error = error_of(response)
    assert error["message"].startswith(f"hyperparameters.{field}: ") and words in error["message"], error
    assert f"hyperparameters.{field}" in error["details"]
    assert not Run.objects.exists()
    enqueued.assert_not_called()


def test_hyperparameters_must_be_an_object(start):
    response = start(hyperparameters=[1, 2])
    assert response.status_code == 400
    assert "hyperparameters must be an object" in error_of(response)["message"]


@pytest.mark.parametrize(("overrides", "words"), [
    ({"dataset": 987654}, "unknown dataset 987654"),
    ({"dataset": "digits"}, "dataset: A valid integer is required."),
    ({"graph_version": 987654}, "unknown graph version 987654"),
    ({"device": "tpu"}, "device:"),
    ({"workers": 0}, "workers:"),
    ({"tags": "not-a-list"}, "tags:"),
])
def test_unknown_references_and_bad_fields_are_a_400(start, overrides, words):
    response = start(**overrides)
    assert response.status_code == 400
    assert words in error_of(response)["message"]
    assert not Run.objects.exists()


def test_another_users_dataset_is_an_unknown_dataset(start, other_user):
    theirs = dataset_create_builtin(owner=other_user, builtin="iris")
    response = start(dataset=theirs.pk)
    assert response.status_code == 400
    assert error_of(response)["message"] == f"unknown dataset {theirs.pk}"


def test_a_graph_version_of_another_project_is_refused(start, user, mlp_document):
    elsewhere = project_create(owner=user, name="Elsewhere")
    version = graph_version_create(project=elsewhere, editor_document=mlp_document, created_by=user)
    response = start(graph_version=version.pk)
    assert response.status_code == 400
    assert "is not a version of project 'Digits'" in error_of(response)["message"]


def test_a_dataset_that_cannot_feed_the_graph_is_refused(start, user):
    iris = dataset_create_builtin(owner=user, builtin="iris")  # 4 features; the MLP takes 64
    response = start(dataset=iris.pk)
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert "graph input 'x' expects per-sample shape [64], but dataset array 'x' has [4]" in message


def test_another_users_runs_are_not_found(start, other_client):
    run_id = start().json()["id"]
    for method, path in [("get", f"/api/runs/{run_id}"), ("patch", f"/api/runs/{run_id}"),
                         ("delete", f"/api/runs/{run_id}"), ("post", f"/api/runs/{run_id}/cancel"),
                         ("post", f"/api/runs/{run_id}/resume"), ("get", f"/api/runs/{run_id}/metrics"),
                         ("get", f"/api/runs/{run_id}/checkpoints")]:
        assert getattr(other_client, method)(path, {}, format="json").status_code == 404, (method, path)
    assert other_client.get("/api/runs").json()["count"] == 0
    assert Run.objects.get(pk=run_id).state == "queued"


def test_runs_need_a_login(anonymous_client, start):
    run_id = start().json()["id"]
    assert anonymous_client.get(f"/api/runs/{run_id}").status_code == 401
    assert anonymous_client.post(f"/api/runs/{run_id}/cancel").status_code == 401


def test_cancelling_a_queued_run_cancels_it_at_once(client, start):
    run_id = start().json()["id"]
    response = client.post(f"/api/runs/{run_id}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "cancelled" and body["cancel_requested"] and body["finished_at"]
    again = client.post(f"/api/runs/{run_id}/cancel")
    assert again.status_code == 409 and "already cancelled" in error_of(again)["message"]


def test_cancelling_a_running_run_asks_its_worker(client, project, graph_version, digits):
    run = make_run(project, graph_version, digits, state=Run.State.RUNNING)
    body = client.post(f"/api/runs/{run.pk}/cancel").json()
    assert body["state"] == "running" and body["cancel_requested"] is True


def test_resuming_queues_a_failed_run_again(client, project, graph_version, digits, enqueued,
                                            django_capture_on_commit_callbacks):
    run = make_run(project, graph_version, digits, state=Run.State.FAILED, error="worker lost", attempt=1,
                   cancel_requested=True)
    Checkpoint.objects.create(run=run, epoch=1, step=23, path="/nowhere")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/runs/{run.pk}/resume")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "queued" and body["error"] == "" and body["cancel_requested"] is False
    assert body["attempt"] == 1, "the worker counts the attempt when it picks the run up"
    enqueued.assert_called_once_with(run.pk)


@pytest.mark.parametrize("state", ["queued", "running", "succeeded"])
def test_only_failed_or_cancelled_runs_resume(client, project, graph_version, digits, state):
    run = make_run(project, graph_version, digits, state=state)
    response = client.post(f"/api/runs/{run.pk}/resume")
    assert response.status_code == 409
    assert f"is {state}" in error_of(response)["message"]


@pytest.mark.parametrize("state", ["queued", "running"])
def test_an_active_run_cannot_be_deleted(client, project, graph_version, digits, state):
    run = make_run(project, graph_version, digits, state=state)
    response = client.delete(f"/api/runs/{run.pk}")
    assert response.status_code == 409
    assert "cancel it before deleting it" in error_of(response)["message"]
    assert Run.objects.filter(pk=run.pk).exists()


def test_deleting_a_finished_run_removes_its_checkpoints(client, project, graph_version, digits, settings,
                                                         django_capture_on_commit_callbacks, tmp_path):
    run = make_run(project, graph_version, digits, state=Run.State.SUCCEEDED)
    folder = settings.ARTIFACT_ROOT / "runs" / str(run.pk) / "checkpoints" / "epoch-0001"
    folder.mkdir(parents=True)
    (folder / "weights.npz").write_bytes(b"...")
    outside = tmp_path / "not-an-artifact"
    outside.mkdir()
    Checkpoint.objects.create(run=run, epoch=1, step=10, path=str(folder))
    Checkpoint.objects.create(run=run, epoch=2, step=20, path=str(outside))  # never removed: not in the store
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/runs/{run.pk}").status_code == 204
    assert not Run.objects.exists() and not Checkpoint.objects.exists()
    assert not (settings.ARTIFACT_ROOT / "runs" / str(run.pk)).exists() and outside.exists()


def test_patch_changes_only_name_tags_and_notes(client, start):
    run_id = start().json()["id"]
    response = client.patch(f"/api/runs/{run_id}", {"name": "best", "tags": ["keep"], "notes": "lr 2e-3"},
                            format="json")
    assert response.status_code == 200
    assert {k: response.json()[k] for k in ("name", "tags", "notes")} == {"name": "best", "tags": ["keep"],
                                                                         "notes": "lr 2e-3"}
    refused = client.patch(f"/api/runs/{run_id}", {"state": "succeeded", "name": "x"}, format="json")
    assert refused.status_code == 400
    assert "only name, tags and notes" in error_of(refused)["message"]
    assert Run.objects.get(pk=run_id).state == "queued" and Run.objects.get(pk=run_id).name == "best"


def test_lists_filter_by_state_and_tag_and_order(client, project, graph_version, digits):
    a = make_run(project, graph_version, digits, name="a", state="succeeded", tags=["baseline"])
    b = make_run(project, graph_version, digits, name="b", state="failed", tags=["wide", "baseline2"])
    c = make_run(project, graph_version, digits, name="c", state="running", tags=[])

    def ids(query, path=f"/api/projects/{project.pk}/runs"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 200, response.json()
        return [run["id"] for run in response.json()["results"]]

    assert ids("") == [c.pk, b.pk, a.pk]
    assert ids("ordering=name") == [a.pk, b.pk, c.pk]
    assert ids("state=succeeded,failed&ordering=name") == [a.pk, b.pk]
    assert ids("tag=baseline") == [a.pk], "a tag matches whole tags only"
    assert ids(f"project={project.pk}&state=running", path="/api/runs") == [c.pk]
    assert client.get("/api/runs?state=exploded").status_code == 400
    assert "cannot order by 'colour'" in error_of(client.get("/api/runs?ordering=colour"))["message"]


def add_points(run: Run, name: str, values: list[float], *, first_sequence: int) -> int:
    MetricPoint.objects.bulk_create([
        MetricPoint(run=run, sequence=first_sequence + i, name=name, step=i + 1, epoch=(i + 1) / 10, value=value,
                    wall_time=1000.0 + i)
        for i, value in enumerate(values)
    ])
    return first_sequence + len(values)


def test_metrics_are_downsampled_keeping_minima_and_maxima(client, project, graph_version, digits):
    run = make_run(project, graph_version, digits, state=Run.State.RUNNING)
    losses = [1.0 / (1 + i) for i in range(3000)]
    losses[1700] = 9.0  # a spike late in training
    next_sequence = add_points(run, "loss", losses, first_sequence=1)
    add_points(run, "val_loss", [0.5, 0.4], first_sequence=next_sequence)
    response = client.get(f"/api/runs/{run.pk}/metrics?names=loss,val_loss&max_points=200")
    assert response.status_code == 200
    body = response.json()
    assert body["run"] == run.pk and body["state"] == "running" and body["last_sequence"] == 3002
    loss = body["series"]["loss"]
    assert len(loss["values"]) <= 200 and loss["total"] == 3000
    assert max(loss["values"]) == 9.0 and min(loss["values"]) == min(losses)
    assert loss["steps"][0] == 1 and loss["steps"][-1] == 3000
    assert len(loss["steps"]) == len(loss["epochs"]) == len(loss["wall_times"]) == len(loss["sequences"])
    assert body["series"]["val_loss"]["values"] == [0.5, 0.4]


def test_metrics_after_a_sequence_and_by_name(client, project, graph_version, digits):
    run = make_run(project, graph_version, digits, state=Run.State.SUCCEEDED)
    add_points(run, "loss", [3.0, 2.0, 1.0], first_sequence=1)
    body = client.get(f"/api/runs/{run.pk}/metrics?after_sequence=1&names=loss,accuracy").json()
    assert body["series"]["loss"]["sequences"] == [2, 3] and body["series"]["accuracy"]["values"] == []
    assert body["last_sequence"] == 3
    assert client.get(f"/api/runs/{run.pk}/metrics?after_sequence=3").json()["series"] == {}


@pytest.mark.parametrize("query", ["max_points=3", "max_points=many", "after_sequence=-1"])
def test_bad_metric_queries_are_a_400(client, project, graph_version, digits, query):
    run = make_run(project, graph_version, digits)
    response = client.get(f"/api/runs/{run.pk}/metrics?{query}")
    assert response.status_code == 400
    assert error_of(response)["message"].startswith(query.split("=")[0])


def test_run_metric_history_is_what_the_websocket_sends(project, graph_version, digits):
    run = make_run(project, graph_version, digits, state=Run.State.RUNNING)
    add_points(run, "loss", [float(i % 7) for i in range(50)], first_sequence=1)
    history = run_metric_history(run, max_points=8)
    assert set(history) == {"run", "state", "last_sequence", "series"}
    columns = history["series"]["loss"]
    assert {"steps", "epochs", "values", "wall_times", "sequences"} <= set(columns)
    assert len(columns["values"]) <= 8 and {0.0, 6.0} <= set(columns["values"])
    assert run_metric_history(run)["series"]["loss"]["values"] == [float(i % 7) for i in range(50)]
    assert run_metric_history(run, after_sequence=60)["last_sequence"] == 60


def test_checkpoints_are_listed(client, project, graph_version, digits):
    run = make_run(project, graph_version, digits, state=Run.State.RUNNING)
    for epoch in (2, 1):
        Checkpoint.objects.create(run=run, epoch=epoch, step=epoch * 10, path=f"/artifacts/{epoch}")
    body = client.get(f"/api/runs/{run.pk}/checkpoints").json()
    assert [(c["epoch"], c["step"]) for c in body] == [(1, 10), (2, 20)]
    assert "path" not in body[0]


def test_a_run_that_cannot_be_queued_fails_with_the_reason(start, enqueued):
    enqueued.side_effect = RuntimeError("no broker configured")
    run_id = start().json()["id"]
    run = Run.objects.get(pk=run_id)
    assert run.state == "failed" and "could not queue the run" in run.error


@pytest.fixture
def broker(settings):
    """The web app's Celery client on ``settings.CELERY_BROKER_URL`` (kombu's in-memory transport
    unless a test says otherwise), built afresh for the test."""
    settings.CELERY_BROKER_URL = "memory://"
    dispatch.celery_client.cache_clear()
    yield settings
    dispatch.celery_client.cache_clear()


def sent_messages(queue: str) -> list[tuple[str, str, list]]:
    """(task name, task id, arguments) of the messages waiting in ``queue``, taken off it."""
    messages = []
    with dispatch.celery_client().connection_for_read() as connection:
        waiting = connection.SimpleQueue(queue)
        while True:
            try:
                message = waiting.get(timeout=0.2)
            except waiting.Empty:
                break
            messages.append((message.headers["task"], message.headers["id"], message.decode()[0]))
            message.ack()
        waiting.close()
    return messages


def test_a_run_is_sent_to_its_devices_queue_by_task_name(client, project, graph_version, digits, broker,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/runs",
                               {"graph_version": graph_version.pk, "dataset": digits.pk, "device": "gpu"},
                               format="json")
    run = Run.objects.get(pk=response.json()["id"])
    assert run.state == "queued" and run.task_id
    assert sent_messages("gpu") == [("workers.train_run", run.task_id, [run.pk])]
    assert sent_messages("cpu") == []


def test_a_distributed_run_is_one_message_per_worker_and_one_for_its_parameter_server(
        client, project, graph_version, digits, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/runs",
                               {"graph_version": graph_version.pk, "dataset": digits.pk, "workers": 2,
                                "hyperparameters": {"strategy": "ps"}}, format="json")
    run = Run.objects.get(pk=response.json()["id"])
    group = run.task_id
    assert sorted(sent_messages("cpu")) == [
        ("workers.serve_run_parameters", f"{group}.server", [run.pk, group]),
        ("workers.train_run_rank", f"{group}.rank0", [run.pk, group, 0]),
        ("workers.train_run_rank", f"{group}.rank1", [run.pk, group, 1]),
    ]


def test_a_run_whose_broker_cannot_be_reached_fails_with_the_reason(client, project, graph_version, digits, broker,
                                                                    django_capture_on_commit_callbacks):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    broker.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    dispatch.celery_client.cache_clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/runs",
                               {"graph_version": graph_version.pk, "dataset": digits.pk}, format="json")
    assert response.status_code == 201
    run = Run.objects.get(pk=response.json()["id"])
    assert run.state == "failed" and run.finished_at is not None
    assert "could not queue the run: the message broker is unreachable" in run.error
    assert "check that Redis is running" in run.error


def test_image_augmentation_is_recorded_with_a_run_on_images_and_refused_naming_it_on_flat_data(
        client, project, user, start, enqueued, django_capture_on_commit_callbacks):
    augmentation = {"random_crop_padding": 1, "horizontal_flip": True, "normalize": "per_channel"}
    refused = start(hyperparameters={"epochs": 1, "horizontal_flip": True})  # the MLP takes digits' 64 columns
    assert refused.status_code == 400
    error = error_of(refused)
    assert list(error["details"]) == ["hyperparameters.horizontal_flip"]
    assert error["message"].startswith("hyperparameters.horizontal_flip: horizontal_flip applies to image inputs")

    cnn = graph_version_create(project=project, editor_document=spec_to_editor_document(zoo.load("small_cnn")),
                               created_by=user)
    images = dataset_create_builtin(owner=user, builtin="digits", options={"image": True})  # x (N, 1, 8, 8)
    body = {"graph_version": cnn.pk, "dataset": images.pk, "hyperparameters": {"epochs": 1, **augmentation}}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/runs", body, format="json")
    assert response.status_code == 201, response.json()
    assert {key: response.json()["hyperparameters"][key] for key in augmentation} == augmentation
    assert Run.objects.get(pk=response.json()["id"]).hyperparameters["normalize"] == "per_channel"
