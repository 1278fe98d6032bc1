"""The recording process beside each Celery pool process (workers/recording.py): runs are recorded
from it, it ends with its pool process, and when it dies alone the run it was recording is resumed
by the watchdog and later runs of that pool process record in threads.

Real processes throughout: the platform's Celery worker, its pool process and the recording
process that pool process forked, killed with SIGKILL by pid.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.platform.harness import DIGITS, MOONS, assert_record_complete, get_run, wait_for_run, wait_until

pytestmark = pytest.mark.xdist_group("platform")


def pool_pid(run_id: int) -> int:
    """The pool process that trains the run (``Run.worker`` is ``host:pid``)."""
    return int(get_run(run_id).worker.rsplit(":", 1)[1])


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def recording_process_of(pool: int) -> int:
    (child,) = wait_until(lambda: children(pool), timeout=10, what=f"the recording process of pool process {pool}")
    return child


def wait_for_checkpoint(run_id: int):
    return wait_for_run(run_id, lambda r: r.checkpoints.exists(), timeout=60, what="the first checkpoint")


def test_a_pool_process_records_its_runs_from_a_process_of_its_own(platform, workspace):
    space = workspace(DIGITS)
    run = space.start_run(epochs=3, batch_size=32)
    finished = wait_for_run(run["id"], lambda r: r.state != "queued" and r.state != "running", timeout=60,
                            what="the run to finish")
    assert finished.state == "succeeded", finished.error
    pool = pool_pid(run["id"])
    recorder = recording_process_of(pool)
    assert alive(recorder)
    assert f"recording process {recorder} started beside pool process {pool}" in platform.worker.log_text()
    points = assert_record_complete(run["id"])
    assert {"loss", "epoch_loss", "samples_per_second"} <= {p["name"] for p in points}
    assert finished.checkpoints.count() == 3


def test_the_recording_process_ends_with_its_pool_process(platform, workspace):
    space = workspace(MOONS)
    run = space.start_run(epochs=4, batch_size=16)  # 1000 batches an epoch
    wait_for_checkpoint(run["id"])
    pool = pool_pid(run["id"])
    recorder = recording_process_of(pool)

    os.kill(pool, signal.SIGKILL)  # the pool process alone; Celery starts another one

    wait_until(lambda: not alive(recorder), timeout=10, what="the recording process to end after its pool process")
    finished = wait_for_run(run["id"], lambda r: r.state in ("succeeded", "failed", "cancelled"), timeout=120,
                            what="the run to be resumed and finish")
    assert finished.state == "succeeded", finished.error
    assert finished.attempt == 2
    assert pool_pid(run["id"]) != pool
    assert sum(p["name"] == "loss" for p in assert_record_complete(run["id"])) == 4 * 1000


def test_a_run_whose_recording_process_dies_is_resumed_and_later_runs_record_in_threads(platform, workspace):
    space = workspace(MOONS)
    run = space.start_run(epochs=4, batch_size=16)
    wait_for_checkpoint(run["id"])
    pool = pool_pid(run["id"])
    recorder = recording_process_of(pool)

    os.kill(recorder, signal.SIGKILL)

    finished = wait_for_run(run["id"], lambda r: r.state in ("succeeded", "failed", "cancelled"), timeout=120,
                            what="the run to be resumed and finish")
    assert finished.state == "succeeded", finished.error
    assert finished.attempt == 2
    assert sum(p["name"] == "loss" for p in assert_record_complete(run["id"])) == 4 * 1000
    log = platform.worker.log_text()
    assert f"the recording process {recorder} is gone" in log

    # The same pool process, without a recording process now, records the next run in threads.
    later = space.start_run(epochs=2, batch_size=16)
    done = wait_for_run(later["id"], lambda r: r.state in ("succeeded", "failed", "cancelled"), timeout=60,
                        what="the next run to finish")
    assert done.state == "succeeded", done.error
    assert sum(p["name"] == "loss" for p in assert_record_complete(later["id"])) == 2 * 1000
    assert pool_pid(later["id"]) == pool  # one pool process (concurrency 1), alive all along
    # the dead recording process was reaped, and no new one started
    assert children(pool) == [], [Path(f"/proc/{child}/stat").read_text() for child in children(pool)]
