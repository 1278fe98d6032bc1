"""What a person does in the editor, as Playwright steps the browser tests share."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def sign_up(page, username: str) -> None:
    """A new account from the login page; ends on the projects page. Screenshot "sign-up"."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_role("button", name=re.compile("Create an account")).click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("a-long-password-1")
    page.steps.shot("sign-up")
    page.get_by_role("button", name="Create account").click()
    # Hashing the password (PBKDF2, as in production) takes a while on a busy 2-core machine.
    expect(page).to_have_url(re.compile(r"/projects$"), timeout=30_000)


def new_project(page, name: str) -> int:
    """A blank project from the projects page; its id, with its editor open."""
    page.get_by_role("button", name="New project").click()
    page.get_by_test_id("project-name").fill(name)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    expect(page.get_by_test_id("palette-item-dense")).to_be_visible()
    return int(page.url.rsplit("/", 1)[1])


VALIDATE_DELAY_MS = 300  # the editor validates this long after the last change (useGraphValidation.ts)


def wait_for_validation(page) -> None:
    """Until the server's validation of the latest change is drawn (node errors change the nodes'
    sizes, so a layout or a drag onto a handle waits for it)."""
    page.wait_for_timeout(VALIDATE_DELAY_MS + 100)
    expect(page.get_by_test_id("validating")).to_have_count(0, timeout=15_000)


def node_ids(page) -> list[str]:
    return page.locator(".react-flow__node").evaluate_all("nodes => nodes.map(n => n.dataset.id)")


def drop(page, item: str, x: int, y: int) -> str:
    """Drag a palette item onto the canvas at (x, y) of the pane; the new node's id."""
    before = set(node_ids(page))
    page.get_by_test_id("palette-search").fill(item if item not in ("input", "output", "loss") else "")
    source = page.get_by_test_id(f"palette-item-{item}")
    expect(source).to_be_visible()
    nodes = page.locator(".react-flow__node")
    for attempt in range(2):
        _drag_onto_pane(page, source, x, y)
        try:
            expect(nodes).to_have_count(len(before) + 1, timeout=5_000)
            break
        except AssertionError:
            # Chromium sometimes starts no HTML5 drag from synthetic mouse events on a busy machine
            # (CI saw one drop of three add nothing); a drop that added nothing changed nothing, so
            # the person's gesture is made again once. A second miss fails the test.
            if attempt:
                raise
    (new,) = set(node_ids(page)) - before
    return new


def _drag_onto_pane(page, source, x: int, y: int) -> None:
    """Press on ``source``, move in small steps (Chromium starts a drag only after moves), release
    over (x, y) of the pane."""
    source.scroll_into_view_if_needed()
    start = source.bounding_box()
    pane = page.locator(".react-flow__pane").bounding_box()
    sx, sy = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move(sx + 8, sy + 4, steps=2)
    page.mouse.move(pane["x"] + x, pane["y"] + y, steps=10)
    page.mouse.up()


def handle(page, node: str, port: str):
    return page.locator(f'.react-flow__handle[data-nodeid="{node}"][data-handleid="{port}"]')


def connect(page, source: str, source_port: str, target: str, target_port: str) -> None:
    edges = page.locator(".react-flow__edge").count()
    handle(page, source, source_port).drag_to(handle(page, target, target_port))
    expect(page.locator(".react-flow__edge")).to_have_count(edges + 1)


def select_node(page, node: str) -> None:
    page.locator(f'.react-flow__node[data-id="{node}"]').click()


def choose(select, pattern: str) -> None:
    """Pick the option whose text matches ``pattern`` (option values are ids the test cannot know)."""
    expect(select.locator("option", has_text=re.compile(pattern, re.I)).first).to_be_attached()  # options load async
    labels = select.locator("option").all_inner_texts()
    matching = [label for label in labels if re.search(pattern, label, re.I)]
    assert matching, f"no option matching {pattern!r} among {labels}"
    select.select_option(label=matching[0])


def bind_input(page, node: str, role: str) -> None:
    select_node(page, node)
    choose(page.get_by_test_id("input-dataset"), "digits")
    page.get_by_test_id("input-role").select_option(role)


def api_post(page, path: str, body: dict) -> dict:
    """A JSON POST from the signed-in page, as the app sends it (session cookie and CSRF header)."""
    status, payload = page.evaluate(
        """async ([path, body]) => {
            const token = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="))?.slice(10) ?? "";
            const response = await fetch(path, {method: "POST", body: JSON.stringify(body), headers: {
                "Content-Type": "application/json", "X-CSRFToken": decodeURIComponent(token)}});
            return [response.status, await response.json()];
        }""",
        [path, body],
    )
    assert status in (200, 201), payload
    return payload


def project_from_template(page, name: str, title: str) -> None:
    page.goto("/projects")
    page.get_by_role("button", name="New project").click()
    page.get_by_test_id("project-name").fill(name)
    choose(page.get_by_label("Start from"), rf"^{re.escape(title)}")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=10_000)
