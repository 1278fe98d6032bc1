"""Writes of projects and graph versions. Graph versions are created, never changed."""

from __future__ import annotations

import shutil

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from engine.graph import DEFAULT_BATCH_SIZE
from webapp.core.exceptions import Conflict, InvalidInput
from webapp.projects.converter import validate_editor_document
from webapp.projects.imported_weights import imports_folder
from webapp.projects.models import GraphVersion, Project
from webapp.runs.models import Run

NUMBERING_ATTEMPTS = 5


@transaction.atomic
def project_create(*, owner, name: str, description: str = "") -> Project:
    name = name.strip()
    if Project.objects.filter(owner=owner, name=name).exists():
        raise InvalidInput(f"you already have a project named '{name}'", details={"name": ["already used"]})
    return Project.objects.create(owner=owner, name=name, description=description)


@transaction.atomic
def project_update(*, project: Project, name: str | None = None, description: str | None = None) -> Project:
    if name is not None:
        name = name.strip()
        if Project.objects.filter(owner=project.owner, name=name).exclude(pk=project.pk).exists():
            raise InvalidInput(f"you already have a project named '{name}'", details={"name": ["already used"]})
        project.name = name
    if description is not None:
        project.description = description
    project.save()
    return project


@transaction.atomic
def project_archive(*, project: Project, archived: bool) -> Project:
    """Archive (hide from the projects list, keep everything) or unarchive the project; archiving
    again keeps the first date. ``updated_at`` is left alone so that the list keeps its order."""
    project.archived_at = (project.archived_at or timezone.now()) if archived else None
    Project.objects.filter(pk=project.pk).update(archived_at=project.archived_at)
    return project


@transaction.atomic
def project_delete(*, project: Project) -> None:
    """Deletes the project with its graph versions, datasets and runs, and their files (checkpoints,
    uploads and converted stores). Refused (409) while a run of it is queued or running (cancel
    those first) or while another project's run trains on one of its datasets, naming them. Models
    published from its runs keep serving their own copies (``webapp.runs.services.run_delete``)."""
    active = list(project.runs.exclude(state__in=Run.FINISHED_STATES).values_list("pk", flat=True))
    if active:
        raise Conflict(f"project '{project.name}' has active runs ({', '.join(map(str, active))}); cancel them first",
                       details={"runs": active})
    borrowed = list(Run.objects.filter(dataset__project=project).exclude(project=project).order_by("pk")
                    .values_list("pk", "project__name", "dataset__name")[:20])
    if borrowed:
        named = ", ".join(f"run {pk} of project '{other}' (dataset '{dataset}')" for pk, other, dataset in borrowed)
        raise Conflict(f"project '{project.name}' cannot be deleted: its datasets are used by {named}; delete those "
                       "runs first", details={"runs": [pk for pk, _, _ in borrowed]})
    # runs depend on projects and datasets, not the other way round
    from webapp.datasets.services import dataset_delete  # noqa: PLC0415
    from webapp.runs.services import run_delete  # noqa: PLC0415

    for run in project.runs.all():
        run_delete(run=run)
    for dataset in project.datasets.all():
        dataset_delete(dataset=dataset)  # removes its upload and converted store once this commits
    imported = imports_folder(project.pk)
    project.delete()
    transaction.on_commit(lambda: shutil.rmtree(imported, ignore_errors=True))  # its ONNX imports' weights


def graph_version_create(*, project: Project, editor_document, created_by, name: str = "main", message: str = "",
                         batch_size: int = DEFAULT_BATCH_SIZE, draft: bool = False) -> GraphVersion:
    """Convert and validate the editor document, then save it as the next version (last + 1) of
    the project's graph ``name``. An invalid graph raises ``InvalidInput`` with the errors per
    editor node; nothing is saved. A ``draft`` is saved whatever its errors (work in progress: runs
    refuse it), with the spec and summary the converter could make of it."""
    if draft and not isinstance(editor_document, dict):  # a draft is still an editor document
        raise InvalidInput("editor_document must be an object (the editor's document)",
                           details={"editor_document": ["not an object"]})
    report = validate_editor_document(editor_document, batch_size=batch_size)
    if draft:
        summary = {key: report[key] for key in ("total_parameters", "flops_per_sample", "memory_bytes", "batch_size")
                   if key in report} if report["ok"] else {}
        return _graph_version_numbered(project=project, name=name, editor_document=editor_document,
                                       spec=report.get("spec") or {}, summary=summary, message=message,
                                       created_by=created_by, draft=True)
    if not report["ok"]:
        node_errors = {node_id: entry["errors"] for node_id, entry in report["nodes"].items() if entry["errors"]}
        first = report["errors"][0] if report["errors"] else next(iter(node_errors.values()))[0]
        where = f"node '{first['node']}': " if first.get("node") else ""
        raise InvalidInput(
            f"the graph is not valid ({report['error_count']} problem(s)); first: {where}{first['message']}",
            code="invalid_graph",
            details={"errors": report["errors"], "nodes": node_errors, "edges": {
                edge_id: entry["errors"] for edge_id, entry in report["edges"].items() if entry["errors"]}},
        )
    summary = {key: report[key] for key in ("total_parameters", "flops_per_sample", "memory_bytes", "batch_size")}
    return _graph_version_numbered(project=project, name=name, editor_document=editor_document, spec=report["spec"],
                                   summary=summary, message=message, created_by=created_by)


def graph_version_promote(*, version: GraphVersion, created_by, batch_size: int = DEFAULT_BATCH_SIZE) -> GraphVersion:
    """Save a draft's document as the next ordinary version of its graph (versions are immutable:
    the draft stays as it was). A draft that still has errors is the same 400 as saving it would be;
    a version that is not a draft is a 409."""
    if not version.draft:
        raise Conflict(f"version {version.number} of '{version.name}' is not a draft; only a draft is promoted",
                       details={"draft": [False]})
    message = version.message or f"promoted from draft v{version.number}"
    return graph_version_create(project=version.project, editor_document=version.editor_document,
                                created_by=created_by, name=version.name, message=message, batch_size=batch_size)


def _graph_version_numbered(**fields) -> GraphVersion:
    # Two saves at once may pick the same number; the unique constraint turns that into a retry.
    for attempt in range(NUMBERING_ATTEMPTS):
        try:
            return _graph_version_insert(**fields)
        except IntegrityError:
            if attempt == NUMBERING_ATTEMPTS - 1:
                raise Conflict("another version of this graph was saved at the same moment; save again") from None
    raise AssertionError("unreachable")


@transaction.atomic
def _graph_version_insert(*, project: Project, name: str, editor_document, spec: dict, summary: dict, message: str,
                          created_by, draft: bool = False) -> GraphVersion:
    Project.objects.select_for_update().filter(pk=project.pk).first()  # serializes numbering where supported
    last = project.graph_versions.filter(name=name).aggregate(last=Max("number"))["last"] or 0
    version = GraphVersion.objects.create(project=project, name=name, number=last + 1, editor_document=editor_document,
                                          spec=spec, summary=summary, message=message, created_by=created_by,
                                          draft=draft)
    Project.objects.filter(pk=project.pk).update(updated_at=timezone.now())
    return version
