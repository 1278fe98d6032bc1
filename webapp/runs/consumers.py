"""WebSocket ``/ws/runs/<id>/``: a run's history, then its live points and state changes.

Protocol (server to client, JSON):

1. ``{"type": "run.history", "run", "state", "last_sequence", "series": {name: {"steps", "epochs",
   "values", "wall_times", "sequences", "total"}}}``: the stored points, downsampled to
   ``HISTORY_MAX_POINTS`` per series (keeping minima and maxima); for a client that reconnects with
   ``?after=<sequence>`` (it has the points up to it), exactly the points after it, however many:
   the first ``LIVE_CATCH_UP_CHUNK_POINTS`` sequences in this message (its ``last_sequence`` says
   how far it goes), the rest as ``run.points`` messages of at most that many points each (so that
   no message outgrows a client's frame limit, 1 MiB by default in most libraries) up to
   ``catch_up_to``, the run's last point at connect, before any live point. A client that has
   received up to ``catch_up_to`` has the run's whole record as it was at connect;
2. then ``{"type": "run.points", "points": [{"seq", "name", "step", "epoch", "value", "wall_time"}]}``
   and ``{"type": "run.state", "state", "epochs_completed", "error"?, "final_metrics"?}`` as they
   happen, and for a distributed run ``{"type": "run.worker", "rank", "state", "step",
   "samples_per_second", "bytes_sent", ...}`` per worker process, and ``{"type": "run.layer_stats",
   "samples": [...]}`` as the per-layer statistics are sampled (see ``webapp.runs.live``; the history
   of those is ``GET /api/runs/<id>/layer-stats``).

The consumer joins the run's group before it reads the history, so nothing falls between the two;
it forwards only points with a sequence above the last one the client has (none doubled), and if
a live message went missing (Redis dropped it) it fills the gap from the database first, before the
next points or the next state message, whichever comes first (none lost, even at the end of a run).

Every ``LIVE_RESYNC_SECONDS`` the consumer also checks itself against the record (a message to its
own channel, so it runs in turn with the live ones): it joins the group again (group membership
lives in Redis and is lost when Redis restarts, after which no live message would reach this
client), sends any stored points it has not sent, and a state change it missed. A client whose
live messages stopped therefore still gets every point and the final state, seconds late.

Authentication: the session (browser) or ``?token=<API token>`` (scripts). Close codes: 4401 not
authenticated, 4404 no such run among the user's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from webapp.runs import live
from webapp.runs.models import Run
from webapp.runs.selectors import run_list, run_metric_history

log = logging.getLogger(__name__)

HISTORY_MAX_POINTS = 2000
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


class RunConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None
    resync_task: asyncio.Task | None = None

    async def connect(self) -> None:
        # Accept first: a close before the handshake reaches the client as a bare HTTP 403,
        # without the close code that says why.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        self.run = await database_sync_to_async(_user_run)(user, self.scope["url_route"]["kwargs"]["run_id"])
        if self.run is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group_name = live.run_group_name(self.run.pk)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        after = _query_int(self.scope, "after")
        history, newest = await database_sync_to_async(_history)(self.run, after, _chunk_points())
        self.last_sequence = history["last_sequence"]
        self.last_state, self.last_state_event = history["state"], None
        await self.send_json({"type": "run.history", **history, "catch_up_to": newest})
        # What a reconnect missed beyond the history's chunk, in order, before any live point (those
        # wait in the channel layer meanwhile; any it drops are filled in from the database).
        await self.send_stored(through_sequence=newest)
        self.resync_task = asyncio.get_running_loop().create_task(self._resync_ticks())

    async def disconnect(self, code) -> None:
        if self.resync_task is not None:
            self.resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.resync_task
        if self.group_name:
            with contextlib.suppress(Exception):  # Redis may be away; the group forgets us with its expiry
                await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def _resync_ticks(self) -> None:
        interval = float(settings.LIVE_RESYNC_SECONDS)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.channel_layer.send(self.channel_name, {"type": "run.resync"})
            except Exception as error:  # noqa: BLE001  (Redis away: the next tick tries again)
                log.debug("run %s: no resync tick (%s)", self.run.pk, error)

    async def receive_json(self, content, **kwargs) -> None:
        """Clients have nothing to say; the reconnect position travels in the URL (``?after=``)."""

    # -- group messages (from webapp.runs.live) ------------------------------------------------
    async def run_points(self, event: dict) -> None:
        points = [point for point in event["points"] if point["seq"] > self.last_sequence]
        if not points:
            return
        missed_through = points[0]["seq"] - 1
        if missed_through > self.last_sequence:
            # The last chunk of what is missing goes with these points, in one message.
            await self.send_stored(through_sequence=missed_through - _chunk_points())
            missed = await database_sync_to_async(_stored_points)(self.run, self.last_sequence, missed_through)
            points = missed + points
        self.last_sequence = points[-1]["seq"]
        await self.send_json({"type": "run.points", "points": points})

    async def send_stored(self, *, through_sequence: int) -> None:
        """The stored points after ``self.last_sequence`` up to ``through_sequence`` as
        ``run.points`` messages of at most ``LIVE_CATCH_UP_CHUNK_POINTS`` points each."""
        chunk = _chunk_points()
        while self.last_sequence < through_sequence:
            until = min(through_sequence, self.last_sequence + chunk)
            points = await database_sync_to_async(_stored_points)(self.run, self.last_sequence, until)
            self.last_sequence = until
            if points:
                await self.send_json({"type": "run.points", "points": points})

    async def run_state(self, event: dict) -> None:
        # The points up to the state's last sequence come first, from the record where their live
        # message was lost: a client that sees "succeeded" has every point of the run.
        if event == self.last_state_event:
            return  # the live message of a change the resync has already sent (or the reverse)
        through = event.get("last_sequence") or 0
        if through > self.last_sequence:
            await self.send_stored(through_sequence=through)
        self.last_state, self.last_state_event = event.get("state", self.last_state), event
        await self.send_json(event)

    async def run_worker(self, event: dict) -> None:
        await self.send_json(event)

    async def run_layer_stats(self, event: dict) -> None:
        await self.send_json(event)

    async def run_resync(self, event: dict) -> None:
        """The tick of ``_resync_ticks``: back in the group, and level with the record."""
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        run = await database_sync_to_async(_fresh)(self.run)
        if run.last_sequence > self.last_sequence:
            await self.send_stored(through_sequence=run.last_sequence)
        if run.state != self.last_state:
            await self.run_state(live.state_message(run))


def _user_run(user, run_id) -> Run | None:
    return run_list(user=user).filter(pk=run_id).first()


def _fresh(run: Run) -> Run:
    run.refresh_from_db()
    return run


def _history(run: Run, after_sequence: int, chunk_points: int) -> tuple[dict, int]:
    """The ``run.history`` message and the run's ``last_sequence`` as read now, after joining the
    group: every point up to it is committed, and every later one is published after this read, so
    it arrives live (a point committed while the series are read is left to the live message).

    A first connect gets the whole history downsampled; a reconnect (``after_sequence`` > 0) the
    exact points of its first ``chunk_points`` sequences, the rest being the caller's to send."""
    run.refresh_from_db()
    newest = max(run.last_sequence, after_sequence)
    if after_sequence > 0:
        through = min(newest, after_sequence + chunk_points)
        history = run_metric_history(run, after_sequence=after_sequence, through_sequence=through)
    else:
        through = newest
        history = run_metric_history(run, max_points=HISTORY_MAX_POINTS, through_sequence=through)
    history["last_sequence"] = through
    return history, newest


def _stored_points(run: Run, after_sequence: int, through_sequence: int) -> list[dict]:
    """Stored points with ``after_sequence < seq <= through_sequence``, in sequence order."""
    series = run_metric_history(run, after_sequence=after_sequence, through_sequence=through_sequence)["series"]
    points = [
        live.point_message(sequence=sequence, name=name, step=step, epoch=epoch, value=value, wall_time=wall_time)
        for name, columns in series.items()
        for sequence, step, epoch, value, wall_time in zip(
            columns["sequences"], columns["steps"], columns["epochs"], columns["values"], columns["wall_times"]
        )
    ]
    return sorted(points, key=lambda point: point["seq"])


def _chunk_points() -> int:
    return max(1, int(settings.LIVE_CATCH_UP_CHUNK_POINTS))


def _query_int(scope, name: str) -> int:
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(name)
    try:
        return max(0, int(values[-1])) if values else 0
    except ValueError:
        return 0
