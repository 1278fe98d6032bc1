"""A run's budgets at the door (webapp/runs/budgets.py): its size at its real batch size, its
epochs, its early-stopping monitor, the user's queued runs and storage, each refused with the
figures and the setting; and the user's usage on ``GET /api/auth/me/``. Tried as an attacker
would: huge numbers, beyond 64 bits, negative, floats where integers belong."""

from __future__ import annotations

import pytest

from engine import GraphBuilder
from tests.webapp.helpers import error_of
from webapp.datasets.models import Dataset
from webapp.projects.models import GraphVersion
from webapp.runs.layer_stats import layer_stats_file
from webapp.runs.models import Checkpoint, MetricPoint, Run
from webapp.runs.services import run_checkpoints_prune

pytestmark = pytest.mark.django_db

# The zoo MLP on digits (1,797 rows): the engine's training-memory estimate at the largest batch
# the data allows, and at batch 32.
MLP_MEMORY_AT_ALL_ROWS = 7_794_264
MLP_MEMORY_AT_32 = 409_504


@pytest.fixture
def start(client, project, graph_version, digits, enqueued, django_capture_on_commit_callbacks):
    def start_run(hyperparameters=None, **overrides):
        body = {"graph_version": graph_version.pk, "dataset": digits.pk,
                "hyperparameters": {"epochs": 2, "batch_size": 64, **(hyperparameters or {})}, **overrides}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"/api/projects/{project.pk}/runs", body, format="json")

    return start_run


def make_run(project, graph_version, dataset, **fields) -> Run:
    return Run.objects.create(project=project, graph_version=graph_version, dataset=dataset, **fields)


# -- the training's size at its real batch size -------------------------------------------------------

def test_a_huge_batch_size_is_estimated_at_the_datasets_rows_and_refused_over_the_memory_limit(start, settings):
    settings.RUN_MAX_MEMORY_BYTES = 4 * 1024 * 1024
    response = start({"batch_size": 1_000_000_000})
    assert response.status_code == 400, response.json()
    error = error_of(response)
    assert error["code"] == "over_budget"
    assert error["message"].startswith("hyperparameters.batch_size: training would need about 7.4 MiB at batch size "
                                       "1,797 (batch_size 1,000,000,000, capped by the dataset's 1,797 rows)")
    assert "over the limit of 4.0 MiB per run (NETFORGE_RUN_MAX_MEMORY_MB)" in error["message"]
    assert error["details"]["budget"] == {"name": "memory", "estimate": MLP_MEMORY_AT_ALL_ROWS,
                                          "limit": 4 * 1024 * 1024, "setting": "NETFORGE_RUN_MAX_MEMORY_MB"}
    assert "hyperparameters.batch_size" in error["details"]
    assert not Run.objects.exists()
    assert start({"batch_size": 32}).status_code == 201, "a batch that fits is accepted"


def test_with_the_default_limits_a_wide_model_trains_at_a_small_batch_but_not_at_a_billion(start, project, user):
    # The case: a model of about 0.25 GiB at batch 32 passed a batch_size of 1e9 to the worker.
    graph = GraphBuilder()
    labels = graph.input("y", [None], dtype="int64")
    logits = graph.dense(graph.relu(graph.dense(graph.input("x", [None, 64]), units=1_000_000)), units=10)
    graph.loss(graph.softmax_cross_entropy(logits, labels))
    graph.output("prediction", logits)
    wide = GraphVersion.objects.create(project=project, number=2, editor_document={}, created_by=user,
                                       spec=graph.to_spec())
    response = start({"batch_size": 1e9}, graph_version=wide.pk)
    assert response.status_code == 400
    error = error_of(response)
    assert error["details"]["budget"]["name"] == "memory" and error["details"]["budget"]["limit"] == 4 * 1024**3
    assert "at batch size 1,797 (batch_size 1,000,000,000, capped by the dataset's 1,797 rows)" in error["message"]
    assert start({"batch_size": 32}, graph_version=wide.pk).status_code == 201


def test_the_memory_of_a_distributed_run_is_per_worker(start, settings):
    settings.RUN_MAX_MEMORY_BYTES = 4 * 1024 * 1024
    assert start({"batch_size": 1797}).status_code == 400
    assert start({"batch_size": 1797}, workers=4).status_code == 201  # 450 rows a worker


