"""Which queues have a live worker: the workers' own answers over the broker, briefly cached.

The web app asks the workers through the broker with Celery's remote control (``inspect``), using
the dispatch module's client (it never imports ``workers``): ``active_queues`` names the live
workers and their queues within ``WORKER_STATUS_TIMEOUT_SECONDS``, then ``stats`` (pool size) and
``active`` (tasks running) are asked of exactly those workers, which returns as soon as each has
answered. A worker's main process answers while its pool trains, so a busy worker still counts as
live. The answer is cached for ``WORKER_STATUS_CACHE_SECONDS`` in this process, then refreshed in
the background (``worker_status``): a page that polls the status or a burst of new runs costs one
round trip, not one each, and no request waits for the workers' answers but the first.

Starting or resuming a run whose device's queue has no live worker is refused (503, ``no_worker``)
rather than left queued with no word: before refusing it asks again, so a worker that has just
started is not missed, and a queue that a worker served within ``WORKER_SEEN_GRACE_SECONDS`` still
takes runs (its worker is restarting, or reconnecting after a Redis restart, and will take them).
``CHECK_LIVE_WORKERS`` turns the check off (the in-process API tests, which have no worker); a broker
that cannot be reached is not this check's to report (the run then fails with that reason,
``dispatch.enqueue_training``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field

from django.conf import settings
from kombu.exceptions import OperationalError
from rest_framework import status

from webapp.core.exceptions import ApiError
from webapp.datasets.services import DATASETS_QUEUE
from webapp.runs import dispatch

log = logging.getLogger(__name__)

QUEUE_PURPOSES = {
    "cpu": "training on the CPU",
    "gpu": "training on a GPU",
    DATASETS_QUEUE: "reading and converting uploaded datasets",
}
START_COMMANDS = {
    "cpu": "`celery -A workers.celery_app worker -Q cpu` (make run starts one)",
    "gpu": "`celery -A workers.celery_app worker -Q gpu` on a machine with a CUDA GPU and CuPy "
           "(make run starts one when CuPy finds a GPU)",
    DATASETS_QUEUE: "`celery -A workers.celery_app worker -Q datasets` (make run starts one)",
}
# A supervised worker is back within seconds of a crash, and a worker reconnects a few seconds after a
# Redis restart: a minute covers both without taking runs for a queue whose worker is gone for good.
WORKER_SEEN_GRACE_SECONDS = 60.0


class NoLiveWorker(ApiError):
    """503: no worker serves the queue a run would be sent to, so it would wait with no word."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "no_worker"


@dataclass
class WorkerStatus:
    hostname: str
    queues: list[str]
    device: str  # "gpu" when it serves the gpu queue, "cpu" when it serves cpu, else "" (datasets only)
    concurrency: int | None  # pool slots
    active: int | None  # tasks running now
    pid: int | None


@dataclass
class QueueStatus:
    name: str
    purpose: str
    live: bool
    workers: list[str]
    concurrency: int  # pool slots of its workers, together
    active: int  # tasks running on its workers (a worker that serves several queues counts for each)
    start_command: str


@dataclass
class Status:
    checked_at: float  # Unix time of the answers
    broker_reachable: bool
    error: str
    workers: list[WorkerStatus] = field(default_factory=list)
    queues: list[QueueStatus] = field(default_factory=list)

    def queue(self, name: str) -> QueueStatus | None:
        return next((queue for queue in self.queues if queue.name == name), None)

    def as_dict(self) -> dict:
        return asdict(self)


_cached: tuple[float, Status] | None = None  # (when, answer), monotonic
_last_seen: dict[str, float] = {}  # queue -> when a worker last said it serves it (monotonic)
_refreshing = False  # a background refresh is under way
_generation = 0  # bumped by forget_cached_status: an answer asked for before it is not kept
_state_lock = threading.Lock()  # guards the four above
_asking_lock = threading.Lock()  # one round trip to the workers at a time


def _timeout() -> float:
    return settings.WORKER_STATUS_TIMEOUT_SECONDS


def worker_status(*, fresh: bool = False, timeout: float | None = None) -> Status:
    """The live workers and, per known queue (``cpu``, ``gpu``, ``datasets`` and any other a worker
    serves), whether a worker serves it and how loaded it is.

    Asking takes the whole timeout (how many workers will answer is not known), and Django's sync views
    share one thread under ASGI: so an answer past ``WORKER_STATUS_CACHE_SECONDS`` is still returned at
    once while a background thread asks again, up to ``WORKER_SEEN_GRACE_SECONDS``; only an older one, no
    answer yet, or ``fresh`` make the caller wait for the workers."""
    global _refreshing
    if not fresh:
        with _state_lock:
            if _cached is not None:
                age = time.monotonic() - _cached[0]
                if age < settings.WORKER_STATUS_CACHE_SECONDS:
                    return _cached[1]
                if age < WORKER_SEEN_GRACE_SECONDS:
                    if not _refreshing:
                        _refreshing = True
                        threading.Thread(target=_refresh, name="worker-status", daemon=True).start()
                    return _cached[1]
    return _ask_and_keep(timeout if timeout is not None else _timeout())


