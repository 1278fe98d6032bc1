"""Recording a run while it trains: numbered metric points, checkpoints, the heartbeat and cancel.

The training loop only appends to a list (``add_point``, ``add_checkpoint``): a thread beside it,
``RunRecorder``, does everything that waits on the database or Redis, so training speed does not
depend on them. Every tick (``1 / LIVE_MAX_MESSAGES_PER_SECOND`` seconds, and at once at the end of
an epoch) it

1. writes the new points and checkpoints in one transaction, together with the run's
   ``last_sequence``, progress and ``heartbeat_at`` (a heartbeat alone when there is nothing new,
   every ``RUN_HEARTBEAT_SECONDS``), and prunes the run's checkpoints to the newest
   ``RUN_CHECKPOINTS_KEPT`` and the best by the monitored metric (their points are in the record);
2. hands the committed points to the live publisher, which sends them when its rate allows: a
   point is never published before it is in the record;
3. re-reads ``cancel_requested`` (every ``CANCEL_POLL_SECONDS``) and cancels the trainer, which
   then stops after the batch in progress;
4. appends the per-layer statistics sampled since the last tick (``add_layer_stats``) to the run's
   record (``webapp.runs.layer_stats``) and publishes them in one ``run.layer_stats`` message;
5. samples the training process's CPU, memory and GPU (``workers.system_metrics``, every
   ``SAMPLE_SECONDS`` once training has begun) as ordinary points named ``system/...``.

Every write is fenced by the run's state and attempt (``webapp.runs.lifecycle.run_heartbeat``, in
the transaction that stores the points): if the watchdog handed the run to another worker (this one
looked dead), or the run was finished or deleted meanwhile, the write changes nothing, and the
recorder stops the training instead of writing over the new owner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
import typing

from django.conf import settings
from django.db import connection, transaction

from webapp.runs import lifecycle, live
from webapp.runs.budgets import folder_size
from webapp.runs.layer_stats import LayerStatsRecord
from webapp.runs.models import Checkpoint, MetricPoint, Run
from webapp.runs.services import run_checkpoints_prune
from workers.system_metrics import SystemSampler

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.2
# How long the last write of a run may keep retrying (database locked or briefly away).
FINAL_WRITE_SECONDS = 30.0


class Point(typing.NamedTuple):
    """One metric point; a plain tuple, because the training loop makes one per batch."""

    sequence: int
    name: str
    step: int
    epoch: float
    value: float
    wall_time: float

    def message(self) -> dict:
        return live.point_message(sequence=self.sequence, name=self.name, step=self.step, epoch=self.epoch,
                                  value=self.value, wall_time=self.wall_time)


@dataclasses.dataclass(frozen=True)
class CheckpointRecord:
    epoch: int
    step: int
    path: str


class RunRecorder:
    """Records one execution (``attempt``) of a run; see the module docstring.

    ``first_sequence`` is the run's ``last_sequence + 1``; ``trained_pid`` the training process
    whose CPU and memory are sampled (this one when None).
    """

    def __init__(self, run_id: int, *, attempt: int, first_sequence: int, publisher: live.RunPublisher,
                 trained_pid: int | None = None):
        self.run_id = run_id
        self.attempt = attempt
        self.publisher = publisher
        self.flush_interval = 1.0 / settings.LIVE_MAX_MESSAGES_PER_SECOND
        self.heartbeat_interval = float(settings.RUN_HEARTBEAT_SECONDS)
        self.cancel_requested = False
        self.superseded = False  # another execution owns the run now: stop without writing
        self.points_recorded = 0
        self._already_stored: frozenset[tuple[str, int]] = frozenset()
        self._next_sequence = first_sequence
        self._pending: list[Point | CheckpointRecord] = []
        self._layer_samples: list[dict] = []
        self._layer_record = LayerStatsRecord(run_id)
        self._steps_completed: int | None = None
        self._epochs_completed: int | None = None
        self._last_epoch = 0.0  # of the newest point: the system points' epoch
        self._system = SystemSampler(os.getpid() if trained_pid is None else trained_pid)
        self._system_step: int | None = None  # the step of the last system sample
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._trainer = None
        self._last_write = 0.0
        self._last_cancel_poll = 0.0
        self._thread = threading.Thread(target=self._loop, name=f"run-{run_id}-recorder", daemon=True)

    # -- the training thread ------------------------------------------------------------------
    def start(self) -> RunRecorder:
        self._thread.start()
        return self

    def skip(self, already_stored: frozenset[tuple[str, int]]) -> None:
        """The ``(name, step)`` of points that an earlier attempt recorded after the checkpoint this
        one resumes from: the resumed trainer replays those steps exactly; they are not recorded twice."""
        self._already_stored = frozenset(already_stored)

    def watch(self, trainer) -> None:
        """The trainer to cancel when the run's cancel is requested (or the run is taken over)."""
        self._trainer = trainer
        if self.cancel_requested or self.superseded:
            trainer.cancel()

    def add_point(self, name: str, *, step: int, epoch: float, value: float, wall_time: float | None = None) -> None:
        if (name, step) in self._already_stored:
            return
        with self._lock:  # the recorder thread adds the system points: one numbering for both
            point = Point(self._next_sequence, name, step, float(epoch), float(value),
                          time.time() if wall_time is None else wall_time)
            self._next_sequence += 1
            self._pending.append(point)
            self._steps_completed = max(step, self._steps_completed or 0)
            self._last_epoch = max(float(epoch), self._last_epoch)

    def add_checkpoint(self, *, epoch: int, step: int, path: str) -> None:
        """A checkpoint written to disk; recorded after the points added before it, so a
        checkpoint row implies its epoch's points are stored. Written with the next tick (at most
        0.1 s later): waking the writer at every epoch end would, for epochs of a few milliseconds,
        turn into a database transaction per epoch competing with the training loop."""
        with self._lock:
            self._pending.append(CheckpointRecord(epoch, step, path))
            self._epochs_completed = epoch

    def add_layer_stats(self, sample: dict) -> None:
        """A sample of per-layer statistics (``engine.layer_stats``), stored and published next tick."""
        with self._lock:
            self._layer_samples.append(sample)

    def wake(self) -> None:
        """Write (and publish, as the rate allows) what was added now rather than at the next tick:
        the recording process calls it when the training side's points of one tick arrive."""
        self._wake.set()

    def close(self) -> None:
        """Write and publish what is left, then stop the thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join()

    # -- the recorder thread -------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                self._tick()
            deadline = time.monotonic() + FINAL_WRITE_SECONDS
            while not self._tick(final=True) and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            connection.close()  # this thread's own database connection

    def _tick(self, *, final: bool = False) -> bool:
        """One round of writing, publishing and cancel polling; False when writing failed."""
        self._sample_system()
        try:
            written = self._write_pending()
        except Exception as error:  # noqa: BLE001  (never let the heartbeat thread die)
            log.warning("run %s: recording failed, retrying: %s", self.run_id, error)
            connection.close_if_unusable_or_obsolete()
            return False
        if self.superseded:
            return True
        if written:
            self.publisher.add([point.message() for point in written])
        self._record_layer_stats()
        if final:
            self.publisher.flush()
        else:
            self.publisher.publish_due()
            try:
                self._poll_cancel()
            except Exception as error:  # noqa: BLE001
                log.warning("run %s: could not read the cancel flag, retrying: %s", self.run_id, error)
                connection.close_if_unusable_or_obsolete()
        return True

    def _write_pending(self) -> list[Point]:
        now = time.monotonic()
        with self._lock:
            items, self._pending = self._pending, []
            progress = {"steps_completed": self._steps_completed, "epochs_completed": self._epochs_completed}
        if not items and now - self._last_write < self.heartbeat_interval:
            return []
        points = [item for item in items if isinstance(item, Point)]
        checkpoints = [item for item in items if isinstance(item, CheckpointRecord)]
        last_sequence = points[-1].sequence if points else None
        sizes = [folder_size(checkpoint.path) for checkpoint in checkpoints]  # counted in the user's storage
        try:
            with transaction.atomic():
                if not lifecycle.run_heartbeat(run_id=self.run_id, attempt=self.attempt, last_sequence=last_sequence,
                                               **progress):
                    self._supersede()
                    return []
                _insert_points(self.run_id, points)
                Checkpoint.objects.bulk_create(
                    Checkpoint(run_id=self.run_id, epoch=c.epoch, step=c.step, path=c.path, size_bytes=size)
                    for c, size in zip(checkpoints, sizes)
                )
                if checkpoints:  # retention: the newest K and the best; the others' folders go after the commit
                    run_checkpoints_prune(run_id=self.run_id, keep_last=settings.RUN_CHECKPOINTS_KEPT)
        except Exception:
            with self._lock:  # keep them, in order, for the next try
                self._pending[:0] = items
            raise
        self._last_write = now
        self.points_recorded += len(points)
        return points

    def _sample_system(self) -> None:
        """The training process's CPU, memory and GPU as points at the newest step, once training
        has recorded a point (before it, a data load's samples would pile up at step 0)."""
        if self._steps_completed is None or self.superseded or self._steps_completed == self._system_step:
            return  # not begun, or no step since the last sample: a (series, step) is stored once
        values = self._system.sample_if_due()
        with self._lock:
            step, epoch = self._steps_completed, self._last_epoch
        if values:
            self._system_step = step
        for name, value in values.items():
            self.add_point(name, step=step, epoch=epoch, value=value)

    def _record_layer_stats(self) -> None:
        with self._lock:
            samples, self._layer_samples = self._layer_samples, []
        if not samples:
            return
        try:
            self._layer_record.append(samples)
        except (OSError, ValueError) as error:  # statistics are worth less than the run: never fail it
            log.warning("run %s: %s layer statistics sample(s) not stored: %s", self.run_id, len(samples), error)
            return
        live.send_to_run(self.run_id, live.layer_stats_message(run_id=self.run_id, samples=samples))

    def _poll_cancel(self) -> None:
        now = time.monotonic()
        if self.cancel_requested or now - self._last_cancel_poll < CANCEL_POLL_SECONDS:
            return
        self._last_cancel_poll = now
        if Run.objects.filter(pk=self.run_id, cancel_requested=True).exists():
            log.info("run %s: cancel requested", self.run_id)
            self.cancel_requested = True
            if self._trainer is not None:
                self._trainer.cancel()

    def _supersede(self) -> None:
        if not self.superseded:
            log.warning("run %s: attempt %s no longer owns the run (taken over, finished or deleted); stopping",
                        self.run_id, self.attempt)
        self.superseded = True
        with self._lock:
            self._pending.clear()
        if self._trainer is not None:
            self._trainer.cancel()


_POINT_FIELDS = ("run", "sequence", "name", "step", "epoch", "value", "wall_time")


MAX_ROWS_PER_INSERT = 500


def _insert_points(run_id: int, points: list[Point]) -> None:
    """Store points with one multi-row INSERT per chunk of the database's parameter limit.

    Not ``bulk_create``: that builds a model instance and compiles every field of every row, about
    0.2 ms a point, all of it holding the GIL that the training loop beside this thread needs. And
    on the DB-API cursor itself, in the driver's own placeholder style: Django's SQLite cursor would
    rewrite every ``%s`` of the statement with a regular expression on each execute.
    """
    if not points:
        return
    connection.ensure_connection()
    # Django knows SQLite's parameter limit; for PostgreSQL it says None (its protocol carries at
    # most 65,535). At most 500 rows a statement either way: each row count's statement is cached.
    limit = connection.features.max_query_params or 65535
    per_statement = max(1, min(limit // len(_POINT_FIELDS), MAX_ROWS_PER_INSERT))
    cursor = connection.connection.cursor()
    try:
        for start in range(0, len(points), per_statement):
            chunk = points[start:start + per_statement]
            cursor.execute(_insert_statement(len(chunk)), [value for point in chunk for value in (run_id, *point)])
    finally:
        cursor.close()


@functools.cache  # at most MAX_ROWS_PER_INSERT statements
def _insert_statement(rows: int) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(MetricPoint._meta.get_field(name).column) for name in _POINT_FIELDS)
    placeholder = "?" if connection.Database.paramstyle == "qmark" else "%s"
    row = "(" + ", ".join([placeholder] * len(_POINT_FIELDS)) + ")"
    return f"INSERT INTO {quote(MetricPoint._meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)}"


# -- the recording process ------------------------------------------------------------------------
#
# In a Celery pool process the recorder does not run as a thread beside the training loop: each
# tick's ORM work, SQL and channel-layer send hold the GIL for a millisecond or more, about 5% of a
# small model's training speed. Instead the pool process forks one recording process when it
# starts (before it has opened a database connection, an event loop or a thread), which runs the
# RunRecorder of whatever run the pool process trains. The training side, ``RecorderClient``, only
# appends points to a list; one of its threads, asleep in select() between ticks, sends them down a
# pipe as JSON every tick and hears back when the run is cancelled or taken over.
#
# The recording process ends when the pool process does (it sees the end of the pipe; it ignores
# SIGINT and SIGTERM so that Ctrl-C or a warm shutdown cannot cut a run's final write short). If the
# recording process dies, the run it was recording is left to the watchdog, as if its worker had
# died (its heartbeat stops), and the pool process records later runs with in-process threads.

_recording_process: RecordingProcess | None = None


class RecordingProcess:
    """The pool process's end of its recording process: one pipe, one run at a time."""

    def __init__(self, pipe, pid: int):
        self.pipe = pipe
        self.pid = pid
        self.owner_pid = os.getpid()
        self.broken = False
        self.send_lock = threading.Lock()

    def usable(self) -> bool:
        return not self.broken and self.owner_pid == os.getpid()

    def send(self, message: list) -> None:
        with self.send_lock:
            self.pipe.send_bytes(json.dumps(message).encode())

    def receive(self) -> list:
        return json.loads(self.pipe.recv_bytes())

    def break_off(self, error: BaseException) -> None:
        if not self.broken:
            log.error("the recording process %s is gone (%s): runs of this process now record in threads",
                      self.pid, error)
            # Make sure it has ended (a recording process that lost its pipe must not go on writing
            # for the run), then reap it. Its pipe can break a moment before it turns into a zombie,
            # so a non-blocking wait here could miss it and leave the zombie for good.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self.broken = True


def start_recording_process() -> RecordingProcess:
    """Fork this process's recording process; call it before any database connection, event
    loop or thread exists in this process (a Celery pool process's ``worker_process_init``)."""
    global _recording_process
    parent_end, child_end = multiprocessing.Pipe(duplex=True)
    pid = os.fork()
    if pid == 0:  # the recording process
        status = 0
        try:
            parent_end.close()
            _serve(child_end)
        except BaseException:  # a forked child must never return into its parent's code
            log.exception("the recording process failed")
            status = 1
        finally:
            logging.shutdown()
            os._exit(status)
    child_end.close()
    _recording_process = RecordingProcess(parent_end, pid)
    log.info("recording process %s started beside pool process %s", pid, os.getpid())
    return _recording_process


def open_recorder(run_id: int, *, attempt: int, first_sequence: int, publisher: live.RunPublisher):
    """The recorder for one execution of a run: in the recording process where this process has
    one, else a ``RunRecorder`` thread in this process. Both have the same methods."""
    process = _recording_process
    if process is not None and process.usable():
        return RecorderClient(process, run_id, attempt=attempt, first_sequence=first_sequence, publisher=publisher)
    return RunRecorder(run_id, attempt=attempt, first_sequence=first_sequence, publisher=publisher)


class RecorderClient:
    """A ``RunRecorder`` that runs in the recording process; the training side of it."""

    def __init__(self, process: RecordingProcess, run_id: int, *, attempt: int, first_sequence: int,
                 publisher: live.RunPublisher):
        self.process = process
        self.run_id = run_id
        self.attempt = attempt
        self.first_sequence = first_sequence
        self.publisher = publisher
        self.flush_interval = 1.0 / settings.LIVE_MAX_MESSAGES_PER_SECOND
        self.cancel_requested = False
        self.superseded = False
        self.points_recorded = 0
        self._pending: list[list] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed: list | None = None
        self._trainer = None
        self._thread = threading.Thread(target=self._loop, name=f"run-{run_id}-recorder-client", daemon=True)

    # -- the training thread ------------------------------------------------------------------
    def start(self) -> RecorderClient:
        self._send(["open", self.run_id, self.attempt, self.first_sequence, self.publisher.last_sent_at()])
        self._thread.start()
        return self

    def skip(self, already_stored: frozenset[tuple[str, int]]) -> None:
        self._send(["skip", sorted(already_stored)])

    def watch(self, trainer) -> None:
        self._trainer = trainer
        if self.cancel_requested or self.superseded:
            trainer.cancel()

    def add_point(self, name: str, *, step: int, epoch: float, value: float, wall_time: float | None = None) -> None:
        point = ["point", name, step, float(epoch), float(value), time.time() if wall_time is None else wall_time]
        with self._lock:
            self._pending.append(point)

    def add_checkpoint(self, *, epoch: int, step: int, path: str) -> None:
        with self._lock:
            self._pending.append(["checkpoint", epoch, step, path])

    def add_layer_stats(self, sample: dict) -> None:
        with self._lock:
            self._pending.append(["layer_stats", sample])

    def close(self) -> None:
        """Send what is left; wait until the recording process has written and published it."""
        self._stop.set()
        self._thread.join()
        self._forward()
        self._send(["close"])
        deadline = time.monotonic() + FINAL_WRITE_SECONDS + 10
        while self._closed is None and not self.process.broken and time.monotonic() < deadline:
            self._receive(timeout=deadline - time.monotonic())
        if self._closed is None:
            log.error("run %s: the recording process did not confirm the final write; leaving the run to the watchdog",
                      self.run_id)
            self.superseded = True
            return
        _, self.points_recorded, self.cancel_requested, self.superseded, last_sent = self._closed
        self.publisher.sent_at(last_sent)

    # -- the client's thread -------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._receive(timeout=self.flush_interval)  # asleep in select(), without the GIL
            self._forward()

    def _forward(self) -> None:
        with self._lock:
            items, self._pending = self._pending, []
        if items:
            self._send(["items", items])

    def _receive(self, *, timeout: float) -> None:
        try:
            if not self.process.pipe.poll(max(timeout, 0.0)):
                return
            message = self.process.receive()
        except (OSError, EOFError, ValueError) as error:
            self._lose(error)
            return
        kind = message[0]
        if kind == "closed":
            self._closed = message
        elif kind == "cancel":
            self.cancel_requested, self.superseded = message[1], message[2]
            if self._trainer is not None:
                self._trainer.cancel()

    def _send(self, message: list) -> None:
        if self.process.broken:
            return
        try:
            self.process.send(message)
        except (OSError, ValueError) as error:
            self._lose(error)

    def _lose(self, error: BaseException) -> None:
        """The recording process is gone: this execution cannot record, so it stops training and
        leaves the run to the watchdog, which resumes it from its last checkpoint."""
        self.process.break_off(error)
        self.superseded = True
        if self._trainer is not None:
            self._trainer.cancel()


def _serve(pipe) -> None:
    """The recording process: one RunRecorder at a time, as the pool process says."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    send_lock = threading.Lock()

    def send(message: list) -> None:
        with send_lock:
            pipe.send_bytes(json.dumps(message).encode())

    class CancelRelay:
        """Stands for the trainer in the recording process: tells the training side."""

        def __init__(self):
            self.recorder: RunRecorder | None = None

        def cancel(self) -> None:
            send(["cancel", self.recorder.cancel_requested, self.recorder.superseded])

    recorder: RunRecorder | None = None
    while True:
        try:
            message = json.loads(pipe.recv_bytes())
        except EOFError:  # the pool process ended
            if recorder is not None:
                recorder.close()
            return
        kind = message[0]
        if kind == "open":
            _, run_id, attempt, first_sequence, last_sent = message
            publisher = live.RunPublisher(run_id)
            publisher.sent_at(last_sent)
            # the pool process that forked this one trains the run
            recorder = RunRecorder(run_id, attempt=attempt, first_sequence=first_sequence, publisher=publisher,
                                   trained_pid=os.getppid())
            relay = CancelRelay()
            relay.recorder = recorder
            recorder.watch(relay)
            recorder.start()
        elif kind == "skip":
            recorder.skip(frozenset((name, step) for name, step in message[1]))
        elif kind == "items":
            for item in message[1]:
                if item[0] == "point":
                    _, name, step, epoch, value, wall_time = item
                    recorder.add_point(name, step=step, epoch=epoch, value=value, wall_time=wall_time)
                elif item[0] == "layer_stats":
                    recorder.add_layer_stats(item[1])
                else:
                    _, epoch, step, path = item
                    recorder.add_checkpoint(epoch=epoch, step=step, path=path)
            recorder.wake()
        elif kind == "close":
            recorder.close()
            send(["closed", recorder.points_recorded, recorder.cancel_requested, recorder.superseded,
                  recorder.publisher.last_sent_at()])
            recorder = None
