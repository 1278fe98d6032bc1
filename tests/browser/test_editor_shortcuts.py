"""The editor's keyboard shortcuts in real Chromium: `?` (Shift+/) opens an overlay listing every
shortcut of the registry, keys do nothing to the canvas while it is open, Escape closes it, a `?`
typed into a field types; and the registry's keys act on the canvas (select all, delete, undo)."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import new_project, select_node, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]

TEMPLATE_NODES = 5  # Softmax regression: x, y, logits, loss, output


def test_the_shortcuts_overlay_lists_the_keys_and_escape_closes_it(page):
    sign_up(page, f"keys-{uuid.uuid4().hex[:6]}")
    new_project(page, "Shortcuts")
    page.get_by_test_id("palette-search").fill("regression")
    page.get_by_role("button", name="Load template Softmax regression").click()
    nodes = page.locator(".react-flow__node")
    expect(nodes).to_have_count(TEMPLATE_NODES)

    select_node(page, "logits")
    page.keyboard.press("Shift+Slash")
    overlay = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(overlay).to_be_visible()
    rows = overlay.get_by_test_id("shortcuts").locator("tr")
    for keys, description in [("Ctrl+Z", "Undo"), ("Ctrl+Shift+Z or Ctrl+Y", "Redo"),
                              ("Ctrl+C", "Copy the selected nodes"), ("Ctrl+V", "Paste the copied nodes"),
                              ("Delete or Backspace", "Delete the selection"), ("Ctrl+S", "Save a version"),
                              ("L", "Lay the graph out"), ("F", "Fit the graph to the view"),
                              ("?", "Show the keyboard shortcuts")]:
        expect(rows.filter(has_text=description)).to_contain_text(keys)
    page.steps.shot("shortcuts-overlay")

    page.keyboard.press("Delete")  # the overlay has the keyboard: the selected node stays
    expect(nodes).to_have_count(TEMPLATE_NODES)
    page.keyboard.press("Escape")
    expect(overlay).to_have_count(0)

    # a ? typed into a field is text, not a shortcut
    search = page.get_by_test_id("palette-search")
    search.fill("")
    search.press("Shift+Slash")
    expect(search).to_have_value("?")
    expect(page.get_by_role("dialog")).to_have_count(0)

    # the toolbar's button opens the same overlay
    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(overlay).to_be_visible()
    overlay.get_by_role("button", name="Close").click()
    expect(overlay).to_have_count(0)

    # the registry's keys on the canvas: select all, delete, undo
    page.locator(".react-flow__pane").click(position={"x": 30, "y": 30})
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    expect(nodes).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(nodes).to_have_count(TEMPLATE_NODES)
    page.steps.shot("undone")
    assert not [error for error in page.steps.console_errors if "status of 401" not in error]
