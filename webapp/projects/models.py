"""Projects and their immutable graph versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Project(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Archived: hidden from the projects list unless asked for, kept whole (unarchive brings it back).
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_project_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class GraphVersion(models.Model):
    """One saved state of a project's graph. Never modified after creation: a run points at the
    exact version it trained. ``number`` counts 1, 2, ... per (project, graph name)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="graph_versions")
    name = models.CharField(max_length=200, default="main")
    number = models.PositiveIntegerField()
    editor_document = models.JSONField()  # the browser's document: nodes with positions, edges with handles
    spec = models.JSONField()  # the engine's netforge.graph/1 document converted from it
    summary = models.JSONField(default=dict)  # total parameters, FLOPs per sample, memory estimate
    message = models.CharField(max_length=500, blank=True, default="")
    # Work in progress saved with its errors: never trained (run creation refuses it); a draft of a
    # valid graph is promoted by saving its document again as an ordinary version.
    draft = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name", "number"], name="unique_graph_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name} v{self.number}"
