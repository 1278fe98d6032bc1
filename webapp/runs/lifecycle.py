"""The run lifecycle: the one module that writes ``Run.state`` (contract 4).

States are ``Run.State``: queued, running, succeeded, failed, cancelled, timed_out (stopped by the
per-run time limit, with its checkpoints kept). "Cancelling" is not a state of its own: it is
running with ``cancel_requested`` set, and the worker then finishes the run cancelled after the
batch in progress.
Each execution of a run is an attempt: claiming a queued run counts one more, and a run queued
again (by the user's resume, or by the watchdog when its worker vanished) resumes from its newest
checkpoint at its next claim. ``TRANSITIONS`` lists every allowed move and the function making it::

    queued --claim--> running --finish--> succeeded | failed | cancelled | timed_out  (its execution's outcome)
      | ^                 |
      | '----requeue------+   (the watchdog: resume from the last checkpoint; undone if unsent)
      |                   +--fail--> failed                 (the watchdog: no checkpoint, no attempt left)
      |                   '--cancel_abandoned--> cancelled  (the watchdog: its cancel was asked)
      +--fail--> failed           (its message could not be sent)
      '--cancel--> cancelled      (a running run: cancel requested, its worker finishes it cancelled)
    failed | cancelled | timed_out --resume--> queued

Who calls what: the REST views ``run_cancel`` and (through ``services.run_resume``) ``run_resume``;
``webapp.runs.dispatch`` ``run_queue_task`` and ``run_fail``; a worker's execution
(``workers.training``, ``workers.distributed.execution``) ``run_claim``, ``run_finish`` and, from
its recorder, ``run_heartbeat``; the watchdog ``run_requeue`` (and ``run_requeue_undo`` when the
message cannot be sent), ``run_fail`` and ``run_cancel_abandoned``.

Concurrency: every function is atomic, and every write is one conditional UPDATE (or a row locked
with ``select_for_update``) fenced on what the caller saw: the state; the attempt, so an execution
the watchdog replaced cannot write over its successor; the task id, so a message delivered twice or
a group that was replaced claims nothing; the heartbeat's age, so a worker that beat after all
keeps its run. Several watchdogs and workers can race: exactly one of them wins.

Errors, on purpose two kinds. A worker's or the watchdog's call that finds the run no longer as it
saw it returns None or False and changes nothing: that is how a repeated call (they are all
idempotent) and a lost race look, and the caller stands down. A user's request the table forbids
from the run's current state (cancel a finished run, resume a running one) raises
``InvalidTransition``, a 409 naming the state; so does a call asking for a move the table never
allows (a programming error, such as finishing a run as queued).

Live view: the one-off changes (fail, cancel of a queued run, requeue and its undo, the watchdog's
cancel) are published here once they commit (``live.publish_run_state``). Claim and finish are
published by the execution's own ``RunPublisher``, after the points it still holds, so the final
state never overtakes a point. Runs are born queued (the model's default, ``services.run_create``).
"""

from __future__ import annotations

import datetime
import logging

from django.db import transaction
from django.db.models import Expression, F, Value
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from webapp.core.exceptions import Conflict
from webapp.runs import live
from webapp.runs.models import Run

log = logging.getLogger(__name__)

QUEUED, RUNNING = Run.State.QUEUED, Run.State.RUNNING
SUCCEEDED, FAILED, CANCELLED = Run.State.SUCCEEDED, Run.State.FAILED, Run.State.CANCELLED
TIMED_OUT = Run.State.TIMED_OUT

# (function, from state, to state): every allowed move; anything else is refused.
TRANSITIONS: tuple[tuple[str, str, str], ...] = (
    ("run_claim", QUEUED, RUNNING),
    ("run_queue_task", QUEUED, QUEUED),  # the task id the run's message carries
    ("run_fail", QUEUED, FAILED),
    ("run_cancel", QUEUED, CANCELLED),
    ("run_requeue_undo", QUEUED, RUNNING),  # the watchdog's requeue whose message could not be sent
    ("run_heartbeat", RUNNING, RUNNING),
    ("run_cancel", RUNNING, RUNNING),  # cancel requested: the worker finishes it cancelled
    ("run_finish", RUNNING, SUCCEEDED),
    ("run_finish", RUNNING, FAILED),
    ("run_finish", RUNNING, CANCELLED),
    ("run_finish", RUNNING, TIMED_OUT),  # the execution stopped it at the per-run time limit
    ("run_fail", RUNNING, FAILED),
    ("run_cancel_abandoned", RUNNING, CANCELLED),
    ("run_requeue", RUNNING, QUEUED),
    ("run_resume", FAILED, QUEUED),
    ("run_resume", CANCELLED, QUEUED),
    ("run_resume", TIMED_OUT, QUEUED),  # the user gives it more time: its next execution has the limit anew
)


