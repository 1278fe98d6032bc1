"""The editor's checks in real Chromium: a connection the ports refuse by rank (the reason, naming
the shapes, shown while dragging and on the drop, and nothing connected); two saved versions'
difference drawn (added, removed and changed nodes, the changed setting, the removed node clear
of the new one in its place, and Delete pressed in the dialogs deleting nothing); and loaded
graphs fitted clear of the side panels."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import (
    bind_input,
    connect,
    drop,
    handle,
    new_project,
    node_ids,
    select_node,
    sign_up,
    wait_for_validation,
)

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]

TEMPLATE_NODES = ["x", "y", "logits", "loss", "output:prediction"]  # Softmax regression


def boxes(locator) -> list[dict]:
    return locator.evaluate_all(
        "elements => elements.map(e => { const r = e.getBoundingClientRect();"
        " return {id: e.dataset.id, left: r.left, right: r.right, top: r.top, bottom: r.bottom}; })")


def center(box: dict) -> tuple[float, float]:
    return (box["left"] + box["right"]) / 2, (box["top"] + box["bottom"]) / 2


def overlap(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def assert_nodes_inside_canvas(page) -> None:
    """Every node lies inside the canvas, none under the palette or the panel to its right."""
    (canvas,) = boxes(page.locator(".nf-canvas"))
    (palette,) = boxes(page.locator(".nf-palette"))
    (panel,) = boxes(page.locator(".nf-inspector, .nf-versions"))
    left, right = max(canvas["left"], palette["right"]), min(canvas["right"], panel["left"])
    nodes = boxes(page.locator(".react-flow__node"))
    assert nodes
    outside = [node for node in nodes if node["left"] < left or node["right"] > right
               or node["top"] < canvas["top"] or node["bottom"] > canvas["bottom"]]
    assert not outside, (f"nodes outside the canvas {left:.0f}..{right:.0f} "
                         f"x {canvas['top']:.0f}..{canvas['bottom']:.0f}: {outside}")


def load_template(page, search: str, title: str) -> None:
    page.get_by_test_id("palette-search").fill(search)
    page.get_by_role("button", name=f"Load template {title}").click()


def save(page, message: str) -> None:
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_test_id("save-message").fill(message)
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_text("unsaved changes")).to_have_count(0)


def test_a_connection_of_the_wrong_rank_is_refused_with_the_shapes(page):
    steps = page.steps
    sign_up(page, f"rank-{uuid.uuid4().hex[:6]}")
    new_project(page, "Ranks")
    features = drop(page, "input", 40, 120)
    dense = drop(page, "dense", 320, 120)
    conv = drop(page, "conv2d", 620, 120)
    bind_input(page, features, "features")
    select_node(page, dense)
    page.get_by_test_id("param-units").fill("16")
    connect(page, features, "out", dense, "x")
    wait_for_validation(page)
    expect(page.locator(f'.react-flow__node[data-id="{dense}"]')).to_contain_text("?×16")  # validation's shape
    steps.shot("dense-gives-2d")

    reason = f"port 'x' of '{conv}' takes 4-D tensors, '{dense}' gives [?, 16] (2-D)"
    (source,) = boxes(handle(page, dense, "out"))
    (target,) = boxes(handle(page, conv, "x"))
    page.mouse.move(*center(source))
    page.mouse.down()
    page.mouse.move(*center(target), steps=12)
    expect(page.locator(".nf-connect-hint")).to_have_text(reason)  # while dragging, by the pointer
    steps.shot("refused-while-dragging")
    page.mouse.up()
    expect(page.get_by_role("status").filter(has_text="Not connected")).to_have_text(f"Not connected: {reason}")
    expect(page.locator(".nf-connect-hint")).to_have_count(0)
    expect(page.locator(".react-flow__edge")).to_have_count(1)  # only input -> dense
    steps.shot("refused-on-drop")


def test_two_versions_drawn_as_one_difference(page):
    steps = page.steps
    sign_up(page, f"diff-{uuid.uuid4().hex[:6]}")
    new_project(page, "Versions")
    load_template(page, "regression", "Softmax regression")
    expect(page.locator(".react-flow__node")).to_have_count(len(TEMPLATE_NODES))
    save(page, "the template")

    # v2: the output node replaced by a new one in its place, and the dense layer wider
    (removed,) = boxes(page.locator('.react-flow__node[data-id="output:prediction"]'))
    (pane,) = boxes(page.locator(".react-flow__pane"))
    select_node(page, "output:prediction")
    page.keyboard.press("Delete")
    expect(page.locator(".react-flow__node")).to_have_count(len(TEMPLATE_NODES) - 1)
    added = drop(page, "output", int(removed["left"] - pane["left"]) + 20, int(removed["top"] - pane["top"]) + 20)
    connect(page, "logits", "out", added, "in")
    select_node(page, "logits")
    page.get_by_test_id("param-units").fill("12")
    wait_for_validation(page)
    expect(page.get_by_test_id("summary-errors")).to_have_text("0")
    page.get_by_role("button", name="Save", exact=True).click()
    message = page.get_by_test_id("save-message")
    message.fill("new outputs")
    message.press("Backspace")  # edits the message, deletes no node
    expect(message).to_have_value("new output")
    steps.shot("save-dialog")
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_text("unsaved changes")).to_have_count(0)
    assert sorted(node_ids(page)) == sorted(["x", "y", "logits", "loss", added])

    page.get_by_role("button", name="Versions").click()
    versions = page.get_by_role("complementary", name="Versions")
    versions.get_by_label("Compare from").select_option(label="v1")
    versions.get_by_label("Compare to").select_option(label="v2")
    select_node(page, "logits")  # a selection on the canvas that the dialog's keys must leave alone
    versions.get_by_test_id("draw-diff").click()
    dialog = page.get_by_role("dialog", name="Changes from v1 to v2")
    legend = dialog.get_by_test_id("diff-legend")
    for text in ("1 node added", "1 node removed", "1 node changed"):
        expect(legend).to_contain_text(text)
    nodes = dialog.get_by_test_id("diff-node")
    expect(nodes).to_have_count(len(TEMPLATE_NODES) + 1)
    expect(dialog.locator('[data-testid="diff-node"][data-status="added"]')).to_have_attribute("data-id", added)
    expect(dialog.locator('[data-testid="diff-node"][data-status="removed"]')).to_have_attribute(
        "data-id", "output:prediction")
    changed = dialog.locator('[data-testid="diff-node"][data-status="changed"]')
    expect(changed).to_have_attribute("data-id", "logits")
    expect(changed.get_by_test_id("diff-node-changes")).to_have_text("units: 10 → 12")
    drawn = {node["id"]: node for node in boxes(nodes)}
    # v1 had the removed node where the added one stands: drawn below it instead
    assert not overlap(drawn["output:prediction"], drawn[added]), drawn
    assert drawn["output:prediction"]["top"] > drawn[added]["bottom"], drawn
    steps.shot("difference-drawn")

    dialog.get_by_role("heading").click()
    for key in ("Delete", "Backspace"):
        page.keyboard.press(key)
    dialog.get_by_role("button", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert sorted(node_ids(page)) == sorted(["x", "y", "logits", "loss", added])

    # opening v1 fits it to the view
    versions.get_by_role("button", name="Load version 1").click()
    expect(page.locator('.react-flow__node[data-id="output:prediction"]')).to_have_count(1)
    wait_for_validation(page)
    page.wait_for_timeout(300)  # the fit after validation's sizes
    assert_nodes_inside_canvas(page)
    steps.shot("version-1-loaded")


def test_a_loaded_template_is_fitted_clear_of_the_side_panels(page):
    sign_up(page, f"fit-{uuid.uuid4().hex[:6]}")
    new_project(page, "Fitted")
    # Few nodes, so the first fit zooms in, and validation then widens them (parameter counts, shapes).
    load_template(page, "regression", "Softmax regression")
    expect(page.locator(".react-flow__node")).to_have_count(len(TEMPLATE_NODES))
    wait_for_validation(page)
    expect(page.get_by_test_id("node-params").first).to_be_visible()
    page.wait_for_timeout(300)  # the fit after validation's sizes
    page.steps.shot("template-loaded")
    assert_nodes_inside_canvas(page)
