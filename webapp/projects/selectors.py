"""Reads of projects and graph versions, always scoped to the requesting user."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.text import slugify

from webapp.datasets.models import Dataset
from webapp.datasets.selectors import archived_filtered, dataset_file_name
from webapp.projects.models import GraphVersion, Project
from webapp.projects.script_export import ScriptDataset, training_script


def project_list(*, user, archived: str = "all") -> QuerySet[Project]:
    """The user's projects; ``archived`` as ``ARCHIVED_CHOICES`` (the list passes "false")."""
    return archived_filtered(Project.objects.filter(owner=user), archived)


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


def graph_version_training_script(*, graph_version: GraphVersion, dataset: Dataset, hyperparameters: dict,
                                  origin: str = "the web app", device: str = "cpu",
                                  name_suffix: str = "") -> tuple[str, str]:
    """(file name, Python source) of a standalone script that trains the graph version on the
    dataset with ``hyperparameters`` (checked TrainConfig fields) as a run would; ``origin`` names
    whose settings these are (a run's), ``name_suffix`` ends the file name ("run-12")."""
    project = graph_version.project
    stem = "-".join(part for part in (slugify(project.name) or f"project-{project.pk}", slugify(graph_version.name),
                                      f"v{graph_version.number}", name_suffix) if part)
    script_dataset = ScriptDataset(
        name=dataset.name, builtin_name=dataset.builtin_name if dataset.kind == Dataset.Kind.BUILTIN else "",
        options=dict(dataset.options), file_format=dataset.file_format, file_name=dataset_file_name(dataset),
        download_path=reverse("dataset-file", kwargs={"dataset_id": dataset.pk}) if dataset.file else "",
    )
    source = training_script(
        spec=graph_version.spec, dataset=script_dataset, hyperparameters=hyperparameters,
        title=f"'{project.name}' graph '{graph_version.name}' version {graph_version.number}",
        script_name=f"{stem}.py", model_folder=f"{stem}-model", origin=origin, device=device,
    )
    return f"{stem}.py", source
