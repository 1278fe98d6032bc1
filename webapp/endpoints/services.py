"""Writes of endpoints: create, update, delete; publish a run as a version; pin, unpin, roll back;
create and revoke API keys.

Publishing copies the run's final model into ``<ARTIFACT_ROOT>/endpoints/<endpoint id>/v<n>`` as
a model folder of its own (``engine.serialization``: graph, weights, manifest with checksums and
the input schema), loads and warms it up in this process, and only then marks it ready and makes
it the default (unless the endpoint is pinned). Each serving process moves its own default once it
has loaded the version too (``webapp.serving.runtime``).
"""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from engine import serialization
from engine.errors import ArtifactError, EngineError
from webapp.core.exceptions import Conflict, InvalidInput
from webapp.endpoints.models import ApiKey, Endpoint, ModelVersion
from webapp.runs.models import Run
from webapp.serving import runtime as serving

log = logging.getLogger(__name__)

KEY_PREFIX = "nfk_"
BATCHING_FIELDS = ("max_batch_size", "max_queue_delay_ms", "max_queue_size")


def endpoints_root() -> Path:
    return Path(settings.ARTIFACT_ROOT) / "endpoints"


def _changed() -> None:
    """This process's serving runtime reads the routes again: now (for reads in this transaction)
    and once it commits (for everyone else)."""
    serving.invalidate_routes()
    transaction.on_commit(serving.invalidate_routes)


# -- endpoints ---------------------------------------------------------------------------------------

@transaction.atomic
def endpoint_create(*, owner, name: str, description: str = "", **batching) -> Endpoint:
    endpoint = Endpoint(owner=owner, name=name, description=description, **batching)
    endpoint.full_clean(exclude=["default_version"], validate_unique=False)
    if Endpoint.objects.filter(name=name).exists():
        raise Conflict(f"an endpoint named {name!r} already exists; choose another name",
                       details={"name": ["already taken"]})
    try:
        with transaction.atomic():
            endpoint.save()
    except IntegrityError:
        raise Conflict(f"an endpoint named {name!r} already exists; choose another name",
                       details={"name": ["already taken"]}) from None
    _changed()
    return endpoint


@transaction.atomic
def endpoint_update(*, endpoint: Endpoint, **fields) -> Endpoint:
    allowed = {"description", *BATCHING_FIELDS}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInput(f"cannot change {unknown[0]!r}; changeable: {', '.join(sorted(allowed))}")
    for key, value in fields.items():
        setattr(endpoint, key, value)
    endpoint.full_clean(exclude=["default_version"])
    endpoint.save()
    _changed()
    return endpoint


def endpoint_delete(*, endpoint: Endpoint) -> None:
    folder = endpoints_root() / str(endpoint.pk)
    endpoint_id = endpoint.pk
    with transaction.atomic():
        endpoint.delete()
        _changed()
    runtime = serving.current_runtime()
    if runtime is not None:
        runtime.cache.drop(endpoint_id)
    shutil.rmtree(folder, ignore_errors=True)


# -- versions ----------------------------------------------------------------------------------------

def _final_model(run: Run) -> tuple[serialization.Artifact, dict, int]:
    """The run's trained model: its newest checkpoint, with the best epoch's weights when early
    stopping restored them. Returns (artifact, weights, epoch)."""
    checkpoint = run.checkpoints.order_by("-epoch").first()
    if checkpoint is None:
        raise InvalidInput(f"run {run.pk} has no checkpoint to publish", details={"run": ["no checkpoint"]})
    try:
        artifact = serialization.read_artifact(checkpoint.path)
    except ArtifactError as error:
        raise InvalidInput(f"run {run.pk}: its last checkpoint cannot be read: {error}",
                           details={"run": [str(error)]}) from None
    weights = artifact.weights
    state = artifact.trainer_state or {}
    early = (state.get("config") or {}).get("early_stopping") or {}
    best = {key.removeprefix("best/"): value for key, value in (artifact.optimizer_arrays or {}).items()
            if key.startswith("best/")}
    if run.final_metrics.get("status") == "stopped_early" and early.get("restore_best", True) and best:
        weights = best
    return artifact, weights, checkpoint.epoch


