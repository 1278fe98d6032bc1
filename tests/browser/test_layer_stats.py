"""The run page's Layers view in real Chromium: a run's graph with its nodes coloured by a
statistic the training recorded, and, for a graph that takes the log of a negative number, the NaN
warning on the node that produced the first NaN."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import api_post, project_from_template, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def api_get(page, path: str):
    status, payload = page.evaluate(
        """async (path) => { const response = await fetch(path); return [response.status, await response.json()]; }""",
        path)
    assert status == 200, payload
    return payload


def log_of_negative_document() -> dict:
    """digits' features through a dense layer into a log: about half its inputs are negative."""
    def node(node_id, kind, y, **data):
        return {"id": node_id, "type": kind, "position": {"x": 0, "y": y}, "data": data}

    def edge(source, target, handle, source_handle="out"):
        return {"id": f"{source}-{target}", "source": source, "sourceHandle": source_handle, "target": target,
                "targetHandle": handle}

    return {
        "format": "netforge.editor/1",
        "nodes": [
            node("x", "input", 0, name="x", shape=[64], dtype="float32"),
            node("y", "input", 0, name="y", shape=[], dtype="int64"),
            node("fc1", "dense", 120, params={"units": 16}),
            node("log1", "log", 240),
            node("logits", "dense", 360, params={"units": 10}),
            node("loss", "softmax_cross_entropy", 480),
            node("output:prediction", "output", 600, name="prediction"),
        ],
        "edges": [edge("x", "fc1", "x"), edge("fc1", "log1", "x"), edge("log1", "logits", "x"),
                  edge("logits", "loss", "logits"), edge("y", "loss", "labels"),
                  edge("logits", "output:prediction", "in")],
    }


def test_layers_are_coloured_by_a_statistic_and_the_nan_source_is_marked(page):
    sign_up(page, f"lena-{uuid.uuid4().hex[:6]}")
    project_from_template(page, "Layers", "Multilayer perceptron")
    project_id = int(page.url.rsplit("/", 1)[1])
    page.get_by_role("button", name="Train").click()
    page.get_by_test_id("train-epochs").fill("3")  # 135 steps: statistics are first sampled at step 101
    page.get_by_role("form", name="Training settings").get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=90_000)

    view = page.get_by_test_id("layers-view")
    view.scroll_into_view_if_needed()
    expect(page.get_by_test_id("layer-statistic")).to_have_value("grad_norm")
    coloured = view.locator("[data-testid=layer-node][data-color^='rgb(']")
    expect(coloured.first).to_be_visible(timeout=15_000)
    colours = coloured.evaluate_all("nodes => nodes.map((node) => node.dataset.color)")
    assert len(colours) == 3, colours  # the template's three dense layers have gradients
    assert len(set(colours)) >= 2, colours  # their norms differ: so do their colours
    # Another statistic colours the activations too (every layer's output has a mean).
    page.get_by_test_id("layer-statistic").select_option("mean")
    expect(coloured).to_have_count(6)
    page.steps.shot("coloured-layers")
    # A node's histograms over time.
    coloured.first.click()
    expect(page.get_by_test_id("layer-heatmap")).to_be_visible()
    page.steps.shot("heatmap")

    dataset = next(d for d in api_get(page, "/api/datasets")["results"] if d["name"] == "digits")
    version = api_post(page, f"/api/projects/{project_id}/versions",
                       {"editor_document": log_of_negative_document(), "message": "log of a negative"})
    run = api_post(page, f"/api/projects/{project_id}/runs",
                   {"graph_version": version["id"], "dataset": dataset["id"], "hyperparameters": {"epochs": 1}})
    page.goto(f"/runs/{run['id']}")
    expect(page.get_by_test_id("run-state")).to_have_text("failed", timeout=90_000)
    warning = page.get_by_test_id("layer-nan-warning")
    expect(warning).to_contain_text("NaN at step 1")
    expect(warning).to_contain_text("first produced by node 'log1'")
    source = page.locator("[data-testid=layer-node][data-node-id=log1]")
    expect(source).to_have_class(re.compile(r"\bnan-source\b"))
    expect(source.get_by_test_id("layer-warning")).to_have_attribute("data-kind", "nan")
    expect(page.locator("[data-testid=layer-node].nan-source")).to_have_count(1)
    page.steps.shot("nan-source")
    unexpected = [error for error in page.steps.console_errors if "status of 401" not in error]
    assert unexpected == [], unexpected
