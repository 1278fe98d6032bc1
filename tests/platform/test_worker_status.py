"""Which queues have a live worker, asked of the platform's real worker (``tests/platform/harness.py``: one
worker for the cpu and datasets queues, started without gossip and mingle): ``GET /api/workers`` shows it,
and the live-worker check of run creation lets a cpu run through and refuses a gpu one (no GPU worker)."""

from __future__ import annotations

import pytest

from tests.platform.harness import wait_until
from webapp.runs import dispatch, queues

pytestmark = pytest.mark.xdist_group("platform")


def test_the_platforms_worker_is_shown_with_its_queues_and_pool(platform, make_user):
    user = make_user()

    def listed():  # the web server's answer may be a few seconds old (a worker restarted by another test)
        body = user.api.get("/api/workers").json()
        ours = [worker for worker in body["workers"] if worker["pid"] == platform.worker.process.pid]
        return (body, ours[0]) if ours else None

    body, worker = wait_until(listed, timeout=20, what="the platform's worker in GET /api/workers", interval=0.5)
    assert worker["hostname"].startswith(f"{platform.worker.name}@")
    assert worker["queues"] == ["cpu", "datasets"] and worker["device"] == "cpu"
    assert worker["concurrency"] == 1 and worker["active"] in (0, 1)
    by_name = {queue["name"]: queue for queue in body["queues"]}
    assert by_name["cpu"]["live"] and by_name["datasets"]["live"]
    assert not by_name["gpu"]["live"] and by_name["gpu"]["workers"] == []


def test_the_check_lets_a_cpu_run_through_and_refuses_a_gpu_run(platform, settings):
    # In this process, against the platform's broker and worker (its web server runs the test settings,
    # where the check is off).
    settings.CELERY_BROKER_URL = platform.redis_url
    settings.CHECK_LIVE_WORKERS = True
    dispatch.celery_client.cache_clear()
    queues.forget_cached_status()
    try:
        queues.check_queue_served("cpu")
        with pytest.raises(queues.NoLiveWorker, match="no worker is serving the gpu queue") as refused:
            queues.check_queue_served("gpu")
        assert refused.value.status_code == 503 and refused.value.code == "no_worker"
    finally:
        dispatch.celery_client.cache_clear()
        queues.forget_cached_status()
