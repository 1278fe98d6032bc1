"""Clone and rerun in real Chromium: a finished run's "Rerun with changes" opens the editor's train
panel filled with that run's settings (dataset, epochs, optimizer, seed) for its graph version;
starting it after a change is a new run with the change and the rest kept, which succeeds; "Export
Python" downloads the new run's script with its exact settings and seed."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import project_from_template, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def fact(page, name: str):
    """A value of the run page's Configuration table (a finished run's final metrics have epochs too)."""
    return page.locator("table.facts").get_by_role("row", name=re.compile(rf"^{re.escape(name)}\b")).locator("td")


def test_a_run_is_rerun_with_changes_and_its_script_exported(page, tmp_path):
    sign_up(page, f"ada-{uuid.uuid4().hex[:6]}")
    project_from_template(page, "Rerun", "Multilayer perceptron")
    page.get_by_role("button", name="Train").click()
    page.get_by_test_id("train-epochs").fill("1")
    page.get_by_test_id("train-seed").fill("5")
    page.get_by_role("form", name="Training settings").get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    first = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=90_000)
    page.steps.shot("first-run")

    page.get_by_role("button", name="Rerun with changes").click()
    dialog = page.get_by_role("dialog", name="Rerun with changes")
    expect(dialog).to_contain_text("main v1")
    # The run's settings, not the template's recommended 30 epochs.
    expect(page.get_by_test_id("train-epochs")).to_have_value("1")
    expect(page.get_by_test_id("train-seed")).to_have_value("5")
    expect(page.get_by_test_id("train-optimizer")).to_have_value("adam")
    expect(page.get_by_test_id("train-learning-rate")).to_have_value("0.002")
    expect(page.get_by_test_id("train-dataset").locator("option:checked")).to_have_text("digits")
    page.steps.shot("rerun-panel")
    page.get_by_test_id("train-epochs").fill("2")
    page.get_by_test_id("train-learning-rate").fill("0.005")
    dialog.get_by_role("button", name="Start training").click()

    page.wait_for_url(re.compile(rf"/runs/(?!{first}$)\d+$"))
    second = int(page.url.rsplit("/", 1)[1])
    expect(fact(page, "epochs")).to_have_text("2")
    expect(fact(page, "optimizer.lr")).to_have_text("0.005")
    expect(fact(page, "seed")).to_have_text("5")
    expect(fact(page, "Graph")).to_have_text(re.compile(r"v1$"))
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=90_000)
    expect(page.get_by_test_id("final-metric-epochs")).to_have_text("2")
    page.steps.shot("second-run")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export Python").click()
    assert download.value.suggested_filename == f"rerun-main-v1-run-{second}.py"
    source = tmp_path / "train.py"
    download.value.save_as(source)
    text = source.read_text()
    assert f"training options of run {second}" in text and "'seed': 5" in text and "'lr': 0.005" in text, text
    assert "'epochs': 2" in text
    # The one 401 is the login page asking who is signed in, before signing up.
    unexpected = [error for error in page.steps.console_errors if "status of 401" not in error]
    assert unexpected == [], unexpected
