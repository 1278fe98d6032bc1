"""The editor's tools in real Chromium, on a zoo template: load it, undo and redo the load, a
connection the ports refuse (with the reason, nothing connected), copy, paste and delete from the
keyboard, a composite block opened to its inner graph (and a block inside it opened in turn), and
two saved versions compared."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import drop, handle, new_project, node_ids, select_node, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]

TEMPLATE_NODES = ["x", "y", "stem", "res1", "res2", "pool", "logits", "loss", "output:prediction"]


def node(page, node_id: str):
    return page.locator(f'.react-flow__node[data-id="{node_id}"]')


def test_templates_undo_refused_connections_clipboard_blocks_and_versions(page):
    steps = page.steps
    sign_up(page, f"grace-{uuid.uuid4().hex[:6]}")
    new_project(page, "Tools")

    # a zoo template, as one undoable step
    page.get_by_test_id("palette-search").fill("resnet")
    page.get_by_role("button", name=re.compile(r"Load template Small ResNet")).click()
    expect(page.locator(".react-flow__node")).to_have_count(len(TEMPLATE_NODES))
    assert sorted(node_ids(page)) == sorted(TEMPLATE_NODES)
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=10_000)
    expect(page.get_by_test_id("edge-shape").first).to_be_visible()
    steps.shot("template-loaded")
    page.get_by_role("button", name="Undo").click()
    expect(page.locator(".react-flow__node")).to_have_count(0)
    page.get_by_role("button", name="Redo").click()
    expect(page.locator(".react-flow__node")).to_have_count(len(TEMPLATE_NODES))

    # int labels into a float port: refused while dragging, with the reason, and nothing is connected
    page.get_by_role("button", name="Fit view").first.click()
    dense = drop(page, "dense", 700, 40)
    edges = page.locator(".react-flow__edge").count()
    handle(page, "y", "out").drag_to(handle(page, dense, "x"))
    expect(page.get_by_role("status").filter(has_text="Not connected")).to_contain_text(
        f"port 'x' of '{dense}' takes float tensors, 'y' gives int")
    expect(page.locator(".react-flow__edge")).to_have_count(edges)
    steps.shot("connection-refused")

    # copy, paste and delete from the keyboard
    select_node(page, dense)
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    expect(page.locator(".react-flow__node")).to_have_count(len(TEMPLATE_NODES) + 2)
    (pasted,) = set(node_ids(page)) - set(TEMPLATE_NODES) - {dense}
    steps.shot("pasted")
    for extra in (pasted, dense):
        select_node(page, extra)
        page.keyboard.press("Delete")
    expect(page.locator(".react-flow__node")).to_have_count(len(TEMPLATE_NODES))

    # a block opened: its inner graph drawn, and the block inside it opened in turn
    node(page, "res2").get_by_role("button", name="Open block resnet_basic_block").click()
    dialog = page.get_by_role("dialog", name="Block resnet_basic_block")
    expect(dialog.get_by_test_id("block-canvas")).to_be_visible()
    inner = dialog.get_by_test_id("block-inner-node")
    expect(inner).to_have_count(9)  # its input, seven nodes, its output
    assert set(inner.evaluate_all("nodes => nodes.map(n => n.dataset.id)")) == {
        "input:x", "conv1", "conv2", "bn2", "projection", "projection_bn", "add", "relu", "output:out"}
    # x feeds conv1, projection and (the alternative) add; add takes bn2 and projection_bn
    expect(dialog.locator(".react-flow__edge")).to_have_count(10)
    expect(dialog.get_by_test_id("block-nodes")).to_contain_text("$projection")
    steps.shot("block-opened")
    dialog.get_by_role("button", name="Open block conv_bn_relu").click()
    nested = page.get_by_role("dialog", name="Block conv_bn_relu")
    expect(nested.get_by_test_id("block-inner-node")).to_have_count(5)  # input, conv2d, batch_norm, relu, output
    steps.shot("nested-block-opened")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    # two versions and their difference
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_test_id("save-message").fill("the template")
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_text("unsaved changes")).to_have_count(0)
    parameters_before = page.get_by_test_id("summary-parameters").inner_text()
    select_node(page, "res2")
    page.get_by_test_id("param-filters").fill("24")
    expect(page.get_by_test_id("summary-parameters")).not_to_have_text(parameters_before, timeout=10_000)
    expect(page.get_by_test_id("summary-errors")).to_have_text("0")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_test_id("save-message").fill("wider second block")
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_text("unsaved changes")).to_have_count(0)
    page.get_by_role("button", name="Versions").click()
    versions = page.get_by_role("complementary", name="Versions")
    expect(versions.get_by_text("wider second block")).to_be_visible()
    versions.get_by_label("Compare from").select_option(label="v1")
    versions.get_by_label("Compare to").select_option(label="v2")
    difference = versions.get_by_role("region", name="Compare versions")
    expect(difference).to_contain_text("~ res2")
    expect(difference).to_contain_text(re.compile(r"filters\S*: 16 → 24"))
    steps.shot("versions-compared")
    unexpected = [error for error in steps.console_errors if "status of 401" not in error]
    assert not unexpected, unexpected
