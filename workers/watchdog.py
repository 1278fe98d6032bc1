"""The watchdog: a run whose worker died does not stay running (contract 4).

A running run's recorder writes ``heartbeat_at`` every ``RUN_HEARTBEAT_SECONDS`` (database time,
so machines with skewed clocks agree). Every ``interval`` seconds the watchdog looks for running
runs whose heartbeat is older than ``RUN_STALE_AFTER_SECONDS`` and

- queues them again to resume from their last checkpoint, when one exists and the run has had
  fewer than ``RUN_MAX_ATTEMPTS`` executions (the next execution counts one more attempt);
- marks them failed otherwise, with the reason ("worker X stopped sending heartbeats at T; ...").

A distributed run (``workers.distributed``) is the same: rank 0 beats its heartbeat, and all its
tasks are queued again together. Its own workers notice a dead peer sooner (within seconds, through
Redis) and call the same ``resume_or_fail``.

It also sends again the message of a queued run that the broker lost (Redis restarted without
persistence): a queued run whose task id is neither waiting in its queue nor reserved by a worker,
on two checks in a row, is queued under a new task id (Redis broker only; within two intervals).

Where it runs: a daemon thread in the main process of every Celery worker, started on the
``worker_ready`` signal (``workers.celery_app``). Recovery needs a worker to resume on anyway, so
the watchdog lives wherever workers live, with no extra process for ``make run`` or compose to
supervise, and it survives the death of any one worker as long as another runs. Several
watchdogs are safe together: each change is a ``webapp.runs.lifecycle`` transition fenced on the
state, attempt and heartbeat it saw, so exactly one of them wins. ``python -m workers.watchdog``
runs it alone.

The bound: a dead worker's run leaves "running" at most ``RUN_STALE_AFTER_SECONDS + interval``
after its last heartbeat, which the worker wrote at most ``RUN_HEARTBEAT_SECONDS`` before it died
(defaults 20 + 5 s after a heartbeat every 2 s: within 27 s of the death; test settings 5 + 1.25 s
after a heartbeat every 0.5 s: within 6.75 s), provided some worker is running.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading

from django.conf import settings
from django.db.models.functions import Now

from workers.fork_guard import repeat_db_work

log = logging.getLogger(__name__)

_background: tuple[threading.Thread, threading.Event] | None = None
# Queued runs (id -> task id) whose message was not in the broker at the previous check: a message
# is missing for a moment between storing a run's task id and sending it, so one miss is not a loss.
_missing_at_last_check: dict[int, str] = {}


def check_interval() -> float:
    """Seconds between checks: ``RUN_WATCHDOG_INTERVAL_SECONDS``, or a quarter of the stale age."""
    return float(getattr(settings, "RUN_WATCHDOG_INTERVAL_SECONDS", settings.RUN_STALE_AFTER_SECONDS / 4))


def recover_stale_runs() -> list[tuple[int, str]]:
    """One check: each stale run is queued again, failed (or cancelled, if that was asked).
    Returns ``(run id, "requeued" | "failed" | "cancelled")``."""
    from webapp.runs.models import Run  # noqa: PLC0415

    stale = Run.objects.filter(state=Run.State.RUNNING, heartbeat_at__lt=_cutoff())
    outcomes = []
    for run in stale:
        outcome = _recover(run)
        if outcome:
            outcomes.append((run.pk, outcome))
    return outcomes


def _cutoff():
    return Now() - datetime.timedelta(seconds=settings.RUN_STALE_AFTER_SECONDS)


def _recover(run) -> str | None:
    # Only if the run is still as this check saw it: another watchdog may have acted, or the worker
    # may have beaten its heartbeat after all.
    last_heartbeat = f"{run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if run.heartbeat_at else "its start"
    stopped = f"worker {run.worker or '(unknown)'} stopped sending heartbeats at {last_heartbeat}"
    return resume_or_fail(run, stopped=stopped, attempt=run.attempt, heartbeat_before=_cutoff())


def resume_or_fail(run, *, stopped: str, attempt: int, task_id: str | None = None,
                   heartbeat_before=None) -> str | None:
    """A run whose execution broke off (``stopped`` says how): queued again to resume from its last
    checkpoint (all its workers, for a distributed run), failed with the reason, or cancelled if
    that was asked. Only if the run is still running ``attempt`` (under ``task_id``, with a heartbeat
    older than ``heartbeat_before``, where given): only one of several deciders changes the run.
    Returns "requeued", "failed", "cancelled", or None when the run had changed meanwhile."""
    from webapp.runs import dispatch, lifecycle  # noqa: PLC0415  (models load after Django is set up)

    fence = {"attempt": attempt, "task_id": task_id, "heartbeat_before": heartbeat_before}
    has_checkpoint = run.checkpoints.exists()
    if has_checkpoint and run.attempt < settings.RUN_MAX_ATTEMPTS and not run.cancel_requested:
        new_task_id = dispatch.new_task_id()
        if lifecycle.run_requeue(run_id=run.pk, new_task_id=new_task_id, **fence) is None:
            return None
        try:
            dispatch.send_training(run.pk, device=run.device, task_id=new_task_id)
        except Exception as error:  # noqa: BLE001  (broker away: leave it stale, the next check retries)
            log.warning("run %s: could not queue it again (%s); retrying at the next check", run.pk, error)
            lifecycle.run_requeue_undo(run_id=run.pk, task_id=new_task_id, previous_task_id=run.task_id,
                                       previous_worker=run.worker)
            return None
        log.warning("run %s: %s; resuming from its last checkpoint (attempt %s)", run.pk, stopped, run.attempt + 1)
        return "requeued"
    if run.cancel_requested:
        if lifecycle.run_cancel_abandoned(run_id=run.pk, **fence) is None:
            return None
        log.warning("run %s: %s; its cancel was requested, so it is cancelled", run.pk, stopped)
        return "cancelled"
    if not has_checkpoint:
        reason = f"{stopped}; no checkpoint to resume from"
    else:
        reason = (f"{stopped}; not resumed again: it already ran {run.attempt} time(s), "
                  f"the most allowed (RUN_MAX_ATTEMPTS={settings.RUN_MAX_ATTEMPTS})")
    if lifecycle.run_fail(run_id=run.pk, error=reason, from_state=lifecycle.RUNNING, **fence) is None:
        return None
    log.warning("run %s: %s", run.pk, reason)
    return "failed"


def requeue_lost_messages() -> list[int]:
    """One check for queued runs whose message the broker lost; returns the ids queued again."""
    from webapp.runs.models import Run  # noqa: PLC0415

    queued = dict(Run.objects.filter(state=Run.State.QUEUED).exclude(task_id="").values_list("pk", "task_id"))
    present = broker_task_ids() if queued else set()
    if present is None:  # not a Redis broker, or unreachable now: nothing can be said
        return []
    # A distributed run's messages are its ranks' (``<task id>.rank<r>``, see webapp.runs.dispatch).
    missing = {run_id: task_id for run_id, task_id in queued.items()
               if task_id not in present and f"{task_id}.rank0" not in present}
    lost = [run_id for run_id, task_id in missing.items() if _missing_at_last_check.get(run_id) == task_id]
    _missing_at_last_check.clear()
    _missing_at_last_check.update({run_id: task_id for run_id, task_id in missing.items() if run_id not in lost})
    return [run_id for run_id in lost if _send_again(run_id, missing[run_id])]


def broker_task_ids() -> set[str] | None:
    """Task ids of the messages waiting in the training queues (cpu, gpu) or reserved by a worker,
    read from the Redis transport's keys; None when the broker is not Redis or does not answer."""
    import redis  # noqa: PLC0415
    from kombu.transport.redis import PRIORITY_STEPS, Channel  # noqa: PLC0415

    from webapp.runs.dispatch import TRAINING_QUEUES, celery_client  # noqa: PLC0415

    url = celery_client().conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        raw = [payload for queue in TRAINING_QUEUES for step in PRIORITY_STEPS
               for payload in client.lrange(f"{queue}{Channel.sep}{step}" if step else queue, 0, -1)]
        raw += [json.loads(entry)[0] for entry in client.hvals(Channel.unacked_key)]
    except redis.RedisError as error:
        log.info("watchdog: broker not readable now (%s)", error)
        return None
    finally:
        client.close()
    ids = set()
    for payload in raw:
        try:
            message = json.loads(payload) if isinstance(payload, bytes | str) else payload
            ids.add(message["headers"]["id"])
        except (ValueError, KeyError, TypeError):
            continue
    return ids


