"""Writes of datasets: from a built-in, from an upload (stored, then read and converted by a
worker: ``processing`` -> ``ready`` | ``failed``), renaming and deleting."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from engine import data as engine_data
from engine.data import views
from engine.data.limits import describe_bytes
from engine.errors import DataError
from webapp.core.exceptions import Conflict, InvalidInput, PayloadTooLarge
from webapp.datasets import conversion, images, uploads
from webapp.datasets.conversion import json_ready
from webapp.datasets.models import Dataset
from webapp.projects.models import Project
from webapp.runs.dispatch import celery_client

log = logging.getLogger(__name__)
PREVIEW_ROWS = 5
PROBE_ROWS = 64  # rows generated to measure a built-in's size per row
# The worker task that converts uploads (``workers.datasets``), sent by name on its own queue.
CONVERT_DATASET_TASK = "workers.convert_dataset"
DATASETS_QUEUE = "datasets"
LABELS_PREFIX = "labels-"  # an IDX labels file beside the images, until the conversion


def max_upload_bytes() -> int:
    return int(settings.MAX_UPLOAD_BYTES)


def check_upload_size(*, file_name: str, size: int) -> None:
    """413 when a file is over ``settings.MAX_UPLOAD_BYTES`` (NETFORGE_MAX_UPLOAD_MB)."""
    limit = max_upload_bytes()
    if size > limit:
        raise PayloadTooLarge(
            f"{file_name} is {describe_bytes(size)}, over the upload limit of {describe_bytes(limit)} "
            "(the server's NETFORGE_MAX_UPLOAD_MB setting)",
            details={"size": size, "limit": limit},
        )


@transaction.atomic
def dataset_create_builtin(*, owner, builtin: str, name: str = "", options: dict | None = None,
                           project: Project | None = None, view: dict | None = None) -> Dataset:
    """A dataset record for a built-in (``engine.data.load_builtin``); the user's record of the same
    built-in with the same options and view (in the same project) is returned instead of a
    duplicate. Unknown names and options, and a view that does not fit, are a 400."""
    options = dict(options or {})
    existing = builtin_duplicate(owner=owner, builtin=builtin, options=options, project=project, view=view)
    if existing is not None:
        return existing
    _check_builtin_size(builtin, options)
    loaded = engine_data.load_builtin(builtin, **options)
    schema = json_ready(loaded.schema())
    return Dataset.objects.create(
        owner=owner, project=project, name=name or builtin, kind=Dataset.Kind.BUILTIN, builtin_name=builtin,
        options=options, schema=schema, preview=json_ready(loaded.preview(PREVIEW_ROWS)), rows=len(loaded),
        view=_checked_view(view, schema) or {},
    )


def builtin_duplicate(*, owner, builtin: str, options: dict, project: Project | None,
                      view: dict | None = None) -> Dataset | None:
    """The user's existing record of this built-in with these options and view in this project, if any."""
    # An archived one is not offered back: adding the built-in again makes a record the lists show.
    return Dataset.objects.filter(owner=owner, kind=Dataset.Kind.BUILTIN, builtin_name=builtin, project=project,
                                  options=options, view=views.check_view(view) or {},
                                  archived_at__isnull=True).order_by("pk").first()


def template_dataset_options(*, project: Project | None, builtin: str) -> dict:
    """The built-in's options that the project's newest graph recommends when it was started from a
    template for this built-in (the zoo's ``metadata.dataset_options``, e.g. digits as 1x8x8
    images for the Small CNN), else none."""
    if project is None:
        return {}
    for spec in project.graph_versions.order_by("-pk").values_list("spec", flat=True)[:1]:
        metadata = (spec or {}).get("metadata") or {}
        recommended = metadata.get("dataset_options")
        if metadata.get("dataset") == builtin and isinstance(recommended, dict):
            return dict(recommended)
    return {}


def _checked_view(view: dict | None, schema: dict) -> dict | None:
    """The view in normal form, checked against the features' stored per-sample shape (400 naming
    the field when it does not fit)."""
    feature = images.feature_array_name(schema)
    if view and feature is None:
        raise InvalidInput("view: the dataset has no single feature array to shape", details={"view": ["no features"]})
    sample_shape = (schema.get("arrays") or {}).get(feature, {}).get("shape") if feature else None
    try:
        return views.check_view(view, sample_shape)
    except DataError as error:
        raise InvalidInput(str(error), details={"view": [str(error)]}) from None


