"""The workers' status in real Chromium against a server started like ``make run``: the top bar says how
busy the training slots are and links to the Workers page, which lists the cpu and datasets queues with
their worker and the gpu queue without one (no GPU here), with how to start one."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def test_the_top_bar_and_the_workers_page_show_which_queues_have_a_live_worker(page):
    steps = page.steps
    sign_up(page, f"grace-{uuid.uuid4().hex[:6]}")
    badge = page.get_by_test_id("worker-status")
    expect(badge).to_contain_text("busy")
    steps.shot("top-bar")
    badge.click()
    expect(page).to_have_url("/workers")
    expect(page.get_by_role("heading", name="Workers", exact=True, level=1)).to_be_visible()

    queues = page.get_by_test_id("queues")
    expect(queues.locator("tr", has_text="training on the CPU")).to_contain_text("cpu@")
    expect(queues.locator("tr", has_text="converting uploaded datasets")).to_contain_text("datasets@")
    gpu = queues.locator("tr", has_text="training on a GPU")
    if "no worker" in gpu.inner_text():  # a machine without a GPU: make run started no gpu worker
        expect(gpu).to_contain_text("celery -A workers.celery_app worker -Q gpu")
    workers = page.get_by_test_id("workers")
    expect(workers.locator("tr", has_text="cpu@")).to_contain_text("CPU")
    steps.shot("workers-page")
    # the app's session check before signing up answers 401
    unexpected = [error for error in steps.console_errors if "status of 401" not in error]
    assert not unexpected, unexpected
