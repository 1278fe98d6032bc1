"""Distributed runs on the real platform: Redis, uvicorn and a real Celery worker whose prefork
pool has three processes (two ranks and a parameter server at once), started by the API.

- a 2-worker run of either strategy trains, records its points and checkpoints once (rank 0),
  and streams every worker's step, throughput and state over the run's WebSocket;
- a process killed with SIGKILL mid-run (rank 1, rank 0 which records the run, or the parameter
  server) is noticed within 10 s; the run resumes from its last checkpoint with a new group and
  succeeds, or, without a checkpoint, fails with the reason;
- a rank frozen with SIGSTOP (it stops answering and keeps its pool slot) is noticed within 10 s,
  and the run resumes with the two workers it can gather;
- a group that cannot gather all its workers within the rendezvous timeout fails with the reason;
- cancel stops every worker and the parameter server after the same step;
- no process of a run outlives it, and none of the platform's outlives the tests.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from socket import create_connection

import psutil
import pytest
import redis

from tests.platform.harness import (
    MOONS,
    Platform,
    RunSocket,
    Service,
    User,
    Workspace,
    assert_checkpoints_kept,
    assert_record_complete,
    get_run,
    wait_for_run,
    wait_until,
)
from workers.distributed.rendezvous import SERVER_RANK, member_name

log = logging.getLogger(__name__)

# With tests/platform: their detection bounds are tight, and two platforms at once on two cores
# (six training processes here) would stretch them.
pytestmark = pytest.mark.xdist_group("platform")

RENDEZVOUS_SECONDS = 8
DETECTION_BOUND_SECONDS = 10.0
SMALL_MOONS = {**MOONS, "options": {"n_samples": 4000}}  # 3200 training rows: 200 steps an epoch at batch size 16


class DistributedPlatform(Platform):
    def start_worker(self, concurrency: int = 3) -> Service:
        self._workers_started += 1
        name = f"worker-{self._workers_started}"
        self.worker = Service(name, [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "cpu",
                                     "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", "INFO",
                                     "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"],
                              env=self.env, log_dir=self.logs).start()
        self.worker.wait_for_log(" ready.")
        return self.worker


@pytest.fixture(scope="module")
def platform():
    home = Path(tempfile.mkdtemp(prefix="netforge-distributed-platform-"))
    system = DistributedPlatform(home)
    system.env["NETFORGE_DISTRIBUTED_RENDEZVOUS_SECONDS"] = str(RENDEZVOUS_SECONDS)
    try:
        system.start_database()
        system.start_redis()
        system.migrate()
        system.start_web()
        worker = system.start_worker()
        yield system
        pool = psutil.Process(worker.process.pid).children()  # the pool (a killed process was replaced)
        assert len(pool) == 3, [(p.pid, p.ppid(), p.cmdline(), p.status()) for p in pool]
    finally:
        for service in (system.worker, system.web, system.redis, system.postgres):  # this module's only
            if service is not None:
                service.stop()
        shutil.rmtree(home, ignore_errors=True)
    # nothing the platform started survives it: the worker, its pool, any rank it ran
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(home) in " ".join(p.info["cmdline"] or [])
                 or any(f"NETFORGE_HOME={home}" == part for part in _environ(p))]
    assert not leftovers, leftovers


def _environ(process) -> list[str]:
    try:
        return [f"{k}={v}" for k, v in process.environ().items() if k == "NETFORGE_HOME"]
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return []


def pool_idle(platform) -> bool:
    """Whether the worker runs no task: asked of the worker itself over the broker (Celery's remote
    control), not guessed from the database, since a late rank that stands down holds a slot too."""
    from celery import Celery  # noqa: PLC0415

    client = Celery(broker=platform.redis_url)
    try:
        active = client.control.inspect(timeout=1.0).active()
    finally:
        client.close()
    return bool(active) and not any(active.values())


@pytest.fixture
def workspace(platform, django_db_blocker):
    # Each test counts on the pool's three slots being free (a group of 3, a group that gathers 3 of
    # 4): a run or a late task of the test before, slow under load, must not take one.
    wait_until(lambda: pool_idle(platform), timeout=180, what="the worker's pool to be idle", interval=0.5)
    from django.contrib.auth import get_user_model  # noqa: PLC0415 - as in tests/platform/conftest.py

    from webapp.core.services import api_token_create  # noqa: PLC0415

    with django_db_blocker.unblock(), platform.database_connection():
        model = get_user_model().objects.create_user(username=f"user-{uuid.uuid4().hex[:8]}", password="x" * 12)
        user = User(platform, model, api_token_create(user=model, name="tests")[1])
        yield Workspace(user, SMALL_MOONS)
        user.api.close()


def start_distributed(space: Workspace, *, workers: int, strategy: str, **hyperparameters) -> dict:
    response = space.user.api.post(f"/api/projects/{space.project.pk}/runs", json={
        "graph_version": space.version.pk, "dataset": space.dataset.pk,
        "hyperparameters": {"workers": workers, "strategy": strategy, **hyperparameters},
    })
    assert response.status_code == 201, response.text
    return response.json()


def members(platform, group: str) -> dict[int, dict]:
    client = redis.Redis.from_url(platform.redis_url)
    try:
        return {int(rank): json.loads(value)
                for rank, value in client.hgetall(f"netforge:distributed:{group}:members").items()}
    finally:
        client.close()


def group_left(platform, group: str, ranks) -> bool:
    client = redis.Redis.from_url(platform.redis_url)
    try:
        return all(client.exists(f"netforge:distributed:{group}:left:{rank}") for rank in ranks)
    finally:
        client.close()


def worker_messages(socket: RunSocket) -> list[dict]:
    return [m for m in socket.states if m.get("type") == "run.worker"]


class WorkerSocket(RunSocket):
    """Keeps ``run.worker`` messages too (with the states)."""

    def receive(self, timeout: float) -> dict:
        message = super().receive(timeout)
        if message["type"] == "run.worker":
            self.states.append(message)
        return message

    def receive_until_finished(self, *, timeout: float) -> str:
        def finished(socket_):
            states = [m for m in socket_.states if m["type"] == "run.state"]
            return bool(states) and states[-1]["state"] in ("succeeded", "failed", "cancelled")

        self.receive_until(finished, timeout=timeout, what="the run to finish")
        return [m for m in self.states if m["type"] == "run.state"][-1]["state"]


@pytest.mark.parametrize("strategy", ["allreduce", "ps", "ps-asynchronous"])
def test_a_two_worker_run_trains_records_once_and_streams_every_worker(platform, workspace, strategy):
    options = {"staleness": 2} if strategy == "ps-asynchronous" else {}
    strategy = strategy.removesuffix("-asynchronous")
    run = start_distributed(workspace, workers=2, strategy=strategy, epochs=2, batch_size=16, **options)
    with WorkerSocket(workspace.user.socket_url(run["id"])) as socket:
        assert socket.receive_until_finished(timeout=120) == "succeeded", get_run(run["id"]).error
        socket.receive_until(lambda s: {m["rank"] for m in worker_messages(s) if m["state"] == "succeeded"} >= {0, 1},
                             timeout=10, what="every worker's final state")
    finished = get_run(run["id"])
    assert finished.workers == 2 and finished.hyperparameters["strategy"] == strategy
    assert finished.epochs_completed == 2 and finished.attempt == 1
    points = assert_record_complete(run["id"])
    assert sum(p["name"] == "loss" for p in points) == 2 * 200  # one point per global step, from rank 0
    assert_checkpoints_kept(finished, 2)
    messages = worker_messages(socket)
    expected_ranks = {0, 1, -1} if strategy == "ps" else {0, 1}
    assert {m["rank"] for m in messages} == expected_ranks
    for rank in (0, 1):
        running = [m for m in messages if m["rank"] == rank and m["state"] == "running"]
        assert running, f"no live status of rank {rank} while it trained"
        assert any(m["samples_per_second"] > 0 and 0 < m["step"] <= 400 and m["bytes_sent"] > 0 for m in running)
        final = [m for m in messages if m["rank"] == rank][-1]
        assert final["state"] == "succeeded" and final["step"] == 400, final
    wait_until(lambda: group_left(platform, finished.task_id, [0, 1] + ([-1] if strategy == "ps" else [])),
               timeout=10, what="every process to leave the group")


def ended(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize(("strategy", "victim"), [
    ("allreduce", 1),
    ("allreduce", 0),  # the rank that records the run and beats its heartbeat
    ("ps", SERVER_RANK),
])
def test_a_process_killed_mid_run_is_detected_and_the_run_resumes_from_its_checkpoint(
        platform, workspace, strategy, victim):
    run = start_distributed(workspace, workers=2, strategy=strategy, epochs=4, batch_size=16)
    at_checkpoint = wait_for_run(run["id"], lambda r: r.checkpoints.exists() or r.state not in ("queued", "running"),
                                 timeout=90, what="the first checkpoint")
    assert at_checkpoint.state == "running", at_checkpoint.error  # not ended before its first checkpoint
    first = get_run(run["id"])
    killed = psutil.Process(members(platform, first.task_id)[victim]["pid"])
    processes = [killed, *killed.children(recursive=True)]  # a pool process and its recording process
    killed.kill()  # SIGKILL
    killed_at = time.monotonic()

    wait_for_run(run["id"], lambda r: r.attempt == 2 or r.state not in ("running",), timeout=30,
                 what="the run to be queued again")
    detected_after = time.monotonic() - killed_at
    assert detected_after < DETECTION_BOUND_SECONDS
    finished = wait_for_run(run["id"], lambda r: r.state in ("succeeded", "failed"), timeout=180,
                            what="the resumed run to finish")
    log.info("%s of a %s run killed: queued again after %.2f s, finished %.2f s after the kill", member_name(victim),
             strategy, detected_after, time.monotonic() - killed_at)
    assert finished.state == "succeeded", finished.error
    assert finished.attempt == 2 and finished.task_id != first.task_id
    assert finished.epochs_completed == 4
    assert f"run {run['id']}: resuming from the checkpoint of epoch" in platform.worker.log_text()
    points = assert_record_complete(run["id"])
    assert sum(p["name"] == "loss" for p in points) == 4 * 200
    assert_checkpoints_kept(finished, 4)
    # the first group's survivors left it, and the killed process and its children are gone for good
    survivors = [rank for rank in [0, 1] + ([SERVER_RANK] if strategy == "ps" else []) if rank != victim]
    wait_until(lambda: group_left(platform, first.task_id, survivors), timeout=10,
               what="the survivors to leave the first group")
    wait_until(lambda: all(ended(process) for process in processes), timeout=10,
               what="the killed process and its children to end")


def test_a_rank_that_stops_answering_is_detected_and_the_run_resumes_with_the_workers_it_can_gather(
        platform, workspace):
    run = start_distributed(workspace, workers=3, strategy="allreduce", epochs=3, batch_size=16)
    at_checkpoint = wait_for_run(run["id"], lambda r: r.checkpoints.exists() or r.state not in ("queued", "running"),
                                 timeout=90, what="the first checkpoint")
    assert at_checkpoint.state == "running", at_checkpoint.error  # not ended before its first checkpoint
    first = get_run(run["id"])
    frozen = members(platform, first.task_id)[1]
    os.kill(frozen["pid"], signal.SIGSTOP)  # its pool slot stays taken: two of three are free
    stopped_at = time.monotonic()
    try:
        wait_for_run(run["id"], lambda r: r.attempt == 2 or r.state != "running", timeout=30,
                     what="the run to be queued again")
        assert time.monotonic() - stopped_at < DETECTION_BOUND_SECONDS
        finished = wait_for_run(run["id"], lambda r: r.state in ("succeeded", "failed"),
                                timeout=RENDEZVOUS_SECONDS + 120, what="the resumed run to finish")
        assert finished.state == "succeeded", finished.error
        assert finished.attempt == 2 and finished.epochs_completed == 3
        client = redis.Redis.from_url(platform.redis_url)
        closed = json.loads(client.get(f"netforge:distributed:{finished.task_id}:closed"))
        client.close()
        assert len(closed) == 2  # it trained with the two workers it could gather
        points = assert_record_complete(run["id"])
        assert sum(p["name"] == "loss" for p in points) == 3 * 200
        assert_checkpoints_kept(finished, 3)
    finally:
        os.kill(frozen["pid"], signal.SIGKILL)  # Celery replaces it; the third task then finds nothing to do
    wait_until(lambda: "rendezvous closed" in platform.worker.log_text() or
               platform.worker.log_text().count("is not current; skipped") > 0, timeout=30,
               what="the late third task to stand down")


def test_a_rank_killed_before_any_checkpoint_fails_the_run_with_the_reason(platform, workspace):
    run = start_distributed(workspace, workers=2, strategy="ps", epochs=1, batch_size=1)  # 3200 steps, no checkpoint
    wait_for_run(run["id"], lambda r: r.state == "running" and r.last_sequence > 10, timeout=90,
                 what="the first points")
    group = get_run(run["id"]).task_id
    victim = members(platform, group)[1]
    os.kill(victim["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    failed = wait_for_run(run["id"], lambda r: r.state != "running", timeout=30, what="the run to leave running")
    assert time.monotonic() - killed_at < DETECTION_BOUND_SECONDS
    assert failed.state == "failed"
    assert f"worker rank 1 ({victim['host']}:{victim['pid']}) stopped answering" in failed.error, failed.error
    assert "no checkpoint to resume from" in failed.error
    wait_until(lambda: group_left(platform, group, [0, -1]), timeout=10, what="rank 0 and the server to leave")


def test_a_group_that_cannot_gather_all_its_workers_fails_with_the_reason(platform, workspace):
    began = time.monotonic()
    run = start_distributed(workspace, workers=4, strategy="allreduce", epochs=1, batch_size=16)  # 3 pool slots
    failed = wait_for_run(run["id"], lambda r: r.state not in ("queued", "running"), timeout=RENDEZVOUS_SECONDS + 20,
                          what="the run to fail")
    assert time.monotonic() - began < RENDEZVOUS_SECONDS + 10
    assert failed.state == "failed"
    assert "could not start: only 3 of 4 processes joined within 8 s" in failed.error, failed.error
    assert "--concurrency" in failed.error
    # the fourth task, once a slot frees, finds the run failed and does nothing
    wait_until(lambda: "is not current; skipped" in platform.worker.log_text(), timeout=30,
               what="the late rank to skip")


def listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("strategy", ["allreduce", "ps"])
def test_cancel_stops_every_worker_and_the_parameter_server_after_the_same_step(platform, workspace, strategy):
    run = start_distributed(workspace, workers=2, strategy=strategy, epochs=50, batch_size=16)
    processes = {0, 1, SERVER_RANK} if strategy == "ps" else {0, 1}
    with WorkerSocket(workspace.user.socket_url(run["id"])) as socket:
        socket.receive_until(lambda s: {m["rank"] for m in worker_messages(s) if m["state"] == "running"
                                        and m["step"] > 0} >= processes, timeout=90, what="every process training")
        response = workspace.user.api.post(f"/api/runs/{run['id']}/cancel")
        assert response.status_code in (200, 202), response.text
        assert socket.receive_until_finished(timeout=30) == "cancelled"
        socket.receive_until(lambda s: {m["rank"] for m in worker_messages(s) if m["state"] == "cancelled"}
                             >= processes, timeout=10, what="every process to stop")
    finals = {rank: [m for m in worker_messages(socket) if m["rank"] == rank][-1] for rank in processes}
    assert len({final["step"] for final in finals.values()}) == 1 and finals[0]["step"] > 0, finals
    group = get_run(run["id"]).task_id
    wait_until(lambda: group_left(platform, group, processes), timeout=10, what="every process to leave the group")
    addresses = [member["address"] for member in members(platform, group).values() if member["address"]]
    assert len(addresses) == (1 if strategy == "ps" else 2)
    wait_until(lambda: not any(listening(address) for address in addresses), timeout=10,
               what="every gRPC server of the group to close")
