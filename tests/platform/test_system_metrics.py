"""A run's CPU and memory (``workers.system_metrics``): sampled from the training process by its
recorder at most every ``SAMPLE_SECONDS``, stored and streamed as ordinary ``system/...`` points,
once per step at most; and the sampler itself on this test's own process."""

from __future__ import annotations

import time

import pytest

from tests.platform.harness import RunSocket, assert_record_complete
from workers import system_metrics
from workers.system_metrics import CPU_PERCENT, MEMORY_PERCENT, RSS_MB, SystemSampler

pytestmark = pytest.mark.xdist_group("platform")


def test_the_sampler_measures_a_process_at_its_interval():
    import os  # noqa: PLC0415

    cpu_start, wall_start = time.process_time(), time.monotonic()
    sampler = SystemSampler(os.getpid(), interval=0.3)
    assert sampler.sample_if_due() == {}  # the first interval has not passed
    ballast = bytearray(64 * 2**20)  # 64 MiB, touched so that it is resident
    ballast[::4096] = b"\1" * len(ballast[::4096])
    deadline = time.monotonic() + 0.35
    while time.monotonic() < deadline:  # busy: the CPU share is near one core
        pass
    values = sampler.sample_if_due()
    # this process's own share of a core over the interval (other work on a loaded machine lowers it)
    share = 100 * (time.process_time() - cpu_start) / (time.monotonic() - wall_start)
    assert set(values) >= {CPU_PERCENT, RSS_MB, MEMORY_PERCENT}
    assert values[CPU_PERCENT] == pytest.approx(share, abs=15) and values[CPU_PERCENT] > 5
    assert values[RSS_MB] > 64
    assert 0 < values[MEMORY_PERCENT] < 100
    assert sampler.sample_if_due() == {}  # not again before the next interval
    del ballast


def test_a_process_that_ended_is_no_longer_sampled():
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    sampler = SystemSampler(child.pid, interval=0.0)
    child.wait()
    assert sampler.sample() == {}
    assert sampler.sample_if_due() == {}


def test_a_run_records_and_streams_its_cpu_and_memory_beside_its_curves(workspace):
    space = workspace()
    # A run long enough for any machine, cancelled once it has been sampled three times: how long a
    # fixed number of epochs takes depends on the machine (150 took 3.8 s on a quiet one).
    run = space.start_run(epochs=10_000, batch_size=16, optimizer={"name": "adam", "lr": 0.001})
    with RunSocket(space.user.socket_url(run["id"])) as socket:
        socket.receive_until(lambda s: sum(p["name"] == RSS_MB for p in s.points) >= 3, timeout=120,
                             what="three samples of the run's memory")
        assert space.user.api.post(f"/api/runs/{run['id']}/cancel").status_code == 200
        state = socket.receive_until_finished(timeout=60)
    assert state == "cancelled"
    stored = assert_record_complete(run["id"])  # numbered without gaps, no (series, step) twice
    assert [p for p in sorted(socket.points, key=lambda p: p["seq"])] == stored  # streamed like the loss
    memory = [p for p in stored if p["name"] == RSS_MB]
    cpu = [p for p in stored if p["name"] == CPU_PERCENT]
    losses = [p for p in stored if p["name"] == "loss"]
    training_seconds = losses[-1]["wall_time"] - losses[0]["wall_time"]
    assert training_seconds > 2 * system_metrics.SAMPLE_SECONDS, "the run was too short to be sampled twice"
    assert len(memory) == len(cpu) >= 2
    # at most one sample per interval (and one of slack for the edges)
    assert len(memory) <= training_seconds / system_metrics.SAMPLE_SECONDS + 2
    assert all(p["value"] > 20 for p in memory)  # a Python process with NumPy and the data: tens of MiB
    assert all(p["value"] >= 0 for p in cpu) and max(p["value"] for p in cpu) > 10
    steps = [p["step"] for p in memory]
    assert steps == sorted(set(steps)) and steps[-1] <= losses[-1]["step"]