def test_float64_doubles_the_estimate(start, settings):
    settings.RUN_MAX_MEMORY_BYTES = MLP_MEMORY_AT_32 * 3 // 2
    assert start({"batch_size": 32}).status_code == 201
    response = start({"batch_size": 32, "dtype": "float64"})
    assert response.status_code == 400 and error_of(response)["details"]["budget"]["estimate"] == 2 * MLP_MEMORY_AT_32


def test_parameters_and_flops_per_step_have_limits(start, settings):
    settings.RUN_MAX_PARAMETERS = 10_000
    response = start()
    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == ("graph_version: the graph has 17,226 trainable parameters, over the limit of 10,000 "
                                "per run (NETFORGE_RUN_MAX_PARAMETERS)")
    settings.RUN_MAX_PARAMETERS = 10**9
    settings.RUN_MAX_FLOPS_PER_STEP = 1_000_000
    response = start({"batch_size": 1_000_000})
    error = error_of(response)
    assert response.status_code == 400 and error["details"]["budget"]["name"] == "flops_per_step"
    assert "over the limit of 1.0 MFLOPs per step (NETFORGE_RUN_MAX_GFLOPS_PER_STEP)" in error["message"]
    assert error["details"]["budget"]["estimate"] == 34_408 * 1797
    assert start({"batch_size": 16}).status_code == 201


# -- epochs and numbers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("epochs", [10_001, 1_000_000_000, 1e9, 1e30])
def test_epochs_beyond_the_limit_are_refused_with_the_limit(start, epochs):
    response = start({"epochs": epochs})
    assert response.status_code == 400, response.json()
    error = error_of(response)
    assert error["message"].startswith("hyperparameters.epochs: at most 10,000 epochs per run "
                                       "(NETFORGE_RUN_MAX_EPOCHS), got "), error
    assert error["details"]["budget"]["limit"] == 10_000


@pytest.mark.parametrize("epochs", [2**64, 2**1000])
def test_epochs_beyond_64_bits_are_refused_where_the_json_is_parsed(start, epochs):
    response = start({"epochs": epochs})  # webapp.core.parsers: no integer beyond 64 bits gets in
    assert response.status_code == 400, response.json()
    assert error_of(response)["message"].startswith("hyperparameters.epochs: the integer "), error_of(response)


def test_the_epoch_limit_is_a_setting(start, settings):
    settings.RUN_MAX_EPOCHS = 3
    assert start({"epochs": 3}).status_code == 201
    assert error_of(start({"epochs": 4}))["message"].startswith("hyperparameters.epochs: at most 3 epochs per run")


@pytest.mark.parametrize(("hyperparameters", "field"), [
    ({"epochs": -1}, "epochs"),
    ({"epochs": 2.5}, "epochs"),
    ({"epochs": "1e9"}, "epochs"),
    ({"batch_size": -(2**63)}, "batch_size"),
    ({"batch_size": 2**64}, "batch_size"),
    ({"batch_size": 1e30}, "batch_size"),
    ({"batch_size": 0.5}, "batch_size"),
    ({"seed": 2**64}, "seed"),
    ({"early_stopping": {"patience": 2**70}}, "early_stopping.patience"),
])
def test_numbers_out_of_range_are_a_400_naming_the_field(start, hyperparameters, field):
    response = start(hyperparameters)
    assert response.status_code == 400, response.json()
    error = error_of(response)
    assert error["message"].startswith(f"hyperparameters.{field}: "), error
    assert not Run.objects.exists()


# -- early stopping ---------------------------------------------------------------------------------------

def test_an_early_stopping_monitor_the_run_does_not_report_is_refused_naming_those_it_does(start):
    response = start({"early_stopping": {"monitor": "nope"}})
    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == ("hyperparameters.early_stopping.monitor: this run does not report 'nope' on dataset "
                                "'digits'; it can monitor loss, accuracy, val_loss, val_accuracy")
    assert error["details"]["valid"] == ["loss", "accuracy", "val_loss", "val_accuracy"]


