"""Limits on untrusted data files, checked from headers before anything is decoded.

A small file can declare a huge one: a PNG header says 8000x8000, a gzip stream expands a
thousandfold, an ``.npy`` header declares a 1 GiB array whose deflated bytes are a few KB. Each
reader here learns the size from the header (or counts decompressed bytes as they stream) and
raises ``LimitExceeded``, naming the limit and the value, before allocating for it.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy

from engine.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one uploaded dataset may hold once decoded. Every field is a setting of the web app."""

    max_pixels: int = 4096 * 4096  # pixels of one image (width x height)
    max_array_bytes: int = 1 << 30  # one decoded array (shape x itemsize)
    max_decompressed_bytes: int = 1 << 30  # a gzip stream or the members of a zip, once expanded
    max_archive_members: int = 200_000  # files in a zip
    max_rows: int = 10_000_000
    max_columns: int = 20_000


class LimitExceeded(DataError):
    """A file declares or expands to more than a limit allows; ``limit`` is the limit's name."""

    def __init__(self, message: str, *, limit: str, value: int, maximum: int):
        super().__init__(message)
        self.limit, self.value, self.maximum = limit, value, maximum


def describe_bytes(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count} bytes" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_array_bytes(where: str, shape, itemsize: int, limits: Limits) -> int:
    """The bytes an array of ``shape`` holds; ``LimitExceeded`` over ``max_array_bytes``."""
    size = math.prod(int(n) for n in shape) * int(itemsize)
    if size > limits.max_array_bytes:
        raise LimitExceeded(
            f"{where}: declares an array of shape {list(shape)} ({describe_bytes(size)}), over the limit "
            f"max_array_bytes={limits.max_array_bytes} ({describe_bytes(limits.max_array_bytes)})",
            limit="max_array_bytes", value=size, maximum=limits.max_array_bytes)
    return size


def _too_much_decompressed(where: str, limits: Limits) -> LimitExceeded:
    return LimitExceeded(
        f"{where}: expands to more than the limit max_decompressed_bytes={limits.max_decompressed_bytes} "
        f"({describe_bytes(limits.max_decompressed_bytes)})",
        limit="max_decompressed_bytes", value=limits.max_decompressed_bytes + 1, maximum=limits.max_decompressed_bytes)


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def gunzip_capped(source: Path, target: Path, limits: Limits) -> Path:
    """Decompress ``source`` into ``target`` in chunks, stopping (``LimitExceeded``) as soon as the
    output passes ``max_decompressed_bytes``; concatenated gzip members are read too."""
    written = 0
    in_member = False
    decompressor = zlib.decompressobj(wbits=31)
    pending = b""
    try:
        with source.open("rb") as compressed, target.open("wb") as output:
            while True:
                if not pending:
                    pending = compressed.read(CHUNK_BYTES)
                if not pending and not in_member:
                    break
                # max_length bounds what one call returns, so a small chunk cannot expand all at once.
                chunk = decompressor.decompress(pending, CHUNK_BYTES)
                in_member = True
                if not pending and not chunk:  # the file ended inside a member
                    raise DataError(f"{source.name}: a truncated gzip file (the stream ends early)")
                pending = decompressor.unconsumed_tail
                written += len(chunk)
                if written > limits.max_decompressed_bytes:
                    raise _too_much_decompressed(source.name, limits)
                output.write(chunk)
                if decompressor.eof:
                    pending = decompressor.unused_data  # what follows this member (the tail is inside it)
                    decompressor = zlib.decompressobj(wbits=31)
                    in_member = False
                    if not pending.strip(b"\x00"):
                        pending = b""
    except zlib.error as error:
        raise DataError(f"{source.name}: a damaged gzip file ({error})") from error
    return target


def read_member_capped(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: list[int], limits: Limits,
                       where: str) -> bytes:
    """A zip member's bytes, counted as they stream against the archive's remaining ``budget``
    (a one-item list), never trusting the member's declared size."""
    pieces = []
    with archive.open(member) as handle:
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if not chunk:
                break
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise _too_much_decompressed(where, limits)
            pieces.append(chunk)
    return b"".join(pieces)


def check_archive_members(archive: zipfile.ZipFile, where: str, limits: Limits) -> list[zipfile.ZipInfo]:
    """The archive's entries after checking their count and that no name escapes the archive
    (absolute paths, ``..``, drive letters) or is a link."""
    members = archive.infolist()
    if len(members) > limits.max_archive_members:
        raise LimitExceeded(
            f"{where}: holds {len(members)} files, over the limit max_archive_members={limits.max_archive_members}",
            limit="max_archive_members", value=len(members), maximum=limits.max_archive_members)
    for member in members:
        name = member.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            raise DataError(f"{where}: member '{member.filename}' has an unsafe path (absolute, or reaching outside "
                            "the archive with '..'); nothing was extracted")
        if (member.external_attr >> 16) & 0o170000 == 0o120000:
            raise DataError(f"{where}: member '{member.filename}' is a symbolic link; links are not accepted")
    declared = sum(member.file_size for member in members)
    if declared > limits.max_decompressed_bytes:
        raise LimitExceeded(
            f"{where}: its files declare {describe_bytes(declared)} uncompressed, over the limit "
            f"max_decompressed_bytes={limits.max_decompressed_bytes} ({describe_bytes(limits.max_decompressed_bytes)})",
            limit="max_decompressed_bytes", value=declared, maximum=limits.max_decompressed_bytes)
    return members


def check_npz_headers(path: Path, limits: Limits) -> None:
    """Every ``.npy`` member's declared shape x itemsize, from its header, before any is read."""
    where = path.name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{where}: not a readable NumPy .npz archive ({error})") from None
    with archive:
        for member in check_archive_members(archive, where, limits):
            if not member.filename.endswith(".npy"):
                continue
            try:
                with archive.open(member) as handle:
                    version = numpy.lib.format.read_magic(handle)
                    if version == (1, 0):
                        shape, _, dtype = numpy.lib.format.read_array_header_1_0(handle)
                    else:
                        shape, _, dtype = numpy.lib.format.read_array_header_2_0(handle)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
                raise DataError(f"{where}: member '{member.filename}' is not a readable .npy array ({error})") from None
            check_array_bytes(f"{where}: array '{member.filename.removesuffix('.npy')}'", shape, dtype.itemsize,
                              limits)


def check_image_pixels(where: str, size: tuple[int, int], limits: Limits) -> None:
    pixels = int(size[0]) * int(size[1])
    if pixels > limits.max_pixels:
        raise LimitExceeded(
            f"{where}: an image of {size[0]}x{size[1]} pixels ({pixels}), over the limit "
            f"max_pixels={limits.max_pixels}",
            limit="max_pixels", value=pixels, maximum=limits.max_pixels)


def check_count(where: str, what: str, count: int, limit_name: str, maximum: int) -> None:
    if count > maximum:
        raise LimitExceeded(f"{where}: {count} {what}, over the limit {limit_name}={maximum}",
                            limit=limit_name, value=count, maximum=maximum)


def open_maybe_gzip(path: Path):
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")