@transaction.atomic
def _version_reserve(*, endpoint: Endpoint, run: Run, created_by) -> ModelVersion:
    Endpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
    number = (endpoint.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    path = endpoints_root() / str(endpoint.pk) / f"v{number}"
    return ModelVersion.objects.create(endpoint=endpoint, number=number, run=run, created_by=created_by, path=str(path))


def version_publish(*, endpoint: Endpoint, run: Run, created_by) -> ModelVersion:
    """Publish a succeeded run as the endpoint's next version (see the module's docstring)."""
    if run.state != Run.State.SUCCEEDED:
        raise Conflict(f"run {run.pk} is {run.state}; only a succeeded run can be published",
                       details={"run": [f"state is {run.state}"]})
    artifact, weights, epoch = _final_model(run)
    version = _version_reserve(endpoint=endpoint, run=run, created_by=created_by)
    source = {"run": run.pk, "run_name": run.name, "project": run.project_id, "graph_version": run.graph_version_id,
              "dataset": run.dataset_id, "checkpoint_epoch": epoch, "metrics": run.final_metrics,
              "published_at": timezone.now().isoformat()}
    try:
        serialization.write_artifact(version.path, spec=artifact.spec, weights=weights,
                                     input_schema=artifact.manifest.get("input_schema", {}),
                                     extra={"source": {**source, "endpoint": endpoint.name, "version": version.number}})
        runtime = serving.get_runtime()
        loaded = runtime.cache.load(endpoint_id=endpoint.pk, endpoint=endpoint.name, number=version.number,
                                    path=version.path, max_batch_size=endpoint.max_batch_size,
                                    max_queue_delay=endpoint.max_queue_delay_ms / 1000.0,
                                    max_queue_size=endpoint.max_queue_size)
    except (EngineError, OSError) as error:
        ModelVersion.objects.filter(pk=version.pk).update(state=ModelVersion.State.FAILED, error=str(error))
        raise InvalidInput(f"run {run.pk} could not be published as {endpoint.name} v{version.number}: {error}",
                           details={"run": [str(error)]}) from None
    weights_sha = loaded.manifest["files"][serialization.WEIGHTS_FILE]["sha256"]
    return _version_ready(version=version, schema=loaded.schema, source=source, weights_sha256=weights_sha)


@transaction.atomic
def _version_ready(*, version: ModelVersion, schema: dict, source: dict, weights_sha256: str) -> ModelVersion:
    endpoint = Endpoint.objects.select_for_update().get(pk=version.endpoint_id)
    version.state = ModelVersion.State.READY
    version.input_schema = schema
    version.source = source
    version.weights_sha256 = weights_sha256
    version.save(update_fields=["state", "input_schema", "source", "weights_sha256"])
    if not endpoint.pinned or endpoint.default_version_id is None:
        endpoint.default_version = version
        endpoint.save(update_fields=["default_version", "updated_at"])
    _changed()
    return version


def publish_run(*, run: Run, endpoint_name: str, user, description: str = "") -> ModelVersion:
    """``POST /api/runs/<id>/publish``: the endpoint is created (owned by ``user``) when new."""
    endpoint = Endpoint.objects.filter(name=endpoint_name).first()
    if endpoint is None:
        endpoint = endpoint_create(owner=user, name=endpoint_name, description=description)
    elif endpoint.owner_id != user.pk:
        raise Conflict(f"the endpoint name {endpoint_name!r} is taken by another user; choose another",
                       details={"endpoint": ["taken"]})
    return version_publish(endpoint=endpoint, run=run, created_by=user)


def _ready_version(endpoint: Endpoint, number: int) -> ModelVersion:
    version = endpoint.versions.filter(number=number).first()
    if version is None:
        raise InvalidInput(f"endpoint {endpoint.name!r} has no version {number}", details={"version": ["not found"]})
    if version.state != ModelVersion.State.READY:
        raise Conflict(f"{endpoint.name} v{number} is {version.state}; only a ready version can serve")
    return version


@transaction.atomic
def version_pin(*, endpoint: Endpoint, number: int) -> Endpoint:
    """Make version ``number`` the default and keep it there when new versions are published."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.default_version = _ready_version(endpoint, number)
    endpoint.pinned = True
    endpoint.save(update_fields=["default_version", "pinned", "updated_at"])
    _changed()
    return endpoint


@transaction.atomic
def endpoint_unpin(*, endpoint: Endpoint) -> Endpoint:
    """Follow the newest ready version again."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.pinned = False
    newest = endpoint.versions.filter(state=ModelVersion.State.READY).order_by("-number").first()
    if newest is not None:
        endpoint.default_version = newest
    endpoint.save(update_fields=["default_version", "pinned", "updated_at"])
    _changed()
    return endpoint


@transaction.atomic
def endpoint_rollback(*, endpoint: Endpoint) -> Endpoint:
    """Pin the newest ready version older than the current default."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    current = endpoint.default_version.number if endpoint.default_version_id else None
    if current is None:
        raise Conflict(f"endpoint {endpoint.name!r} has no default version to roll back from")
    previous = (endpoint.versions.filter(state=ModelVersion.State.READY, number__lt=current)
                .order_by("-number").first())
    if previous is None:
        raise Conflict(f"endpoint {endpoint.name!r} has no ready version older than v{current} to roll back to")
    endpoint.default_version = previous
    endpoint.pinned = True
    endpoint.save(update_fields=["default_version", "pinned", "updated_at"])
    _changed()
    return endpoint


# -- API keys ----------------------------------------------------------------------------------------

@transaction.atomic
def api_key_create(*, endpoint: Endpoint, name: str = "", created_by=None) -> tuple[ApiKey, str]:
    """A new key: (the stored record, the key itself, which is not stored and shown only now)."""
    if len(name) > 100:
        raise InvalidInput("name: at most 100 characters", details={"name": ["too long"]})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey.objects.create(endpoint=endpoint, name=name, prefix=key[:12], key_sha256=serving.hash_key(key),
                                   created_by=created_by)
    _changed()
    return record, key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        _changed()
    return api_key