def _check_builtin_size(builtin: str, options: dict) -> None:
    """Generated built-ins may not hold more than an upload may (``MAX_UPLOAD_BYTES``): their size
    is measured on a few rows first, so that asking for a billion rows is refused, not attempted."""
    rows = options.get("n_samples")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows <= PROBE_ROWS:
        return  # the engine checks the option itself
    sample = engine_data.load_builtin(builtin, **{**options, "n_samples": PROBE_ROWS})
    estimate = sum(array.nbytes for array in sample.arrays.values()) / len(sample) * rows
    if estimate > max_upload_bytes():
        raise InvalidInput(
            f"dataset '{builtin}' with n_samples={rows} would hold about {describe_bytes(int(estimate))}, over the "
            f"limit of {describe_bytes(max_upload_bytes())}; ask for fewer rows",
            code="too_large", details={"options.n_samples": ["too many rows"]},
        )


def dataset_create_upload(*, owner, file, labels_file=None, name: str = "", file_format: str | None = None,
                          options: dict | None = None, project: Project | None = None,
                          view: dict | None = None) -> Dataset:
    """Store the uploaded file(s) and create the dataset ``processing``; a worker of the
    ``datasets`` queue then reads and converts it (``dataset_convert``), never this process. The
    format, the options and the size are checked here (a 400 or 413, nothing stored); what is in
    the file is checked by the conversion, which fails the dataset with the reason."""
    check_upload_size(file_name=file.name, size=file.size)
    if labels_file is not None:
        check_upload_size(file_name=labels_file.name, size=labels_file.size)
    _check_storage(owner=owner, adding=file.size + (labels_file.size if labels_file is not None else 0))
    file_format = file_format or uploads.detect_format(file.name)
    if file_format is None:
        raise InvalidInput(f"{file.name}: cannot tell the file's format from its name; name it .csv, .tsv, .npz, "
                           "an IDX file (e.g. train-images-idx3-ubyte) or .zip, or give 'format'",
                           details={"format": [f"one of {', '.join(uploads.FORMATS)}"]})
    if file_format not in uploads.FORMATS:
        raise InvalidInput(f"unknown format '{file_format}'; expected one of {', '.join(uploads.FORMATS)}",
                           details={"format": [f"one of {', '.join(uploads.FORMATS)}"]})
    options = uploads.check_options(file_format, dict(options or {}))
    try:  # its fit to the samples is checked once the worker has read them
        view = views.check_view(view)
    except DataError as error:
        raise InvalidInput(str(error), details={"view": [str(error)]}) from None
    if labels_file is not None and file_format != "idx":
        raise InvalidInput("a separate labels file is only read for IDX images", details={"labels": ["IDX only"]})
    if file_format == "npz" and options.get("y_key") in ("none", "null"):  # unlabeled data
        options["y_key"] = None
    upload_name = uploads.safe_file_name(file.name)
    # The stored name must let engine.data.load (and the exported script) tell the format again.
    stored_name = (upload_name if uploads.detect_format(upload_name) == file_format
                   else upload_name + uploads.STORED_SUFFIXES[file_format])
    dataset = _dataset_store_upload(
        owner=owner, project=project, name=(name or _name_of(stored_name))[:200], file_format=file_format,
        options=options, file=file, stored_name=stored_name, labels_file=labels_file, view=view or {})
    if settings.DATASET_CONVERSION_INLINE:
        dataset_convert(dataset_id=dataset.pk)  # tests without a worker: this process's child, same limits
        dataset.refresh_from_db()
    else:
        transaction.on_commit(lambda: _enqueue_conversion(dataset.pk))
    return dataset


def _check_storage(*, owner, adding: int) -> None:
    """413 when the user's datasets would hold more than ``DATASET_MAX_STORAGE_PER_USER_BYTES``."""
    limit = int(settings.DATASET_MAX_STORAGE_PER_USER_BYTES)
    used = storage_used(owner=owner)
    if used + adding > limit:
        raise PayloadTooLarge(
            f"your datasets hold {describe_bytes(used)}; adding {describe_bytes(adding)} would pass the storage limit "
            f"of {describe_bytes(limit)} per user (the server's NETFORGE_DATASET_MAX_STORAGE_PER_USER_MB setting); "
            "delete datasets you no longer need", details={"used": used, "adding": adding, "limit": limit})


def _name_of(stored_name: str) -> str:
    return re.sub(r"(\.gz)?$", "", stored_name).rsplit(".", 1)[0] or stored_name


