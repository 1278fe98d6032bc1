"""The run WebSocket: who may open it, and a client that reconnects gets exactly what it missed."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.utils import timezone
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.platform.harness import MOONS, RunSocket, assert_record_complete, wait_for_run
from webapp.runs import live
from webapp.runs.models import MetricPoint, Run

pytestmark = pytest.mark.xdist_group("platform")


def close_code(url: str) -> int:
    with RunSocket(url) as socket, pytest.raises(ConnectionClosed) as closed:
        socket.receive(timeout=10)
    return closed.value.rcvd.code


def test_another_users_run_is_closed_with_4404_and_an_anonymous_client_with_4401(workspace, make_user):
    space = workspace()
    run = space.start_run(epochs=1, batch_size=256)
    stranger = make_user("stranger")
    assert close_code(stranger.socket_url(run["id"])) == 4404
    assert close_code(space.user.socket_url(run["id"] + 10_000)) == 4404  # no such run
    assert close_code(f"{space.user.platform.ws_url}/ws/runs/{run['id']}/") == 4401
    assert close_code(f"{space.user.platform.ws_url}/ws/runs/{run['id']}/?token=not-a-token") == 4401


def test_a_browser_page_of_another_site_may_not_open_the_socket(workspace):
    space = workspace()
    run = space.start_run(epochs=1, batch_size=256)
    with pytest.raises(InvalidStatus) as refused:
        connect(space.user.socket_url(run["id"]), origin="http://evil.example", open_timeout=10).close()
    assert refused.value.response.status_code == 403


def test_a_client_that_reconnects_with_after_gets_exactly_the_points_it_missed(workspace):
    space = workspace(MOONS)
    run = space.start_run(epochs=4, batch_size=32)

    with RunSocket(space.user.socket_url(run["id"])) as first:
        first.receive_until(lambda s: len(s.points) >= 30, timeout=60, what="30 points")
    seen = sorted(first.points, key=lambda p: p["seq"])
    last_seen = seen[-1]["seq"]
    assert [p["seq"] for p in seen] == list(range(1, last_seen + 1))

    with RunSocket(space.user.socket_url(run["id"], after=last_seen)) as second:
        second.receive_until_finished(timeout=60)
    assert second.history["last_sequence"] >= last_seen
    assert all(p["seq"] > last_seen for p in second.points)
    stored = assert_record_complete(run["id"])
    assert seen + sorted(second.points, key=lambda p: p["seq"]) == stored

    # After the run: the history after K, then the catch-up messages, are exactly the stored
    # points after K, however many (the test settings' chunk is 500 points, so this takes several).
    wait_for_run(run["id"], lambda r: r.state == "succeeded", timeout=10, what="the run to succeed")
    middle = len(stored) // 2
    chunk = settings.LIVE_CATCH_UP_CHUNK_POINTS
    assert len(stored) - middle > 2 * chunk
    with RunSocket(space.user.socket_url(run["id"], after=middle)) as late:
        late.receive_until(lambda s: s.caught_up, timeout=10, what="the history and the catch-up")
    assert late.history["state"] == "succeeded"
    assert late.history["last_sequence"] == middle + chunk
    assert late.history["catch_up_to"] == len(stored)
    assert late.points == stored[middle:]
    assert len(late.arrivals) == -(-(len(stored) - middle - chunk) // chunk)  # messages of <= chunk points


def test_a_live_message_that_went_missing_is_filled_in_from_the_record(platform, workspace):
    """Redis may drop a message (a restart, a full or expired channel): the consumer notices the
    jump in sequence numbers and sends the missing points from the database first."""
    space = workspace()
    run = space.start_run(epochs=1, batch_size=256)
    wait_for_run(run["id"], lambda r: r.state == "succeeded", timeout=60, what="the run to succeed")
    stored = assert_record_complete(run["id"])
    last = len(stored)
    # As if the client had connected when only the points up to last - 4 were stored...
    Run.objects.filter(pk=run["id"]).update(last_sequence=last - 4)
    with RunSocket(space.user.socket_url(run["id"])) as socket:
        socket.receive_until(lambda s: s.history is not None, timeout=10, what="the history")
        assert socket.history["last_sequence"] == last - 4
        assert socket.points == stored[:last - 4]
        # ... and the messages with the next three were lost: only the last one arrives.
        layer = RedisChannelLayer(hosts=[platform.redis_url])
        async_to_sync(layer.group_send)(live.run_group_name(run["id"]),
                                        {"type": "run.points", "run": run["id"], "points": stored[last - 1:]})
        message = socket.receive(timeout=10)
        if message["type"] == "run.state":  # the worker's own last message may still be on its way
            message = socket.receive(timeout=10)
    Run.objects.filter(pk=run["id"]).update(last_sequence=last)
    assert message["type"] == "run.points"
    assert message["points"] == stored[last - 4:]


def test_the_final_state_comes_after_every_point_even_when_their_live_message_was_lost(platform, workspace):
    # A lost live message, caused for real: the points are committed but never published (as when
    # Redis drops the message); then the run's final state is published over the real channel layer.
    space = workspace()
    now = timezone.now()
    run = Run.objects.create(project=space.project, graph_version=space.version, dataset=space.dataset,
                             created_by=space.user.model, state=Run.State.RUNNING, attempt=1, started_at=now,
                             heartbeat_at=now, hyperparameters={"epochs": 1})
    with RunSocket(space.user.socket_url(run.pk)) as socket:
        socket.receive_until(lambda s: s.history is not None, timeout=10, what="the history")
        MetricPoint.objects.bulk_create(
            MetricPoint(run=run, sequence=seq, name="loss", step=seq, epoch=seq / 10, value=1.0 / seq,
                        wall_time=time.time()) for seq in range(1, 11))
        Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED, last_sequence=10, epochs_completed=1,
                                             finished_at=timezone.now(), final_metrics={"loss": 0.1})
        layer = RedisChannelLayer(hosts=[platform.redis_url])
        async_to_sync(layer.group_send)(live.run_group_name(run.pk), live.state_message(Run.objects.get(pk=run.pk)))
        assert socket.receive_until_finished(timeout=10) == "succeeded"

    assert [p["seq"] for p in socket.points] == list(range(1, 11))
    assert sorted(socket.points, key=lambda p: p["seq"]) == assert_record_complete(run.pk)


def test_a_socket_left_open_on_a_quiet_run_stays_open(platform, workspace):
    """A client watching a run that sends nothing for a while (finished, or queued behind others)
    keeps its socket. The consumer waits on Redis in blocking reads of 5 s; redis-py's default
    socket timeout is also 5 s, so each wait raced its own timeout, and after the retries (about
    27 s) the consumer failed and the socket was dropped."""
    space = workspace()
    run = space.start_run(epochs=1, batch_size=256)
    wait_for_run(run["id"], lambda r: r.state == "succeeded", timeout=60, what="the run to succeed")
    logged = len(platform.web.log_text())
    with RunSocket(space.user.socket_url(run["id"])) as socket:
        socket.receive_until(lambda s: s.caught_up, timeout=10, what="the history")
        quiet_until = time.monotonic() + 32  # longer than all of those retries
        while (left := quiet_until - time.monotonic()) > 0:
            try:
                socket.receive(timeout=left)  # a late message (the evaluation) may come; a close fails the test
            except TimeoutError:
                break
        with pytest.raises(TimeoutError):  # still open
            socket.receive(timeout=0.5)
    assert "Exception in ASGI application" not in platform.web.log_text()[logged:]
