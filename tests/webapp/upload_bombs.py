"""Small files that declare or expand to large data: the decompression bombs of issue 13, made in
the tests (never committed), each sized by its caller so the tests stay fast while a limit is
what refuses them."""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy

ZERO_CHUNK = bytes(1 << 20)


def png_of(width: int, height: int) -> bytes:
    """A black grayscale PNG: a few KB for any size (its rows compress to almost nothing)."""
    from PIL import Image  # noqa: PLC0415

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_of_huge_pngs(*, count: int = 4, side: int = 8000) -> bytes:
    """A zip of ``count`` ``side`` x ``side`` PNGs in two class folders."""
    png = png_of(side, side)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(count):
            archive.writestr(f"bombs/{'ab'[index % 2]}/{index}.png", png)
    return buffer.getvalue()


def gzip_of_zeros(prefix: bytes, zero_bytes: int) -> bytes:
    """``prefix`` then ``zero_bytes`` zero bytes, gzip-compressed as they stream."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6) as compressed:
        compressed.write(prefix)
        left = zero_bytes
        while left > 0:
            compressed.write(ZERO_CHUNK[:min(left, len(ZERO_CHUNK))])
            left -= len(ZERO_CHUNK)
    return buffer.getvalue()


def idx_header(shape: tuple[int, ...], type_code: int = 0x08) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(int(n).to_bytes(4, "big") for n in shape)


def gzip_idx_declaring(shape: tuple[int, ...], *, data_bytes: int) -> bytes:
    """A gzip IDX file whose header declares ``shape`` (unsigned bytes), with ``data_bytes`` of zeros."""
    return gzip_of_zeros(idx_header(shape), data_bytes)


def gzip_csv_expanding_to(total_bytes: int) -> bytes:
    """A gzip CSV of ``a,b,label`` rows that expands to about ``total_bytes``."""
    row = b"1,2,0\n"
    buffer = io.BytesIO()
    block = row * (len(ZERO_CHUNK) // len(row))
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6) as compressed:
        compressed.write(b"a,b,label\n")
        written = 0
        while written < total_bytes:
            compressed.write(block)
            written += len(block)
    return buffer.getvalue()


def npz_with_deflated_array(shape: tuple[int, ...], *, dtype=numpy.float32, data_bytes: int | None = None) -> bytes:
    """An ``.npz`` whose ``x.npy`` header declares ``shape``, deflated; its data are zeros,
    ``data_bytes`` of them (default: all the shape needs)."""
    header = io.BytesIO()
    numpy.lib.format.write_array_header_1_0(
        header, {"descr": numpy.lib.format.dtype_to_descr(numpy.dtype(dtype)), "fortran_order": False,
                 "shape": shape})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("x.npy", "w",
                                                                                       force_zip64=True) as member:
        member.write(header.getvalue())  # the magic string and the header
        left = data_bytes if data_bytes is not None else int(numpy.prod(shape)) * numpy.dtype(dtype).itemsize
        while left > 0:
            member.write(ZERO_CHUNK[:min(left, len(ZERO_CHUNK))])
            left -= len(ZERO_CHUNK)
    return buffer.getvalue()


def zip_with_members(names: list[str], content: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, content)
    return buffer.getvalue()
