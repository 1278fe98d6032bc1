"""A zoo template trains on its recommended built-in dataset from the UI with no manual step: the
Small CNN's metadata.dataset_options ({"image": true}) give the digits it is trained on as 1x8x8
images (issue 13), so Start is accepted and the run trains."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import new_project, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def test_the_small_cnn_template_trains_on_digits_as_images(page, netforge):
    sign_up(page, f"grace-{uuid.uuid4().hex[:6]}")
    new_project(page, "Small CNN")
    page.get_by_test_id("palette-search").fill("small_cnn")
    page.get_by_role("button", name="Load template Small CNN").click()
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=10_000)
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_test_id("save-message").fill("small cnn")
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_text("unsaved changes")).to_have_count(0)

    page.get_by_role("button", name="Train").click()
    dataset = page.get_by_test_id("train-dataset")
    expect(dataset.locator("option:checked")).to_have_text(re.compile("digits"))  # the template's recommendation
    page.get_by_test_id("train-epochs").fill("1")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+"), timeout=30_000)
    expect(page.get_by_test_id("run-state")).to_have_text(re.compile("running|succeeded"), timeout=60_000)
    page.steps.shot("small-cnn-training")
