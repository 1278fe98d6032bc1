"""ONNX import and fine-tuning in real Chromium: "Import ONNX" turns a model file into the
project's next graph version on the canvas (a file with unsupported nodes, ShuffleNet's average
pools that leave the padding out of the count, lists them, op types named); the train panel starts
a run from the imported weights with a node frozen, the run trains on the worker, its checkpoint
keeps the frozen node's weights bit for bit, and its page's graph marks the node frozen. A second
run started from the first records it as its parent, and its page links to it."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import numpy
import onnx
import pytest
from playwright.sync_api import expect

from engine import onnx_export, serialization, zoo
from engine.model import Model
from tests.browser.editor_actions import api_post, choose, new_project, node_ids, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]

LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"


def exported_mlp(folder: Path) -> tuple[Path, dict]:
    """The zoo MLP (64 features, 10 classes) exported with softmax probabilities, as a file."""
    spec = zoo.load("mlp")
    weights = Model(spec, seed=21).state_arrays()
    path = folder / "digits-mlp.onnx"
    schema = {"link": "softmax", "prediction": spec["outputs"]["prediction"]}
    path.write_bytes(onnx_export.export(spec, weights, schema))
    return path, weights


def fact(page, name: str):
    return page.locator("table.facts").get_by_role("row", name=re.compile(rf"^{re.escape(name)}\b")).locator("td")


def test_an_imported_model_is_drawn_and_trained_from_its_weights(page, netforge, tmp_path):
    sign_up(page, f"onnx-{uuid.uuid4().hex[:6]}")
    project = new_project(page, "Imported")
    api_post(page, "/api/datasets", {"builtin": "digits", "project": project})

    # A model with nodes the catalog lacks: refused, each one named with its op type.
    page.get_by_test_id("import-onnx-file").set_input_files(str(LIGHT / "light_shufflenet.onnx"))
    problem = page.get_by_test_id("import-onnx-problem")
    # The file is parsed in a child process (a fresh interpreter): seconds on a busy machine.
    expect(problem).to_contain_text("3 node(s) have no op in the catalog", timeout=60_000)
    expect(problem.get_by_role("row", name=re.compile(r"^n14 AveragePool count_include_pad=0"))).to_be_visible()
    page.steps.shot("import-refused")
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    expect(page.locator(".react-flow__node")).to_have_count(0)

    path, weights = exported_mlp(tmp_path)
    page.get_by_test_id("import-onnx-file").set_input_files(str(path))
    expect(page.locator('.react-flow__node[data-id="fc1"]')).to_be_visible(timeout=60_000)
    assert {"fc1", "fc2", "logits", "loss"} <= set(node_ids(page))
    expect(page.get_by_text("v1", exact=True)).to_be_visible()
    expect(page.get_by_test_id("unsaved")).to_have_count(0)  # the import is the saved version
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=15_000)
    page.steps.shot("imported-graph")

    page.get_by_role("button", name="Train").click()
    panel = page.get_by_role("form", name="Training settings")
    choose(page.get_by_test_id("train-dataset"), "digits")
    page.get_by_test_id("train-epochs").fill("1")
    panel.get_by_text("Fine-tuning: starting weights, frozen nodes").click()
    page.get_by_test_id("train-init-from-import").check()
    page.get_by_test_id("train-freeze").fill("fc1")
    page.steps.shot("fine-tuning-fields")
    panel.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    first = int(page.url.rsplit("/", 1)[1])
    expect(fact(page, "init_from_import")).to_have_text("true")
    expect(fact(page, "freeze")).to_have_text("fc1")
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=120_000)
    # the run's graph marks the frozen node, and only it
    layers = page.get_by_test_id("layers-view")
    expect(layers.locator("[data-testid=layer-node][data-node-id=fc1] [data-testid=layer-node-frozen]")).to_be_visible()
    expect(layers.get_by_test_id("layer-node-frozen")).to_have_count(1)
    page.steps.shot("trained-from-imported-weights")

    checkpoints = sorted((netforge.home / "artifacts" / "runs" / str(first) / "checkpoints").iterdir())
    trained = serialization.read_artifact(checkpoints[-1]).weights
    assert trained["fc1/W"].tobytes() == weights["fc1/W"].tobytes()  # frozen: bit for bit
    assert not numpy.array_equal(trained["fc2/W"], weights["fc2/W"])

    # A run from that run: its parent recorded, and linked from its page (lineage).
    page.goto(f"/projects/{project}")
    page.get_by_role("button", name="Train").click()
    choose(page.get_by_test_id("train-dataset"), "digits")
    page.get_by_test_id("train-epochs").fill("1")
    panel = page.get_by_role("form", name="Training settings")
    # The panel reopens with the settings the last run started with: the section is open already.
    section = page.get_by_test_id("train-fine-tuning")
    expect(section).to_have_attribute("open", "")
    expect(page.get_by_test_id("train-init-from-import")).to_be_checked()
    page.get_by_test_id("train-init-from-import").uncheck()
    page.get_by_test_id("train-init-from-run").fill(str(first))
    panel.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(rf"/runs/(?!{first}$)\d+$"))
    expect(page.get_by_test_id("run-parent")).to_have_text(f"run {first}")
    expect(page.get_by_test_id("run-state")).to_have_text("succeeded", timeout=120_000)
    page.get_by_test_id("run-parent").click()
    expect(page).to_have_url(re.compile(rf"/runs/{first}$"))
    unexpected = [error for error in page.steps.console_errors if "status of 401" not in error
                  and "status of 400" not in error]  # the refused import's answer
    assert unexpected == [], unexpected


FRAME_TIMES = """async ([selector, steps]) => {
    // Drag the pane in small steps, one a frame, and time each frame (requestAnimationFrame).
    const pane = document.querySelector(selector);
    const box = pane.getBoundingClientRect();
    const times = [];
    let last = performance.now();
    const frame = () => new Promise((resolve) => requestAnimationFrame((now) => {
        times.push(now - last); last = now; resolve();
    }));
    const at = (x, y) => ({clientX: box.left + x, clientY: box.top + y, bubbles: true, button: 0, buttons: 1,
                           pointerId: 1, view: window});
    pane.dispatchEvent(new PointerEvent("pointerdown", at(300, 300)));
    pane.dispatchEvent(new MouseEvent("mousedown", at(300, 300)));
    for (let step = 1; step <= steps; step++) {
        window.dispatchEvent(new MouseEvent("mousemove", at(300 + step * 4, 300 + step * 3)));
        await frame();
    }
    window.dispatchEvent(new MouseEvent("mouseup", at(300 + steps * 4, 300 + steps * 3)));
    return times;
}"""


def test_an_imported_resnet50_is_drawn_whole_and_pans_smoothly(page):
    sign_up(page, f"resnet-{uuid.uuid4().hex[:6]}")
    new_project(page, "ResNet")
    page.get_by_test_id("import-onnx-file").set_input_files(str(LIGHT / "light_resnet50.onnx"))
    expect(page.get_by_text("v1", exact=True)).to_be_visible(timeout=90_000)
    expect(page.locator(".react-flow__node")).to_have_count(180, timeout=30_000)  # 177 ops, the input, labels, output
    page.steps.shot("resnet50-imported")
    page.wait_for_timeout(1000)  # validation and the first layout settle
    viewport = page.locator(".react-flow__viewport")
    before = viewport.get_attribute("style")
    times = sorted(page.evaluate(FRAME_TIMES, [".react-flow__pane", 40]))
    assert viewport.get_attribute("style") != before  # the drag panned the canvas
    median, slow = times[len(times) // 2], times[int(0.9 * len(times))]
    print(f"ResNet-50 pan: median {median:.1f} ms, 90th percentile {slow:.1f} ms a frame")
    # The median frame: the 90th percentile is the other helpers' load on a shared 2-core machine.
    assert median < 50, times
