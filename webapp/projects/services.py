"""Writes of projects and graph versions. Graph versions are created, never changed."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from engine.graph import DEFAULT_BATCH_SIZE
from webapp.core.exceptions import Conflict, InvalidInput
from webapp.projects.converter import validate_editor_document
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
def project_delete(*, project: Project) -> None:
    """Deletes the project with its graph versions, datasets and runs; refused while a run of it
    is queued or running (cancel those first)."""
    active = list(project.runs.exclude(state__in=Run.FINISHED_STATES).values_list("pk", flat=True))
    if active:
        raise Conflict(f"project '{project.name}' has active runs ({', '.join(map(str, active))}); cancel them first",
                       details={"runs": active})
    from webapp.runs.services import run_delete  # noqa: PLC0415 - runs depend on projects, not the other way

    for run in project.runs.all():
        run_delete(run=run)
    project.delete()


def graph_version_create(*, project: Project, editor_document, created_by, name: str = "main", message: str = "",
                         batch_size: int = DEFAULT_BATCH_SIZE) -> GraphVersion:
    """Convert and validate the editor document, then save it as the next version (last + 1) of
    the project's graph ``name``. An invalid graph raises ``InvalidInput`` with the errors per
    editor node; nothing is saved."""
    report = validate_editor_document(editor_document, batch_size=batch_size)
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
    # Two saves at once may pick the same number; the unique constraint turns that into a retry.
    for attempt in range(NUMBERING_ATTEMPTS):
        try:
            return _graph_version_insert(project=project, name=name, editor_document=editor_document,
                                         spec=report["spec"], summary=summary, message=message, created_by=created_by)
        except IntegrityError:
            if attempt == NUMBERING_ATTEMPTS - 1:
                raise Conflict("another version of this graph was saved at the same moment; save again") from None
    raise AssertionError("unreachable")


@transaction.atomic
def _graph_version_insert(*, project: Project, name: str, editor_document, spec: dict, summary: dict, message: str,
                          created_by) -> GraphVersion:
    Project.objects.select_for_update().filter(pk=project.pk).first()  # serializes numbering where supported
    last = project.graph_versions.filter(name=name).aggregate(last=Max("number"))["last"] or 0
    version = GraphVersion.objects.create(project=project, name=name, number=last + 1, editor_document=editor_document,
                                          spec=spec, summary=summary, message=message, created_by=created_by)
    Project.objects.filter(pk=project.pk).update(updated_at=timezone.now())
    return version
