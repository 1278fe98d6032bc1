"""Reading untrusted dataset files under ``Limits``: every size is checked from a header, or
counted as it streams, before it is allocated. What ``write_store`` then keeps.

``convert_file`` reads CSV/TSV (optionally gzip) with pyarrow, NPZ, IDX (optionally gzip, with a
labels file) and zips of images in class folders. Malformed files raise ``DataError`` naming the
file and the place; files over a limit raise ``LimitExceeded`` naming the limit and the value.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path, PurePosixPath

import numpy

from engine.data.dataset import Dataset, from_arrays
from engine.data.limits import (
    LimitExceeded,
    Limits,
    check_archive_members,
    check_array_bytes,
    check_count,
    check_image_pixels,
    check_npz_headers,
    gunzip_capped,
    is_gzip,
    open_maybe_gzip,
    read_member_capped,
)
from engine.data.loaders import IDX_TYPES, load_csv, load_idx, load_npz, read_idx
from engine.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FLOAT32_BYTES = 4
GREY_MODES = ("1", "L", "I;16", "I", "F")
LISTED_COLUMNS = 50  # columns named in a message about a missing target
CSV_BLOCK_BYTES = 8 << 20  # pyarrow reads CSV in blocks of this size (its unit of parallel parsing)


def convert_file(path: str | os.PathLike, *, file_format: str, options: dict, limits: Limits,
                 work_folder: str | os.PathLike, labels_path: str | os.PathLike | None = None) -> Dataset:
    """The dataset in ``path`` (format ``csv``, ``tsv``, ``npz``, ``idx`` or ``zip``), read under
    ``limits``; ``work_folder`` takes decompressed copies."""
    path, work = Path(path), Path(work_folder)
    if file_format in ("csv", "tsv"):
        delimiter = "\t" if file_format == "tsv" else options.get("delimiter", ",")
        return read_csv_checked(path, target=options.get("target"), delimiter=delimiter, task=options.get("task"),
                                limits=limits, work_folder=work)
    if file_format == "npz":
        check_npz_headers(path, limits)
        return load_npz(path, **{key: options[key] for key in ("x_key", "y_key", "task") if key in options})
    if file_format == "idx":
        images = _idx_checked(path, limits, work)
        labels = _idx_checked(Path(labels_path), limits, work) if labels_path is not None else None
        dataset = load_idx(images, labels, flatten=bool(options.get("flatten")))
        dataset.name = path.name.removesuffix(".gz")
        if options.get("flatten"):  # keep the image size, so the rows can still be drawn
            shape = read_idx(images).shape
            if len(shape) == 3:
                dataset.metadata["image_shape"] = [1, *shape[1:]]
        return dataset
    if file_format == "zip":
        return read_image_zip(path, limits)
    raise DataError(f"{path.name}: unknown format '{file_format}'; expected csv, tsv, npz, idx or zip")


# -- CSV ---------------------------------------------------------------------------------------------------

def read_csv_checked(path: Path, *, target: str | None, delimiter: str, task: str | None, limits: Limits,
                     work_folder: Path) -> Dataset:
    """A CSV/TSV file read by pyarrow (multi-threaded, columnar): numeric features, a target of
    numbers or class names. Anything pyarrow reads differently from the rules of
    ``engine.data.load_csv`` (empty cells, text in a feature column, non-finite values) is read
    again by that loader, whose error names the line and column."""
    name = path.name
    if is_gzip(path):
        path = gunzip_capped(path, work_folder / name.removesuffix(".gz"), limits)
    header = _csv_header(path, delimiter, name)
    check_count(name, "columns", len(header), "max_columns", limits.max_columns)
    if not target:
        listed = ", ".join(repr(column) for column in header[:LISTED_COLUMNS])
        more = f", ... ({len(header)} columns)" if len(header) > LISTED_COLUMNS else ""
        raise DataError(f"{name}: say which column is the target with the 'target' option (columns: {listed}{more})")
    if target not in header:
        listed = ", ".join(repr(column) for column in header[:LISTED_COLUMNS])
        raise DataError(f"{name}: no column named '{target}' for the target; the columns are {listed}"
                        + (f", ... ({len(header)} columns)" if len(header) > LISTED_COLUMNS else ""))
    fast = _read_csv_with_pyarrow(path, header=header, target=target, delimiter=delimiter, task=task,
                                  limits=limits, shown_name=name)
    if fast is not None:
        return fast
    # The slow, precise reader: it raises the DataError that says where the file is wrong (or, if
    # pyarrow only disagreed on a detail, reads the file).
    dataset = load_csv(path, target=target, delimiter=delimiter, task=task)
    check_count(name, "rows", len(dataset), "max_rows", limits.max_rows)
    dataset.name = Path(name).stem.removesuffix(".csv").removesuffix(".tsv")
    return dataset


def _csv_header(path: Path, delimiter: str, name: str) -> list[str]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        for row in csv.reader(handle, delimiter=delimiter):
            if any(cell.strip() for cell in row):
                return [cell.strip() for cell in row]
    raise DataError(f"{name}: the file is empty; expected a header row naming the columns, then data rows")


def _read_csv_with_pyarrow(path: Path, *, header: list[str], target: str, delimiter: str, task: str | None,
                           limits: Limits, shown_name: str) -> Dataset | None:
    """The dataset, or None where the precise reader must decide (a malformed or unusual file).

    The file streams in blocks (``CSV_BLOCK_BYTES``), each turned into float32 features at once,
    so memory holds the result and one block, not the text and a table of it."""
    import pyarrow  # noqa: PLC0415 - only conversions need it
    import pyarrow.csv  # noqa: PLC0415

    if len(set(header)) != len(header) or not all(header) or len(header) < 2:
        return None
    features = [column for column in header if column != target]
    column_types = {column: pyarrow.float64() for column in features}
    column_types[target] = pyarrow.string()
    blocks, labels, rows = [], [], 0
    try:
        reader = pyarrow.csv.open_csv(
            path,
            read_options=pyarrow.csv.ReadOptions(column_names=header, skip_rows=_header_line_count(path, delimiter),
                                                 block_size=CSV_BLOCK_BYTES),
            parse_options=pyarrow.csv.ParseOptions(delimiter=delimiter),
            convert_options=pyarrow.csv.ConvertOptions(column_types=column_types, strings_can_be_null=False),
        )
        for batch in reader:
            rows += batch.num_rows
            check_count(shown_name, "rows", rows, "max_rows", limits.max_rows)
            block = numpy.empty((batch.num_rows, len(features)), dtype=numpy.float32)
            for index, column in enumerate(features):
                values = batch.column(column)
                if values.null_count:
                    return None
                block[:, index] = values.to_numpy()
            if not numpy.isfinite(block).all():
                return None
            blocks.append(block)
            labels.append(batch.column(target))
    except (pyarrow.ArrowInvalid, UnicodeDecodeError):
        return None
    if rows == 0:
        return None
    x = blocks[0] if len(blocks) == 1 else numpy.concatenate(blocks)
    del blocks
    y = _typed_target(pyarrow.chunked_array(labels, type=pyarrow.string()), task)
    if y is None:
        return None
    stem = Path(shown_name).name.removesuffix(".gz")
    return from_arrays(x, y, task=task, name=Path(stem).stem, feature_names=features, source=shown_name,
                       description=f"{stem}: {rows} rows, {len(features)} features, target '{target}'")


def _header_line_count(path: Path, delimiter: str) -> int:
    """Lines up to and including the header (blank lines before it are skipped)."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        for row in reader:
            if any(cell.strip() for cell in row):
                return reader.line_num
    return 0


