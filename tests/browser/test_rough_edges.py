"""The rough edges of issue 18 seen in Chromium, each checked the way a person would have seen it:
at the window sizes people use, in the rendered page."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.browser.editor_actions import api_post, choose, sign_up


def right_edge(locator) -> float:
    box = locator.bounding_box()
    assert box is not None, "not rendered"
    return box["x"] + box["width"]


def test_the_new_project_form_and_the_runs_table_fit_at_1280_and_1440_px(page):
    steps = page.steps
    sign_up(page, f"narrow-{uuid.uuid4().hex[:6]}")
    for width in (1440, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto("/projects")
        page.get_by_role("button", name="New project").click()
        # the templates load: the select's options hold their long descriptions
        select = page.get_by_label("Start from")
        expect(select.locator("option")).not_to_have_count(1)
        for button in ("Create", "Cancel"):
            assert right_edge(page.get_by_role("button", name=button, exact=True)) <= width, f"{button} off-screen at {width} px"
        assert right_edge(select) <= width, f"the select is wider than the window at {width} px"
        steps.shot(f"new-project-{width}")

    page.get_by_test_id("project-name").fill("wide table")
    choose(page.get_by_label("Start from"), r"^Softmax regression")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    project = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=10_000)
    version = page.request.get(f"/api/projects/{project}/versions").json()
    version = (version["results"] if isinstance(version, dict) else version)[0]["id"]
    dataset = api_post(page, "/api/datasets", {"builtin": "digits", "project": project})["id"]
    api_post(page, f"/api/projects/{project}/runs", {
        "graph_version": version, "dataset": dataset, "name": "a run with a fairly long name",
        "hyperparameters": {"epochs": 1, "batch_size": 64}, "tags": ["baseline", "digits", "softmax-regression"],
    })
    page.goto(f"/projects/{project}/runs")
    expect(page.locator('[data-testid^="run-row-"]')).to_have_count(1)
    scroller = page.locator(".table-scroll")
    for header in ("Tags", "Notes", "Created"):
        cell = page.get_by_role("columnheader", name=re.compile(rf"^{header}"))
        assert right_edge(cell) <= right_edge(scroller) + 0.5, f"{header} is cut off at 1280 px"
    assert scroller.evaluate("element => element.scrollWidth <= element.clientWidth"), "the runs table scrolls sideways"
    steps.shot("runs-table-1280")
