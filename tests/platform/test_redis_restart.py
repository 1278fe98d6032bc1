"""Redis dies and comes back mid-run: the training goes on, its record is complete, a client
that reconnects gets everything, and the platform queues and runs new work afterwards."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.platform.harness import MOONS, MOONS_WIDE, RunSocket, assert_record_complete, get_run, wait_for_run

pytestmark = pytest.mark.xdist_group("platform")


def follow_until_finished(user, run_id: int, socket: RunSocket, *, timeout: float) -> list[dict]:
    """Every point of the run over WebSockets, reconnecting with ?after= whenever the socket drops."""
    points: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.receive_until_finished(timeout=max(0.1, deadline - time.monotonic()))
            points.extend(socket.points)
            socket.close()
            return points
        except (ConnectionClosed, OSError):
            points.extend(socket.points)
            socket.close()
        after = max((p["seq"] for p in points), default=0)
        while True:
            if time.monotonic() > deadline:
                pytest.fail("could not reconnect to the run's WebSocket in time")
            try:
                socket = RunSocket(user.socket_url(run_id, after=after))
                break
            except (OSError, ConnectionClosed, TimeoutError):
                time.sleep(0.2)


def test_a_run_survives_a_redis_restart_with_a_complete_record(platform, workspace):
    space = workspace(MOONS_WIDE)
    # 2,000 batches of about 6 ms of matrix products each: some 12 s here, so that the run is still
    # training when Redis is back about 2 s in (15,000 batches of a small MLP, bound by per-batch
    # overheads, lasted 1.5 s on the CI machine); a reconnect catches up on hundreds of points.
    run = space.start_run(epochs=4, batch_size=32)
    socket = RunSocket(space.user.socket_url(run["id"]))
    socket.receive_until(lambda s: len(s.points) >= 20, timeout=60, what="the first points")

    platform.restart_redis(down_for=1.5)
    assert get_run(run["id"]).state == "running"

    received = follow_until_finished(space.user, run["id"], socket, timeout=120)
    finished = wait_for_run(run["id"], lambda r: r.state != "running", timeout=10, what="the run to finish")
    assert finished.state == "succeeded", finished.error
    assert finished.attempt == 1  # not delivered twice, not taken over
    stored = assert_record_complete(run["id"])
    assert sum(p["name"] == "loss" for p in stored) == 4 * 500
    assert sorted(received, key=lambda p: p["seq"]) == stored

    # The worker and the web server reconnected: a new run is queued, trained and streamed.
    after = space.start_run(epochs=1, batch_size=256)
    with RunSocket(space.user.socket_url(after["id"])) as socket:
        assert socket.receive_until_finished(timeout=60) == "succeeded"


def test_after_a_redis_restart_the_first_new_client_and_run_are_served(platform, workspace):
    # Every connection the web server and the worker keep to Redis is stale once it restarts; each
    # must reconnect on first use rather than fail it (a WebSocket dropped right after it connected).
    space = workspace(MOONS)
    platform.restart_redis(down_for=0.5)
    for _ in range(2):
        run = space.start_run(epochs=1, batch_size=256)
        with RunSocket(space.user.socket_url(run["id"])) as socket:
            assert socket.receive_until_finished(timeout=60) == "succeeded"
            assert [state["state"] for state in socket.states][-1] == "succeeded"
        assert sorted(socket.points, key=lambda p: p["seq"]) == assert_record_complete(run["id"])


def test_a_socket_open_across_a_redis_restart_still_gets_every_point_and_the_final_state(platform, workspace):
    # The restart forgets the channel layer's groups: no live message reaches the consumers that had
    # joined before it. Each consumer joins again and catches up from the record on its resync tick.
    space = workspace(MOONS_WIDE)
    run = space.start_run(epochs=4, batch_size=32)
    with RunSocket(space.user.socket_url(run["id"])) as socket:
        socket.receive_until(lambda s: len(s.points) >= 20, timeout=60, what="the first points")
        platform.restart_redis(down_for=0.5)
        assert socket.receive_until_finished(timeout=120) == "succeeded"  # the same socket, never reconnected
    stored = assert_record_complete(run["id"])
    assert sorted(socket.points, key=lambda p: p["seq"]) == stored
    assert [state["state"] for state in socket.states].count("succeeded") == 1