class InvalidTransition(Conflict):
    """409: the run's state does not allow the change asked for."""


def allowed_targets(function: str, from_state: str) -> tuple[str, ...]:
    """The states ``function`` may move a run in ``from_state`` to (none: it is refused)."""
    return tuple(target for name, source, target in TRANSITIONS if name == function and source == from_state)


def _require(function: str, from_state: str, to_state: str | None = None) -> None:
    targets = allowed_targets(function, from_state)
    if not targets or (to_state is not None and to_state not in targets):
        moves = ", ".join(f"{source} -> {target}" for name, source, target in TRANSITIONS if name == function)
        raise InvalidTransition(f"{function} cannot move a run from {from_state} to {to_state or 'any state'}; "
                                f"it allows {moves}", details={"state": from_state})


def _fenced(run_id: int, *, state: str, attempt: int | None = None, task_id: str | None = None,
            heartbeat_before: datetime.datetime | Expression | None = None):
    """The run, if it is still as the caller saw it (``None`` fences are not checked)."""
    runs = Run.objects.filter(pk=run_id, state=state)
    if attempt is not None:
        runs = runs.filter(attempt=attempt)
    if task_id is not None:
        runs = runs.filter(task_id=task_id)
    if heartbeat_before is not None:
        runs = runs.filter(heartbeat_at__lt=heartbeat_before)
    return runs


def _publish_on_commit(run_id: int) -> None:
    def publish() -> None:
        run = Run.objects.filter(pk=run_id).first()
        if run is not None:
            live.publish_run_state(run)

    transaction.on_commit(publish)


# -- the worker's execution -------------------------------------------------------------------------

@transaction.atomic
def run_claim(*, run_id: int, worker: str, task_id: str | None = None) -> Run | None:
    """queued -> running for the execution of ``task_id`` (any queued run when None) on ``worker``
    (``host:pid``): one more attempt, the heartbeat starts. The run (with its graph version and
    dataset), or None when it is not queued under that task (finished, cancelled, claimed, or
    queued again under another task)."""
    _require("run_claim", QUEUED, RUNNING)
    claimed = _fenced(run_id, state=QUEUED, task_id=task_id).update(
        state=RUNNING, attempt=F("attempt") + 1, worker=worker, heartbeat_at=Now(),
        started_at=Coalesce(F("started_at"), Value(timezone.now())), finished_at=None, error="",
    )
    if not claimed:
        return None
    return Run.objects.select_related("graph_version", "dataset").get(pk=run_id)


@transaction.atomic(savepoint=False)  # part of the recorder's transaction that stores the points
def run_heartbeat(*, run_id: int, attempt: int, steps_completed: int | None = None,
                  epochs_completed: int | None = None, last_sequence: int | None = None) -> bool:
    """running -> running: attempt ``attempt`` is alive (database time), with its progress. False
    when it no longer owns the run (taken over by another attempt, finished or deleted)."""
    _require("run_heartbeat", RUNNING, RUNNING)
    progress = {"steps_completed": steps_completed, "epochs_completed": epochs_completed,
                "last_sequence": last_sequence}
    fields = {"heartbeat_at": Now(), **{name: value for name, value in progress.items() if value is not None}}
    return bool(_fenced(run_id, state=RUNNING, attempt=attempt).update(**fields))


@transaction.atomic
def run_finish(*, run_id: int, attempt: int, state: str, error: str = "", final_metrics: dict | None = None,
               epochs_completed: int | None = None) -> Run | None:
    """running -> succeeded, failed, cancelled or timed_out: the outcome of attempt ``attempt``, recorded by its
    own execution (the heartbeat's last beat). The run, or None when that attempt no longer owns it.
    Not published here: the execution's publisher sends the state after its last points."""
    _require("run_finish", RUNNING, state)
    fields = {"state": state, "error": error, "final_metrics": final_metrics or {}, "finished_at": timezone.now(),
              "heartbeat_at": Now()}
    if epochs_completed is not None:
        fields["epochs_completed"] = epochs_completed
    if not _fenced(run_id, state=RUNNING, attempt=attempt).update(**fields):
        return None
    return Run.objects.get(pk=run_id)


# -- failing, the watchdog's recovery -------------------------------------------------------------------

@transaction.atomic
def run_fail(*, run_id: int, error: str, from_state: str = QUEUED, attempt: int | None = None,
             task_id: str | None = None, heartbeat_before: datetime.datetime | Expression | None = None) -> Run | None:
    """queued or running -> failed with ``error`` (a message a user can act on), if the run is still
    in ``from_state`` (and ``attempt``, ``task_id``, a heartbeat older than ``heartbeat_before``,
    where given). The run, or None when it had changed meanwhile."""
    _require("run_fail", from_state, FAILED)
    changed = _fenced(run_id, state=from_state, attempt=attempt, task_id=task_id,
                      heartbeat_before=heartbeat_before).update(state=FAILED, error=error, finished_at=timezone.now())
    if not changed:
        return None
    _publish_on_commit(run_id)
    return Run.objects.get(pk=run_id)


