"""Dataset files: CSV with a header row, NumPy ``.npz`` archives, and MNIST's IDX format.

Every malformed file raises ``DataError`` naming the file and the line, column, key or field
that is wrong, with what was expected and what was found.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zipfile
import zlib
from pathlib import Path

import numpy

from engine.data import builtin
from engine.data.dataset import Dataset, from_arrays
from engine.errors import DataError

# IDX type codes (third byte of the magic number) and their big-endian element types.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float",
                  0x0E: "double"}
_GZIP_MAGIC = b"\x1f\x8b"


# -- CSV ---------------------------------------------------------------------------------------------------

def load_csv(path: str | os.PathLike, *, target: str, delimiter: str = ",", task: str | None = None) -> Dataset:
    """A CSV file with a header row: every column but ``target`` is a numeric feature.

    The target may hold numbers or text (class names). Without ``task``, an integer or text
    target with few distinct values means classification, anything else regression.
    """
    path = Path(path)
    name = path.name
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = None
    rows, lines = [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines
        if header is None:
            header = [cell.strip() for cell in row]
            _check_header(name, header, reader.line_num)
            continue
        if len(row) != len(header):
            raise DataError(f"{name} line {reader.line_num}: expected {len(header)} values (one per header column), "
                            f"found {len(row)}")
        rows.append([cell.strip() for cell in row])
        lines.append(reader.line_num)
    if header is None:
        raise DataError(f"{name}: the file is empty; expected a header row naming the columns, then data rows")
    if target not in header:
        raise DataError(f"{name}: no column named '{target}' for the target; the columns are "
                        f"{', '.join(repr(c) for c in header)}")
    if not rows:
        raise DataError(f"{name}: the file has a header but no data rows")
    if len(header) < 2:
        raise DataError(f"{name}: the only column is the target '{target}'; there are no feature columns")
    cells = numpy.array(rows, dtype=str)
    target_index = header.index(target)
    feature_indices = [i for i in range(len(header)) if i != target_index]
    feature_names = [header[i] for i in feature_indices]
    x = _numeric_columns(cells[:, feature_indices], feature_names, lines, name)
    y = _target_column(cells[:, target_index], target, lines, name, task)
    return from_arrays(x, y, task=task, name=path.stem, feature_names=feature_names, source=name,
                       description=f"{name}: {len(rows)} rows, {len(feature_names)} features, target '{target}'")


def _check_header(name: str, header: list[str], line: int) -> None:
    for column, title in enumerate(header, start=1):
        if not title:
            raise DataError(f"{name} line {line}: header column {column} has no name")
    seen = set()
    for title in header:
        if title in seen:
            raise DataError(f"{name} line {line}: the header names column '{title}' twice")
        seen.add(title)


def _numeric_columns(cells: numpy.ndarray, names: list[str], lines: list[int], file: str) -> numpy.ndarray:
    """Float64 values of a block of text cells; the first bad cell (by row, then column) is reported."""
    try:
        values = cells.astype(numpy.float64)
    except ValueError:
        values = None
    if values is not None and numpy.isfinite(values).all():
        return values
    # Cell by cell, slower but precise about where the problem is.
    return numpy.array([[_parse_number(cell, file, line, title) for cell, title in zip(row, names)]
                        for row, line in zip(cells, lines)], dtype=numpy.float64).reshape(cells.shape)


def _parse_number(cell: str, file: str, line: int, column: str) -> float:
    cell = str(cell)  # a plain str, also for NumPy's text scalars, so messages quote it plainly
    where = f"{file} line {line}, column '{column}'"
    if cell == "":
        raise DataError(f"{where}: the value is empty; every feature needs a number")
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{where}: {cell!r} is not a number") from None
    if not numpy.isfinite(value):
        raise DataError(f"{where}: {cell!r} is not a finite number")
    return value


def _target_column(cells: numpy.ndarray, column: str, lines: list[int], file: str, task: str | None) -> numpy.ndarray:
    """Integers if every cell is one, else floats if every cell is a number, else the text itself."""
    for line, cell in zip(lines, cells):
        if cell == "":
            raise DataError(f"{file} line {line}, column '{column}': the target value is empty")
    try:
        return numpy.array([int(cell) for cell in cells], dtype=numpy.int64)
    except ValueError:
        pass
    try:
        values = cells.astype(numpy.float64)
    except ValueError:
        values = None
    if values is not None and numpy.isfinite(values).all():
        return values
    if task == "regression" or values is not None:  # numbers expected: report the first that is not one
        return numpy.array([_parse_number(cell, file, line, column) for line, cell in zip(lines, cells)])
    return cells


# -- NPZ ---------------------------------------------------------------------------------------------------

def load_npz(path: str | os.PathLike, *, x_key: str = "x", y_key: str | None = "y", task: str | None = None) -> Dataset:
    """Features and target from a ``.npz`` archive (``y_key=None`` for unlabeled data).

    Arrays are read with ``allow_pickle=False``: an archive can never run code.
    """
    path = Path(path)
    name = path.name
    if not _read_bytes(path, size_only=True):
        raise DataError(f"{name}: the file is empty; expected a NumPy .npz archive")
    try:
        archive = numpy.load(path, allow_pickle=False)
        if not isinstance(archive, numpy.lib.npyio.NpzFile):
            raise DataError(f"{name}: a single .npy array, not a .npz archive of named arrays")
        with archive:
            keys = list(archive.keys())
            wanted = [x_key] + ([y_key] if y_key is not None else [])
            for key in wanted:
                if key not in keys:
                    raise DataError(f"{name}: no array named '{key}'; the archive holds "
                                    f"{', '.join(repr(k) for k in keys) or 'no arrays'}")
            arrays = {}
            for key in wanted:
                try:
                    arrays[key] = archive[key]
                except ValueError as error:  # object arrays refused without pickle, or a damaged member
                    raise DataError(f"{name}: array '{key}' cannot be read safely: {error}") from error
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{name}: not a readable NumPy .npz archive ({error})") from error
    x = arrays[x_key]
    y = arrays.get(y_key) if y_key is not None else None
    if x.ndim == 0:
        raise DataError(f"{name}: array '{x_key}' is a scalar; expected one row per sample")
    if y is not None and (y.ndim == 0 or len(y) != len(x)):
        found = "is a scalar" if y.ndim == 0 else f"has {len(y)} rows"
        raise DataError(f"{name}: array '{x_key}' has {len(x)} rows but '{y_key}' {found}; they must match")
    return from_arrays(x, y, task=task, name=path.stem, source=name,
                       description=f"{name}: arrays '{x_key}'" + (f" and '{y_key}'" if y is not None else ""))


# -- IDX (MNIST) -------------------------------------------------------------------------------------------

def read_idx(path: str | os.PathLike) -> numpy.ndarray:
    """The array stored in an IDX file (gzip-compressed or not), in native byte order."""
    path = Path(path)
    name = path.name
    data = _read_bytes(path)
    if not data:
        raise DataError(f"{name}: the file is empty; expected an IDX file (magic number 0x00000801 to 0x00000E04)")
    if len(data) < 4:
        raise DataError(f"{name}: truncated: expected a 4-byte magic number, found {len(data)} byte(s)")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or type_code not in IDX_TYPES or ndim == 0:
        raise DataError(f"{name}: bad magic number 0x{magic:08X}; expected 0x0000TTDD with TT a type code "
                        f"({', '.join(f'0x{c:02X}' for c in IDX_TYPES)}) and DD the number of dimensions "
                        "(e.g. 0x00000803 for images, 0x00000801 for labels)")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{name}: truncated header: expected {ndim} dimension sizes ({header_size} bytes), "
                        f"found {len(data)} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = numpy.dtype(IDX_TYPES[type_code])
    expected = int(numpy.prod(shape, dtype=numpy.int64)) * dtype.itemsize
    found = len(data) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise DataError(f"{name}: {problem}: dimensions {list(shape)} of {IDX_TYPE_NAMES[type_code]} need "
                        f"{expected} bytes of data, found {found}")
    if shape[0] == 0:
        raise DataError(f"{name}: holds no items (first dimension 0)")
    return numpy.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape).astype(dtype.newbyteorder("="))


def load_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None, *,
             flatten: bool = False) -> Dataset:
    """MNIST-style IDX images (and labels): x float32 of shape (N, 1, H, W) for 3-D image files,
    or (N, H*W) with ``flatten=True``; y int64 class labels. Pixel values are not rescaled."""
    images_name = Path(images_path).name
    images = read_idx(images_path)
    if images.ndim < 2:
        raise DataError(f"{images_name}: expected images with at least 2 dimensions (count, ...), found "
                        f"{images.ndim} dimension(s) {list(images.shape)}; is this a labels file?")
    if flatten:
        x = images.reshape(len(images), -1)
    elif images.ndim == 3:
        x = images[:, None, :, :]  # one channel, for convolutional graphs
    else:
        x = images
    y = None
    description = images_name
    if labels_path is not None:
        labels_name = Path(labels_path).name
        labels = read_idx(labels_path)
        if labels.ndim != 1:
            raise DataError(f"{labels_name}: expected labels with 1 dimension (count), found {labels.ndim} "
                            f"dimensions {list(labels.shape)}")
        if len(labels) != len(images):
            raise DataError(f"{labels_name}: dimension mismatch: expected {len(images)} labels (one per image in "
                            f"{images_name}), found {len(labels)}")
        y = labels
        description += f" with labels {labels_name}"
    dataset = from_arrays(x.astype(numpy.float32), y, task="classification", name=_idx_stem(images_name),
                          description=description, source=images_name)
    return dataset


def _idx_stem(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def _labels_beside(images_path: Path) -> Path | None:
    """MNIST's naming: 'train-images-idx3-ubyte[.gz]' sits beside 'train-labels-idx1-ubyte[.gz]'."""
    if "images-idx3" not in images_path.name:
        return None
    stem = images_path.name.replace("images-idx3", "labels-idx1")
    for candidate in (stem, _idx_stem(stem), _idx_stem(stem) + ".gz"):
        if (images_path.parent / candidate).is_file():
            return images_path.parent / candidate
    return None