def _typed_target(labels, task: str | None):
    """Integers where every value is one, else finite floats, else the text (the rules of
    ``engine.data.load_csv``); None where only the precise reader can say what is wrong."""
    import pyarrow  # noqa: PLC0415 - only conversions need it
    import pyarrow.compute  # noqa: PLC0415

    trimmed = pyarrow.compute.utf8_trim_whitespace(labels)
    for target_type in (pyarrow.int64(), pyarrow.float64()):
        try:
            values = trimmed.cast(target_type).to_numpy()
        except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError):
            continue
        if target_type == pyarrow.float64() and not numpy.isfinite(values).all():
            return None
        return values
    if task == "regression":
        return None
    return numpy.asarray(trimmed.to_numpy(zero_copy_only=False), dtype=str)


# -- IDX ---------------------------------------------------------------------------------------------------

def _idx_checked(path: Path, limits: Limits, work_folder: Path) -> Path:
    """An IDX file's declared dimensions checked from its header (as the float32 array it becomes)
    before its data is read; a gzip file is then expanded under the cap. Returns a plain file."""
    with open_maybe_gzip(path) as handle:
        try:
            magic = handle.read(4)
            dimensions = handle.read(4 * magic[3]) if len(magic) == 4 else b""
        except (OSError, EOFError) as error:
            raise DataError(f"{path.name}: a damaged gzip file ({error})") from None
    if len(magic) == 4 and magic[2] in IDX_TYPES and len(dimensions) == 4 * magic[3]:
        shape = [int.from_bytes(dimensions[i:i + 4], "big") for i in range(0, len(dimensions), 4)]
        itemsize = max(numpy.dtype(IDX_TYPES[magic[2]]).itemsize, FLOAT32_BYTES)
        check_array_bytes(path.name, shape, itemsize, limits)
    if is_gzip(path):
        return gunzip_capped(path, work_folder / ("plain-" + path.name.removesuffix(".gz")), limits)
    return path  # read_idx reports a bad header itself


