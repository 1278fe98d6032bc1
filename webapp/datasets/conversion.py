"""Reading an uploaded dataset in a child process under a memory limit (design contract 7).

The worker of the ``datasets`` queue (``workers.datasets``) forks a child that sets
``RLIMIT_AS`` to the address space it inherited plus ``DATASET_CONVERSION_MEMORY_BYTES``, reads
the upload with ``engine.data.convert`` under the ``DATASET_MAX_*`` limits (checked from headers
before decoding), and writes the converted store (``engine.data.store``). The child only touches
files: it sends its result (the manifest, or the reason it refused the file) back over a pipe, and
the parent records it through the services. A child that dies (the kernel's OOM killer, a crash in
a decoder) or overruns ``DATASET_CONVERSION_TIMEOUT_SECONDS`` fails the dataset with that reason.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy
from django.conf import settings

from engine.data.limits import LimitExceeded, Limits, describe_bytes
from engine.errors import DataError

log = logging.getLogger(__name__)
PREVIEW_ROWS = 5
RESULT_LIMIT_BYTES = 64 * 1024 * 1024  # the child's answer: schema and preview, never the data
STORE_FOLDER = "store"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def limits_from_settings() -> Limits:
    return Limits(
        max_pixels=int(settings.DATASET_MAX_PIXELS),
        max_array_bytes=int(settings.DATASET_MAX_ARRAY_MB) * 1024 * 1024,
        max_decompressed_bytes=int(settings.DATASET_MAX_DECOMPRESSED_MB) * 1024 * 1024,
        max_archive_members=int(settings.DATASET_MAX_ARCHIVE_MEMBERS),
        max_rows=int(settings.DATASET_MAX_ROWS),
        max_columns=int(settings.DATASET_MAX_COLUMNS),
    )


# The settings behind each engine limit, so that a refusal names what an operator can change.
LIMIT_SETTINGS = {
    "max_pixels": "NETFORGE_DATASET_MAX_PIXELS",
    "max_array_bytes": "NETFORGE_DATASET_MAX_ARRAY_MB",
    "max_decompressed_bytes": "NETFORGE_DATASET_MAX_DECOMPRESSED_MB",
    "max_archive_members": "NETFORGE_DATASET_MAX_ARCHIVE_MEMBERS",
    "max_rows": "NETFORGE_DATASET_MAX_ROWS",
    "max_columns": "NETFORGE_DATASET_MAX_COLUMNS",
}


@dataclasses.dataclass
class ConversionJob:
    """What the child reads and where it writes: paths in the dataset's folder."""

    upload: Path
    file_format: str  # csv | tsv | npz | idx | zip
    options: dict
    store: Path  # the converted store's folder (created)
    labels: Path | None = None
    converted_npz: Path | None = None  # where IDX pairs and zips are also kept as one .npz (downloads)


