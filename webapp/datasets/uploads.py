"""Reading an uploaded dataset file with the engine's loaders, to learn its schema before storing it.

Formats: CSV/TSV (a header row; ``target`` names the label column), NumPy ``.npz`` (``x`` and
``y`` arrays by default), IDX (MNIST's format; images, with an optional labels file), and a zip
of images in one folder per class. IDX pairs and zips are converted to one ``.npz`` (x, y), so a
stored dataset is always one file that one engine loader reads.

Images in a zip are decoded with Pillow.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import re
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy

from engine.data import Dataset, load_csv, load_idx, load_npz
from engine.errors import DataError
from webapp.core.exceptions import InvalidInput

FORMATS = ("csv", "tsv", "npz", "idx", "zip")
# Loader options each format accepts from the upload form, with their types.
FORMAT_OPTIONS = {
    "csv": {"target": str, "delimiter": str, "task": str},
    "tsv": {"target": str, "task": str},
    "npz": {"x_key": str, "y_key": str, "task": str},
    "idx": {"flatten": bool},
    "zip": {},
}
STORED_SUFFIXES = {"csv": ".csv", "tsv": ".tsv", "npz": ".npz", "idx": ".idx", "zip": ".zip"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_ZIP_EXPANSION = 20  # a zip may unpack to at most this many times the upload limit


@dataclasses.dataclass
class ParsedUpload:
    dataset: Dataset  # what the engine read
    file_format: str  # how the stored file is read: csv | tsv | npz | idx
    options: dict  # loader options for the stored file
    stored_name: str  # file name to store under
    content: bytes | None  # converted content to store instead of the upload (IDX pairs, zips)


def detect_format(file_name: str) -> str | None:
    name = file_name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".tsv"):
        return "tsv"
    if file_name.lower().endswith(".npz"):
        return "npz"
    if file_name.lower().endswith(".zip"):
        return "zip"
    if "idx" in name or name.endswith("-ubyte"):
        return "idx"
    return None


def safe_file_name(name: str) -> str:
    """The upload's base name with anything but letters, digits, ``. _ -`` replaced."""
    base = PurePosixPath(name.replace("\\", "/")).name or "upload"
    return re.sub(r"[^A-Za-z0-9._-]", "_", base)[:150]


def check_options(file_format: str, raw: dict) -> dict:
    """The loader options of the form, typed; unknown ones for the format are a 400."""
    accepted = FORMAT_OPTIONS[file_format]
    options = {}
    for key, value in raw.items():
        if value is None or value == "":
            continue
        if key not in accepted:
            raise InvalidInput(f"option '{key}' does not apply to {file_format} files; options for {file_format}: "
                               f"{', '.join(accepted) or 'none'}", details={key: ["not an option of this format"]})
        if accepted[key] is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidInput(f"option '{key}' must be true or false, got {value!r}",
                                   details={key: ["not a boolean"]})
            value = value.lower() in ("true", "1")
        options[key] = value
    if file_format == "csv" and "delimiter" in options and len(options["delimiter"]) != 1:
        raise InvalidInput("option 'delimiter' must be one character", details={"delimiter": ["one character"]})
    if "task" in options and options["task"] not in ("classification", "binary", "regression"):
        raise InvalidInput(f"option 'task' must be classification, binary or regression, got {options['task']!r}",
                           details={"task": ["unknown task"]})
    return options


def parse_upload(*, file_name: str, chunks, file_format: str, options: dict, labels_name: str | None = None,
                 labels_chunks=None) -> ParsedUpload:
    """Read the upload (``chunks``: an iterable of bytes) with the engine. ``DataError`` (naming
    the file, line and column) and ``InvalidInput`` say what is wrong; nothing is kept on disk."""
    name = safe_file_name(file_name)
    # The stored name must let engine.data.load (the worker's loader) tell the format again.
    stored_name = name if detect_format(name) == file_format else name + STORED_SUFFIXES[file_format]
    with tempfile.TemporaryDirectory(prefix="netforge-upload-") as folder:
        path = Path(folder) / name
        _write(path, chunks)
        labels_path = None
        if labels_chunks is not None:
            if file_format != "idx":
                raise InvalidInput("a separate labels file is only read for IDX images",
                                   details={"labels": ["IDX only"]})
            labels_path = Path(folder) / ("labels-" + safe_file_name(labels_name or "labels"))
            if labels_path.name == path.name:
                labels_path = labels_path.with_name("labels-" + labels_path.name)
            _write(labels_path, labels_chunks)
        if file_format in ("csv", "tsv"):
            if "target" not in options:
                raise InvalidInput(f"{name}: say which column is the target with the 'target' option "
                                   f"(columns: {', '.join(_header(path, options))})", details={"target": ["required"]})
            loader_options = {"delimiter": "\t", **options} if file_format == "tsv" else options
            return ParsedUpload(load_csv(path, **loader_options), "csv", loader_options, stored_name, None)
        if file_format == "npz":
            if options.get("y_key") in ("none", "null"):  # unlabeled data
                options = {**options, "y_key": None}
            return ParsedUpload(load_npz(path, **options), "npz", options, stored_name, None)
        if file_format == "idx":
            dataset = load_idx(path, labels_path, **options)
            if options.get("flatten"):  # keep the image size, so the rows can still be drawn
                dimensions = idx_dimensions(path)
                if len(dimensions) == 3:
                    dataset.metadata["image_shape"] = [1, *dimensions[1:]]
            if labels_path is None:
                return ParsedUpload(dataset, "idx", options, stored_name, None)
            return _as_npz(dataset, name, task="classification")
        if file_format == "zip":
            return _as_npz(read_image_zip(path), name, task="classification")
    raise InvalidInput(f"unknown format '{file_format}'; expected one of {', '.join(FORMATS)}")


