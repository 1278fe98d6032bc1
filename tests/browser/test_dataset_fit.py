"""A graph checked live against the dataset it will train on (issue 13), in real Chromium: the
dataset chosen in the train panel that the graph's input cannot take is an error on the input node
before Start, listed in the Train dialog too, and the node's fix mends it in one click (a reshape
inserted into the graph, or the dataset's image view), after which the run starts and trains."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import api_post, choose, project_from_template, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def choose_dataset_then_go_to_the_node(page, dataset: str) -> None:
    """Open Train, pick ``dataset``, see the Train dialog say the graph does not fit it, and follow
    the problem to its node (the dialog closes, the node is selected and shown)."""
    page.get_by_role("button", name="Train").click()
    choose(page.get_by_test_id("train-dataset"), rf"^{re.escape(dataset)}$")
    problems = page.get_by_test_id("train-dataset-problems")
    expect(problems).to_contain_text(
        "graph input 'x' expects per-sample shape [1, 8, 8], but dataset array 'x' has [64]")
    page.steps.shot("train-dialog-lists-the-problem")
    problems.get_by_role("button", name="x", exact=True).click()
    expect(page.get_by_role("form", name="Training settings")).to_have_count(0)


def start_one_epoch(page, dataset: str) -> None:
    panel = page.get_by_role("form", name="Training settings")
    expect(page.get_by_test_id("train-dataset").locator("option:checked")).to_have_text(dataset)  # as chosen before
    expect(page.get_by_test_id("train-dataset-problems")).to_have_count(0)
    page.get_by_test_id("train-epochs").fill("1")
    panel.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+"), timeout=30_000)
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=90_000)


def test_an_input_that_cannot_take_the_dataset_is_fixed_with_a_reshape(page):
    sign_up(page, f"ada-{uuid.uuid4().hex[:6]}")
    api_post(page, "/api/datasets", {"builtin": "digits", "name": "digit rows"})  # rows of 64, as stored
    project_from_template(page, "cnn on rows", "Small CNN")  # its input takes 1x8x8 images

    choose_dataset_then_go_to_the_node(page, "digit rows")
    x = page.locator('.react-flow__node[data-id="x"]')
    expect(x.get_by_test_id("node-error")).to_contain_text("expects per-sample shape [1, 8, 8]")
    expect(page.get_by_test_id("summary-errors")).to_have_text("1")
    page.steps.shot("error-on-the-input-node")

    x.get_by_role("button", name="insert reshape to [1, 8, 8]").click()
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=15_000)  # validated against the dataset
    expect(page.locator('.react-flow__node[data-id="reshape_1"]')).to_contain_text("1×8×8")
    expect(x).to_contain_text("?×64")
    page.steps.shot("reshape-inserted")

    page.get_by_role("button", name="Train").click()  # the canvas changed: saved first
    page.get_by_test_id("save-message").fill("reshape the rows")
    page.get_by_role("button", name="Save version").click()
    start_one_epoch(page, "digit rows")


def test_an_input_that_cannot_take_the_dataset_is_fixed_with_the_datasets_image_view(page):
    sign_up(page, f"ada-{uuid.uuid4().hex[:6]}")
    dataset = api_post(page, "/api/datasets", {"builtin": "digits", "name": "digit pixels"})
    project_from_template(page, "lenet on pixels", "LeNet-5")

    choose_dataset_then_go_to_the_node(page, "digit pixels")
    x = page.locator('.react-flow__node[data-id="x"]')
    x.get_by_role("button", name="use the image view 1×8×8").click()
    # The view is stored (PATCH), then the graph validated again against it: two round trips.
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=15_000)
    view = page.evaluate("async (id) => (await (await fetch(`/api/datasets/${id}`)).json()).view", dataset["id"])
    assert view == {"kind": "image", "shape": [1, 8, 8], "layout": "chw"}
    page.steps.shot("image-view-chosen")

    page.get_by_role("button", name="Train").click()  # the graph is unchanged: no save needed
    start_one_epoch(page, "digit pixels")