def convert_in_child(job: ConversionJob) -> dict:
    """The child's result: ``{"manifest", "schema", "preview", "rows"}`` when the store is written,
    or ``{"error", "limit"}`` when the file is refused or the child died.

    The child is a new interpreter (``python -m webapp.datasets.conversion``), not a fork of this
    process: a fork copies only the calling thread, so a worker or a test process with threads
    (gRPC's, a BLAS pool's) could leave a lock held forever in the copy, and Celery's pool processes
    may not start multiprocessing children. Its small address space is also what the memory limit
    is added to. The job goes in on stdin and the answer comes back on stdout, both JSON.
    """
    memory = int(settings.DATASET_CONVERSION_MEMORY_BYTES)
    timeout = float(settings.DATASET_CONVERSION_TIMEOUT_SECONDS)
    request = {"job": _job_to_json(job), "limits": dataclasses.asdict(limits_from_settings()), "memory": memory}
    environment = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=environment, cwd=PROJECT_ROOT)
    try:
        output, errors = child.communicate(json.dumps(request).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return {"error": f"the conversion took longer than the limit NETFORGE_DATASET_CONVERSION_TIMEOUT_SECONDS="
                         f"{timeout:g} and was stopped", "limit": "NETFORGE_DATASET_CONVERSION_TIMEOUT_SECONDS"}
    answer = _answer(output)
    if answer is None:
        code = child.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        log.warning("the conversion of %s %s: %s", job.upload.name, how, errors.decode(errors="replace")[-2000:])
        return {"error": f"the conversion process {how}; the file probably needs more memory than the limit "
                         f"NETFORGE_DATASET_CONVERSION_MEMORY_MB={memory // (1024 * 1024)} allows",
                "limit": "NETFORGE_DATASET_CONVERSION_MEMORY_MB"}
    return answer


def _answer(output: bytes) -> dict | None:
    if not output or len(output) > RESULT_LIMIT_BYTES:
        return None
    try:
        answer = json.loads(output)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _job_to_json(job: ConversionJob) -> dict:
    return {field.name: str(value) if isinstance(value, Path) else value
            for field in dataclasses.fields(job) for value in [getattr(job, field.name)]}


def _job_from_json(raw: dict) -> ConversionJob:
    paths = {"upload", "store", "labels", "converted_npz"}
    return ConversionJob(**{key: Path(value) if key in paths and value is not None else value
                            for key, value in raw.items()})


def main() -> int:
    """The child's entry point: the job on stdin, the answer on stdout (never a traceback there)."""
    request = json.loads(sys.stdin.buffer.read())
    try:
        result = _child_convert(_job_from_json(request["job"]), Limits(**request["limits"]), int(request["memory"]))
    except BaseException as error:  # noqa: BLE001  (whatever happened, the parent gets a reason)
        result = {"error": f"the conversion failed unexpectedly: {type(error).__name__}: {error}"}
    sys.stdout.buffer.write(json.dumps(result).encode())
    sys.stdout.flush()
    return 0


def _address_space_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child_convert(job: ConversionJob, limits: Limits, memory: int) -> dict:
    """In the child: limit the address space, read, write the store; refusals become results."""
    from engine.data.convert import convert_file  # noqa: PLC0415 - only the conversion child needs them
    from engine.data.store import write_store  # noqa: PLC0415
    from webapp.datasets import images  # noqa: PLC0415

    # The decoders' libraries are mapped before the limit, which is then what the data may add to
    # the address space the child inherited (the worker's libraries, its threads' stacks).
    # pyarrow's default allocators reserve address space in large arenas; the system allocator
    # keeps RLIMIT_AS meaning what the data needs.
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    import PIL.Image  # noqa: F401, PLC0415
    import pyarrow.compute  # noqa: PLC0415
    import pyarrow.csv  # noqa: F401, PLC0415

    limit = _address_space_bytes() + memory
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        with tempfile.TemporaryDirectory(prefix="netforge-convert-", dir=job.store.parent) as work:
            dataset = convert_file(job.upload, file_format=job.file_format, options=job.options,
                                   limits=limits, work_folder=work, labels_path=job.labels)
            if job.converted_npz is not None:
                _write_converted_npz(dataset, job.converted_npz)
            feature = images.feature_array_name(dataset.schema())
            if feature is not None and dataset.arrays[feature].dtype.kind == "f":
                # how samples are drawn as images (pixel values scaled by the whole array's range),
                # measured once here rather than over the whole array on every page of samples
                dataset.metadata["value_range"] = list(images.value_range(dataset.arrays[feature]))
            manifest = write_store(dataset, job.store)
            return {"manifest": manifest, "schema": json_ready(dataset.schema()),
                    "preview": json_ready(dataset.preview(PREVIEW_ROWS)), "rows": len(dataset)}
    except LimitExceeded as error:
        setting = LIMIT_SETTINGS.get(error.limit, error.limit)
        return {"error": f"{error} (the setting {setting})", "limit": error.limit, "value": error.value}
    except DataError as error:
        return {"error": str(error)}
    except MemoryError:
        return {"error": f"the file needs more memory than the limit NETFORGE_DATASET_CONVERSION_MEMORY_MB="
                         f"{memory // (1024 * 1024)} ({describe_bytes(memory)}) allows to read it",
                "limit": "NETFORGE_DATASET_CONVERSION_MEMORY_MB", "value": memory}


def _write_converted_npz(dataset, path: Path) -> None:
    """One ``.npz`` of x and y, with y as the original label values (integers where they all are,
    else the class names), so ``engine.data.load`` reads it back to the same classes: what the
    exported training script and downloads use for IDX pairs and zips of images."""
    arrays = {"x": numpy.asarray(dataset.arrays["x"])}
    if "y" in dataset.arrays:
        names = list(dataset.label_names or [])
        try:
            values = numpy.asarray([int(label) for label in names], dtype=numpy.int64)
        except ValueError:
            values = numpy.asarray(names, dtype=str)
        labels = numpy.asarray(dataset.arrays["y"])
        arrays["y"] = values[labels] if len(values) else labels
    numpy.savez(path, **arrays)


def dataset_folder(dataset_id: int) -> str:
    """The storage folder of a dataset's files (relative to MEDIA_ROOT)."""
    return f"datasets/{dataset_id}"


def store_path(dataset_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / dataset_folder(dataset_id) / STORE_FOLDER


def converted_name(upload_name: str) -> str:
    return re.sub(r"(\.gz|\.zip)$", "", upload_name) + ".npz"


def remove_folder(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as error:  # a stray folder is only disk space
        log.warning("could not remove %s: %s", path, error)


def json_ready(value):
    """Schema and preview as plain JSON: NumPy scalars and arrays become numbers and lists,
    non-finite numbers become null."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if hasattr(value, "tolist"):
        return json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
