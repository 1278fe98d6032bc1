"""The lifecycle of runs, projects and datasets, and drafts, in real Chromium: runs ticked in the
table are archived (hidden until the "Archived" filter shows them), unarchived and deleted from a
confirm dialog that says what goes and what stays; a running run's delete is refused with "cancel it
first"; a dataset that runs use is refused by name; deleting a run frees its checkpoints (the usage
on /api/auth/me goes down). Projects and datasets are archived and deleted from their pages. A
graph with errors is saved as a draft, marked in the toolbar and the versions panel, refused as a
promotion while it has errors and promoted once fixed."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import (
    api_post,
    drop,
    project_from_template,
    select_node,
    sign_up,
    wait_for_validation,
)

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def api_get(page, path: str):
    status, payload = page.evaluate(
        """async (path) => { const response = await fetch(path); return [response.status, await response.json()]; }""",
        path)
    assert status == 200, payload
    return payload


def start_run(page, project_id: int, epochs: int) -> int:
    version = api_get(page, f"/api/projects/{project_id}/versions")["results"][0]["id"]
    dataset = api_post(page, "/api/datasets", {"builtin": "digits"})["id"]
    run = api_post(page, f"/api/projects/{project_id}/runs", {"graph_version": version, "dataset": dataset,
                                                               "hyperparameters": {"epochs": epochs}})
    return run["id"]


def test_runs_are_archived_unarchived_and_deleted_with_their_storage(page):
    sign_up(page, f"lifecycle-{uuid.uuid4().hex[:6]}")
    project_from_template(page, "Lifecycle", "Multilayer perceptron")
    project_id = int(page.url.rsplit("/", 1)[1])
    finished = start_run(page, project_id, epochs=1)
    running = start_run(page, project_id, epochs=1000)

    page.goto(f"/projects/{project_id}/runs")
    expect(page.get_by_test_id(f"run-row-{running}").locator(".badge.running")).to_be_visible(timeout=60_000)
    # A running run: the dialog says to cancel it first, and the server's refusal is shown in it.
    page.get_by_test_id(f"run-select-{running}").check()
    page.get_by_test_id("runs-delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("is still running: cancel it first")
    dialog.get_by_test_id("confirm-action").click()
    refusal = f"run {running} is running; cancel it before deleting it"
    expect(dialog.get_by_test_id("confirm-error")).to_contain_text(refusal)
    page.steps.shot("running-run-refused")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_test_id(f"run-row-{running}")).to_be_visible()
    api_post(page, f"/api/runs/{running}/cancel", {})

    # A dataset that runs use cannot be deleted: the dialog shows the refusal naming them.
    dataset = api_get(page, f"/api/runs/{finished}")["dataset"]
    page.goto(f"/datasets/{dataset}")
    page.get_by_test_id("dataset-delete").click()
    page.get_by_role("dialog").get_by_test_id("confirm-action").click()
    expect(page.get_by_test_id("confirm-error")).to_contain_text(re.compile(rf"used by run\(s\) .*{finished}"))
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()

    page.goto(f"/projects/{project_id}/runs")
    row = page.get_by_test_id(f"run-row-{finished}")
    expect(row.locator(".badge.succeeded")).to_be_visible(timeout=90_000)
    # Archive: the row leaves the list; the filter shows it, marked; unarchive brings it back.
    page.get_by_test_id(f"run-select-{finished}").check()
    page.get_by_test_id("runs-archive").click()
    expect(row).to_have_count(0)
    page.get_by_test_id("runs-archived-filter").select_option("true")
    expect(page.get_by_test_id(f"run-archived-{finished}")).to_have_text("archived")
    expect(page.get_by_test_id(f"run-row-{running}")).to_have_count(0)
    page.steps.shot("archived-filter")
    page.get_by_test_id(f"run-select-{finished}").check()
    page.get_by_test_id("runs-unarchive").click()
    expect(row).to_have_count(0)  # no longer archived: not among "only archived"
    page.get_by_test_id("runs-archived-filter").select_option("false")
    expect(row).to_be_visible()
    expect(page.get_by_test_id(f"run-archived-{finished}")).to_have_count(0)

    # Delete from the run page: the dialog names what goes; the usage goes down by its checkpoints.
    before = api_get(page, "/api/auth/me/")["usage"]["storage"]["checkpoints"]
    assert before > 0
    page.goto(f"/runs/{finished}")
    page.get_by_test_id("run-archive").click()
    expect(page.get_by_test_id("run-archived")).to_be_visible()
    page.get_by_test_id("run-archive").click()
    expect(page.get_by_test_id("run-archived")).to_have_count(0)
    page.get_by_test_id("run-delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("will be deleted with its curves, checkpoints and files")
    page.steps.shot("delete-dialog")
    dialog.get_by_test_id("confirm-action").click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/runs$"))
    expect(page.get_by_test_id(f"run-row-{running}")).to_be_visible()
    expect(page.get_by_test_id(f"run-row-{finished}")).to_have_count(0)
    after = api_get(page, "/api/auth/me/")["usage"]["storage"]["checkpoints"]
    assert after < before, (before, after)
    unexpected = [error for error in page.steps.console_errors if "status of 401" not in error
                  and "status of 409" not in error]
    assert unexpected == [], unexpected


def test_projects_and_datasets_are_archived_and_deleted_from_their_pages(page):
    sign_up(page, f"tidy-{uuid.uuid4().hex[:6]}")
    kept = api_post(page, "/api/projects", {"name": "Kept"})["id"]
    doomed = api_post(page, "/api/projects", {"name": "Doomed"})["id"]
    page.goto("/projects")
    expect(page.get_by_test_id(f"project-row-{doomed}")).to_be_visible()
    page.get_by_test_id(f"project-archive-{doomed}").click()
    expect(page.get_by_test_id(f"project-row-{doomed}")).to_have_count(0)
    expect(page.get_by_test_id(f"project-row-{kept}")).to_be_visible()
    page.get_by_test_id("projects-archived-filter").select_option("true")
    expect(page.get_by_test_id(f"project-row-{doomed}")).to_contain_text("archived")
    expect(page.get_by_test_id(f"project-row-{kept}")).to_have_count(0)
    page.get_by_test_id(f"project-archive-{doomed}").click()  # unarchive
    expect(page.get_by_test_id(f"project-row-{doomed}")).to_have_count(0)
    page.get_by_test_id("projects-archived-filter").select_option("false")
    expect(page.get_by_test_id(f"project-row-{doomed}")).to_be_visible()
    page.get_by_test_id(f"project-delete-{doomed}").click()
    dialog = page.get_by_role("dialog", name="Delete project Doomed?")
    expect(dialog).to_contain_text("This cannot be undone")
    page.steps.shot("project-delete-dialog")
    dialog.get_by_test_id("confirm-action").click()
    expect(page.get_by_test_id(f"project-row-{doomed}")).to_have_count(0)
    expect(page.get_by_test_id(f"project-row-{kept}")).to_be_visible()
    status = page.evaluate(f"async () => (await fetch('/api/projects/{doomed}')).status")
    assert status == 404

    dataset = api_post(page, "/api/datasets", {"builtin": "iris"})["id"]
    page.goto(f"/datasets/{dataset}")
    page.get_by_test_id("dataset-archive").click()
    expect(page.get_by_test_id("dataset-archive")).to_have_text("Unarchive")
    page.goto("/datasets")
    expect(page.get_by_test_id(f"dataset-row-{dataset}")).to_have_count(0)
    page.get_by_test_id("datasets-archived-filter").select_option("true")
    expect(page.get_by_test_id(f"dataset-row-{dataset}")).to_contain_text("archived")
    page.goto(f"/datasets/{dataset}")
    page.get_by_test_id("dataset-delete").click()
    page.get_by_role("dialog").get_by_test_id("confirm-action").click()
    page.wait_for_url(re.compile(r"/datasets$"))
    page.get_by_test_id("datasets-archived-filter").select_option("all")
    expect(page.get_by_test_id(f"dataset-row-{dataset}")).to_have_count(0)
    # The 401 is the login page asking who is signed in; the 404 the check above that the project is gone.
    unexpected = [error for error in page.steps.console_errors if "status of 401" not in error
                  and "status of 404" not in error]
    assert unexpected == [], unexpected


def test_a_graph_with_errors_is_saved_as_a_draft_and_promoted_once_fixed(page):
    sign_up(page, f"draft-{uuid.uuid4().hex[:6]}")
    project_from_template(page, "Drafts", "Multilayer perceptron")
    stray = drop(page, "dense", 600, 420)  # unconnected: its input is missing
    wait_for_validation(page)
    page.get_by_role("button", name="Save", exact=True).click()
    dialog = page.get_by_role("dialog", name="Save version 2")
    dialog.get_by_role("button", name="Save version").click()
    expect(dialog.get_by_role("alert")).to_contain_text(stray)  # refused: the error names the node
    page.get_by_test_id("save-message").fill("half done")
    dialog.get_by_test_id("save-draft").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("draft-badge")).to_be_visible()
    page.steps.shot("draft-saved")
    expect(page.get_by_role("button", name="Export Python")).to_be_disabled()  # a draft is not exported

    # Train never trains a draft: it asks for a real save first.
    page.get_by_role("button", name="Train").click()
    expect(page.get_by_role("dialog", name="Save version 3")).to_be_visible()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()

    page.get_by_role("button", name="Versions").click()
    versions = page.get_by_role("complementary", name="Versions")
    expect(versions.get_by_test_id("version-draft-2")).to_have_text("draft")
    versions.get_by_role("button", name="Promote draft version 2").click()
    expect(versions.get_by_role("alert")).to_contain_text("v2 cannot be promoted")
    expect(versions.get_by_role("alert")).to_contain_text(stray)

    # Fixed (the stray node removed) and saved as a draft again, it promotes to an ordinary version.
    select_node(page, stray)
    page.keyboard.press("Delete")
    wait_for_validation(page)
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("dialog", name="Save version 3").get_by_test_id("save-draft").click()
    expect(versions.get_by_test_id("version-draft-3")).to_be_visible()
    versions.get_by_role("button", name="Promote draft version 3").click()
    expect(versions.get_by_role("button", name="Load version 4")).to_be_visible()
    expect(versions.get_by_test_id("version-draft-4")).to_have_count(0)
    expect(page.get_by_test_id("draft-badge")).to_have_count(0)
    expect(page.get_by_role("toolbar", name="Editor")).to_contain_text("v4")
    page.steps.shot("promoted")
    # The promoted version trains: Train opens the panel without asking for a save.
    page.get_by_role("button", name="Train").click()
    expect(page.get_by_role("form", name="Training settings")).to_be_visible()


def test_a_run_draws_its_cpu_and_memory_and_runs_compare_on_several_metrics_at_once(page):
    sign_up(page, f"compare-{uuid.uuid4().hex[:6]}")
    project_from_template(page, "Metrics", "Multilayer perceptron")
    project_id = int(page.url.rsplit("/", 1)[1])
    # Long enough (a few seconds of training) for the worker's system samples, every 2 s.
    first = start_run(page, project_id, epochs=150)
    second = start_run(page, project_id, epochs=2)

    page.goto(f"/runs/{first}")
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=120_000)
    for series, title in (("system/cpu_percent", "CPU (% of one core)"), ("system/rss_mb", "memory (MiB resident)")):
        chart = page.get_by_test_id(f"chart-{series}")
        expect(chart).to_contain_text(title)
        expect(chart).not_to_have_attribute("data-points", "0")
    # drawn after the model's curves
    titles = page.locator(".chart-grid .chart-title").all_inner_texts()
    assert titles.index("CPU (% of one core)") > titles.index("loss"), titles
    page.steps.shot("system-charts")

    page.goto(f"/projects/{project_id}/runs")
    expect(page.get_by_test_id(f"run-row-{second}").locator(".badge.succeeded")).to_be_visible(timeout=90_000)
    for run in (first, second):
        page.get_by_test_id(f"run-select-{run}").check()
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_test_id("compare-metric-val_loss").get_by_test_id("compare-chart")).to_have_attribute(
        "data-series", "2")
    page.get_by_test_id("compare-metric-toggle-loss").check()
    page.get_by_test_id("compare-metric-toggle-val_accuracy").check()
    for metric in ("loss", "val_accuracy", "val_loss"):
        expect(page.get_by_test_id(f"compare-metric-{metric}").get_by_test_id("compare-chart")).to_have_attribute(
            "data-series", "2")
    comparison = page.get_by_role("region", name="Comparison")
    expect(comparison.locator(".chart-title")).to_have_text(["loss", "val_loss", "val_accuracy"])  # as the list
    for axis, label in (("epoch", "epoch"), ("wall", "time")):
        comparison.get_by_label("X axis").select_option(axis)
        # the legend names each chart's x (uPlot draws the axes themselves on the canvas)
        x_names = comparison.locator(".u-legend .u-label").filter(has_text=re.compile(f"^{label}$"))
        expect(x_names).to_have_count(3)  # every chart on the chosen x axis
    page.steps.shot("compare-several-metrics")
    page.get_by_test_id("compare-metric-toggle-val_loss").uncheck()
    expect(page.get_by_test_id("compare-metric-val_loss")).to_have_count(0)
    expect(page.get_by_test_id("compare-metric-loss").get_by_test_id("compare-chart")).to_have_attribute(
        "data-series", "2")


def test_a_template_opens_top_to_bottom_at_a_readable_zoom(page):
    sign_up(page, f"template-{uuid.uuid4().hex[:6]}")
    project_from_template(page, "lenet as stored", "LeNet-5")  # its stored positions; no auto-layout
    nodes = page.locator(".react-flow__node")
    assert nodes.count() >= 9
    wait_for_validation(page)
    page.wait_for_timeout(500)  # the opening fit follows the nodes' growth
    boxes = [node.bounding_box() for node in nodes.all()]
    xs, ys = sorted(box["x"] for box in boxes), sorted(box["y"] for box in boxes)
    assert ys[-1] - ys[0] > 2 * (xs[-1] - xs[0]), ("not top to bottom", boxes)
    zoom = page.locator(".react-flow__viewport").evaluate(
        "element => new DOMMatrixReadOnly(getComputedStyle(element).transform).a")
    assert zoom >= 0.75, zoom
    overlaps = [(a, b) for index, a in enumerate(boxes) for b in boxes[index + 1:]
                if a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
                and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]]
    assert overlaps == [], overlaps
    page.steps.shot("template-as-stored")
