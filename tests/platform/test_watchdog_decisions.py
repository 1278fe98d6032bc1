"""What the watchdog (workers/watchdog.py) decides for a stale run, on the real database and a real
Celery transport (kombu's in-memory one), without the platform's processes: queued again with its
message sent, failed with the reason, cancelled, or left for the next check when the broker is away.
The whole story with a killed worker is tests/platform/test_watchdog.py."""

# ruff: noqa: F811  (the web app tests' fixtures are imported by name, and pytest passes them in by name)
from __future__ import annotations

import datetime
import socket

import pytest
from django.utils import timezone

from tests.webapp.conftest import digits, graph_version, isolated_storage, mlp_document, project, user  # noqa: F401
from tests.webapp.test_runs_api import broker, sent_messages  # noqa: F401
from webapp.runs import dispatch
from webapp.runs.models import Checkpoint, Run
from workers import watchdog

pytestmark = pytest.mark.django_db

LONG_AGO = timezone.now() - datetime.timedelta(hours=1)


@pytest.fixture
def stale_run(project, graph_version, digits):
    def make(*, attempt: int = 1, checkpoint: bool = True, **fields) -> Run:
        fields = {"task_id": "task-a", "worker": "host-1:100", "heartbeat_at": LONG_AGO, **fields}
        run = Run.objects.create(project=project, graph_version=graph_version, dataset=digits, state="running",
                                 attempt=attempt, **fields)
        if checkpoint:
            Checkpoint.objects.create(run=run, epoch=1, step=23, path="/artifacts/epoch-0001")
        return run

    return make


def test_a_stale_run_with_a_checkpoint_is_queued_again_and_its_message_sent(stale_run, broker):
    run = stale_run()
    assert watchdog.recover_stale_runs() == [(run.pk, "requeued")]
    run.refresh_from_db()
    assert run.state == "queued" and run.task_id != "task-a" and run.worker == "" and run.attempt == 1
    assert sent_messages("cpu") == [("workers.train_run", run.task_id, [run.pk])]
    assert watchdog.recover_stale_runs() == [], "queued now: nothing more to do"


def test_a_stale_run_stays_running_for_the_next_check_while_the_broker_is_away(stale_run, broker):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    broker.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    dispatch.celery_client.cache_clear()
    run = stale_run()
    assert watchdog.recover_stale_runs() == []
    run.refresh_from_db()
    assert (run.state, run.task_id, run.worker, run.attempt) == ("running", "task-a", "host-1:100", 1)


def test_a_stale_run_without_a_checkpoint_fails_with_the_reason(stale_run, broker):
    run = stale_run(checkpoint=False)
    assert watchdog.recover_stale_runs() == [(run.pk, "failed")]
    run.refresh_from_db()
    assert run.state == "failed" and run.finished_at is not None
    assert run.error.startswith("worker host-1:100 stopped sending heartbeats at ")
    assert run.error.endswith("; no checkpoint to resume from")
    assert sent_messages("cpu") == []


def test_a_stale_run_out_of_attempts_fails_naming_the_setting(stale_run, broker, settings):
    run = stale_run(attempt=settings.RUN_MAX_ATTEMPTS)
    assert watchdog.recover_stale_runs() == [(run.pk, "failed")]
    run.refresh_from_db()
    assert f"not resumed again: it already ran {settings.RUN_MAX_ATTEMPTS} time(s)" in run.error
    assert f"RUN_MAX_ATTEMPTS={settings.RUN_MAX_ATTEMPTS}" in run.error


def test_a_stale_run_whose_cancel_was_asked_is_cancelled(stale_run, broker):
    run = stale_run(cancel_requested=True)
    assert watchdog.recover_stale_runs() == [(run.pk, "cancelled")]
    run.refresh_from_db()
    assert run.state == "cancelled" and run.error == "" and run.heartbeat_at == LONG_AGO
    assert sent_messages("cpu") == []


def test_a_run_with_a_recent_heartbeat_is_left_alone(stale_run, broker):
    run = stale_run(heartbeat_at=timezone.now())
    assert watchdog.recover_stale_runs() == []
    assert Run.objects.get(pk=run.pk).state == "running"


def test_a_distributed_run_is_decided_only_for_the_attempt_and_group_that_lost_a_process(
        stale_run, broker):
    run = stale_run(attempt=2, heartbeat_at=timezone.now(), workers=2)
    stopped = "the distributed run lost a process: rank 1 stopped answering"
    assert watchdog.resume_or_fail(run, stopped=stopped, attempt=2, task_id="an-older-group") is None
    assert watchdog.resume_or_fail(run, stopped=stopped, attempt=1, task_id="task-a") is None
    assert watchdog.resume_or_fail(run, stopped=stopped, attempt=2, task_id="task-a") == "requeued"
    run.refresh_from_db()
    assert sorted(sent_messages("cpu")) == [("workers.train_run_rank", f"{run.task_id}.rank{rank}",
                                             [run.pk, run.task_id, rank]) for rank in (0, 1)]
