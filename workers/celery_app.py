"""The Celery application, configured from Django settings (the ``CELERY_`` names in
``webapp/settings/base.py``).

Two queues: ``cpu`` and ``gpu``. A run goes to the queue named by its ``device`` (see
``webapp.runs.dispatch``, which sends the tasks of ``workers.tasks`` by name); a machine with a GPU
runs a worker with ``-Q gpu``.

Delivery of long trainings. Tasks are acknowledged late (after they finish) with a prefetch of one,
so a worker holds at most the task it is running. The Redis transport re-delivers an unacknowledged
message once the broker's visibility timeout passes; a training can last hours, and a re-delivery
while it still runs would train it twice. So the visibility timeout is set far above any run
(``CELERY_VISIBILITY_TIMEOUT``, a week by default), and the broker is not what notices a dead
worker: every running run beats a heartbeat into the database, and the watchdog
(``workers.watchdog``) resumes a run whose heartbeat stopped from its last checkpoint, or marks it
failed. A late re-delivery, should one ever happen, is harmless: a task only executes a run that is
queued under its own task id (``workers.training.run_execute``).
"""

from __future__ import annotations

import gc
import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from django.conf import settings
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")

QUEUES = ("cpu", "gpu")
# Uploaded datasets are read and converted on a queue of their own (workers.datasets), so a large
# upload never waits behind trainings, nor a training behind it.
DATASETS_QUEUE = "datasets"

app = Celery("netforge", include=["workers.tasks", "workers.datasets", "workers.sweeps"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue(name) for name in (*QUEUES, DATASETS_QUEUE)],
    task_default_queue="cpu",
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    # A broker outage must not cancel a training in progress: its points go to the database, and
    # the live view catches up when Redis is back.
    worker_cancel_long_running_tasks_on_connection_loss=False,
)


@worker_ready.connect
def _start_watchdog(**_) -> None:
    # Every worker watches every run: whichever notices a stale heartbeat first recovers the run,
    # and the others' conditional updates then find nothing to do.
    from workers import watchdog  # noqa: PLC0415  (models load after Django is set up)

    watchdog.start_in_background()


@worker_process_init.connect
def _warm_up(**_) -> None:
    # A pool process imports the engine's ops and the channel layer's Redis client before its
    # first task: otherwise the first run's recorder thread spends a fifth of a second importing,
    # holding the GIL its training loop needs.
    from channels.layers import get_channel_layer  # noqa: PLC0415

    import engine.ops  # noqa: F401, PLC0415

    get_channel_layer()
    # Django, Celery and the engine are a few hundred thousand long-lived objects that every full
    # garbage collection would walk again, in the middle of a training loop that allocates per batch.
    gc.freeze()
    if settings.RUN_RECORDING_PROCESS:
        from workers.recording import start_recording_process  # noqa: PLC0415

        start_recording_process()


@worker_shutdown.connect
def _stop_watchdog(**_) -> None:
    from workers import watchdog  # noqa: PLC0415

    watchdog.stop_background()
