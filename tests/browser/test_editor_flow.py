"""A new user's first session, in real Chromium against a server started like ``make run``: sign
up, draw Input -> Dense -> ReLU -> Dense -> loss from the palette, see the shapes on the edges, see
a wrong unit count flagged on its node, fix it, save, train on digits, watch the curve grow while
the run is live, read the final accuracy, then compare two runs."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import (
    bind_input,
    choose,
    connect,
    drop,
    new_project,
    select_node,
    sign_up,
    wait_for_validation,
)

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def start_training(page, *, epochs: int, batch_size: int, learning_rate: str, name: str) -> int:
    page.get_by_role("button", name="Train").click()
    choose(page.get_by_test_id("train-dataset"), "digits")
    page.get_by_test_id("train-epochs").fill(str(epochs))
    page.get_by_test_id("train-batch-size").fill(str(batch_size))
    page.get_by_test_id("train-learning-rate").fill(learning_rate)
    page.get_by_test_id("train-name").fill(name)
    page.steps.shot(f"train-panel-{name}")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+"))
    return int(re.search(r"/runs/(\d+)", page.url).group(1))


def test_a_new_user_designs_trains_and_compares(page):
    steps = page.steps
    username = f"ada-{uuid.uuid4().hex[:6]}"

    sign_up(page, username)
    project_id = new_project(page, "Digits by hand")
    steps.shot("empty-canvas")

    # draw the graph from the palette
    features = drop(page, "input", 40, 60)
    labels = drop(page, "input", 40, 560)
    hidden = drop(page, "dense", 200, 200)
    activation = drop(page, "relu", 380, 60)
    logits = drop(page, "dense", 480, 320)
    loss = drop(page, "softmax_cross_entropy", 600, 560)
    bind_input(page, features, "features")
    bind_input(page, labels, "labels")
    wait_for_validation(page)
    steps.shot("nodes-dropped")
    page.get_by_role("button", name="Auto layout").click()  # untangles the drop, so every handle is free
    page.wait_for_timeout(800)
    page.get_by_role("button", name="Fit view").first.click()
    page.wait_for_timeout(500)
    steps.shot("auto-layout")
    connect(page, features, "out", hidden, "x")
    connect(page, hidden, "out", activation, "x")
    connect(page, activation, "out", logits, "x")
    connect(page, logits, "out", loss, "logits")
    connect(page, labels, "out", loss, "labels")
    select_node(page, hidden)
    page.get_by_test_id("param-units").fill("32")
    select_node(page, logits)
    page.get_by_test_id("param-units").fill("10")

    # shapes on every edge once the server has validated the graph
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=10_000)
    shapes = page.get_by_test_id("edge-shape")
    expect(shapes).to_have_count(5)
    first_edge = page.locator('[data-testid="edge-shape"]').all_inner_texts()
    assert any("64" in text for text in first_edge), first_edge  # digits: 64 features
    assert any("32" in text for text in first_edge) and any("10" in text for text in first_edge), first_edge
    expect(page.get_by_test_id("summary-parameters")).to_contain_text(re.compile(r"2[, ]?410"))  # 64*32+32 + 32*10+10
    steps.shot("shapes-on-edges")

    # a wrong unit count is flagged on the node that causes it, then fixed
    select_node(page, logits)
    page.get_by_test_id("param-units").fill("5")  # digits has 10 classes
    error = page.locator(f'.react-flow__node[data-id="{logits}"] [data-testid="node-error"]')
    expect(error.first).to_be_visible(timeout=10_000)
    expect(error.first).to_contain_text("10 classes")
    expect(page.get_by_test_id("summary-errors")).not_to_have_text("0")
    steps.shot("error-on-node")
    page.get_by_test_id("param-units").fill("10")
    expect(error).to_have_count(0, timeout=10_000)
    expect(page.get_by_test_id("summary-errors")).to_have_text("0")

    # save a version
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_test_id("save-message").fill("first by hand")
    page.get_by_role("button", name="Save version").click()
    steps.shot("saved")

    # train on digits and watch the curve grow while the run is live
    first_run = start_training(page, epochs=60, batch_size=8, learning_rate="0.003", name="slow-and-steady")
    chart = page.get_by_test_id("chart-loss")
    expect(page.get_by_test_id("run-state")).to_have_text("running", timeout=30_000)
    counts = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and page.get_by_test_id("run-state").inner_text() == "running":
        counts.append(int(chart.get_attribute("data-points") or 0))
        if len(set(counts)) >= 3:
            break
        time.sleep(0.3)
    assert len(set(counts)) >= 3 and counts == sorted(counts), f"the loss curve did not grow while live: {counts}"
    steps.shot("curve-growing")
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=120_000)
    accuracy = float(page.get_by_test_id("final-metric-val_accuracy").inner_text())
    assert accuracy >= 0.9, accuracy
    matrix = page.get_by_test_id("confusion-matrix")  # a classifier's evaluation on the validation split
    expect(matrix).to_be_visible(timeout=30_000)
    expect(matrix).to_contain_text("9")
    expect(page.get_by_test_id("prediction-samples").first).to_be_visible()
    steps.shot("run-finished")

    # a second run with another learning rate, then both side by side
    page.goto(f"/projects/{project_id}")
    expect(page.get_by_test_id("palette-item-dense")).to_be_visible()
    second_run = start_training(page, epochs=5, batch_size=32, learning_rate="0.01", name="quick")
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=120_000)
    page.goto(f"/projects/{project_id}/runs")
    for run in (first_run, second_run):
        expect(page.get_by_test_id(f"run-row-{run}")).to_be_visible()
        page.get_by_test_id(f"run-select-{run}").check()
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_test_id("compare-chart")).to_have_attribute("data-series", "2")
    table = page.get_by_test_id("compare-table")
    expect(table).to_contain_text("0.003")
    expect(table).to_contain_text("0.01")
    steps.shot("compare")
    # The one expected error: the login page asks /api/auth/me/ who is logged in, and hears 401.
    unexpected = [error for error in steps.console_errors if "status of 401" not in error]
    assert not unexpected, unexpected
