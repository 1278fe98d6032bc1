"""Writes of datasets: from a built-in, from an upload (read by the engine first: a malformed
file is refused and nothing is stored), renaming and deleting."""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from engine import data as engine_data
from webapp.core.exceptions import Conflict, InvalidInput, PayloadTooLarge
from webapp.datasets import uploads
from webapp.datasets.models import Dataset
from webapp.projects.models import Project

log = logging.getLogger(__name__)
PREVIEW_ROWS = 5
PROBE_ROWS = 64  # rows generated to measure a built-in's size per row


def max_upload_bytes() -> int:
    return int(settings.MAX_UPLOAD_BYTES)


def describe_size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count} bytes" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_upload_size(*, file_name: str, size: int) -> None:
    """413 when a file is over ``settings.MAX_UPLOAD_BYTES`` (NETFORGE_MAX_UPLOAD_MB)."""
    limit = max_upload_bytes()
    if size > limit:
        raise PayloadTooLarge(
            f"{file_name} is {describe_size(size)}, over the upload limit of {describe_size(limit)} "
            "(the server's NETFORGE_MAX_UPLOAD_MB setting)",
            details={"size": size, "limit": limit},
        )


@transaction.atomic
def dataset_create_builtin(*, owner, builtin: str, name: str = "", options: dict | None = None,
                           project: Project | None = None) -> Dataset:
    """A dataset record for a built-in (``engine.data.load_builtin``); unknown names and options
    are a 400 (the engine's ``DataError``)."""
    options = dict(options or {})
    _check_builtin_size(builtin, options)
    loaded = engine_data.load_builtin(builtin, **options)
    return Dataset.objects.create(
        owner=owner, project=project, name=name or builtin, kind=Dataset.Kind.BUILTIN, builtin_name=builtin,
        options=options, schema=_json_ready(loaded.schema()), preview=_json_ready(loaded.preview(PREVIEW_ROWS)),
        rows=len(loaded),
    )


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
            f"dataset '{builtin}' with n_samples={rows} would hold about {describe_size(int(estimate))}, over the "
            f"limit of {describe_size(max_upload_bytes())}; ask for fewer rows",
            code="too_large", details={"options.n_samples": ["too many rows"]},
        )


def dataset_create_upload(*, owner, file, labels_file=None, name: str = "", file_format: str | None = None,
                          options: dict | None = None, project: Project | None = None) -> Dataset:
    """Read the uploaded file with the engine to detect its schema, then store it (IDX pairs and
    zips of images as one converted ``.npz``). A malformed file is a 400 naming the file, line and
    column (``DataError``); a file over the limit is a 413. Nothing is stored for either."""
    check_upload_size(file_name=file.name, size=file.size)
    if labels_file is not None:
        check_upload_size(file_name=labels_file.name, size=labels_file.size)
    file_format = file_format or uploads.detect_format(file.name)
    if file_format is None:
        raise InvalidInput(f"{file.name}: cannot tell the file's format from its name; name it .csv, .tsv, .npz, "
                           "an IDX file (e.g. train-images-idx3-ubyte) or .zip, or give 'format'",
                           details={"format": [f"one of {', '.join(uploads.FORMATS)}"]})
    if file_format not in uploads.FORMATS:
        raise InvalidInput(f"unknown format '{file_format}'; expected one of {', '.join(uploads.FORMATS)}",
                           details={"format": [f"one of {', '.join(uploads.FORMATS)}"]})
    options = uploads.check_options(file_format, dict(options or {}))
    parsed = uploads.parse_upload(
        file_name=file.name, chunks=file.chunks(), file_format=file_format, options=options,
        labels_name=labels_file.name if labels_file is not None else None,
        labels_chunks=labels_file.chunks() if labels_file is not None else None,
    )
    if parsed.content is None:
        file.seek(0)
        content = file  # stored as uploaded, streamed in chunks
    else:
        content = ContentFile(parsed.content)
    return _dataset_store(owner=owner, project=project, name=name or parsed.dataset.name or parsed.stored_name,
                          parsed=parsed, content=content, original_name=uploads.safe_file_name(file.name))


@transaction.atomic
def _dataset_store(*, owner, project, name: str, parsed: uploads.ParsedUpload, content, original_name: str) -> Dataset:
    dataset = Dataset(
        owner=owner, project=project, name=name[:200], kind=Dataset.Kind.UPLOAD, file_format=parsed.file_format,
        original_name=original_name[:200],
        options=parsed.options, schema=_json_ready(parsed.dataset.schema()),
        preview=_json_ready(parsed.dataset.preview(PREVIEW_ROWS)), rows=len(parsed.dataset),
    )
    dataset.file.save(parsed.stored_name, content, save=False)
    try:
        dataset.save()
    except Exception:
        dataset.file.delete(save=False)
        raise
    return dataset


@transaction.atomic
def dataset_update(*, dataset: Dataset, name: str) -> Dataset:
    dataset.name = name
    dataset.save(update_fields=["name"])
    return dataset


@transaction.atomic
def dataset_delete(*, dataset: Dataset) -> None:
    """Deletes the record and its stored file; refused (409) while runs use the dataset."""
    runs = list(dataset.runs.values_list("pk", flat=True)[:20])
    if runs:
        raise Conflict(f"dataset '{dataset.name}' is used by run(s) {', '.join(map(str, runs))}; delete them first",
                       details={"runs": runs})
    file = dataset.file
    dataset.delete()
    if file:
        transaction.on_commit(lambda: _remove_file(file))


def _remove_file(file) -> None:
    try:
        file.storage.delete(file.name)
    except OSError as error:  # the record is gone either way; a stray file is only disk space
        log.warning("could not remove dataset file %s: %s", file.name, error)


def _json_ready(value):
    """Schema and preview as plain JSON: NumPy scalars and arrays become numbers and lists,
    non-finite numbers become null."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if hasattr(value, "tolist"):
        return _json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