@transaction.atomic
def _dataset_store_upload(*, owner, project, name: str, file_format: str, options: dict, file, stored_name: str,
                          labels_file, view: dict) -> Dataset:
    dataset = Dataset.objects.create(
        owner=owner, project=project, name=name, kind=Dataset.Kind.UPLOAD, file_format=file_format,
        original_name=uploads.safe_file_name(file.name)[:200], options=options, state=Dataset.State.PROCESSING,
        view=view)
    folder = conversion.dataset_folder(dataset.pk)
    try:
        file.seek(0)
        dataset.file.name = default_storage.save(f"{folder}/{stored_name}", file)
        if labels_file is not None:
            labels_file.seek(0)
            default_storage.save(f"{folder}/{LABELS_PREFIX}{uploads.safe_file_name(labels_file.name)}", labels_file)
        dataset.size_bytes = dataset.file.size + (labels_file.size if labels_file is not None else 0)
        dataset.save(update_fields=["file", "size_bytes"])
    except Exception:
        conversion.remove_folder(Path(settings.MEDIA_ROOT) / folder)
        raise
    return dataset


def _enqueue_conversion(dataset_id: int) -> None:
    try:
        celery_client().send_task(CONVERT_DATASET_TASK, args=(dataset_id,), queue=DATASETS_QUEUE)
    except Exception as error:
        log.exception("could not queue the conversion of dataset %s", dataset_id)
        dataset_mark_failed(dataset_id=dataset_id, error=f"could not queue the conversion: {error}")


def dataset_convert(*, dataset_id: int) -> Dataset | None:
    """Read and convert a ``processing`` upload in a child process under the memory and size
    limits (``webapp.datasets.conversion``), then record ``ready`` or ``failed``. A dataset in any
    other state (a redelivered message, a deleted dataset) is left alone."""
    dataset = Dataset.objects.filter(pk=dataset_id, state=Dataset.State.PROCESSING).first()
    if dataset is None:
        log.info("dataset %s is not processing; nothing to convert", dataset_id)
        return None
    folder = Path(settings.MEDIA_ROOT) / conversion.dataset_folder(dataset.pk)
    labels = next(folder.glob(f"{LABELS_PREFIX}*"), None) if folder.is_dir() else None
    upload = Path(dataset.file.path)
    converts_to_npz = dataset.file_format == "zip" or labels is not None
    store = conversion.store_path(dataset.pk)
    conversion.remove_folder(store)  # a half-written store of an earlier, interrupted attempt
    job = conversion.ConversionJob(
        upload=upload, file_format=dataset.file_format, options=dict(dataset.options), store=store, labels=labels,
        converted_npz=folder / conversion.converted_name(upload.name) if converts_to_npz else None)
    started = time.monotonic()
    result = conversion.convert_in_child(job)
    log.info("dataset %s converted in %.2f s: %s", dataset_id, time.monotonic() - started,
             "refused" if "error" in result else "ready")
    if "error" in result:
        conversion.remove_folder(folder)  # a refused file is not kept
        return dataset_mark_failed(dataset_id=dataset_id, error=result["error"])
    stored_file = dataset.file.name
    if job.converted_npz is not None:  # IDX pairs and zips are kept as the .npz they became
        upload.unlink(missing_ok=True)
        if labels is not None:
            labels.unlink(missing_ok=True)
        stored_file = f"{conversion.dataset_folder(dataset.pk)}/{job.converted_npz.name}"
    try:
        _checked_view(dataset.view, result["schema"])
    except InvalidInput as error:
        conversion.remove_folder(folder)
        return dataset_mark_failed(dataset_id=dataset_id, error=f"{error.message} (the view given with the upload)")
    manifest = result["manifest"]
    size = (Path(settings.MEDIA_ROOT) / stored_file).stat().st_size + manifest["size_bytes"]
    return dataset_mark_ready(dataset_id=dataset_id, schema=result["schema"], preview=result["preview"],
                              rows=result["rows"], content_hash=manifest["content_hash"], size_bytes=size,
                              stored_file=stored_file, file_format="npz" if converts_to_npz else dataset.file_format,
                              options=_stored_options(dataset, converts_to_npz))


def _stored_options(dataset: Dataset, converts_to_npz: bool) -> dict:
    """The loader options that read the stored file (``engine.data.load``, the exported script)."""
    if converts_to_npz:
        return {"task": "classification"}
    if dataset.file_format == "tsv":
        return {"delimiter": "\t", **dataset.options}
    return dict(dataset.options)


@transaction.atomic
def dataset_mark_ready(*, dataset_id: int, schema: dict, preview: dict, rows: int, content_hash: str,
                       size_bytes: int, stored_file: str, file_format: str, options: dict) -> Dataset | None:
    """``processing`` -> ``ready`` (only from processing: a dataset deleted meanwhile stays deleted)."""
    updated = Dataset.objects.filter(pk=dataset_id, state=Dataset.State.PROCESSING).update(
        state=Dataset.State.READY, error="", schema=schema, preview=preview, rows=rows, content_hash=content_hash,
        size_bytes=size_bytes, file=stored_file, file_format="csv" if file_format == "tsv" else file_format,
        options=options)
    return Dataset.objects.filter(pk=dataset_id).first() if updated else None


