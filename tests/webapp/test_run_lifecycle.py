"""The run lifecycle (webapp/runs/lifecycle.py) against the real database: every transition
function from every state, allowed or forbidden; each called twice; the attempt, task and heartbeat
fences; and what is published when a one-off change commits."""

from __future__ import annotations

import datetime

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from webapp.runs import lifecycle, live
from webapp.runs.lifecycle import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, TIMED_OUT, InvalidTransition
from webapp.runs.models import Run

pytestmark = pytest.mark.django_db

STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, TIMED_OUT)
TASK = "task-a"
ATTEMPT = 2
LONG_AGO = timezone.now() - datetime.timedelta(hours=1)


@pytest.fixture
def make_run(project, graph_version, digits):
    """A run in ``state`` as a worker left it: attempt 2 under task-a, last heartbeat an hour ago."""

    def make(state: str, **fields) -> Run:
        defaults = {"attempt": ATTEMPT, "task_id": TASK, "worker": "host-1:100", "heartbeat_at": LONG_AGO}
        return Run.objects.create(project=project, graph_version=graph_version, dataset=digits, state=state,
                                  **{**defaults, **fields})

    return make


def finish_as(state: str):
    def finish(run: Run):
        return lifecycle.run_finish(run_id=run.pk, attempt=run.attempt, state=state, final_metrics={"loss": 0.5},
                                    epochs_completed=3)

    return finish


# Each transition function, called as its caller does for a run it has just read (``run``), with
# the state it asks for. One row per target state the function can reach.
CALLS = {
    ("run_claim", RUNNING): lambda run: lifecycle.run_claim(run_id=run.pk, worker="host-2:200", task_id=run.task_id),
    ("run_queue_task", QUEUED): lambda run: lifecycle.run_queue_task(run_id=run.pk, task_id="task-b",
                                                                     previous_task_id=run.task_id),
    ("run_heartbeat", RUNNING): lambda run: lifecycle.run_heartbeat(run_id=run.pk, attempt=run.attempt,
                                                                    steps_completed=40, last_sequence=41),
    **{("run_finish", state): finish_as(state) for state in (SUCCEEDED, FAILED, CANCELLED, TIMED_OUT)},
    ("run_fail", FAILED): lambda run: lifecycle.run_fail(run_id=run.pk, error="the broker is away",
                                                         from_state=run.state),
    ("run_cancel_abandoned", CANCELLED): lambda run: lifecycle.run_cancel_abandoned(run_id=run.pk,
                                                                                    attempt=run.attempt),
    ("run_requeue", QUEUED): lambda run: lifecycle.run_requeue(run_id=run.pk, attempt=run.attempt,
                                                               new_task_id="task-b"),
    ("run_requeue_undo", RUNNING): lambda run: lifecycle.run_requeue_undo(
        run_id=run.pk, task_id=run.task_id, previous_task_id="task-0", previous_worker="host-1:100"),
    ("run_cancel", None): lambda run: lifecycle.run_cancel(run=run),
    ("run_resume", QUEUED): lambda run: lifecycle.run_resume(run=run),
}
USER_REQUESTS = ("run_cancel", "run_resume")  # refused with InvalidTransition; the others return None/False


def test_the_table_is_the_lifecycle_of_the_docs():
    moves = {(source, target) for _, source, target in lifecycle.TRANSITIONS if source != target}
    assert moves == {
        (QUEUED, RUNNING), (QUEUED, FAILED), (QUEUED, CANCELLED),
        (RUNNING, SUCCEEDED), (RUNNING, FAILED), (RUNNING, CANCELLED), (RUNNING, TIMED_OUT), (RUNNING, QUEUED),
        (FAILED, QUEUED), (CANCELLED, QUEUED), (TIMED_OUT, QUEUED),
    }
    assert not any(source == SUCCEEDED for _, source, _ in lifecycle.TRANSITIONS), "succeeded is final"
    assert {name for name, _, _ in lifecycle.TRANSITIONS} == {name for name, _ in CALLS}
    for name, _, _ in lifecycle.TRANSITIONS:
        assert callable(getattr(lifecycle, name))