def _send_again(run_id: int, lost_task_id: str) -> bool:
    from webapp.runs import dispatch, lifecycle  # noqa: PLC0415
    from webapp.runs.models import Run  # noqa: PLC0415

    task_id = dispatch.new_task_id()
    if not lifecycle.run_queue_task(run_id=run_id, task_id=task_id, previous_task_id=lost_task_id):
        return False
    try:
        dispatch.send_training(run_id, device=Run.objects.values_list("device", flat=True).get(pk=run_id),
                               task_id=task_id)
    except Exception as error:  # noqa: BLE001  (broker away: the next checks try again)
        log.warning("run %s: could not queue it again (%s)", run_id, error)
        lifecycle.run_queue_task(run_id=run_id, task_id=lost_task_id, previous_task_id=task_id)
        return False
    log.warning("run %s: the broker lost its queued message (task %s); queued again as task %s",
                run_id, lost_task_id, task_id)
    return True


def run_forever(stop: threading.Event, *, interval: float | None = None) -> None:
    interval = check_interval() if interval is None else interval
    log.info("watchdog: checking for stale runs every %.2f s (stale after %s s)", interval,
             settings.RUN_STALE_AFTER_SECONDS)
    def check() -> None:
        recover_stale_runs()
        requeue_lost_messages()

    repeat_db_work(stop, interval, check, what="watchdog: check")


def start_in_background() -> None:
    global _background
    if _background is not None and _background[0].is_alive():
        return
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(stop,), name="netforge-watchdog", daemon=True)
    thread.start()
    _background = (thread, stop)


def stop_background() -> None:
    if _background is not None:
        _background[1].set()


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")
    django.setup()
    logging.basicConfig(level=logging.INFO)
    try:
        run_forever(threading.Event())
    except KeyboardInterrupt:
        pass
