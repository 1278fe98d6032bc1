"""A run through the whole platform: started over REST, trained by a real Celery worker, streamed
over a real WebSocket, recorded in the database; and cancelled mid-run."""

from __future__ import annotations

import time

import pytest
from celery import Celery
from django.conf import settings

from tests.platform.harness import MOONS, RunSocket, assert_record_complete, get_run, stored_points

pytestmark = pytest.mark.xdist_group("platform")


def test_a_run_streams_every_stored_point_over_the_websocket_until_it_succeeds(workspace):
    space = workspace()
    run = space.start_run(epochs=3, batch_size=64, optimizer={"name": "adam", "lr": 0.01})
    assert run["state"] == "queued"

    with RunSocket(space.user.socket_url(run["id"])) as socket:
        state = socket.receive_until_finished(timeout=60)
        started, finished = socket.arrivals[0], socket.arrivals[-1]

    assert state == "succeeded"
    stored = assert_record_complete(run["id"])
    received = sorted(socket.points, key=lambda point: point["seq"])
    assert [p["seq"] for p in received] == [p["seq"] for p in stored], "a point was lost or doubled"
    assert received == stored
    names = {p["name"] for p in stored}
    assert {"loss", "epoch_loss", "accuracy", "val_loss", "val_accuracy"} <= names
    assert sum(p["name"] == "loss" for p in stored) == 3 * 23  # 1437 training rows in batches of 64

    final = socket.states[-1]
    assert final["epochs_completed"] == 3
    assert final["final_metrics"]["val_accuracy"] > 0.9
    record = get_run(run["id"])
    assert record.final_metrics == final["final_metrics"]
    assert record.checkpoints.count() == 3
    # Coalesced: at most LIVE_MAX_MESSAGES_PER_SECOND point messages a second (one of slack for
    # the edges of the interval), each carrying every point since the previous one.
    assert len(socket.arrivals) <= (finished - started) * settings.LIVE_MAX_MESSAGES_PER_SECOND + 2


def test_cancel_stops_the_run_after_the_batch_in_progress(workspace):
    space = workspace(MOONS)
    run = space.start_run(epochs=50, batch_size=8)

    with RunSocket(space.user.socket_url(run["id"])) as socket:
        socket.receive_until(lambda s: len(s.points) >= 50, timeout=60, what="50 points")
        requested_at = time.time()
        response = space.user.api.post(f"/api/runs/{run['id']}/cancel")
        assert response.status_code == 200, response.text
        state = socket.receive_until_finished(timeout=10)
        cancelled_after = time.time() - requested_at
        with pytest.raises(TimeoutError):  # nothing follows the final state
            socket.receive(timeout=1.0)

    assert state == "cancelled"
    assert cancelled_after < 5
    record = get_run(run["id"])
    assert record.state == "cancelled" and record.epochs_completed < 50
    stored = assert_record_complete(run["id"])
    assert sorted(socket.points, key=lambda p: p["seq"]) == stored
    # The worker reads the flag every 0.2 s and the trainer stops after the batch in progress
    # (of about a millisecond): no batch started later than that.
    last_loss = max(p["wall_time"] for p in stored if p["name"] == "loss")
    assert last_loss - requested_at < 1.0
    time.sleep(0.5)
    assert len(stored_points(run["id"])) == len(stored), "points were recorded after the cancel"


def test_a_task_message_delivered_again_does_not_train_the_run_twice(platform, workspace):
    # The broker delivering a run's message a second time (as Redis does past its visibility
    # timeout) is caused for real: the same message, same task id, is sent again mid-run.
    space = workspace(MOONS)
    run = space.start_run(epochs=3, batch_size=32)
    with RunSocket(space.user.socket_url(run["id"])) as socket:
        socket.receive_until(lambda s: len(s.points) >= 20, timeout=60, what="the first points")
        task_id = get_run(run["id"]).task_id
        log_before = len(platform.worker.log_text())
        sender = Celery(broker=platform.redis_url)
        sender.send_task("workers.train_run", args=[run["id"]], task_id=task_id, queue="cpu")
        sender.close()
        assert socket.receive_until_finished(timeout=60) == "succeeded"
    platform.worker.wait_for_log(f"run {run['id']}: not queued under task {task_id}; skipped", since=log_before,
                                 timeout=30)

    record = get_run(run["id"])
    assert record.state == "succeeded" and record.attempt == 1
    stored = assert_record_complete(run["id"])
    assert sum(p["name"] == "loss" for p in stored) == 3 * 500