def _row(run_id: int) -> dict:
    return Run.objects.filter(pk=run_id).values(
        "state", "attempt", "task_id", "worker", "cancel_requested", "error", "heartbeat_at", "finished_at",
        "steps_completed", "final_metrics").get()


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize(("function", "target"), list(CALLS), ids=[f"{f}->{t}" for f, t in CALLS])
def test_every_function_from_every_state(make_run, function, target, state):
    run = make_run(state, cancel_requested=function == "run_cancel_abandoned")
    allowed = lifecycle.allowed_targets(function, state)
    before = _row(run.pk)
    call = CALLS[(function, target)]
    if not allowed:  # forbidden: refused, and nothing changes
        if function in USER_REQUESTS or function == "run_fail":  # run_fail is told the state it may leave
            with pytest.raises(InvalidTransition) as refused:
                call(run)
            assert refused.value.status_code == 409 and state in refused.value.message
        else:
            assert call(run) in (None, False)
        assert _row(run.pk) == before
        return
    result = call(run)
    assert result not in (None, False)
    after = _row(run.pk)
    assert after["state"] in allowed
    assert after["state"] == (target if target is not None else {QUEUED: CANCELLED, RUNNING: RUNNING}[state])
    # Called again (a repeated message, a second watchdog), the transition changes nothing more.
    if function in USER_REQUESTS and after["state"] != state:
        with pytest.raises(InvalidTransition):
            call(Run.objects.get(pk=run.pk))
    elif function not in ("run_heartbeat", "run_cancel"):  # the stays (running -> running) may repeat
        assert call(run) in (None, False)
    else:
        call(Run.objects.get(pk=run.pk))
    again = _row(run.pk)
    assert {key: again[key] for key in ("state", "attempt", "task_id")} == {
        key: after[key] for key in ("state", "attempt", "task_id")}


def test_claim_counts_one_attempt_and_starts_the_heartbeat(make_run):
    run = make_run(QUEUED, attempt=1, error="the last attempt's", finished_at=LONG_AGO, started_at=None)
    claimed = lifecycle.run_claim(run_id=run.pk, worker="host-2:200", task_id=TASK)
    assert claimed.state == RUNNING and claimed.attempt == 2 and claimed.worker == "host-2:200"
    assert claimed.error == "" and claimed.finished_at is None and claimed.started_at is not None
    assert claimed.heartbeat_at > LONG_AGO
    assert claimed.graph_version.pk == run.graph_version_id  # loaded with it, for the trainer
    assert lifecycle.run_claim(run_id=run.pk, worker="host-3:300", task_id=TASK) is None
    assert Run.objects.get(pk=run.pk).attempt == 2


def test_claim_only_under_the_task_the_run_names(make_run):
    run = make_run(QUEUED)
    assert lifecycle.run_claim(run_id=run.pk, worker="host-2:200", task_id="a-message-delivered-late") is None
    assert Run.objects.get(pk=run.pk).state == QUEUED
    assert lifecycle.run_claim(run_id=run.pk, worker="host-2:200").state == RUNNING  # None: any queued run


@pytest.mark.parametrize("write", [
    lambda run, attempt: lifecycle.run_heartbeat(run_id=run.pk, attempt=attempt, steps_completed=9),
    lambda run, attempt: lifecycle.run_finish(run_id=run.pk, attempt=attempt, state=SUCCEEDED),
    lambda run, attempt: lifecycle.run_fail(run_id=run.pk, attempt=attempt, error="lost", from_state=RUNNING),
    lambda run, attempt: lifecycle.run_requeue(run_id=run.pk, attempt=attempt, new_task_id="task-b"),
    lambda run, attempt: lifecycle.run_cancel_abandoned(run_id=run.pk, attempt=attempt),
], ids=["heartbeat", "finish", "fail", "requeue", "cancel_abandoned"])
def test_an_attempt_that_no_longer_owns_the_run_writes_nothing(make_run, write):
    """The watchdog gave the run to attempt 3: attempt 2, still alive somewhere, is fenced off."""
    run = make_run(RUNNING, attempt=3, cancel_requested=True)
    before = _row(run.pk)
    assert write(run, 2) in (None, False)
    assert _row(run.pk) == before
    assert write(run, 3) not in (None, False)


def test_the_watchdog_acts_only_on_a_heartbeat_as_old_as_it_saw(make_run):
    run = make_run(RUNNING, heartbeat_at=timezone.now())
    cutoff = timezone.now() - datetime.timedelta(seconds=5)
    assert lifecycle.run_requeue(run_id=run.pk, attempt=ATTEMPT, new_task_id="task-b", heartbeat_before=cutoff) is None
    assert lifecycle.run_fail(run_id=run.pk, attempt=ATTEMPT, error="stale", from_state=RUNNING,
                              heartbeat_before=cutoff) is None
    assert Run.objects.get(pk=run.pk).state == RUNNING
    stale = make_run(RUNNING)
    requeued = lifecycle.run_requeue(run_id=stale.pk, attempt=ATTEMPT, new_task_id="task-b", heartbeat_before=cutoff)
    assert requeued.state == QUEUED and requeued.task_id == "task-b" and requeued.worker == ""
    assert requeued.attempt == ATTEMPT, "the next claim counts the attempt"


def test_a_group_fails_only_while_the_run_names_it(make_run):
    run = make_run(QUEUED, task_id="group-2")
    assert lifecycle.run_fail(run_id=run.pk, error="rank 1 missing", from_state=QUEUED, task_id="group-1") is None
    failed = lifecycle.run_fail(run_id=run.pk, error="rank 1 missing", from_state=QUEUED, task_id="group-2")
    assert failed.state == FAILED and failed.error == "rank 1 missing" and failed.finished_at is not None


