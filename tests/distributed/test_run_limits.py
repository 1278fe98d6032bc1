"""A distributed run's limits, enforced by every rank on a real Celery worker: past the per-run time
limit the group stops after the same step and the run is timed_out with its checkpoints; a rank
over the per-run memory limit fails the run naming the limit, and the worker lives on.

The limits are settings the worker reads when it starts, so this module runs a platform of its own
with small ones."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.distributed.test_platform_runs import (
    RENDEZVOUS_SECONDS,
    SMALL_MOONS,
    DistributedPlatform,
    start_distributed,
)
from tests.platform.harness import User, Workspace, mlp_spec, wait_for_run

pytestmark = pytest.mark.xdist_group("platform")

MEMORY_LIMIT_MB = 200
FINISHED = ("succeeded", "failed", "cancelled", "timed_out")
# 2 inputs to 300,000 hidden units and back: about 3 million weights a rank, with their gradients,
# Adam's slots and the fused all-reduce buffer, and at TOO_LARGE_BATCH (64 rows a rank) activations
# of 77 MB each: beyond the limit whatever a rank's thread count (at 32 rows a rank, one thread, as
# ranks of one machine now split its cores, came close to it without passing it).
TOO_LARGE = {**SMALL_MOONS, "spec": lambda: mlp_spec(2, 2, hidden=300_000)}
TOO_LARGE_BATCH = 128


@pytest.fixture(scope="module")
def platform():
    home = Path(tempfile.mkdtemp(prefix="netforge-distributed-limits-"))
    system = DistributedPlatform(home)
    system.env.update({
        "NETFORGE_DISTRIBUTED_RENDEZVOUS_SECONDS": str(RENDEZVOUS_SECONDS),
        "NETFORGE_RUN_MAX_SECONDS": "6",
        "NETFORGE_RUN_MEMORY_LIMIT_MB": str(MEMORY_LIMIT_MB),
        "NETFORGE_RUN_MAX_MEMORY_MB": "100000",  # the door lets the too-large model through to the worker
    })
    try:
        system.start_database()
        system.start_redis()
        system.migrate()
        system.start_web()
        system.start_worker(concurrency=2)
        yield system
    finally:
        for service in (system.worker, system.web, system.redis, system.postgres):
            if service is not None:
                service.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def workspace(platform, django_db_blocker):
    """A new user's project on ``data`` (as in test_platform_runs, with the data chosen)."""
    from django.contrib.auth import get_user_model  # noqa: PLC0415 - as in tests/platform/conftest.py

    from webapp.core.services import api_token_create  # noqa: PLC0415

    users = []
    with django_db_blocker.unblock(), platform.database_connection():
        def make(data: dict) -> Workspace:
            model = get_user_model().objects.create_user(username=f"user-{uuid.uuid4().hex[:8]}", password="x" * 12)
            users.append(User(platform, model, api_token_create(user=model, name="tests")[1]))
            return Workspace(users[-1], data)

        yield make
        for user in users:
            user.api.close()


def finished(run_id: int, timeout: float = 90):
    return wait_for_run(run_id, lambda run: run.state in FINISHED, timeout=timeout, what=f"run {run_id} to finish")


def test_a_distributed_run_past_its_time_limit_stops_timed_out_with_its_checkpoints(workspace):
    started = start_distributed(workspace(SMALL_MOONS), workers=2, strategy="allreduce", epochs=10_000, batch_size=16)
    run = finished(started["id"])
    assert run.state == "timed_out", (run.state, run.error)
    assert "the per-run time limit (NETFORGE_RUN_MAX_SECONDS)" in run.error
    assert 0 < run.epochs_completed < 10_000
    kept = list(run.checkpoints.order_by("epoch"))
    assert kept and all(Path(checkpoint.path).is_dir() for checkpoint in kept)


def test_a_distributed_rank_over_the_memory_limit_fails_the_run_naming_it(workspace):
    started = start_distributed(workspace(TOO_LARGE), workers=2, strategy="allreduce", epochs=2,
                                batch_size=TOO_LARGE_BATCH)
    run = finished(started["id"])
    assert run.state == "failed", (run.state, run.error)
    assert "per-run memory limit" in run.error and "NETFORGE_RUN_MEMORY_LIMIT_MB" in run.error, run.error

    small = finished(start_distributed(workspace(SMALL_MOONS), workers=2, strategy="allreduce", epochs=1,
                                       batch_size=64)["id"])
    assert small.state == "succeeded", small.error
