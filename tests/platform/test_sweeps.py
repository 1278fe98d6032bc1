"""Sweeps on the real platform: trials trained by a Celery worker one after another (the worker that
finishes a trial starts the next), and a sweep that goes on when its worker is killed mid-trial (the
watchdog resumes the trial's run on a new worker; the sweep's state is all in the database)."""

from __future__ import annotations

import pytest

from tests.platform.harness import MOONS, get_run, wait_for_run, wait_until
from webapp.sweeps.models import Sweep, Trial

pytestmark = pytest.mark.xdist_group("platform")


def start_sweep(space, **settings) -> dict:
    response = space.user.api.post(f"/api/projects/{space.project.pk}/sweeps", json={
        "graph_version": space.version.pk, "dataset": space.dataset.pk,
        "parameters": [{"name": "optimizer.lr", "type": "float", "low": 0.001, "high": 0.1, "log": True}],
        "sampler": "random", **settings})
    assert response.status_code == 201, response.text
    return response.json()


def trials(sweep_id: int) -> list[Trial]:
    return list(Trial.objects.filter(sweep_id=sweep_id).select_related("run").order_by("number"))


def wait_for_sweep(sweep_id: int, *, timeout: float) -> Sweep:
    return wait_until(lambda: Sweep.objects.filter(pk=sweep_id).exclude(state="running").first(), timeout=timeout,
                      what=f"sweep {sweep_id} to finish", interval=0.2)


def test_a_sweep_runs_its_trials_on_the_worker_to_the_end(platform, workspace):
    space = workspace(MOONS)
    sweep = start_sweep(space, hyperparameters={"epochs": 1, "batch_size": 256}, trial_budget=3, parallelism=1)
    finished = wait_for_sweep(sweep["id"], timeout=120)
    assert finished.state == "finished"
    done = trials(sweep["id"])
    assert [trial.state for trial in done] == ["completed"] * 3
    assert all(trial.run.state == "succeeded" and trial.value is not None for trial in done)
    assert all(trial.run.tags == [f"sweep-{sweep['id']}"] for trial in done)
    # one at a time: each trial was created only after the one before it finished
    for before, after in zip(done, done[1:], strict=False):
        assert after.run.created_at >= before.run.finished_at
    detail = space.user.api.get(f"/api/sweeps/{sweep['id']}").json()
    best = min(done, key=lambda trial: trial.value)
    assert detail["best_trial"] == best.number


def test_a_sweep_survives_its_worker_killed_mid_trial(platform, workspace):
    space = workspace(MOONS)
    sweep = start_sweep(space, hyperparameters={"epochs": 3, "batch_size": 16}, trial_budget=3, parallelism=1)
    second = wait_until(lambda: len(trials(sweep["id"])) >= 2 and trials(sweep["id"])[1], timeout=120,
                        what="the second trial to start", interval=0.2)
    wait_for_run(second.run_id, lambda run: run.checkpoints.exists(), timeout=120,
                 what="the second trial's first checkpoint")
    killed_worker = get_run(second.run_id).worker

    platform.kill_worker()
    platform.start_worker()

    finished = wait_for_sweep(sweep["id"], timeout=240)
    assert finished.state == "finished"
    done = trials(sweep["id"])
    assert [trial.state for trial in done] == ["completed"] * 3, [(t.state, t.error) for t in done]
    resumed = done[1].run
    assert resumed.state == "succeeded" and resumed.attempt == 2 and resumed.worker != killed_worker
    assert resumed.epochs_completed == 3


def test_a_poor_trial_is_pruned_on_the_worker_through_its_run_cancel(platform, workspace):
    """Grid: a good learning rate first, then one too small to learn in an epoch. Successive halving
    judges the second at its first epoch against the first's: it is pruned, its run cancelled after
    the batch in progress, with the reason, while it had epochs left."""
    space = workspace(MOONS)
    response = space.user.api.post(f"/api/projects/{space.project.pk}/sweeps", json={
        "graph_version": space.version.pk, "dataset": space.dataset.pk,
        # 40 epochs: the poor trial's run must still be training when the tick judges its first epoch
        # (with 4, a quiet machine finished it in about a second, before the pruning came).
        "hyperparameters": {"epochs": 40, "batch_size": 16},
        "parameters": [{"name": "optimizer.lr", "type": "choice", "choices": [0.01, 1e-7]}],
        "sampler": "grid", "trial_budget": 2, "parallelism": 1,
        "pruner": "successive_halving", "pruner_options": {"min_epochs": 1, "reduction_factor": 3}})
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]
    finished = wait_for_sweep(sweep_id, timeout=240)
    assert finished.state == "finished"
    good, poor = trials(sweep_id)
    assert good.state == "completed" and good.run.state == "succeeded"
    assert poor.state == "pruned" and poor.pruned_at_epoch == 1, (poor.state, poor.error)
    assert "pruned at epoch 1" in poor.error
    assert poor.run.state == "cancelled" and poor.run.epochs_completed < 40 and "pruned" in poor.run.tags
    detail = space.user.api.get(f"/api/sweeps/{sweep_id}").json()
    assert detail["best_trial"] == 0
    assert detail["trials"][1]["run_state"] == "cancelled" and detail["trials"][1]["state"] == "pruned"
