"""The README's screenshot of the graph editor, taken the way the browser tests see the app.

    .venv/bin/python -m tests.browser.screenshot_editor docs/images/editor.png

Starts NetForge as ``make run`` does (``python -m webapp.run`` in a throwaway NETFORGE_HOME, the
browser tests' ``NetForge`` helper), logs in as the demo user, opens the demo project "Digits" (the
zoo MLP), lets the server validate it so every edge carries its shape, selects a dense layer so the
inspector shows its generated form, and saves a 1440x900 PNG. Needs the built frontend
(``frontend/dist``) and Debian's chromium, like ``make test``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import NetForge, chromium_path
from tests.browser.editor_actions import select_node, wait_for_validation

logger = logging.getLogger("screenshot_editor")

VIEWPORT = {"width": 1440, "height": 900}
DEMO_USER = "demo"
TARGET_ZOOM = 0.8  # of the canvas: node text at about the size of the panels' text
SELECTED_NODE = "fc1"  # the MLP's first dense layer: its inspector shows units, initializers and shapes


def viewport_zoom(page) -> float:
    transform = page.locator(".react-flow__viewport").evaluate("element => element.style.transform")
    match = re.search(r"scale\(([\d.]+)\)", transform)
    assert match, f"no scale in the canvas transform {transform!r}"
    return float(match.group(1))


def zoom_in_on_the_inputs(page) -> None:
    """The whole MLP fitted to the canvas is one long row of small nodes; zoomed in around the
    inputs, the first layers (their shapes, parameter counts and settings) are readable."""
    page.get_by_role("button", name="Fit view").first.click()
    page.wait_for_timeout(600)  # the fit's 300 ms animation, then a frame to settle
    box = page.locator('.react-flow__node[data-id="x"]').bounding_box()
    assert box, "the input node x is not drawn"
    # The wheel zooms around the pointer, so the inputs stay where the fit put them, at the left.
    page.mouse.move(box["x"] - 30, box["y"] + box["height"])
    for _ in range(40):
        if viewport_zoom(page) >= TARGET_ZOOM:
            break
        page.mouse.wheel(0, -60)
        page.wait_for_timeout(80)
    page.mouse.move(5, 5)  # no hover highlight in the picture
    page.wait_for_timeout(300)


def capture(page, output: Path) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(DEMO_USER)
    # make run creates the demo user with this password (webapp/run.py prints it).
    page.get_by_label("Password").fill(os.environ.get("NETFORGE_DEMO_PASSWORD", "netforge-demo"))
    page.get_by_role("button", name="Log in").click()
    # Password hashing (PBKDF2) is slow on a busy machine.
    expect(page).to_have_url(re.compile(r"/projects$"), timeout=30_000)
    page.get_by_role("link", name="Digits", exact=True).click()
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    expect(page.locator(f'.react-flow__node[data-id="{SELECTED_NODE}"]')).to_be_visible()
    wait_for_validation(page)
    expect(page.get_by_test_id("edge-shape").first).to_be_visible()
    select_node(page, SELECTED_NODE)
    zoom_in_on_the_inputs(page)
    output.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(output))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write the PNG, e.g. docs/images/editor.png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    home = Path(tempfile.mkdtemp(prefix="netforge-screenshot-"))
    server = NetForge(home)
    try:
        logger.info("starting NetForge in %s", home)
        server.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
            context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
            context.set_default_timeout(15_000)
            capture(context.new_page(), args.output)
            browser.close()
        logger.info("wrote %s (%d bytes)", args.output, args.output.stat().st_size)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