def test_a_requeue_whose_message_could_not_be_sent_is_undone(make_run):
    run = make_run(RUNNING)
    lifecycle.run_requeue(run_id=run.pk, attempt=ATTEMPT, new_task_id="task-b")
    assert lifecycle.run_requeue_undo(run_id=run.pk, task_id="task-b", previous_task_id=TASK,
                                      previous_worker="host-1:100")
    undone = Run.objects.get(pk=run.pk)
    assert (undone.state, undone.task_id, undone.worker, undone.attempt) == (RUNNING, TASK, "host-1:100", ATTEMPT)


def test_the_heartbeat_stores_progress_and_leaves_out_what_it_was_not_given(make_run):
    run = make_run(RUNNING, epochs_completed=2, steps_completed=10, last_sequence=30)
    assert lifecycle.run_heartbeat(run_id=run.pk, attempt=ATTEMPT, steps_completed=12, last_sequence=33)
    beaten = Run.objects.get(pk=run.pk)
    assert (beaten.epochs_completed, beaten.steps_completed, beaten.last_sequence) == (2, 12, 33)
    assert beaten.heartbeat_at > LONG_AGO


def test_finish_records_the_outcome_and_refuses_a_state_that_is_no_outcome(make_run):
    run = make_run(RUNNING)
    with pytest.raises(InvalidTransition, match="run_finish cannot move a run from running to queued"):
        lifecycle.run_finish(run_id=run.pk, attempt=ATTEMPT, state=QUEUED)
    finished = lifecycle.run_finish(run_id=run.pk, attempt=ATTEMPT, state=SUCCEEDED,
                                    final_metrics={"val_accuracy": 0.97}, epochs_completed=3)
    assert finished.state == SUCCEEDED and finished.final_metrics == {"val_accuracy": 0.97}
    assert finished.epochs_completed == 3 and finished.finished_at is not None


def test_a_run_stopped_at_its_time_limit_is_finished_and_can_be_resumed(make_run):
    run = make_run(RUNNING)
    message = "stopped after 1 s, the per-run time limit (NETFORGE_RUN_MAX_SECONDS)"
    stopped = lifecycle.run_finish(run_id=run.pk, attempt=ATTEMPT, state=TIMED_OUT, error=message, epochs_completed=2)
    assert stopped.state == TIMED_OUT and stopped.is_finished and stopped.error == message
    with pytest.raises(InvalidTransition, match="already timed_out; there is nothing to cancel"):
        lifecycle.run_cancel(run=stopped)
    assert lifecycle.run_resume(run=stopped).state == QUEUED


def test_cancel_of_a_running_run_asks_its_worker_and_a_finished_run_cannot_be_cancelled(make_run):
    run = make_run(RUNNING)
    asked = lifecycle.run_cancel(run=run)
    assert asked.state == RUNNING and asked.cancel_requested
    finished = make_run(SUCCEEDED)
    with pytest.raises(InvalidTransition, match=f"run {finished.pk} already succeeded; there is nothing to cancel"):
        lifecycle.run_cancel(run=finished)


def test_the_watchdog_cancels_only_a_run_whose_cancel_was_asked(make_run):
    run = make_run(RUNNING, cancel_requested=False)
    assert lifecycle.run_cancel_abandoned(run_id=run.pk, attempt=ATTEMPT) is None
    lifecycle.run_cancel(run=run)
    assert lifecycle.run_cancel_abandoned(run_id=run.pk, attempt=ATTEMPT).state == CANCELLED


def test_resume_clears_what_the_last_attempt_left(make_run):
    run = make_run(FAILED, error="worker lost", cancel_requested=True, finished_at=LONG_AGO,
                   evaluation={"state": "ready"})
    resumed = lifecycle.run_resume(run=run)
    assert (resumed.state, resumed.error, resumed.cancel_requested, resumed.finished_at, resumed.worker,
            resumed.evaluation) == (QUEUED, "", False, None, "", {})
    with pytest.raises(InvalidTransition, match="is queued; only failed, cancelled or timed-out runs can be resumed"):
        lifecycle.run_resume(run=resumed)


def test_a_one_off_change_is_published_once_it_commits(make_run, django_capture_on_commit_callbacks):
    run = make_run(QUEUED)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.run_group_name(run.pk), channel)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lifecycle.run_fail(run_id=run.pk, error="could not queue the run")
    assert len(callbacks) == 1, "published on commit, not before"
    callbacks[0]()
    message = async_to_sync(layer.receive)(channel)
    assert message == {"type": "run.state", "run": run.pk, "state": FAILED, "epochs_completed": 0,
                       "last_sequence": 0, "error": "could not queue the run"}


def test_claim_and_finish_leave_publishing_to_the_execution(make_run, django_capture_on_commit_callbacks):
    run = make_run(QUEUED)
    with django_capture_on_commit_callbacks() as callbacks:
        lifecycle.run_claim(run_id=run.pk, worker="host-2:200", task_id=TASK)
        lifecycle.run_finish(run_id=run.pk, attempt=ATTEMPT + 1, state=SUCCEEDED)
    assert callbacks == [], "the execution's RunPublisher sends the state after its last points"
