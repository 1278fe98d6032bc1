"""ONNX import: an uploaded ``.onnx`` model becomes the project's next graph version, laid out for
the editor, with its weights kept where a run can start from them (``init_from_import``).

The file is untrusted: ``engine.onnx_import.import_in_child`` parses it in a child process under
the ``ONNX_IMPORT_*`` limits. The weights are stored once per content, as
``<ARTIFACT_ROOT>/imports/<project id>/<sha256>.npz``, and the graph's metadata names that file
(``metadata.imported.weights``); versions saved from the imported graph keep the metadata, so
they start from the same weights, node ids matching.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from pathlib import Path

import numpy
from django.conf import settings

from engine import onnx_import
from webapp.core.exceptions import InvalidInput, PayloadTooLarge, TooManyRequests
from webapp.projects.converter import spec_to_editor_document
from webapp.projects.imported_weights import imported_weights_path, imports_folder
from webapp.projects.models import GraphVersion, Project
from webapp.projects.services import graph_version_create
from webapp.runs.budgets import check_storage_quota

log = logging.getLogger(__name__)

# The summary's memory estimate of an imported model: one sample (a ResNet-50 at 224 x 224 passes
# the memory budget at 1, not at the editor's default of 32, and it is a summary, not a limit).
IMPORT_SUMMARY_BATCH = 1


def graph_version_import(*, project: Project, upload, created_by, name: str = "main") -> GraphVersion:
    """Import the uploaded ONNX file as the next version of the project's graph ``name``. A file
    over the limit is a 413; one that is not ONNX, or has nodes the catalog cannot compute, a 400
    naming each node and op type (``details.unsupported``)."""
    limit = int(settings.ONNX_IMPORT_MAX_BYTES)
    if upload.size > limit:
        raise PayloadTooLarge(f"'{upload.name}' has {upload.size:,} bytes, over the ONNX import limit of {limit:,} "
                              "bytes (NETFORGE_ONNX_IMPORT_MAX_MB)", details={"file": ["too large"]})
    check_storage_quota(created_by)  # the weights are stored with the user's artifacts
    data = b"".join(upload.chunks())
    limits = onnx_import.ImportLimits(max_file_bytes=limit)
    try:
        with _import_slot(created_by.pk):
            imported = onnx_import.import_in_child(data, limits=limits,
                                                   memory_bytes=int(settings.ONNX_IMPORT_MEMORY_BYTES),
                                                   timeout_seconds=float(settings.ONNX_IMPORT_TIMEOUT_SECONDS))
    except onnx_import.UnsupportedOnnx as error:
        raise InvalidInput(f"'{upload.name}' cannot be imported: {error}", code="unsupported_onnx",
                           details={"file": [str(error)], "unsupported": error.problems}) from None
    except onnx_import.OnnxImportError as error:
        raise InvalidInput(f"'{upload.name}' cannot be imported: {error}", code="invalid_onnx",
                           details={"file": [str(error)]}) from None
    relative = _store_weights(project, imported.weights)
    spec = imported.spec
    spec["metadata"] = {"imported": {"format": "onnx", "file": upload.name, "weights": relative,
                                     "inputs": imported.input_names, "outputs": imported.output_names}}
    try:
        return graph_version_create(project=project, editor_document=spec_to_editor_document(spec),
                                    created_by=created_by, name=name, message=f"imported from {upload.name}",
                                    batch_size=IMPORT_SUMMARY_BATCH)
    except Exception:
        if not _weights_in_use(project, relative):
            (Path(settings.ARTIFACT_ROOT) / relative).unlink(missing_ok=True)
        raise


_slots_lock = threading.Lock()
_running: dict[int, int] = {}  # user id -> imports of theirs running in this process


class _import_slot:  # a context manager, named as one is used
    """A child import slot: at most ``ONNX_IMPORT_CONCURRENCY`` in this process and one per user,
    since each child may take ``ONNX_IMPORT_MEMORY_MB``; past either, a 429 at once, not a wait."""

    def __init__(self, user_id: int):
        self.user_id = user_id

    def __enter__(self):
        limit = max(1, int(settings.ONNX_IMPORT_CONCURRENCY))
        with _slots_lock:
            if self.user_id in _running:
                raise TooManyRequests("one of your ONNX imports is still running; import the next one when it "
                                      "has finished", details={"file": ["an import of yours is running"]})
            if sum(_running.values()) >= limit:
                raise TooManyRequests(f"{limit} ONNX imports are running on this server, its limit "
                                      "(NETFORGE_ONNX_IMPORT_CONCURRENCY); try again in a moment",
                                      details={"file": ["the server is importing other models"]})
            _running[self.user_id] = 1
        return self

    def __exit__(self, *exc) -> None:
        with _slots_lock:
            _running.pop(self.user_id, None)


def _store_weights(project: Project, weights: dict) -> str:
    """Write the weights (a ``.npz`` without pickles) named by their content; returns the path
    relative to the artifact root."""
    buffer = io.BytesIO()
    numpy.savez(buffer, **weights)
    content = buffer.getvalue()
    path = imports_folder(project.pk) / f"{hashlib.sha256(content).hexdigest()}.npz"
    relative = path.relative_to(settings.ARTIFACT_ROOT).as_posix()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(content)
        os.replace(partial, path)
    return relative


def _weights_in_use(project: Project, relative: str) -> bool:
    return any(imported_weights_path(version) is not None
               and (version.spec.get("metadata") or {}).get("imported", {}).get("weights") == relative
               for version in project.graph_versions.all())