@pytest.mark.parametrize(("hyperparameters", "monitor", "accepted"), [
    ({}, "val_accuracy", True),
    ({"validation_fraction": 0}, "val_loss", False),  # no validation split: no val_ values
    ({"validation_fraction": 0}, "accuracy", True),
    ({"train_metrics": False}, "accuracy", False),
    ({"train_metrics": False}, "val_accuracy", True),
    ({"metrics": ["f1", {"name": "top_k_accuracy", "k": 3}]}, "val_top_k_accuracy_3", True),
    ({"metrics": ["f1"]}, "val_accuracy", False),
    ({"metrics": ["confusion_matrix"]}, "confusion_matrix", False),  # not one number
])
def test_the_monitors_follow_the_metrics_and_the_split(start, hyperparameters, monitor, accepted):
    response = start({**hyperparameters, "early_stopping": {"monitor": monitor}})
    assert (response.status_code == 201) == accepted, response.json()


# -- the user's runs and storage -------------------------------------------------------------------------

def test_a_user_with_too_many_queued_runs_gets_a_429_with_the_reason(start, settings, project, graph_version, digits,
                                                                    other_client, other_user):
    settings.RUN_MAX_QUEUED_PER_USER = 2
    assert start().status_code == 201
    assert start().status_code == 201
    response = start()
    assert response.status_code == 429
    error = error_of(response)
    assert error["code"] == "too_many_requests"
    assert error["message"].startswith("you have 2 runs queued, the most a user may have waiting "
                                       "(NETFORGE_RUN_MAX_QUEUED_PER_USER=2)")
    # Running and finished runs do not count against the queue; another user is not affected.
    Run.objects.filter(project=project).update(state=Run.State.RUNNING)
    assert start().status_code == 201


def test_resuming_counts_as_queueing(client, start, settings, project, graph_version, digits, enqueued):
    settings.RUN_MAX_QUEUED_PER_USER = 1
    failed = make_run(project, graph_version, digits, state=Run.State.FAILED)
    assert start().status_code == 201
    response = client.post(f"/api/runs/{failed.pk}/resume")
    assert response.status_code == 429
    failed.refresh_from_db()
    assert failed.state == Run.State.FAILED


def test_a_user_over_the_storage_quota_cannot_start_runs(start, settings, project, graph_version, digits, tmp_path):
    run = make_run(project, graph_version, digits, state=Run.State.SUCCEEDED)
    Checkpoint.objects.create(run=run, epoch=1, step=10, path=str(tmp_path / "c1"), size_bytes=600_000)
    Dataset.objects.filter(pk=digits.pk).update(size_bytes=500_000)
    settings.STORAGE_QUOTA_BYTES = 1_000_000
    response = start()
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "storage_quota"
    assert error["message"].startswith("your artifacts use 1.0 MiB (checkpoints 585.9 KiB, published models 0 bytes, "
                                       "datasets 488.3 KiB, per-layer statistics 0 bytes, imported weights 0 "
                                       "bytes), at or over the storage quota of 976.6 KiB per user "
                                       "(NETFORGE_STORAGE_QUOTA_MB)")
    assert error["details"]["budget"]["estimate"] == 1_100_000
    settings.STORAGE_QUOTA_BYTES = 2_000_000
    assert start().status_code == 201


def test_me_shows_the_users_usage_against_the_limits(client, other_client, project, graph_version, digits, settings):
    make_run(project, graph_version, digits, state=Run.State.QUEUED)
    running = make_run(project, graph_version, digits, state=Run.State.RUNNING)
    make_run(project, graph_version, digits, state=Run.State.SUCCEEDED)
    Checkpoint.objects.create(run=running, epoch=1, step=1, path="unused", size_bytes=1234)
    stats = layer_stats_file(running.pk)  # per-layer statistics count toward the quota too
    stats.parent.mkdir(parents=True, exist_ok=True)
    stats.write_bytes(b"x" * 321)
    settings.STORAGE_QUOTA_BYTES = 10**9
    body = client.get("/api/auth/me/").json()
    assert body["username"] == "alice"
    assert body["usage"] == {
        "runs_queued": 1, "runs_queued_limit": settings.RUN_MAX_QUEUED_PER_USER,
        "runs_running": 1, "runs_running_limit": settings.RUN_MAX_RUNNING_PER_USER,
        "storage_bytes": 1234 + digits.size_bytes + 321, "storage_quota_bytes": 10**9,
        "storage": {"checkpoints": 1234, "model_versions": 0, "datasets": digits.size_bytes, "layer_stats": 321,
                    "imported_weights": 0},
    }
    other = other_client.get("/api/auth/me/").json()["usage"]
    assert (other["runs_queued"], other["runs_running"], other["storage_bytes"]) == (0, 0, 0)