# -- dispatch ------------------------------------------------------------------------------------------------

def load(path_or_name: str | os.PathLike, **options) -> Dataset:
    """A dataset from a file (by suffix: .csv, .tsv, .npz, IDX with or without .gz) or a built-in name.

    ``options`` go to the loader: ``target`` for CSV, ``seed`` and generator options for built-ins
    (a file ignores ``seed``). IDX images named like MNIST's pick up their labels file beside them.
    """
    text = os.fspath(path_or_name)
    if not isinstance(path_or_name, os.PathLike) and text in builtin.names():
        return builtin.load_builtin(text, **options)
    path = Path(text)
    if not path.exists():
        if path.suffix or os.sep in text:
            raise DataError(f"{text}: no such file")
        raise DataError(f"unknown dataset '{text}': not a file, and not a built-in dataset "
                        f"({', '.join(builtin.names())})")
    options.pop("seed", None)  # files hold fixed data
    kind = _file_kind(path)
    if kind == "csv":
        if "target" not in options:
            raise DataError(f"{path.name}: say which column is the target with target='<column>' "
                            f"(columns: {', '.join(repr(c) for c in _csv_header(path, options))})")
        return load_csv(path, **options)
    if kind == "tsv":
        return load_csv(path, **{"delimiter": "\t", **options})
    if kind == "npz":
        return load_npz(path, **options)
    if kind == "idx":
        options.setdefault("labels_path", _labels_beside(path))
        return load_idx(path, **options)
    raise DataError(f"{path.name}: unknown file type; expected .csv, .tsv, .npz or an IDX file "
                    "(e.g. train-images-idx3-ubyte, optionally .gz)")


def _file_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".npz"):
        return "npz"
    name = name.removesuffix(".gz")  # CSV and IDX files may be gzip-compressed
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".tsv"):
        return "tsv"
    if "idx" in name or name.endswith("-ubyte"):
        return "idx"
    return None


def _csv_header(path: Path, options: dict) -> list[str]:
    text = _read_text(path)
    for row in csv.reader(io.StringIO(text, newline=""), delimiter=options.get("delimiter", ",")):
        if any(cell.strip() for cell in row):
            return [cell.strip() for cell in row]
    raise DataError(f"{path.name}: the file is empty; expected a header row naming the columns, then data rows")


def _read_text(path: Path) -> str:
    return _read_bytes(path).decode("utf-8-sig", errors="replace")


def _read_bytes(path: Path, *, size_only: bool = False):
    """The file's bytes, decompressed when they are gzip; missing or unreadable files are DataErrors."""
    try:
        if size_only:
            return path.stat().st_size
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: a folder, not a dataset file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from error
    if data[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path.name}: a damaged gzip file ({error})") from error
    return data
