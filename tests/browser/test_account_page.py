"""The account page in real Chromium against a server started like ``make run``: an API token made
with a name and a lifetime, its key shown once and working for a script, listed by its first
characters, and revoked, after which the script is refused."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.editor_actions import sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def test_an_api_token_is_made_shown_once_used_and_revoked(page, netforge):
    sign_up(page, f"tokens-{uuid.uuid4().hex[:6]}")
    page.get_by_role("link", name=re.compile(r"^tokens-")).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    page.get_by_label("Name").fill("laptop script")
    page.get_by_label("Expires after").select_option("30")
    page.get_by_role("button", name="Create token").click()
    key = page.get_by_test_id("new-api-token").inner_text().strip()
    row = page.get_by_role("row", name=re.compile("laptop script"))
    expect(row).to_contain_text(f"{key[:8]}…")
    expect(row).to_contain_text(re.compile(r"expires in (29|30) days"))
    page.steps.shot("token-made")

    script = httpx.Client(base_url=netforge.url, headers={"Authorization": f"Token {key}"}, timeout=30)
    assert script.get("/api/projects").status_code == 200

    page.get_by_role("button", name="Done").click()
    expect(page.get_by_test_id("new-api-token")).to_have_count(0)
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    page.steps.shot("token-revoked")
    assert script.get("/api/projects").status_code == 401
