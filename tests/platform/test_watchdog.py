"""A worker killed with SIGKILL mid-run: the run does not stay running. With a checkpoint it is
resumed by another worker and succeeds with a complete record; without one it fails with the reason.

The bound (see workers/watchdog.py): the run leaves "running" at most RUN_HEARTBEAT_SECONDS +
RUN_STALE_AFTER_SECONDS + the check interval after the worker died (0.5 + 5 + 1.25 s in the test
settings), counted from when a worker (whose thread runs the watchdog) is up.
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from tests.platform.harness import (
    MOONS,
    assert_checkpoints_kept,
    assert_record_complete,
    get_run,
    stored_points,
    wait_for_run,
)
from webapp.runs.models import Run
from workers.watchdog import check_interval

pytestmark = pytest.mark.xdist_group("platform")

SLACK_SECONDS = 2.0


def kill_worker_and_start_another(platform) -> tuple[float, float]:
    """Returns when the worker was killed and how long the new one took to be ready."""
    platform.kill_worker()
    killed_at = time.monotonic()
    platform.start_worker()
    return killed_at, time.monotonic() - killed_at


def detection_bound(worker_ready_after: float) -> float:
    stale = settings.RUN_HEARTBEAT_SECONDS + settings.RUN_STALE_AFTER_SECONDS
    return max(stale, worker_ready_after) + check_interval() + SLACK_SECONDS


def test_a_run_whose_worker_is_killed_resumes_from_its_checkpoint_on_another_worker(platform, workspace):
    space = workspace(MOONS)
    run = space.start_run(epochs=5, batch_size=16)  # 1000 batches an epoch
    wait_for_run(run["id"], lambda r: r.checkpoints.exists(), timeout=60, what="the first checkpoint")
    first_worker = get_run(run["id"]).worker

    killed_at, ready_after = kill_worker_and_start_another(platform)

    wait_for_run(run["id"], lambda r: r.state != "running" or r.attempt == 2, timeout=60,
                 what="the run to be queued again")
    assert time.monotonic() - killed_at < detection_bound(ready_after)
    wait_for_run(run["id"], lambda r: r.attempt == 2, timeout=30, what="the second attempt to start")
    finished = wait_for_run(run["id"], lambda r: r.state in ("succeeded", "failed"), timeout=120,
                            what="the resumed run to finish")
    assert finished.state == "succeeded", finished.error
    assert finished.worker != first_worker
    assert finished.epochs_completed == 5
    points = assert_record_complete(run["id"])
    assert sum(p["name"] == "loss" for p in points) == 5 * 1000
    assert_checkpoints_kept(finished, 5)


def test_a_run_whose_worker_is_killed_before_any_checkpoint_fails_with_the_reason(platform, workspace):
    space = workspace(MOONS)
    run = space.start_run(epochs=1, batch_size=1)  # 16000 batches before the first checkpoint
    wait_for_run(run["id"], lambda r: r.state == "running" and r.last_sequence > 0, timeout=60, what="the first points")
    worker = get_run(run["id"]).worker

    killed_at, ready_after = kill_worker_and_start_another(platform)

    failed = wait_for_run(run["id"], lambda r: r.state != "running", timeout=60, what="the run to leave running")
    assert time.monotonic() - killed_at < detection_bound(ready_after)
    assert failed.state == "failed"
    assert f"worker {worker} stopped sending heartbeats at" in failed.error
    assert "no checkpoint to resume from" in failed.error
    assert not failed.checkpoints.exists()
    assert len(stored_points(run["id"])) == failed.last_sequence  # what was recorded stays


def test_a_queued_run_whose_message_the_broker_lost_is_queued_again(platform, workspace):
    """As after a Redis restart without persistence: the run names a task that no queue holds."""
    space = workspace()
    run = Run.objects.create(project=space.project, graph_version=space.version, dataset=space.dataset,
                             created_by=space.user.model, hyperparameters={"epochs": 1, "batch_size": 256},
                             task_id="a-message-redis-lost")
    finished = wait_for_run(run.pk, lambda r: r.state != "queued" and r.state != "running",
                            timeout=3 * check_interval() + 30, what="the run to be queued again and finish")
    assert finished.state == "succeeded", finished.error
    assert finished.task_id != "a-message-redis-lost"
    assert finished.attempt == 1