@transaction.atomic
def run_cancel_abandoned(*, run_id: int, attempt: int, task_id: str | None = None,
                         heartbeat_before: datetime.datetime | Expression | None = None) -> Run | None:
    """running -> cancelled for a run whose cancel was requested and whose execution broke off
    (nothing is left to stop it). Fenced like ``run_fail``; None when the run had changed."""
    _require("run_cancel_abandoned", RUNNING, CANCELLED)
    changed = (_fenced(run_id, state=RUNNING, attempt=attempt, task_id=task_id, heartbeat_before=heartbeat_before)
               .filter(cancel_requested=True).update(state=CANCELLED, error="", finished_at=timezone.now()))
    if not changed:
        return None
    _publish_on_commit(run_id)
    return Run.objects.get(pk=run_id)


@transaction.atomic
def run_requeue(*, run_id: int, attempt: int, new_task_id: str, task_id: str | None = None,
                heartbeat_before: datetime.datetime | Expression | None = None) -> Run | None:
    """running -> queued under ``new_task_id``: attempt ``attempt`` broke off and the next claim
    resumes the run from its last checkpoint. Fenced like ``run_fail``; None when the run had
    changed. The caller then sends the message, or calls ``run_requeue_undo`` if it cannot."""
    _require("run_requeue", RUNNING, QUEUED)
    changed = _fenced(run_id, state=RUNNING, attempt=attempt, task_id=task_id,
                      heartbeat_before=heartbeat_before).update(state=QUEUED, task_id=new_task_id, worker="")
    if not changed:
        return None
    _publish_on_commit(run_id)
    return Run.objects.get(pk=run_id)


@transaction.atomic
def run_requeue_undo(*, run_id: int, task_id: str, previous_task_id: str, previous_worker: str) -> bool:
    """queued -> running again, as before ``run_requeue`` gave it ``task_id``, because its message
    could not be sent (the broker is away): the run stays stale and the watchdog's next check
    tries again. False when the run had moved on (claimed, cancelled)."""
    _require("run_requeue_undo", QUEUED, RUNNING)
    changed = _fenced(run_id, state=QUEUED, task_id=task_id).update(
        state=RUNNING, task_id=previous_task_id, worker=previous_worker)
    if changed:
        _publish_on_commit(run_id)
    return bool(changed)


# -- queueing -----------------------------------------------------------------------------------------

@transaction.atomic
def run_queue_task(*, run_id: int, task_id: str, previous_task_id: str | None = None) -> bool:
    """queued -> queued under ``task_id``, stored before its message is sent: a worker executes a
    run only under the task id the run names. With ``previous_task_id``, only if the run still
    names that one. False when the run is not (so) queued."""
    _require("run_queue_task", QUEUED, QUEUED)
    return bool(_fenced(run_id, state=QUEUED, task_id=previous_task_id).update(task_id=task_id))


# -- the user's requests ----------------------------------------------------------------------------

@transaction.atomic
def run_cancel(*, run: Run) -> Run:
    """Ask the run to stop: queued -> cancelled at once; running -> running with its cancel
    requested, and its worker stops after the batch in progress (asking twice changes nothing).
    A finished run is an ``InvalidTransition`` (409)."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    if not allowed_targets("run_cancel", run.state):
        raise InvalidTransition(f"run {run.pk} already {run.state}; there is nothing to cancel",
                                details={"state": run.state})
    run.cancel_requested = True
    fields = ["cancel_requested"]
    if run.state == QUEUED:
        run.state = CANCELLED
        run.finished_at = timezone.now()
        fields += ["state", "finished_at"]
        _publish_on_commit(run.pk)
    run.save(update_fields=fields)
    return run


@transaction.atomic
def run_resume(*, run: Run) -> Run:
    """failed, cancelled or timed_out -> queued, with its error, cancel flag, worker and evaluation cleared.
    The caller queues its message once this commits; the worker resumes it from its newest
    checkpoint (or from the start, skipping the points it already stored) and counts one more
    attempt. Other states are an ``InvalidTransition`` (409)."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    if not allowed_targets("run_resume", run.state):
        raise InvalidTransition(f"run {run.pk} is {run.state}; only failed, cancelled or timed-out runs can be resumed",
                                details={"state": run.state})
    run.state = QUEUED
    run.cancel_requested = False
    run.error = ""
    run.finished_at = None
    run.worker = ""
    run.evaluation = {}
    run.save(update_fields=["state", "cancel_requested", "error", "finished_at", "worker", "evaluation"])
    return run
