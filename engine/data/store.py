"""The converted store of a dataset: one ``.npy`` per array in a folder, and ``manifest.json``.

A dataset is converted once (``write_store``); training then opens the arrays memory-mapped
(``open_store``), so a batch reads its rows from disk and a dataset may be larger than the memory
of the process that trains on it. The manifest holds the schema and a SHA-256 of the arrays'
files (``content_hash``), which says whether two stores hold the same data, and the per-channel
mean and std of each float feature array (``channel_statistics``), measured once here for the
"per_channel" normalization of training options.

::

    manifest = write_store(dataset, folder)
    same = open_store(folder)        # arrays map the .npy files, read-only
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import mmap
import os
from pathlib import Path

import numpy

from engine.data.dataset import Dataset, RowSelection
from engine.data.standardizer import dataset_channel_statistics
from engine.errors import DataError

FORMAT = "netforge.store/1"
MANIFEST = "manifest.json"
HASH_CHUNK_BYTES = 1 << 22


def write_store(dataset: Dataset, folder: str | os.PathLike) -> dict:
    """Write ``dataset``'s arrays and manifest into ``folder`` (created); returns the manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    arrays = {}
    for name, array in dataset.arrays.items():
        file_name = f"{_safe_array_name(name)}.npy"
        array = numpy.ascontiguousarray(array)
        numpy.save(folder / file_name, array, allow_pickle=False)
        digest.update(name.encode() + b"\0")
        _hash_file(folder / file_name, digest)
        arrays[name] = {"file": file_name, "shape": list(array.shape), "dtype": str(array.dtype)}
    manifest = {
        "format": FORMAT,
        "content_hash": digest.hexdigest(),
        "size_bytes": sum((folder / entry["file"]).stat().st_size for entry in arrays.values()),
        "arrays": arrays,
        "task": dataset.task,
        "name": dataset.name,
        "num_classes": dataset.num_classes,
        "label_names": dataset.label_names,
        "feature_names": dataset.feature_names,
        "description": dataset.description,
        "metadata": dataset.metadata,
        "target": dataset.target,
        "channel_statistics": dataset_channel_statistics(dataset),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return manifest


def read_manifest(folder: str | os.PathLike) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{folder}: no converted dataset here (missing {MANIFEST})") from None
    if manifest.get("format") != FORMAT:
        raise DataError(f"{path}: unknown store format {manifest.get('format')!r}; expected {FORMAT}")
    return manifest


def open_store(folder: str | os.PathLike) -> Dataset:
    """The stored dataset with its arrays memory-mapped read-only (``is_mapped``): indexing a batch
    of rows reads only those rows (fancy indexing returns an in-memory copy of them)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    # Plain ndarray views of the maps: a numpy.memmap's subclass would follow every batch into the
    # model, where each operation on it pays the subclass's Python hooks (4x slower training steps).
    arrays = {name: numpy.asarray(numpy.load(folder / entry["file"], mmap_mode="r", allow_pickle=False))
              for name, entry in manifest["arrays"].items()}
    return Dataset(arrays=arrays, task=manifest["task"], name=manifest.get("name", ""),
                   num_classes=manifest.get("num_classes"), label_names=manifest.get("label_names"),
                   feature_names=manifest.get("feature_names"), description=manifest.get("description", ""),
                   metadata=dict(manifest.get("metadata") or {}), target=manifest.get("target", "y"),
                   channel_statistics=dict(manifest.get("channel_statistics") or {}))


def is_mapped(array) -> bool:
    """Whether ``array`` reads from a memory-mapped file (a store's array, or a view of one)."""
    while array is not None:
        if isinstance(array, numpy.memmap) or type(array).__name__ == "mmap":
            return True
        array = getattr(array, "base", None)
    return False


def resident_share(array) -> float | None:
    """The share (0 to 1) of a memory-mapped array's pages that are in the page cache now, so
    that reading them waits on no disk (``mincore``); None where that cannot be told (not mapped,
    not Linux). A ``RowSelection`` is asked of the array it selects from."""
    array = array.base if isinstance(array, RowSelection) else array
    mincore = _mincore()
    if mincore is None or not isinstance(array, numpy.ndarray) or not is_mapped(array):
        return None
    low, high = numpy.lib.array_utils.byte_bounds(array)
    if high <= low:
        return 1.0
    page = mmap.PAGESIZE
    start = low // page * page
    pages = (ctypes.c_ubyte * ((high - start + page - 1) // page))()
    if mincore(ctypes.c_void_p(start), ctypes.c_size_t(high - start), pages) != 0:
        return None
    return float((numpy.frombuffer(pages, dtype=numpy.uint8) & 1).mean())


@functools.cache
def _mincore():
    try:
        function = ctypes.CDLL(None, use_errno=True).mincore
    except (AttributeError, OSError):
        return None
    function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte))
    function.restype = ctypes.c_int
    return function


def _hash_file(path: Path, digest) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)


def _safe_array_name(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return safe or "array"
