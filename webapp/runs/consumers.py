"""WebSocket ``/ws/runs/<id>/``: a run's history, then its live points and state changes.

Protocol (server to client, JSON):

1. ``{"type": "run.history", "run", "state", "last_sequence", "series": {name: {"steps", "epochs",
   "values", "wall_times", "sequences", "total"}}}``: the stored points, downsampled to
   ``HISTORY_MAX_POINTS`` per series (keeping minima and maxima); for a client that reconnects with
   ``?after=<sequence>`` (it has the points up to it), exactly the points after it, unless it
   missed more than ``CATCH_UP_MAX_POINTS`` (then those are downsampled too);
2. then ``{"type": "run.points", "points": [{"seq", "name", "step", "epoch", "value", "wall_time"}]}``
   and ``{"type": "run.state", "state", "epochs_completed", "error"?, "final_metrics"?}`` as they
   happen, and for a distributed run ``{"type": "run.worker", "rank", "state", "step",
   "samples_per_second", "bytes_sent", ...}`` per worker process (see ``webapp.runs.live``).

The consumer joins the run's group before it reads the history, so nothing falls between the two;
it forwards only points with a sequence above the last one the client has (none doubled), and if
a live message went missing (Redis dropped it) it fills the gap from the database first (none lost).

Authentication: the session (browser) or ``?token=<API token>`` (scripts). Close codes: 4401 not
authenticated, 4404 no such run among the user's.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.runs import live
from webapp.runs.models import Run
from webapp.runs.selectors import run_list, run_metric_history

HISTORY_MAX_POINTS = 2000
CATCH_UP_MAX_POINTS = 20_000
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


class RunConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None

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
        history = await database_sync_to_async(_history)(self.run, _query_int(self.scope, "after"))
        self.last_sequence = history["last_sequence"]
        await self.send_json({"type": "run.history", **history})

    async def disconnect(self, code) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """Clients have nothing to say; the reconnect position travels in the URL (``?after=``)."""

    # -- group messages (from webapp.runs.live) ------------------------------------------------
    async def run_points(self, event: dict) -> None:
        points = [point for point in event["points"] if point["seq"] > self.last_sequence]
        if not points:
            return
        if points[0]["seq"] > self.last_sequence + 1:
            missed = await database_sync_to_async(_stored_points)(self.run, self.last_sequence, points[0]["seq"])
            points = missed + points
        self.last_sequence = points[-1]["seq"]
        await self.send_json({"type": "run.points", "points": points})

    async def run_state(self, event: dict) -> None:
        await self.send_json(event)

    async def run_worker(self, event: dict) -> None:
        await self.send_json(event)


def _user_run(user, run_id) -> Run | None:
    return run_list(user=user).filter(pk=run_id).first()


def _history(run: Run, after_sequence: int) -> dict:
    """The history up to the run's ``last_sequence`` as read now, after joining the group: every
    point up to it is committed, and every later one is published after this read, so it arrives
    live (a point committed while the series are read is left to the live message)."""
    run.refresh_from_db()
    last_sequence = max(run.last_sequence, after_sequence)
    exact = 0 < after_sequence and last_sequence - after_sequence <= CATCH_UP_MAX_POINTS
    history = run_metric_history(run, max_points=None if exact else HISTORY_MAX_POINTS, after_sequence=after_sequence)
    history["series"] = {name: _until(columns, last_sequence) for name, columns in history["series"].items()}
    history["last_sequence"] = last_sequence
    return history


def _until(columns: dict, last_sequence: int) -> dict:
    keep = [index for index, sequence in enumerate(columns["sequences"]) if sequence <= last_sequence]
    if len(keep) == len(columns["sequences"]):
        return columns
    return {key: [values[index] for index in keep] if isinstance(values, list) else values
            for key, values in columns.items()}


def _stored_points(run: Run, after_sequence: int, before_sequence: int) -> list[dict]:
    """Stored points with ``after_sequence < seq < before_sequence``, in order (a gap in the live stream)."""
    series = run_metric_history(run, after_sequence=after_sequence)["series"]
    points = [
        live.point_message(sequence=sequence, name=name, step=step, epoch=epoch, value=value, wall_time=wall_time)
        for name, columns in series.items()
        for sequence, step, epoch, value, wall_time in zip(
            columns["sequences"], columns["steps"], columns["epochs"], columns["values"], columns["wall_times"]
        )
        if sequence < before_sequence
    ]
    return sorted(points, key=lambda point: point["seq"])


def _query_int(scope, name: str) -> int:
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(name)
    try:
        return max(0, int(values[-1])) if values else 0
    except ValueError:
        return 0
