"""The worker side of sweeps: advance a sweep when one of its trials' runs finishes, and on a tick.

Both only call ``webapp.sweeps.services.sweep_advance``, which reads the sweep's whole state from
the database and is safe to run anywhere, at any time, from several processes at once:

- ``task_postrun`` of a training task: the worker that finished a trial's run starts the next one
  at once (the run's outcome is committed by then), so a sweep's trials follow each other without
  waiting for a tick;
- a daemon thread in each worker's main process (started on ``worker_ready``, like the watchdog)
  advances every running sweep every ``SWEEP_TICK_SECONDS``: it prunes on the epochs recorded since
  the last tick, and makes up for a finish event that never came (a worker killed mid-run, whose run
  the watchdog resumed elsewhere; a web server restarted mid-creation).
"""

from __future__ import annotations

import logging
import threading

from celery.signals import task_postrun, worker_ready, worker_shutdown
from django.conf import settings

from workers.fork_guard import repeat_db_work

log = logging.getLogger(__name__)

# The training tasks whose end may be a trial's run's end (workers.tasks); rank 0 of a distributed
# run finishes it, but every rank's end is checked: a run that is not finished is left alone.
TRAINING_TASKS = ("workers.train_run", "workers.train_run_rank")

_background: tuple[threading.Thread, threading.Event] | None = None


@task_postrun.connect
def _advance_after_training(sender=None, args=None, **_) -> None:
    if getattr(sender, "name", None) not in TRAINING_TASKS or not args:
        return
    from webapp.sweeps.services import sweep_advance_for_run  # noqa: PLC0415  (models load after Django is set up)

    try:
        sweep_advance_for_run(run_id=int(args[0]))
    except Exception:  # the tick tries again; the task's own outcome is already recorded
        log.exception("run %s: its sweep could not be advanced", args[0])


def tick_forever(stop: threading.Event, *, interval: float | None = None) -> None:
    from webapp.sweeps.services import sweeps_advance_running  # noqa: PLC0415

    interval = float(settings.SWEEP_TICK_SECONDS) if interval is None else interval
    log.info("sweeps: advancing the running sweeps every %.2f s", interval)
    repeat_db_work(stop, interval, sweeps_advance_running, what="sweeps: tick")


@worker_ready.connect
def _start_tick(**_) -> None:
    global _background
    if _background is not None and _background[0].is_alive():
        return
    stop = threading.Event()
    thread = threading.Thread(target=tick_forever, args=(stop,), name="netforge-sweeps", daemon=True)
    thread.start()
    _background = (thread, stop)


@worker_shutdown.connect
def _stop_tick(**_) -> None:
    if _background is not None:
        _background[1].set()