def datasets_fail_stale(*, owner) -> int:
    """Fail the user's uploads still ``processing`` long after any conversion would have ended
    (twice ``DATASET_CONVERSION_TIMEOUT_SECONDS``): their worker stopped mid-way, and the user is
    told to upload again instead of waiting forever. Returns how many."""
    deadline = timezone.now() - timedelta(seconds=2 * float(settings.DATASET_CONVERSION_TIMEOUT_SECONDS))
    stale = list(Dataset.objects.filter(owner=owner, state=Dataset.State.PROCESSING, created_at__lt=deadline)
                 .values_list("pk", flat=True))
    for dataset_id in stale:
        if dataset_mark_failed(dataset_id=dataset_id, error="the conversion did not finish (its worker stopped); "
                                                            "upload the file again"):
            conversion.remove_folder(Path(settings.MEDIA_ROOT) / conversion.dataset_folder(dataset_id))
    return len(stale)


@transaction.atomic
def dataset_mark_failed(*, dataset_id: int, error: str) -> Dataset | None:
    """``processing`` -> ``failed`` with the reason; the refused file is not kept."""
    updated = Dataset.objects.filter(pk=dataset_id, state=Dataset.State.PROCESSING).update(
        state=Dataset.State.FAILED, error=error[:4000], size_bytes=0, file="")
    return Dataset.objects.filter(pk=dataset_id).first() if updated else None


_UNCHANGED = object()


@transaction.atomic
def dataset_update(*, dataset: Dataset, name: str | None = None, view=_UNCHANGED) -> Dataset:
    """Rename, and switch the view (checked against the samples: a 400 naming ``view``)."""
    fields = []
    if name is not None:
        dataset.name = name
        fields.append("name")
    if view is not _UNCHANGED:
        if dataset.state != Dataset.State.READY:
            raise Conflict(f"dataset '{dataset.name}' is {dataset.state}; its view can be set once it is ready",
                           details={"view": [dataset.state]})
        dataset.view = _checked_view(view, dataset.schema) or {}
        fields.append("view")
    if fields:
        dataset.save(update_fields=fields)
    return dataset


@transaction.atomic
def dataset_delete(*, dataset: Dataset) -> None:
    """Deletes the record, its stored file and its converted store; refused (409) while runs use
    the dataset or endpoints serve a model trained on it, naming them."""
    from webapp.endpoints.models import ModelVersion  # noqa: PLC0415 - endpoints build on datasets, not back

    runs = list(dataset.runs.order_by("pk").values_list("pk", flat=True)[:20])
    endpoints = sorted(set(ModelVersion.objects.filter(run__dataset=dataset).values_list("endpoint__name", flat=True)))
    if runs or endpoints:
        needs = []
        if endpoints:
            needs.append(f"endpoint(s) {', '.join(endpoints[:20])} serve models trained on it")
        if runs:
            needs.append(f"it is used by run(s) {', '.join(map(str, runs))}")
        raise Conflict(f"dataset '{dataset.name}' cannot be deleted: {'; '.join(needs)}; delete "
                       f"{'those endpoints and ' if endpoints else ''}the runs first",
                       details={"runs": runs, "endpoints": endpoints[:20]})
    file = dataset.file
    folder = Path(settings.MEDIA_ROOT) / conversion.dataset_folder(dataset.pk)
    dataset.delete()
    if file:
        transaction.on_commit(lambda: _remove_file(file))
    transaction.on_commit(lambda: conversion.remove_folder(folder))


@transaction.atomic
def dataset_archive(*, dataset: Dataset, archived: bool) -> Dataset:
    """Archive (hide from the lists and the train panel's choices) or unarchive the dataset. Its
    files stay and the runs that used it keep it; archiving again keeps the first date."""
    if archived and dataset.archived_at is None:
        dataset.archived_at = timezone.now()
    elif not archived:
        dataset.archived_at = None
    dataset.save(update_fields=["archived_at"])
    return dataset


def storage_used(*, owner) -> int:
    """The bytes the user's datasets hold on disk (uploads and their converted stores)."""
    return Dataset.objects.filter(owner=owner).aggregate(total=Sum("size_bytes"))["total"] or 0


def _remove_file(file) -> None:
    try:
        file.storage.delete(file.name)
    except OSError as error:  # the record is gone either way; a stray file is only disk space
        log.warning("could not remove dataset file %s: %s", file.name, error)
