"""The one module that pushes live run updates to the browser (contract 4).

Every live message goes to the run's channel group ``run-<id>``; ``webapp.runs.consumers`` forwards
them to the WebSockets of that run. Two messages:

- ``{"type": "run.points", "run": id, "points": [{"seq", "name", "step", "epoch", "value",
  "wall_time"}, ...]}``: every point since the previous message, in sequence order;
- ``{"type": "run.state", "run": id, "state": ..., "epochs_completed": n, "last_sequence": k}`` plus
  ``"error"`` (failed) and ``"final_metrics"`` (succeeded); ``last_sequence`` is the run's last
  committed point, so a viewer can make sure it has every point up to it before the state;
- ``{"type": "run.worker", "run": id, "rank", "world_size", "strategy", "host", "state", "step",
  "samples_per_second", "bytes_sent", "error", "wall_time"}``: one process of a distributed run
  (rank -1 is the parameter server) as it stands, about twice a second
  (``workers.distributed.execution``); live only, not part of the record;
- ``{"type": "run.layer_stats", "run": id, "samples": [{"step", "epoch", "wall_time", "nodes": {id:
  statistics}, "nan"}, ...]}``: the per-layer statistics sampled since the previous message
  (``engine.layer_stats``), each already in the run's record (``webapp.runs.layer_stats``).

Only points already committed to the database are published, so a client never sees a point the
record lacks, and a client that missed a message can always fill the gap from the database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import os
import threading
import time

from channels.layers import get_channel_layer
from django.conf import settings

log = logging.getLogger(__name__)

# After a failed send (Redis down), wait this long before trying again; points wait meanwhile.
RETRY_AFTER_SECONDS = 1.0
# A run that streams while Redis is down keeps at most this many unsent points for the live view;
# older ones are dropped from it (never from the record): clients fill such gaps from the database.
MAX_UNSENT_POINTS = 100_000
# A send that Redis has not acknowledged by then counts as failed (and is retried by the publisher).
SEND_TIMEOUT_SECONDS = 5.0


class _SendLoop:
    """One event loop in a daemon thread that carries every live message of this process.

    ``async_to_sync`` called from a plain thread starts a thread and an event loop per call, and
    channels_redis keeps its Redis connections per event loop, so each message would cost a new
    thread, a new loop and a new connection, all holding the GIL the training loop needs. One
    long-lived loop sends over kept connections."""

    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-send-loop", daemon=True)
        self.thread.start()

    def usable(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive()  # not inherited through a fork

    def run(self, coroutine, timeout: float):
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise


_send_loop: _SendLoop | None = None
_send_loop_lock = threading.Lock()


def _loop() -> _SendLoop:
    global _send_loop
    with _send_loop_lock:
        if _send_loop is None or not _send_loop.usable():
            _send_loop = _SendLoop()
        return _send_loop


def run_group_name(run_id: int) -> str:
    return f"run-{run_id}"


def point_message(*, sequence: int, name: str, step: int, epoch: float, value: float, wall_time: float) -> dict:
    return {"seq": sequence, "name": name, "step": step, "epoch": epoch, "value": value, "wall_time": wall_time}


def state_message(run) -> dict:
    """The ``run.state`` message for a Run as it stands."""
    message = {"type": "run.state", "run": run.pk, "state": run.state, "epochs_completed": run.epochs_completed,
               "last_sequence": run.last_sequence}
    if run.error:
        message["error"] = run.error
    if run.state == "succeeded":
        message["final_metrics"] = run.final_metrics
    return message


def worker_message(*, run_id: int, rank: int, world_size: int, strategy: str, host: str, state: str, step: int,
                   samples_per_second: float, bytes_sent: int, error: str = "") -> dict:
    """The ``run.worker`` message of one process of a distributed run."""
    return {"type": "run.worker", "run": run_id, "rank": rank, "world_size": world_size, "strategy": strategy,
            "host": host, "state": state, "step": step, "samples_per_second": samples_per_second,
            "bytes_sent": bytes_sent, "error": error, "wall_time": time.time()}


def layer_stats_message(*, run_id: int, samples: list[dict]) -> dict:
    """The ``run.layer_stats`` message of samples already stored."""
    return {"type": "run.layer_stats", "run": run_id, "samples": samples}


def send_to_run(run_id: int, message: dict) -> bool:
    """Send one message to the run's group; False (logged) when the channel layer is unreachable."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        _loop().run(layer.group_send(run_group_name(run_id), message), SEND_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001  (Redis down must not stop a training or a request)
        log.warning("live update for run %s not sent: %s", run_id, error)
        return False
    return True


def publish_run_state(run) -> bool:
    """Tell the run's viewers its state changed (for one-off changes: cancel of a queued run,
    watchdog recovery). A training worker uses its ``RunPublisher`` instead."""
    return send_to_run(run.pk, state_message(run))


class RunPublisher:
    """Coalesces one run's committed points into at most ``max_messages_per_second`` messages,
    each carrying every point since the last. Not thread-safe: one thread publishes a run."""

    def __init__(self, run_id: int, *, max_messages_per_second: float | None = None, clock=time.monotonic):
        rate = max_messages_per_second or settings.LIVE_MAX_MESSAGES_PER_SECOND
        self.run_id = run_id
        self.min_interval = 1.0 / rate
        self.clock = clock
        self.unsent: list[dict] = []
        self.messages_sent = 0
        self.points_dropped = 0
        self._last_sent = -math.inf
        self._retry_at = -math.inf

    def add(self, points: list[dict]) -> None:
        """Points that are committed to the database, in sequence order."""
        self.unsent.extend(points)
        overflow = len(self.unsent) - MAX_UNSENT_POINTS
        if overflow > 0:
            del self.unsent[:overflow]
            self.points_dropped += overflow

    def publish_due(self) -> bool:
        """Send the unsent points if the rate allows it now; True when a message went out."""
        now = self.clock()
        if not self.unsent or now - self._last_sent < self.min_interval or now < self._retry_at:
            return False
        return self._send_points()

    def flush(self) -> bool:
        """Send the unsent points, waiting for the rate to allow it (at most one interval)."""
        if not self.unsent:
            return True
        self._wait_for_slot()
        return self._send_points()

    def publish_state(self, run, *, attempts: int = 3) -> bool:
        """The remaining points, then the run's state (``state_message``); a run's last message
        is worth a few tries while Redis comes back."""
        for attempt in range(attempts):
            if attempt:
                time.sleep(RETRY_AFTER_SECONDS)
            if self.flush():
                self._wait_for_slot()
                if self._send(state_message(run)):
                    return True
        return False

    def last_sent_at(self) -> float | None:
        """When this publisher last sent (on its clock), None if never."""
        return None if self._last_sent == -math.inf else self._last_sent

    def sent_at(self, moment: float | None) -> None:
        """Another publisher of this run (in the recording process) sent at ``moment`` of the same
        monotonic clock: this one's rate counts that message too."""
        if moment is not None:
            self._last_sent = max(self._last_sent, moment)

    def _wait_for_slot(self) -> None:
        wait = self.min_interval - (self.clock() - self._last_sent)
        if wait > 0:
            time.sleep(wait)

    def _send_points(self) -> bool:
        sent = self._send({"type": "run.points", "run": self.run_id, "points": self.unsent})
        if sent:
            self.unsent = []
        return sent

    def _send(self, message: dict) -> bool:
        self._last_sent = self.clock()
        if not send_to_run(self.run_id, message):
            self._retry_at = self.clock() + RETRY_AFTER_SECONDS
            return False
        self.messages_sent += 1
        return True