def _refresh() -> None:
    global _refreshing
    try:
        _ask_and_keep(_timeout())
    except Exception:  # a background thread has nobody to raise to
        log.exception("could not refresh the worker status")
    finally:
        with _state_lock:
            _refreshing = False


def _ask_and_keep(timeout: float) -> Status:
    global _cached
    with _state_lock:
        generation = _generation
    with _asking_lock:
        answer = _ask_workers(timeout)
    with _state_lock:
        if generation != _generation:  # forgotten while asking (the broker changed): answer, keep nothing
            return answer
        _cached = (time.monotonic(), answer)
        for queue in answer.queues:
            if queue.live:
                _last_seen[queue.name] = _cached[0]
    return answer


def forget_cached_status() -> None:
    """Drop the kept answer and the queues seen; an answer still being asked for is not kept either."""
    global _cached, _generation
    with _state_lock:
        _generation += 1
        _cached = None
        _last_seen.clear()


def _ask_workers(timeout: float) -> Status:
    client = dispatch.celery_client()
    checked_at = time.time()
    try:
        with client.connection_for_write() as connection:
            # One quick try: a status page must answer at once when Redis is down, not after kombu's retries.
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, interval_max=0.2,
                                         timeout=timeout)
            queues_by_worker = client.control.inspect(timeout=timeout, connection=connection).active_queues() or {}
            stats, active = {}, {}
            if queues_by_worker:
                known = client.control.inspect(timeout=timeout, connection=connection,
                                               destination=list(queues_by_worker), limit=len(queues_by_worker))
                stats, active = known.stats() or {}, known.active() or {}
    except (OperationalError, ConnectionError, OSError) as error:
        log.warning("could not ask the workers for their status: %s", error)
        return Status(checked_at, False, f"the message broker is unreachable ({error})", [], _queues([]))
    workers = []
    for hostname, queues in sorted(queues_by_worker.items()):
        names = sorted(queue["name"] for queue in queues or [])
        pool = (stats.get(hostname) or {}).get("pool") or {}
        concurrency = pool.get("max-concurrency")
        running = active.get(hostname)
        workers.append(WorkerStatus(
            hostname=hostname, queues=names,
            device="gpu" if "gpu" in names else "cpu" if "cpu" in names else "",
            concurrency=concurrency if isinstance(concurrency, int) else None,
            active=len(running) if isinstance(running, list) else None,
            pid=(stats.get(hostname) or {}).get("pid"),
        ))
    return Status(checked_at, True, "", workers, _queues(workers))


def _queues(workers: list[WorkerStatus]) -> list[QueueStatus]:
    names = list(QUEUE_PURPOSES) + sorted({name for worker in workers for name in worker.queues} - set(QUEUE_PURPOSES))
    queues = []
    for name in names:
        serving = [worker for worker in workers if name in worker.queues]
        queues.append(QueueStatus(
            name=name, purpose=QUEUE_PURPOSES.get(name, ""), live=bool(serving),
            workers=[worker.hostname for worker in serving],
            concurrency=sum(worker.concurrency or 0 for worker in serving),
            active=sum(worker.active or 0 for worker in serving),
            start_command=START_COMMANDS.get(name, f"`celery -A workers.celery_app worker -Q {name}`"),
        ))
    return queues


def check_queue_served(device: str) -> None:
    """Refuse (503 ``no_worker``, naming the queue and how to start a worker) a run for ``device``
    whose queue no live worker serves; nothing when ``CHECK_LIVE_WORKERS`` is off."""
    if not settings.CHECK_LIVE_WORKERS:
        return
    queue = dispatch.queue_for_device(device)
    answer = worker_status()
    if _served_or_unknown(answer, queue):
        return
    # Ask again, a little more patiently, before refusing: the worker may have just started.
    answer = worker_status(fresh=True, timeout=2 * _timeout())
    if _served_or_unknown(answer, queue):
        return
    message = (f"no worker is serving the {queue} queue, so a run on device '{device}' would wait with no end; "
               f"start one with {START_COMMANDS[queue]}, or choose another device")
    raise NoLiveWorker(message, details={"device": [message]})  # the train panel shows it beside the device


def _served_or_unknown(answer: Status, queue: str) -> bool:
    served = answer.queue(queue)
    if not answer.broker_reachable or (served is not None and served.live):
        return True
    # A worker seen lately is away for a moment (restarting, or reconnecting after a Redis restart): its
    # queue keeps the run until it is back, as before. A queue nobody served lately is refused.
    with _state_lock:
        seen = _last_seen.get(queue)
    return seen is not None and time.monotonic() - seen < WORKER_SEEN_GRACE_SECONDS
