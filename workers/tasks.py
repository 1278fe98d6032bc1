"""Celery tasks: thin adapters that take primary keys and call a service."""

from __future__ import annotations

import logging

from celery.utils import uuid
from kombu.exceptions import OperationalError

from workers.celery_app import app, queue_for_device

log = logging.getLogger(__name__)


@app.task(name="workers.train_run", bind=True, ignore_result=True)
def train_run(self, run_id: int) -> str:
    from workers.training import run_execute  # noqa: PLC0415

    return run_execute(run_id, task_id=self.request.id)


@app.task(name="workers.train_run_rank", bind=True, ignore_result=True)
def train_run_rank(self, run_id: int, group: str, rank: int) -> str:
    from workers.distributed.execution import rank_execute  # noqa: PLC0415

    return rank_execute(run_id, group=group, rank=rank)


@app.task(name="workers.serve_run_parameters", bind=True, ignore_result=True)
def serve_run_parameters(self, run_id: int, group: str) -> str:
    from workers.distributed.execution import parameter_server_execute  # noqa: PLC0415

    return parameter_server_execute(run_id, group=group)


def send_training(run_id: int, *, device: str, task_id: str) -> None:
    """Put the training message(s) of a run on its device's queue (raises if the broker is unreachable).

    A run of ``workers`` N > 1 is N messages, ``<task id>.rank<r>`` (and ``<task id>.server`` for
    the parameter-server strategy), which rendezvous as the group named ``task_id``."""
    from webapp.runs.models import Run  # noqa: PLC0415

    queue = queue_for_device(device)
    workers, hyperparameters = Run.objects.values_list("workers", "hyperparameters").get(pk=run_id)
    if workers <= 1:
        train_run.apply_async((run_id,), task_id=task_id, queue=queue)
        return
    if (hyperparameters or {}).get("strategy", "allreduce") == "ps":
        serve_run_parameters.apply_async((run_id, task_id), task_id=f"{task_id}.server", queue=queue)
    for rank in range(workers):
        train_run_rank.apply_async((run_id, task_id, rank), task_id=f"{task_id}.rank{rank}", queue=queue)


def enqueue_training(run_id: int) -> str:
    """Queue a queued run for training and return its task id ("" when there was nothing to queue).

    Call it after the transaction that created the run committed (``transaction.on_commit``).
    The task id is stored on the run before the message is sent: a worker executes a run only
    under the task id the run names. If the broker cannot be reached, the run is marked failed
    with the reason instead of staying queued forever.
    """
    from webapp.runs.models import Run  # noqa: PLC0415
    from workers.training import run_fail  # noqa: PLC0415

    task_id = uuid()
    if not Run.objects.filter(pk=run_id, state=Run.State.QUEUED).update(task_id=task_id):
        log.info("run %s is not queued; nothing to enqueue", run_id)
        return ""
    device = Run.objects.values_list("device", flat=True).get(pk=run_id)
    try:
        send_training(run_id, device=device, task_id=task_id)
    except ValueError as error:
        run_fail(run_id, error=str(error))
        return ""
    except (OperationalError, ConnectionError, OSError) as error:
        log.error("could not queue run %s: %s", run_id, error)
        run_fail(run_id, error=f"could not queue the run: the message broker is unreachable ({error}); "
                               "check that Redis is running, then start the run again")
        return ""
    return task_id