# -- zip of images -----------------------------------------------------------------------------------------

def read_image_zip(path: Path, limits: Limits) -> Dataset:
    """Images in one folder per class (``cats/1.png``, ``dogs/2.png``; one shared top folder is
    fine) as x (N, C, H, W) float32 pixel values 0-255 and y the class of each. All images must
    have the same size; grayscale images give C=1, any colour image makes all of them RGB (C=3).

    Each image's size is read from its header and checked against ``max_pixels`` before it is
    decoded, the whole array against ``max_array_bytes``, and the bytes read from the archive
    against ``max_decompressed_bytes``."""
    from PIL import Image  # noqa: PLC0415 - only image archives need it

    Image.MAX_IMAGE_PIXELS = limits.max_pixels  # Pillow's own decompression-bomb check, as a second line
    name = path.name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{name}: not a readable zip archive ({error})") from None
    with archive:
        members = [m for m in check_archive_members(archive, name, limits)
                   if not m.is_dir() and m.filename.lower().endswith(IMAGE_SUFFIXES)
                   and not PurePosixPath(m.filename).name.startswith(".") and "__MACOSX" not in m.filename]
        if not members:
            raise DataError(f"{name}: no images found; expected one folder per class holding "
                            f"{', '.join(IMAGE_SUFFIXES)} files")
        loose = next((m.filename for m in members if len(PurePosixPath(m.filename).parts) < 2), None)
        if loose is not None:
            raise DataError(f"{name}: image '{loose}' is not in a class folder; put each class's images in a "
                            "folder named after the class")
        members.sort(key=lambda m: m.filename)
        budget = [limits.max_decompressed_bytes]
        pixels, labels, size, colour = None, [], None, False
        for index, member in enumerate(members):
            data = read_member_capped(archive, member, budget, limits, name)
            try:
                image = Image.open(io.BytesIO(data))
            except Image.DecompressionBombError as error:  # over twice the limit: Pillow's own check
                raise LimitExceeded(f"{name}: '{member.filename}': {error}; the limit is "
                                    f"max_pixels={limits.max_pixels}",
                                    limit="max_pixels", value=limits.max_pixels * 2 + 1,
                                    maximum=limits.max_pixels) from None
            except Exception as error:  # noqa: BLE001 - Pillow raises many kinds for damaged images
                raise DataError(f"{name}: '{member.filename}' is not a readable image ({error})") from None
            check_image_pixels(f"{name}: '{member.filename}'", image.size, limits)  # from the header
            if size is None:
                size = image.size
                # RGB at most: three channels of float32 per pixel, for every image.
                check_array_bytes(f"{name}: {len(members)} images of {size[0]}x{size[1]}",
                                  (len(members), 3, size[1], size[0]), FLOAT32_BYTES, limits)
                pixels = numpy.empty((len(members), size[1], size[0], 3), dtype=numpy.uint8)
            elif image.size != size:
                raise DataError(f"{name}: '{member.filename}' is {image.size[0]}x{image.size[1]} pixels, but the "
                                f"first image is {size[0]}x{size[1]}; all images must have the same size")
            try:
                if image.mode in GREY_MODES:
                    pixels[index] = numpy.asarray(image.convert("L"))[:, :, None]
                else:
                    pixels[index] = numpy.asarray(image.convert("RGB"))
                    colour = True
            except Exception as error:  # noqa: BLE001
                raise DataError(f"{name}: '{member.filename}' is not a readable image ({error})") from None
            labels.append(PurePosixPath(member.filename).parts[-2])
    if colour:
        x = pixels.transpose(0, 3, 1, 2).astype(numpy.float32)
    else:
        x = pixels[:, None, :, :, 0].astype(numpy.float32)
    del pixels
    return from_arrays(x, numpy.asarray(labels), task="classification", name=path.stem, source=name,
                       description=f"{name}: {len(labels)} images of {size[0]}x{size[1]} in "
                                   f"{len(set(labels))} classes")
