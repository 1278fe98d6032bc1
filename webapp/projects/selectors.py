"""Reads of projects and graph versions, always scoped to the requesting user."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from webapp.projects.models import GraphVersion, Project


def project_list(*, user) -> QuerySet[Project]:
    return Project.objects.filter(owner=user)


def project_get(*, user, project_id: int) -> Project:
    """The user's project, or 404 (also when it belongs to someone else)."""
    return get_object_or_404(project_list(user=user), pk=project_id)


def graph_version_list(*, project: Project, name: str | None = None) -> QuerySet[GraphVersion]:
    versions = project.graph_versions.select_related("created_by")
    return versions.filter(name=name) if name else versions


def graph_version_get(*, project: Project, version_id: int) -> GraphVersion:
    return get_object_or_404(graph_version_list(project=project), pk=version_id)


def graph_version_get_for_user(*, user, version_id: int) -> GraphVersion | None:
    """A graph version of any of the user's projects, or None."""
    return GraphVersion.objects.filter(project__owner=user, pk=version_id).select_related("project").first()