# -- checkpoint retention -------------------------------------------------------------------------------

def add_checkpoints(run: Run, root, values: dict[int, float], *, name: str = "val_loss") -> None:
    """A checkpoint folder and row per epoch, with the monitored value at its step."""
    for sequence, (epoch, value) in enumerate(values.items(), start=1):
        folder = root / "runs" / str(run.pk) / "checkpoints" / f"epoch-{epoch:04d}"
        folder.mkdir(parents=True)
        (folder / "weights.npz").write_bytes(b"x" * 10)
        Checkpoint.objects.create(run=run, epoch=epoch, step=epoch * 10, path=str(folder), size_bytes=10)
        MetricPoint.objects.create(run=run, sequence=sequence, name=name, step=epoch * 10, epoch=epoch, value=value,
                                   wall_time=0.0)


@pytest.mark.parametrize(("hyperparameters", "name", "values", "kept"), [
    # val_loss by default: the lowest, the earliest of equals
    ({"validation_fraction": 0.2}, "val_loss", {1: 0.9, 2: 0.3, 3: 0.5, 4: 0.3, 5: 0.6, 6: 0.7}, {2, 5, 6}),
    # no validation split: the epoch's training loss
    ({"validation_fraction": 0}, "epoch_loss", {1: 0.9, 2: 0.1, 3: 0.5, 4: 0.6}, {2, 3, 4}),
    # an accuracy is better higher
    ({"validation_fraction": 0.2, "early_stopping": {"monitor": "val_accuracy"}}, "val_accuracy",
     {1: 0.5, 2: 0.95, 3: 0.7, 4: 0.8}, {2, 3, 4}),
    # the best is among the newest: only those
    ({"validation_fraction": 0.2}, "val_loss", {1: 0.9, 2: 0.8, 3: 0.5, 4: 0.4}, {3, 4}),
])
def test_checkpoints_are_pruned_to_the_newest_and_the_best_by_the_monitored_metric(
        project, graph_version, digits, settings, hyperparameters, name, values, kept,
        django_capture_on_commit_callbacks):
    run = make_run(project, graph_version, digits, state=Run.State.RUNNING, hyperparameters=hyperparameters)
    add_checkpoints(run, settings.ARTIFACT_ROOT, values, name=name)
    with django_capture_on_commit_callbacks(execute=True):
        deleted = run_checkpoints_prune(run_id=run.pk, keep_last=2)
    assert set(deleted) == set(values) - kept
    assert set(run.checkpoints.values_list("epoch", flat=True)) == kept
    folders = {path.name for path in (settings.ARTIFACT_ROOT / "runs" / str(run.pk) / "checkpoints").iterdir()}
    assert folders == {f"epoch-{epoch:04d}" for epoch in kept}


@pytest.mark.parametrize("hyperparameters", ['{"batch_size": 1e400}', '{"epochs": -1e400}', '{"epochs": NaN}',
                                             '{"optimizer": {"name": "sgd", "lr": 1e400}}',
                                             '{"epochs": 9223372036854775808}', '{"seed": 1e400}'])
def test_numbers_json_cannot_hold_are_a_400(client, project, graph_version, digits, enqueued, hyperparameters):
    body = f'{{"graph_version": {graph_version.pk}, "dataset": {digits.pk}, "hyperparameters": {hyperparameters}}}'
    response = client.post(f"/api/projects/{project.pk}/runs", body, content_type="application/json")
    assert response.status_code == 400, response.json()
    assert "hyperparameters" in error_of(response)["message"] or "JSON" in error_of(response)["message"]
    assert not Run.objects.exists()
