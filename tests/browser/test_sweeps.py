"""Sweeps in real Chromium: the train panel's Sweep mode starts a small sweep over the learning rate and
a node's parameter; the sweep page shows its trials grouped (each linked to its run), the parallel
coordinates with a line per trial, the best trial marked, and publishes it with the run's own flow."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import project_from_template, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def add_parameter(page, name_pattern: str) -> str:
    """Choose the first parameter whose API name matches ``name_pattern`` in "Add a parameter"; its name."""
    add = page.get_by_test_id("sweep-add-parameter")
    # The node parameters come with the graph, which may still be loading when the section opens.
    deadline = time.monotonic() + 15
    while True:
        values = add.locator("option").evaluate_all("options => options.map(option => option.value)")
        name = next((value for value in values if re.fullmatch(name_pattern, value)), None)
        if name is not None:
            break
        assert time.monotonic() < deadline, f"no parameter matching {name_pattern!r} offered, only {values}"
        page.wait_for_timeout(200)
    add.select_option(name)
    return name


def test_a_sweep_started_from_the_train_panel_runs_its_trials_and_publishes_the_best(page):
    sign_up(page, f"sweeper-{uuid.uuid4().hex[:6]}")
    project_from_template(page, "Sweeps", "Multilayer perceptron")
    page.get_by_role("button", name="Train").click()
    page.get_by_test_id("train-epochs").fill("1")
    page.get_by_test_id("train-sweep-mode").check()
    section = page.get_by_test_id("sweep-section")
    expect(section).to_be_visible()
    add_parameter(page, r"optimizer\.lr")
    units = add_parameter(page, r"node:.+\.units")
    expect(section.get_by_test_id("sweep-parameter-0").get_by_label("Log scale")).to_be_checked()
    # a node parameter as choices: the sweep makes a graph version per choice
    row = section.get_by_test_id("sweep-parameter-1")
    row.get_by_label("Values").select_option("choice")
    row.get_by_label("Choices (comma-separated)").fill("8, 16")
    page.get_by_test_id("sweep-sampler").select_option("random")
    page.get_by_test_id("sweep-trials").fill("3")
    page.get_by_test_id("sweep-parallelism").fill("2")
    page.steps.shot("sweep-panel")
    page.get_by_role("form", name="Training settings").get_by_role("button", name="Start sweep").click()

    page.wait_for_url(re.compile(r"/sweeps/\d+$"))
    sweep_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("sweep-state")).to_have_text("finished", timeout=120_000)
    expect(page.get_by_test_id("trial-counts")).to_have_text("3 completed")
    table = page.get_by_test_id("trials-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("thead")).to_contain_text(units.removeprefix("node:"))
    expect(table.locator("tbody tr.best")).to_have_count(1)
    plot = page.get_by_test_id("parallel-coordinates")
    expect(plot.locator("polyline.trial-line")).to_have_count(3)
    expect(plot.locator("polyline.trial-line.best")).to_have_count(1)
    best = page.get_by_test_id("best-trial")
    expect(best).to_contain_text(re.compile(r"Trial \d: val_loss \d"))
    page.steps.shot("sweep-page")

    # Each trial is an ordinary run, tagged with its sweep.
    run_link = table.locator("tbody tr").first.get_by_role("link")
    expect(run_link).to_have_text(re.compile(r"succeeded #\d+"))

    best.get_by_role("button", name="Publish").click()
    endpoint = f"sweep-{sweep_id}-{uuid.uuid4().hex[:4]}"
    best.get_by_label("Endpoint name").fill(endpoint)
    best.get_by_role("button", name="Publish").click()
    expect(best).to_contain_text(f"Published as {endpoint} v1", timeout=30_000)
    page.steps.shot("best-published")

    page.get_by_role("navigation").get_by_role("link", name="Sweeps").click()
    listed = page.get_by_role("row", name=re.compile(rf"Sweep {sweep_id}\b"))
    expect(listed).to_contain_text("3 / 3")
    expect(listed).to_contain_text("finished")
    # The one 401 is the login page asking who is signed in, before signing up.
    unexpected = [error for error in page.steps.console_errors if "status of 401" not in error]
    assert unexpected == [], unexpected
