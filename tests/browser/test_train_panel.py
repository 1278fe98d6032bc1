"""The train panel in real Chromium: a project started from a zoo template opens it with the
template's recommended settings (epochs, batch size, optimizer, dataset); it refuses what the API
refuses with the engine's own message on the field it names, before anything is sent (and what only
the server can judge, image augmentation on flat data, on its field after); every field has a label;
a corrected form starts the run with the settings shown."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import choose, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def test_a_template_fills_the_train_panel_and_bad_values_are_named(page):
    sign_up(page, f"grace-{uuid.uuid4().hex[:6]}")
    page.get_by_role("button", name="New project").click()
    choose(page.get_by_label("Start from"), r"^Multilayer perceptron")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    expect(page.get_by_test_id("palette-item-dense")).to_be_visible()

    page.get_by_role("button", name="Train").click()
    panel = page.get_by_role("form", name="Training settings")
    # engine/zoo/mlp.json's metadata: 30 epochs of 32 rows, Adam at 0.002, on digits
    expect(page.get_by_test_id("train-epochs")).to_have_value("30")
    expect(page.get_by_test_id("train-batch-size")).to_have_value("32")
    expect(page.get_by_test_id("train-optimizer")).to_have_value("adam")
    expect(page.get_by_test_id("train-learning-rate")).to_have_value("0.002")
    expect(page.get_by_test_id("train-dataset").locator("option:checked")).to_have_text("digits")
    unlabelled = panel.locator("input, select").evaluate_all(
        "controls => controls.filter(c => !c.labels?.length && !c.getAttribute('aria-label')).map(c => c.outerHTML)")
    assert unlabelled == [], unlabelled
    page.steps.shot("train-panel-from-template")

    page.get_by_test_id("train-epochs").fill("0")
    page.get_by_test_id("train-learning-rate").fill("0")
    panel.get_by_role("button", name="Start training").click()
    expect(panel.get_by_text("epochs must be a positive integer, got 0")).to_be_visible()
    expect(panel.get_by_text("optimizer.lr must be > 0, got 0")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/projects/\d+$"))
    page.steps.shot("train-panel-refuses")

    page.get_by_test_id("train-epochs").fill("1")
    page.get_by_test_id("train-learning-rate").fill("0.002")
    # Image augmentation is a section of its own, generated from the schema; the API refuses it for
    # the digits' 64 columns, naming the option, and the panel shows that on its field.
    panel.get_by_text("Images: augmentation and normalization").click()
    expect(page.get_by_test_id("train-random-crop-padding")).to_have_value("0")
    expect(page.get_by_test_id("train-normalize")).to_have_value("none")
    page.get_by_test_id("train-horizontal-flip").check()
    panel.get_by_role("button", name="Start training").click()
    expect(panel.get_by_text(re.compile(r"^horizontal_flip applies to image inputs"))).to_be_visible()
    page.steps.shot("train-panel-augmentation-refused")
    page.get_by_test_id("train-horizontal-flip").uncheck()
    panel.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+"))
    expect(fact(page, "epochs")).to_have_text("1")
    expect(fact(page, "optimizer.lr")).to_have_text("0.002")


def fact(page, name: str):
    """A value of the run page's Configuration table (a finished run's final metrics have epochs too)."""
    return page.locator("table.facts").get_by_role("row", name=re.compile(rf"^{re.escape(name)}\b")).locator("td")
