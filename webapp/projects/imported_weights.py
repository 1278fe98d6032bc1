"""Where a graph version's imported weights are (``webapp.projects.imports`` writes them): a read
with no writes, so the runs and the workers may use it without importing the import service."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from webapp.projects.models import GraphVersion

WEIGHTS_PATTERN = re.compile(r"^imports/(?P<project>[0-9]+)/[0-9a-f]{64}\.npz$")


def imports_folder(project_id: int) -> Path:
    """Where a project's imported weights are stored (removed with the project)."""
    return Path(settings.ARTIFACT_ROOT) / "imports" / str(project_id)


def imported_weights_path(graph_version: GraphVersion) -> Path | None:
    """The weights a graph version was imported with, or None: not imported, or metadata that
    names a file of another project or no file (the metadata is the user's to edit)."""
    imported = ((graph_version.spec or {}).get("metadata") or {}).get("imported")
    relative = imported.get("weights") if isinstance(imported, dict) else None
    match = WEIGHTS_PATTERN.match(relative) if isinstance(relative, str) else None
    if match is None or int(match["project"]) != graph_version.project_id:
        return None
    path = Path(settings.ARTIFACT_ROOT) / relative
    return path if path.is_file() else None
