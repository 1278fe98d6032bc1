"""A published run says so in real Chromium: after publishing, a reloaded run page notes "Already
published as <endpoint> v1" (linking to the endpoint) and the runs table marks the run; there its
tags and notes are edited in place and kept."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import project_from_template, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def test_a_published_run_is_marked_on_its_page_and_in_the_runs_table(page):
    sign_up(page, f"lin-{uuid.uuid4().hex[:6]}")
    project_from_template(page, "Published", "Multilayer perceptron")
    page.get_by_role("button", name="Train").click()
    page.get_by_test_id("train-epochs").fill("1")
    page.get_by_role("form", name="Training settings").get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=90_000)
    expect(page.get_by_test_id("run-published")).to_have_count(0)

    endpoint = f"digits-{uuid.uuid4().hex[:6]}"
    page.get_by_role("button", name="Publish").click()
    page.get_by_label("Endpoint name").fill(endpoint)
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("link", name=f"{endpoint} v1")).to_be_visible(timeout=30_000)

    page.reload()
    note = page.get_by_test_id("run-published")
    expect(note).to_have_text(f"Already published as {endpoint} v1")
    expect(note.get_by_role("link")).to_have_attribute("href", f"/endpoints/{endpoint}")
    page.steps.shot("run-page-published")

    project = page.request.get(f"/api/runs/{run_id}").json()["project"]
    page.goto(f"/projects/{project}/runs")
    mark = page.get_by_test_id(f"run-published-{run_id}")
    expect(mark).to_have_text("published")
    expect(mark).to_have_attribute("title", f"Published as {endpoint} v1")
    page.steps.shot("runs-table-published")

    title = page.request.get(f"/api/runs/{run_id}").json()["name"] or f"run {run_id}"
    row = page.get_by_test_id(f"run-row-{run_id}")
    row.get_by_role("button", name=f"Edit tags of {title}").click()
    row.get_by_label(f"Tags of {title}", exact=True).fill("baseline, small-lr")
    row.get_by_label(f"Tags of {title}", exact=True).press("Enter")
    expect(row.get_by_role("button", name="small-lr")).to_be_visible()
    row.get_by_role("button", name=f"Edit notes of {title}").click()
    row.get_by_label(f"Notes of {title}", exact=True).fill("published one")
    page.steps.shot("runs-table-editing-notes")
    row.get_by_label(f"Notes of {title}", exact=True).press("Control+Enter")
    expect(row.get_by_label(f"Notes of {title}", exact=True)).to_have_count(0)
    expect(row).to_contain_text("published one")
    # Escape leaves a field unchanged.
    row.get_by_role("button", name=f"Edit notes of {title}").click()
    row.get_by_label(f"Notes of {title}", exact=True).fill("not kept")
    row.get_by_label(f"Notes of {title}", exact=True).press("Escape")
    expect(row).not_to_contain_text("not kept")

    page.reload()
    record = page.request.get(f"/api/runs/{run_id}").json()
    assert record["tags"] == ["baseline", "small-lr"] and record["notes"] == "published one", record
    expect(page.get_by_test_id(f"run-row-{run_id}").get_by_role("button", name="baseline")).to_be_visible()
    page.steps.shot("runs-table-annotated")
