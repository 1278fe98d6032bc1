"""The browser app's layout rule (docs/browser-app.md): no React component file grows past about
250 lines; a page that does is split into its parts and hooks, as the editor page was."""

from __future__ import annotations

from pathlib import Path

LIMIT = 260  # "about 250"
SOURCE = Path(__file__).resolve().parent.parent / "frontend" / "src"


def test_no_component_file_is_longer_than_about_250_lines():
    components = sorted(SOURCE.rglob("*.tsx"))
    assert len(components) > 20, "the browser app's components were not found"
    long = {str(path.relative_to(SOURCE)): count for path in components
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT}
    assert not long, f"components over {LIMIT} lines (split them into parts and hooks): {long}"
