"""Sweeps through the REST API and their service: the space checked, trials started as runs up to the
parallelism and budget, settled and pruned from the runs' records, the best trial and importance.

Runs are moved through their lifecycle here by hand (``claim``, the epoch points, ``finish``) as a
worker would; tests/platform/test_sweeps.py runs sweeps on real workers."""

from __future__ import annotations

import pytest

from webapp.runs import lifecycle
from webapp.runs.models import MetricPoint, Run
from webapp.sweeps import services
from webapp.sweeps.models import Sweep, Trial

from .helpers import error_of

pytestmark = pytest.mark.django_db(transaction=True)

LEARNING_RATE = {"name": "optimizer.lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}
UNITS = {"name": "node:fc1.units", "type": "choice", "choices": [16, 32]}


def start(client, project, graph_version, digits, **overrides):
    body = {"graph_version": graph_version.pk, "dataset": digits.pk, "hyperparameters": {"epochs": 3},
            "parameters": [LEARNING_RATE], "sampler": "random", "trial_budget": 4, "parallelism": 2, **overrides}
    return client.post(f"/api/projects/{project.pk}/sweeps", body, format="json")


def finish(run: Run, values: list[float], *, state: str = "succeeded") -> None:
    """Train ``run`` as a worker would: claim it, record one val_loss point per epoch, finish it."""
    attempt = lifecycle.run_claim(run_id=run.pk, worker="test:1").attempt
    record(run, values)
    final = {"val_loss": values[-1]} if values else {}
    lifecycle.run_finish(run_id=run.pk, attempt=attempt, state=state, final_metrics=final)


def record(run: Run, values: list[float], *, first_epoch: int = 1) -> None:
    last = MetricPoint.objects.filter(run=run).count()
    for offset, value in enumerate(values):
        epoch = first_epoch + offset
        MetricPoint.objects.create(run=run, sequence=last + offset + 1, name="val_loss", step=epoch * 10,
                                   epoch=epoch, value=value, wall_time=0.0)


def trials_of(sweep_id: int) -> list[Trial]:
    return list(Trial.objects.filter(sweep_id=sweep_id).select_related("run").order_by("number"))


def test_a_sweep_starts_its_first_trials_as_runs_up_to_the_parallelism(client, project, graph_version, digits,
                                                                        enqueued):
    response = start(client, project, graph_version, digits, parameters=[LEARNING_RATE, UNITS])
    assert response.status_code == 201, response.content
    sweep = response.json()
    assert sweep["state"] == "running" and sweep["metric"] == "val_loss" and sweep["direction"] == "minimize"
    assert [trial["number"] for trial in sweep["trials"]] == [0, 1]
    assert enqueued.call_count == 2  # queued on the workers once the transaction committed
    for trial in trials_of(sweep["id"]):
        run = trial.run
        assert run.state == "queued" and run.tags == [f"sweep-{sweep['id']}"]
        assert 1e-3 <= run.hyperparameters["optimizer"]["lr"] <= 1e-1
        assert run.hyperparameters["epochs"] == 3
        # the node parameter is a graph version of its own, validated like any other
        assert run.graph_version.name == f"main-sweep-{sweep['id']}"
        fc1 = next(node for node in run.graph_version.spec["nodes"] if node["id"] == "fc1")
        assert fc1["params"]["units"] == trial.params["node:fc1.units"]
    listed = client.get(f"/api/projects/{project.pk}/sweeps").json()["results"]
    assert [(entry["id"], entry["trial_count"]) for entry in listed] == [(sweep["id"], 2)]


@pytest.mark.parametrize(("parameters", "field", "words"), [
    ([], "parameters", "non-empty"),
    ([{"name": "optimizer.lr", "type": "float", "low": 0.1, "high": 0.01}], "parameters[0]", "below 'high'"),
    ([{"name": "optimizer.lr", "type": "float", "low": 0, "high": 0.1, "log": True}], "parameters[0]", "above 0"),
    ([{"name": "node:nowhere.units", "type": "choice", "choices": [8]}], "parameters[0]", "no node 'nowhere'"),
    ([{"name": "epochs", "type": "int", "low": 1.5, "high": 3}], "parameters[0]", "whole number"),
    ([{"name": "optimizer.lr", "type": "range"}], "parameters[0]", "'type' must be one of"),
    ([LEARNING_RATE, {"name": "optimizer.lr", "type": "choice", "choices": [0.1]}], "parameters[1]", "twice"),
    # a value the engine refuses, found before any trial runs
    ([{"name": "optimizer.lr", "type": "choice", "choices": [0.1, -1]}], "parameters[0]", "optimizer.lr = -1"),
])
def test_a_bad_search_space_is_a_400_naming_the_parameter(client, project, graph_version, digits, enqueued,
                                                          parameters, field, words):
    response = start(client, project, graph_version, digits, parameters=parameters)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert words in error["message"] and field in error["details"], error
    assert not Sweep.objects.exists() and not Run.objects.exists()


@pytest.mark.parametrize(("overrides", "field"), [
    ({"trial_budget": 100_000}, "trial_budget"),
    ({"parallelism": 99}, "parallelism"),
    ({"pruner": "median", "pruner_options": {"patience": 3}}, "pruner_options.patience"),
    ({"pruner": "successive_halving", "pruner_options": {"reduction_factor": 1}}, "pruner_options.reduction_factor"),
    ({"hyperparameters": {"epochs": 0}}, "hyperparameters.epochs"),
    ({"metric": "val_mae"}, "metric"),  # a classifier on digits reports no mean absolute error
])
def test_bad_sweep_settings_are_a_400_naming_the_field(client, project, graph_version, digits, enqueued, overrides,
                                                       field):
    response = start(client, project, graph_version, digits, **overrides)
    assert response.status_code == 400, response.content
    assert field in error_of(response)["details"]


def test_finished_trials_make_room_for_the_next_until_the_budget_then_the_best_is_marked(
        client, project, graph_version, digits, enqueued):
    sweep_id = start(client, project, graph_version, digits, trial_budget=4, parallelism=2).json()["id"]
    finals = {0: 0.9, 1: 0.4, 2: 0.7, 3: 0.5}
    for _ in range(3):
        for trial in trials_of(sweep_id):
            if trial.run.state == "queued":
                finish(trial.run, [1.0, finals[trial.number]])
        services.sweep_advance(sweep_id=sweep_id)
    sweep = client.get(f"/api/sweeps/{sweep_id}").json()
    assert sweep["state"] == "finished" and sweep["trial_count"] == 4 == sweep["trials_finished"]
    assert [trial["value"] for trial in sweep["trials"]] == [0.9, 0.4, 0.7, 0.5]
    assert {trial["state"] for trial in sweep["trials"]} == {"completed"}
    assert sweep["best_trial"] == 1
    assert set(sweep["importance"]) == {"optimizer.lr"} and sweep["importance"]["optimizer.lr"] == pytest.approx(1.0)
    assert services.sweep_advance(sweep_id=sweep_id) is None  # finished: nothing more to do


def test_advancing_again_starts_nothing_twice(client, project, graph_version, digits, enqueued):
    sweep_id = start(client, project, graph_version, digits, trial_budget=3, parallelism=1).json()["id"]
    for _ in range(3):
        services.sweep_advance(sweep_id=sweep_id)
    assert [trial.number for trial in trials_of(sweep_id)] == [0]
    assert Run.objects.count() == 1


def test_a_grid_tries_each_point_once_in_order_and_its_size_caps_the_budget(client, project, graph_version, digits,
                                                                             enqueued):
    space = [{"name": "batch_size", "type": "choice", "choices": [16, 32]},
             {"name": "optimizer.lr", "type": "float", "low": 0.001, "high": 0.1, "log": True, "grid_points": 3}]
    sweep = start(client, project, graph_version, digits, sampler="grid", parameters=space, trial_budget=50,
                  parallelism=8).json()
    assert sweep["trial_budget"] == 6
    points = [(trial.run.hyperparameters["batch_size"], trial.run.hyperparameters["optimizer"]["lr"])
              for trial in trials_of(sweep["id"])]
    assert points == [(16, 0.001), (16, 0.01), (16, 0.1), (32, 0.001), (32, 0.01), (32, 0.1)]


def test_tpe_asks_optuna_with_the_finished_trials_and_stays_in_the_space(client, project, graph_version, digits,
                                                                          enqueued):
    space = [LEARNING_RATE, {"name": "batch_size", "type": "int", "low": 8, "high": 64, "log": True}]
    sweep_id = start(client, project, graph_version, digits, sampler="tpe", parameters=space, trial_budget=8,
                     parallelism=1, seed=7).json()["id"]
    for _ in range(8):
        for trial in trials_of(sweep_id):
            if trial.run.state == "queued":
                finish(trial.run, [abs(trial.params["optimizer.lr"] - 0.01)])
        services.sweep_advance(sweep_id=sweep_id)
    trials = trials_of(sweep_id)
    assert len(trials) == 8 and Sweep.objects.get(pk=sweep_id).state == "finished"
    for trial in trials:
        assert 1e-3 <= trial.params["optimizer.lr"] <= 1e-1 and 8 <= trial.params["batch_size"] <= 64
        assert isinstance(trial.params["batch_size"], int)
        assert trial.run.hyperparameters["batch_size"] == trial.params["batch_size"]


def test_median_pruning_cancels_a_poor_trial_through_the_lifecycle_with_the_reason(client, project, graph_version,
                                                                                    digits, enqueued):
    sweep_id = start(client, project, graph_version, digits, trial_budget=3, parallelism=2, pruner="median",
                     pruner_options={"startup_trials": 2, "warmup_epochs": 1}).json()["id"]
    first, second = trials_of(sweep_id)
    finish(first.run, [0.5, 0.4, 0.3])
    finish(second.run, [0.6, 0.5, 0.4])
    services.sweep_advance(sweep_id=sweep_id)
    third = trials_of(sweep_id)[2]
    lifecycle.run_claim(run_id=third.run.pk, worker="test:1")
    record(third.run, [0.52])  # better than the median (0.55) at epoch 1: goes on
    services.sweep_advance(sweep_id=sweep_id)
    assert Trial.objects.get(pk=third.pk).state == "active"
    record(third.run, [0.9], first_epoch=2)  # best so far 0.52 is worse than the median (0.45) at epoch 2
    services.sweep_advance(sweep_id=sweep_id)
    third = Trial.objects.select_related("run").get(pk=third.pk)
    assert third.state == "pruned" and third.pruned_at_epoch == 2 and third.value == 0.9
    assert "pruned at epoch 2" in third.error and "median" in third.error
    assert third.run.state == "running" and third.run.cancel_requested  # its worker stops it after the batch
    assert "pruned" in third.run.tags
    lifecycle.run_finish(run_id=third.run.pk, attempt=1, state="cancelled")
    services.sweep_advance(sweep_id=sweep_id)
    sweep = client.get(f"/api/sweeps/{sweep_id}").json()
    assert sweep["state"] == "finished"
    assert [(trial["state"], trial["run_state"]) for trial in sweep["trials"]][2] == ("pruned", "cancelled")


def test_successive_halving_keeps_the_best_third_at_each_rung(client, project, graph_version, digits, enqueued):
    sweep_id = start(client, project, graph_version, digits, trial_budget=3, parallelism=3,
                     pruner="successive_halving", pruner_options={"min_epochs": 1, "reduction_factor": 3}).json()["id"]
    trials = trials_of(sweep_id)
    for trial, value in zip(trials, [0.3, 0.2, 0.5], strict=True):
        lifecycle.run_claim(run_id=trial.run.pk, worker="test:1")
        record(trial.run, [value])
    services.sweep_advance(sweep_id=sweep_id)
    states = [trial.state for trial in trials_of(sweep_id)]
    assert states == ["pruned", "active", "pruned"]


def test_a_trial_that_cannot_start_fails_with_the_reason_and_the_sweep_goes_on(client, project, graph_version,
                                                                               digits, enqueued):
    space = [{"name": "node:fc1.units", "type": "choice", "choices": [16, 0]}]
    sweep_id = start(client, project, graph_version, digits, sampler="grid", parameters=space, trial_budget=2,
                     parallelism=2).json()["id"]
    ok, bad = trials_of(sweep_id)
    assert ok.state == "active" and bad.state == "failed" and bad.run is None
    assert "fc1" in bad.error
    finish(ok.run, [0.3])
    services.sweep_advance(sweep_id=sweep_id)
    sweep = client.get(f"/api/sweeps/{sweep_id}").json()
    assert sweep["state"] == "finished" and sweep["best_trial"] == 0


def test_a_failed_run_fails_its_trial(client, project, graph_version, digits, enqueued):
    sweep_id = start(client, project, graph_version, digits, trial_budget=1, parallelism=1).json()["id"]
    run = trials_of(sweep_id)[0].run
    attempt = lifecycle.run_claim(run_id=run.pk, worker="test:1").attempt
    lifecycle.run_finish(run_id=run.pk, attempt=attempt, state="failed", error="out of memory")
    services.sweep_advance_for_run(run_id=run.pk)
    sweep = client.get(f"/api/sweeps/{sweep_id}").json()
    assert sweep["state"] == "finished" and sweep["best_trial"] is None
    assert (sweep["trials"][0]["state"], sweep["trials"][0]["error"]) == ("failed", "out of memory")


def test_a_full_queue_makes_the_sweep_wait_with_the_reason(client, project, graph_version, digits, enqueued,
                                                           settings):
    settings.RUN_MAX_QUEUED_PER_USER = 1
    sweep_id = start(client, project, graph_version, digits, trial_budget=3, parallelism=3).json()["id"]
    sweep = client.get(f"/api/sweeps/{sweep_id}").json()
    assert sweep["trial_count"] == 1 and "runs queued" in sweep["waiting_reason"]
    lifecycle.run_claim(run_id=trials_of(sweep_id)[0].run.pk, worker="test:1")  # no longer waiting in the queue
    services.sweep_advance(sweep_id=sweep_id)
    assert client.get(f"/api/sweeps/{sweep_id}").json()["trial_count"] == 2
    settings.RUN_MAX_QUEUED_PER_USER = 10
    services.sweep_advance(sweep_id=sweep_id)
    sweep = client.get(f"/api/sweeps/{sweep_id}").json()
    assert sweep["trial_count"] == 3 and sweep["waiting_reason"] == ""


def test_a_refused_first_trial_refuses_the_sweep(client, project, graph_version, digits, enqueued, settings):
    settings.RUN_MAX_QUEUED_PER_USER = 0
    assert start(client, project, graph_version, digits).status_code == 429
    assert not Sweep.objects.exists()


def test_cancelling_a_sweep_cancels_its_active_trials_once(client, project, graph_version, digits, enqueued):
    sweep_id = start(client, project, graph_version, digits, trial_budget=4, parallelism=2).json()["id"]
    running = trials_of(sweep_id)[0].run
    lifecycle.run_claim(run_id=running.pk, worker="test:1")
    response = client.post(f"/api/sweeps/{sweep_id}/cancel")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "cancelled"
    assert [(trial["state"], trial["run_state"]) for trial in body["trials"]] == [
        ("cancelled", "running"), ("cancelled", "cancelled")]
    assert Run.objects.get(pk=running.pk).cancel_requested
    assert client.post(f"/api/sweeps/{sweep_id}/cancel").status_code == 409
    assert services.sweep_advance(sweep_id=sweep_id) is None


def test_another_users_sweep_is_not_found(client, other_client, project, graph_version, digits, enqueued):
    sweep_id = start(client, project, graph_version, digits).json()["id"]
    assert other_client.get(f"/api/sweeps/{sweep_id}").status_code == 404
    assert other_client.post(f"/api/sweeps/{sweep_id}/cancel").status_code == 404
    assert other_client.get(f"/api/projects/{project.pk}/sweeps").status_code == 404


def test_a_deleted_trial_run_cancels_its_trial_and_a_deleted_project_takes_its_sweeps(client, project, graph_version,
                                                                                       digits, enqueued):
    space = [{"name": "node:fc1.units", "type": "choice", "choices": [8, 16]}]
    sweep_id = start(client, project, graph_version, digits, sampler="grid", parameters=space, trial_budget=2,
                     parallelism=1).json()["id"]
    first = trials_of(sweep_id)[0]
    finish(first.run, [0.5])
    services.sweep_advance(sweep_id=sweep_id)
    second = trials_of(sweep_id)[1]
    lifecycle.run_cancel(run=second.run)  # queued: cancelled at once
    assert client.delete(f"/api/runs/{second.run.pk}").status_code == 204
    services.sweep_advance(sweep_id=sweep_id)
    sweep = client.get(f"/api/sweeps/{sweep_id}").json()
    assert sweep["state"] == "finished"
    assert (sweep["trials"][1]["state"], sweep["trials"][1]["run"], sweep["trials"][1]["error"]) == (
        "cancelled", None, "its run was deleted")
    assert client.delete(f"/api/projects/{project.pk}").status_code == 204
    assert not Sweep.objects.exists() and not Trial.objects.exists()


def test_an_accuracy_is_maximized_unless_told_otherwise(client, project, graph_version, digits, enqueued):
    sweep = start(client, project, graph_version, digits, metric="val_accuracy").json()
    assert (sweep["metric"], sweep["direction"]) == ("val_accuracy", "maximize")
    sweep = start(client, project, graph_version, digits, metric="val_accuracy", direction="minimize").json()
    assert sweep["direction"] == "minimize"
