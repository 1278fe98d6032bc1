"""``GET /api/workers`` and the live-worker check of run creation, in the process: the workers are asked
over a real broker (kombu's in-memory transport, where no worker answers, or a port nothing listens on).
A live worker's answer is tests/platform/test_worker_status.py's."""

from __future__ import annotations

import socket
import time

import pytest

from tests.platform.harness import wait_until
from tests.webapp.helpers import error_of
from webapp.runs import dispatch, queues
from webapp.runs.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(settings):
    """The web app's Celery client on kombu's in-memory transport (no worker), with the live-worker
    check on as in production (the test settings turn it off), and nothing cached."""
    settings.CELERY_BROKER_URL = "memory://"
    settings.CHECK_LIVE_WORKERS = True
    settings.WORKER_STATUS_TIMEOUT_SECONDS = 0.2
    dispatch.celery_client.cache_clear()
    queues.forget_cached_status()
    yield settings
    dispatch.celery_client.cache_clear()
    queues.forget_cached_status()


def unreachable_broker(settings) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    dispatch.celery_client.cache_clear()
    queues.forget_cached_status()


def test_with_no_worker_every_queue_is_shown_without_one_and_how_to_start_it(client, broker):
    response = client.get("/api/workers")
    assert response.status_code == 200
    body = response.json()
    assert body["broker_reachable"] is True and body["error"] == "" and body["workers"] == []
    by_name = {queue["name"]: queue for queue in body["queues"]}
    assert list(by_name) == ["cpu", "gpu", "datasets"]
    assert not any(queue["live"] for queue in body["queues"])
    assert "-Q gpu" in by_name["gpu"]["start_command"] and by_name["gpu"]["purpose"] == "training on a GPU"


def test_the_status_is_cached_so_polling_it_does_not_ask_the_workers_each_time(client, broker):
    client.get("/api/workers")
    started = time.monotonic()
    for _ in range(5):
        assert client.get("/api/workers").status_code == 200
    assert time.monotonic() - started < 0.2 * 2  # five answers in less than one round trip's timeout


def test_a_stale_status_is_answered_at_once_and_asked_again_in_the_background(client, broker):
    # Sync views share one thread under ASGI: a poll must not hold it for the workers' timeout.
    broker.WORKER_STATUS_CACHE_SECONDS = 0  # every answer is stale at once
    first = client.get("/api/workers").json()
    started = time.monotonic()
    second = client.get("/api/workers").json()
    assert time.monotonic() - started < 0.15  # less than the 0.2 s the workers get to answer
    assert second["checked_at"] == first["checked_at"]
    wait_until(lambda: client.get("/api/workers").json()["checked_at"] > first["checked_at"], timeout=5,
               what="the background refresh")


def test_an_unreachable_broker_is_said_at_once(client, broker):
    unreachable_broker(broker)
    started = time.monotonic()
    body = client.get("/api/workers").json()
    assert time.monotonic() - started < 1.5
    assert body["broker_reachable"] is False and "unreachable" in body["error"]
    assert not any(queue["live"] for queue in body["queues"])


def test_workers_are_shown_to_signed_in_users_only(anonymous_client, broker):
    assert anonymous_client.get("/api/workers").status_code == 401


def test_a_run_for_a_queue_with_no_live_worker_is_refused_with_the_reason(
        client, project, graph_version, digits, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/runs",
                               {"graph_version": graph_version.pk, "dataset": digits.pk, "device": "gpu"},
                               format="json")
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "no_worker"
    assert "no worker is serving the gpu queue" in error["message"]
    assert "celery -A workers.celery_app worker -Q gpu" in error["message"]
    assert error["details"] == {"device": [error["message"]]}
    assert not Run.objects.exists()


def test_resuming_a_run_for_a_queue_with_no_live_worker_is_refused_too(client, project, graph_version, digits, user,
                                                                      broker):
    run = Run.objects.create(project=project, graph_version=graph_version, dataset=digits, created_by=user,
                             device="gpu", state=Run.State.FAILED, error="lost")
    response = client.post(f"/api/runs/{run.pk}/resume")
    assert response.status_code == 503
    assert error_of(response)["code"] == "no_worker"
    run.refresh_from_db()
    assert run.state == "failed"


def test_bad_options_are_a_400_before_the_worker_check(client, project, graph_version, digits, broker):
    response = client.post(f"/api/projects/{project.pk}/runs",
                           {"graph_version": graph_version.pk, "dataset": digits.pk, "device": "gpu",
                            "hyperparameters": {"epochs": 0}}, format="json")
    assert response.status_code == 400


def test_an_unreachable_broker_is_not_this_checks_to_report(client, project, graph_version, digits, broker,
                                                            django_capture_on_commit_callbacks):
    # The run is saved and fails with the broker's reason when it is sent (dispatch.enqueue_training), as before.
    unreachable_broker(broker)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/runs",
                               {"graph_version": graph_version.pk, "dataset": digits.pk}, format="json")
    assert response.status_code == 201
    run = Run.objects.get(pk=response.json()["id"])
    assert run.state == "failed" and "the message broker is unreachable" in run.error


def test_a_queue_is_live_when_any_worker_serves_it_and_its_load_adds_up():
    workers = [queues.WorkerStatus("cpu@a", ["cpu"], "cpu", 4, 3, 10),
               queues.WorkerStatus("both@b", ["cpu", "datasets"], "cpu", 2, 1, 11),
               queues.WorkerStatus("custom@c", ["reports"], "", None, None, None)]
    by_name = {queue.name: queue for queue in queues._queues(workers)}
    assert list(by_name) == ["cpu", "gpu", "datasets", "reports"]
    assert by_name["cpu"].live and by_name["cpu"].workers == ["cpu@a", "both@b"]
    assert (by_name["cpu"].concurrency, by_name["cpu"].active) == (6, 4)
    assert by_name["datasets"].workers == ["both@b"] and not by_name["gpu"].live
    assert by_name["reports"].live and by_name["reports"].concurrency == 0
