"""Sending runs to the workers: Celery messages by task name (contract 4, and the import rule).

The web app reaches ``workers`` only through the broker: it sends the messages of the tasks named
below with a small Celery client of its own, configured from the same ``CELERY_`` settings as the
workers' application, and never imports the worker package. The watchdog (``workers.watchdog``)
sends its requeued runs through here too, so a run's messages are built in one place.

A run of ``workers`` N > 1 is N messages, ``<task id>.rank<r>`` (and ``<task id>.server`` for the
parameter-server strategy), which rendezvous as the group named ``task_id``.
"""

from __future__ import annotations

import functools
import logging

from celery import Celery
from celery.utils import uuid
from kombu.exceptions import OperationalError

from webapp.runs import lifecycle
from webapp.runs.models import Run

log = logging.getLogger(__name__)

# The workers' task names (``workers.tasks``): renaming one strands the messages already queued.
TRAIN_RUN = "workers.train_run"
TRAIN_RUN_RANK = "workers.train_run_rank"
SERVE_RUN_PARAMETERS = "workers.serve_run_parameters"
# A run's device names the queue whose workers can train on it (``celery -A workers.celery_app worker -Q gpu``).
TRAINING_QUEUES = ("cpu", "gpu")


@functools.cache
def celery_client() -> Celery:
    """The Celery application this process sends with (built once, on first use)."""
    client = Celery("netforge-dispatch", set_as_current=False)
    client.config_from_object("django.conf:settings", namespace="CELERY")
    return client


def new_task_id() -> str:
    return uuid()


def queue_for_device(device: str) -> str:
    """The queue whose workers can train on ``device`` ("cpu" or "gpu")."""
    if device not in TRAINING_QUEUES:
        raise ValueError(f"unknown device '{device}': expected one of {', '.join(TRAINING_QUEUES)}")
    return device


def send_training(run_id: int, *, device: str, task_id: str, countdown: float | None = None) -> None:
    """Put the training message(s) of a run on its device's queue (raises if the broker is
    unreachable); with ``countdown``, a single worker's run is taken up that many seconds later
    (a worker leaving a run queued for its user's running limit, ``workers.training``)."""
    queue = queue_for_device(device)
    workers, hyperparameters = Run.objects.values_list("workers", "hyperparameters").get(pk=run_id)
    client = celery_client()
    if workers <= 1:
        client.send_task(TRAIN_RUN, args=(run_id,), task_id=task_id, queue=queue, countdown=countdown)
        return
    if (hyperparameters or {}).get("strategy", "allreduce") == "ps":
        client.send_task(SERVE_RUN_PARAMETERS, args=(run_id, task_id), task_id=f"{task_id}.server", queue=queue)
    for rank in range(workers):
        client.send_task(TRAIN_RUN_RANK, args=(run_id, task_id, rank), task_id=f"{task_id}.rank{rank}", queue=queue)


def enqueue_training(run_id: int) -> str:
    """Queue a queued run for training and return its task id ("" when there was nothing to queue).

    Call it after the transaction that created or resumed the run committed
    (``transaction.on_commit``). The task id is stored on the run before the message is sent: a
    worker executes a run only under the task id the run names. If the broker cannot be reached,
    the run is marked failed with the reason instead of staying queued forever.
    """
    task_id = new_task_id()
    if not lifecycle.run_queue_task(run_id=run_id, task_id=task_id):
        log.info("run %s is not queued; nothing to enqueue", run_id)
        return ""
    device = Run.objects.values_list("device", flat=True).get(pk=run_id)
    try:
        send_training(run_id, device=device, task_id=task_id)
    except ValueError as error:
        lifecycle.run_fail(run_id=run_id, error=str(error))
        return ""
    except (OperationalError, ConnectionError, OSError) as error:
        log.error("could not queue run %s: %s", run_id, error)
        lifecycle.run_fail(run_id=run_id, error=f"could not queue the run: the message broker is unreachable "
                                                f"({error}); check that Redis is running, then start the run again")
        return ""
    return task_id
