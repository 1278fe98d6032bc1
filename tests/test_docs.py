"""The README and docs/ stand on their own: every relative link (and image) points to a file in the
repository, every link to a heading of a doc names a heading that exists, and no doc refers to
files outside the repository (a design file beside it, a shared folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) and ![alt](target), the target up to a space (a "title") or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")
OUTSIDE = ("../shared", "design.md")


def prose(text: str) -> str:
    """The Markdown without its fenced code blocks (their brackets are code, not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return "\n".join(lines)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces to -."""
    found = set()
    for line in prose(path.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            title = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            found.add(title.replace(" ", "-"))
    return found


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)]  # http:, https:, mailto: ...


def test_there_are_docs_to_check():
    names = {path.relative_to(ROOT).as_posix() for path in DOCS}
    assert {"README.md", "docs/architecture.md", "docs/api.md", "docs/operations.md",
            "docs/benchmarks.md", "docs/engine.md"} <= names, names


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_relative_links_point_to_files_in_the_repository(path):
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if ROOT not in linked.parents and linked != ROOT:
            broken.append(f"{target}: outside the repository")
        elif not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_no_doc_refers_to_files_outside_the_repository(path):
    text = path.read_text()
    mentioned = [word for word in OUTSIDE if word in text]
    assert not mentioned, f"{path.relative_to(ROOT)} mentions {mentioned}: docs must stand on the repository alone"


def test_the_readme_opens_with_what_netforge_is_and_shows_the_editor():
    text = (ROOT / "README.md").read_text()
    first_paragraph = text.split("\n\n")[1]
    assert first_paragraph.startswith("NetForge is "), first_paragraph
    assert "](docs/images/editor.png)" in text
    for command in ("make run", "make test", "make bench"):
        assert command in text, command


def environment_variables() -> set[str]:
    """The environment variables the code reads: the settings' and ``make run``'s ``os.environ``
    and ``env_bool`` calls, every ``NETFORGE_...`` name spelled out in the packages, and the
    serving settings, read as ``NETFORGE_<name>`` (``webapp.serving.runtime.setting``)."""
    names = set()
    for path in [*ROOT.glob("webapp/settings/*.py"), ROOT / "webapp" / "run.py"]:
        names |= set(re.findall(r"(?:os\.environ\.get|os\.environ\[|env_bool)\(?\s*[\"']([A-Z][A-Z0-9_]+)[\"']",
                                path.read_text()))
    for package in ("engine", "webapp", "workers"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            names |= set(re.findall(r"\b(NETFORGE_[A-Z][A-Z0-9_]*[A-Z0-9])\b", text))
            names |= {f"NETFORGE_{name}" for name in re.findall(r"\bsetting\(\s*\"([A-Z][A-Z0-9_]+)\"", text)}
    return names


def test_every_environment_variable_is_documented_in_operations():
    documented = (ROOT / "docs" / "operations.md").read_text()
    names = environment_variables()
    assert {"REDIS_URL", "NETFORGE_HOME", "NETFORGE_GRPC_PORT"} <= names, names  # the scan finds what it should
    missing = sorted(name for name in names if f"`{name}`" not in documented)
    assert not missing, f"docs/operations.md does not describe {missing}"


def test_the_run_lifecycle_diagram_draws_every_allowed_transition():
    """docs/architecture.md's state diagram against ``webapp.runs.lifecycle.TRANSITIONS``: every
    allowed move is drawn with the function that makes it, and nothing else is drawn."""
    from webapp.runs.lifecycle import TRANSITIONS  # noqa: PLC0415 - here pytest-django has set Django up

    text = (ROOT / "docs" / "architecture.md").read_text()
    diagram = text.split("```mermaid\nstateDiagram-v2\n", 1)[1].split("```", 1)[0]
    drawn = {}
    for source, target, label in re.findall(r"^\s*(\w+) --> (\w+): (.*)$", diagram, re.MULTILINE):
        drawn.setdefault((source, target), []).append(label)
    missing = [f"{function}: {source} -> {target}" for function, source, target in TRANSITIONS
               if not any(function in label for label in drawn.get((source, target), []))]
    assert not missing, f"docs/architecture.md's run lifecycle diagram lacks {missing}"
    allowed = {(source, target) for _, source, target in TRANSITIONS}
    extra = sorted(pair for pair in drawn if pair not in allowed)  # [*] lines are not matched
    assert not extra, f"the diagram draws moves the lifecycle does not allow: {extra}"
