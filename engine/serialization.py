"""Saving and loading models and checkpoints as safe files (contract 5). Nothing is pickled.

A saved model is a folder:

- ``graph.json``: the graph document (``netforge.graph/1``);
- ``weights.npz``: every weight and buffer, keyed ``node/weight``, read with ``allow_pickle=False``;
- ``optimizer.npz`` and ``trainer.json`` (checkpoints): optimizer slots, optimizer and trainer state;
- ``manifest.json``: format, engine version, SHA-256 and size of every file, each tensor's shape and
  dtype, and the input schema (shapes, dtypes, standardization, task, label names).

Writes go to a temporary folder that is renamed into place, so a crash never leaves a half
checkpoint where a whole one was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy

from engine.errors import ArtifactError

MANIFEST_FORMAT = "netforge.model/1"
GRAPH_FILE = "graph.json"
WEIGHTS_FILE = "weights.npz"
OPTIMIZER_FILE = "optimizer.npz"
TRAINER_FILE = "trainer.json"
MANIFEST_FILE = "manifest.json"


@dataclasses.dataclass
class Artifact:
    """What ``read_artifact`` returns: every part of a saved folder, checked."""

    path: Path
    manifest: dict
    spec: dict
    weights: dict[str, numpy.ndarray]
    optimizer_arrays: dict[str, numpy.ndarray] | None
    trainer_state: dict | None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(arrays: dict) -> dict:
    return {key: {"shape": list(value.shape), "dtype": str(value.dtype)} for key, value in arrays.items()}


def write_artifact(
    path: str | os.PathLike,
    *,
    spec: dict,
    weights: dict[str, numpy.ndarray],
    input_schema: dict,
    optimizer_arrays: dict[str, numpy.ndarray] | None = None,
    trainer_state: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a model folder atomically; returns its path."""
    from engine import __version__  # noqa: PLC0415

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        files = {}
        (staging / GRAPH_FILE).write_text(json.dumps(spec, indent=1, sort_keys=False))
        files[GRAPH_FILE] = None
        numpy.savez(staging / WEIGHTS_FILE, **weights)
        files[WEIGHTS_FILE] = None
        tensors = {WEIGHTS_FILE: _describe(weights)}
        if optimizer_arrays is not None:
            numpy.savez(staging / OPTIMIZER_FILE, **optimizer_arrays)
            files[OPTIMIZER_FILE] = None
            tensors[OPTIMIZER_FILE] = _describe(optimizer_arrays)
        if trainer_state is not None:
            (staging / TRAINER_FILE).write_text(json.dumps(trainer_state, indent=1))
            files[TRAINER_FILE] = None
        manifest = {
            "format": MANIFEST_FORMAT,
            "engine_version": __version__,
            "files": {
                name: {"sha256": _sha256(staging / name), "bytes": (staging / name).stat().st_size} for name in files
            },
            "tensors": tensors,
            "input_schema": input_schema,
            **(extra or {}),
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        if target.exists():
            backup = target.with_name(f".{target.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            target.rename(backup)
            staging.rename(target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _load_npz(path: Path, described: dict | None) -> dict[str, numpy.ndarray]:
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ArtifactError(f"{path}: cannot be read as an .npz archive ({error})") from error
    if described is not None:
        for key, info in described.items():
            if key not in arrays:
                raise ArtifactError(f"{path}: tensor '{key}' listed in the manifest is missing")
            if list(arrays[key].shape) != info["shape"] or str(arrays[key].dtype) != info["dtype"]:
                raise ArtifactError(
                    f"{path}: tensor '{key}' is {tuple(arrays[key].shape)} {arrays[key].dtype}, "
                    f"the manifest says {tuple(info['shape'])} {info['dtype']}"
                )
        extra = sorted(set(arrays) - set(described))
        if extra:
            raise ArtifactError(f"{path}: tensor(s) {extra} are not listed in the manifest")
    return arrays


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: not readable JSON ({error})") from error
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    return data


def read_artifact(path: str | os.PathLike) -> Artifact:
    """Read and verify a model folder: checksums first, then every tensor against the manifest."""
    folder = Path(path)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such model folder")
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.exists():
        raise ArtifactError(f"{manifest_path}: missing; this folder is not a saved NetForge model")
    manifest = _read_json(manifest_path)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{manifest_path}: format {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or GRAPH_FILE not in files or WEIGHTS_FILE not in files:
        raise ArtifactError(f"{manifest_path}: must list {GRAPH_FILE} and {WEIGHTS_FILE} with their checksums")
    for name, info in files.items():
        file_path = folder / name
        if not file_path.exists():
            raise ArtifactError(f"{file_path}: missing (listed in the manifest)")
        size = file_path.stat().st_size
        if size != info.get("bytes"):
            raise ArtifactError(f"{file_path}: {size} bytes, the manifest says {info.get('bytes')}: "
                                "truncated or replaced")
        if _sha256(file_path) != info.get("sha256"):
            raise ArtifactError(f"{file_path}: SHA-256 does not match the manifest: the file was modified")
    tensors = manifest.get("tensors", {})
    spec = _read_json(folder / GRAPH_FILE)
    weights = _load_npz(folder / WEIGHTS_FILE, tensors.get(WEIGHTS_FILE))
    optimizer_arrays = None
    if OPTIMIZER_FILE in files:
        optimizer_arrays = _load_npz(folder / OPTIMIZER_FILE, tensors.get(OPTIMIZER_FILE))
    trainer_state = _read_json(folder / TRAINER_FILE) if TRAINER_FILE in files else None
    return Artifact(folder, manifest, spec, weights, optimizer_arrays, trainer_state)