def idx_dimensions(path: Path) -> list[int]:
    """The dimensions in an IDX file's header (gzip-compressed or not), read without its data."""
    with path.open("rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if compressed else path.open("rb")) as handle:
        magic = handle.read(4)
        if len(magic) < 4:
            return []
        header = handle.read(4 * magic[3])
    return [int.from_bytes(header[i:i + 4], "big") for i in range(0, len(header) - 3, 4)]


def _write(path: Path, chunks) -> None:
    with path.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def _header(path: Path, options: dict) -> list[str]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        for row in csv.reader(handle, delimiter=options.get("delimiter", ",")):
            if any(cell.strip() for cell in row):
                return [repr(cell.strip()) for cell in row]
    raise DataError(f"{path.name}: the file is empty; expected a header row naming the columns, then data rows")


def _as_npz(dataset: Dataset, name: str, *, task: str) -> ParsedUpload:
    """One ``.npz`` holding x and y, with y as the class names so that they survive a reload."""
    arrays = {"x": dataset.arrays["x"]}
    options = {"task": task}
    if "y" in dataset.arrays:
        # The original label values (integers where they all are, else text), so that reloading
        # encodes them to the same classes with the same names.
        names = list(dataset.label_names or [])
        try:
            values = numpy.asarray([int(label) for label in names], dtype=numpy.int64)
        except ValueError:
            values = numpy.asarray(names, dtype=str)
        labels = dataset.arrays["y"]
        arrays["y"] = values[labels] if len(values) else labels
    else:
        options["y_key"] = None
    buffer = io.BytesIO()
    numpy.savez_compressed(buffer, **arrays)
    stored_name = re.sub(r"(\.gz|\.zip)$", "", name) + ".npz"
    with tempfile.TemporaryDirectory(prefix="netforge-upload-") as folder:
        path = Path(folder) / stored_name
        path.write_bytes(buffer.getvalue())
        reloaded = load_npz(path, **options)
    reloaded.description = dataset.description
    if "image_shape" in dataset.metadata:
        reloaded.metadata["image_shape"] = dataset.metadata["image_shape"]
    return ParsedUpload(reloaded, "npz", options, stored_name, buffer.getvalue())


def read_image_zip(path: Path) -> Dataset:
    """Images in one folder per class (``cats/1.png``, ``dogs/2.png``; one shared top folder is
    fine) as x (N, C, H, W) float32 pixel values 0-255 and y the class of each. All images must
    have the same size; grayscale images give C=1, any colour image makes all of them RGB (C=3)."""
    from PIL import Image  # noqa: PLC0415 - only zip uploads need it

    from webapp.datasets.services import max_upload_bytes  # noqa: PLC0415

    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise DataError(f"{path.name}: not a readable zip archive ({error})") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(IMAGE_SUFFIXES)
                   and not PurePosixPath(m.filename).name.startswith(".") and "__MACOSX" not in m.filename]
        if not members:
            raise DataError(f"{path.name}: no images found; expected one folder per class holding "
                            f"{', '.join(IMAGE_SUFFIXES)} files")
        if sum(m.file_size for m in members) > MAX_ZIP_EXPANSION * max_upload_bytes():
            raise DataError(f"{path.name}: the images unpack to more than {MAX_ZIP_EXPANSION} times the upload limit")
        depth = {len(PurePosixPath(m.filename).parts) for m in members}
        if min(depth) < 2:
            loose = next(m.filename for m in members if len(PurePosixPath(m.filename).parts) < 2)
            raise DataError(f"{path.name}: image '{loose}' is not in a class folder; put each class's images in a "
                            "folder named after the class")
        images, labels, size, modes = [], [], None, set()
        for member in sorted(members, key=lambda m: m.filename):
            try:
                with archive.open(member) as handle:
                    image = Image.open(io.BytesIO(handle.read()))
                    image.load()
            except Exception as error:  # Pillow raises many kinds for damaged images
                raise DataError(f"{path.name}: '{member.filename}' is not a readable image ({error})") from None
            if size is None:
                size = image.size
            elif image.size != size:
                raise DataError(f"{path.name}: '{member.filename}' is {image.size[0]}x{image.size[1]} pixels, but the "
                                f"first image is {size[0]}x{size[1]}; all images must have the same size")
            modes.add("L" if image.mode in ("1", "L", "I;16", "I", "F") else "RGB")
            images.append(image)
            labels.append(PurePosixPath(member.filename).parts[-2])
        mode = "RGB" if "RGB" in modes else "L"
        pixels = numpy.stack([numpy.asarray(image.convert(mode), dtype=numpy.float32) for image in images])
        x = pixels[:, None, :, :] if mode == "L" else pixels.transpose(0, 3, 1, 2)
    from engine.data import from_arrays  # noqa: PLC0415

    return from_arrays(x, numpy.asarray(labels), task="classification", name=path.stem, source=path.name,
                       description=f"{path.name}: {len(labels)} images of {size[0]}x{size[1]} in "
                                   f"{len(set(labels))} classes")
