"""Every zoo template trains from the UI on its recommended built-in dataset with no manual step
(issue 13): a project started from the template opens the train panel with the template's settings
and dataset (the project's own copy of the built-in, added with the template's
metadata.dataset_options, e.g. the digits as 1x8x8 images for the CNNs, even where another
project's copy holds them as rows), and one epoch of it succeeds. One user, one platform: the runs
are started one after the other and checked at the end, so the worker trains while the next
project is made."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from engine import zoo
from tests.browser.editor_actions import project_from_template, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def test_every_template_trains_from_the_ui_on_its_recommended_dataset(page):
    sign_up(page, f"grace-{uuid.uuid4().hex[:6]}")
    runs = {}
    for name in zoo.names():
        metadata = zoo.load(name)["metadata"]
        project_from_template(page, name, metadata["title"])
        page.get_by_role("button", name="Train").click()
        panel = page.get_by_role("form", name="Training settings")
        expect(page.get_by_test_id("train-dataset").locator("option:checked")).to_have_text(metadata["dataset"])
        expect(page.get_by_test_id("train-epochs")).to_have_value(str(metadata["train"]["epochs"]))
        page.get_by_test_id("train-epochs").fill("1")
        panel.get_by_role("button", name="Start training").click()
        page.wait_for_url(re.compile(r"/runs/\d+"), timeout=30_000)
        runs[name] = page.url.rsplit("/", 1)[1]
    page.steps.shot("last-run-started")

    for name, run in runs.items():
        page.goto(f"/runs/{run}")
        expect(page.get_by_test_id("run-state"), name).to_have_text("succeeded", timeout=120_000)
    page.steps.shot("every-template-trained")
