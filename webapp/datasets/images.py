"""Showing image-shaped samples in the browser: which datasets hold images, and one sample as a
small PNG data URL (Pillow).

A dataset's features are images when each sample is (H, W), (C, H, W) or (H, W, C) with one, three
or four channels, or when a flat row is known to be one: the built-in digits (8x8), or flattened
IDX images (their dimensions are recorded at upload as ``schema.metadata.image_shape``).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math

import numpy

# Built-ins whose flat rows are images: name -> (channels, height, width).
BUILTIN_IMAGE_SHAPES = {"digits": (1, 8, 8)}
CHANNEL_COUNTS = (1, 3, 4)
# Images are drawn at most this many pixels on a side (larger ones are scaled down), so that a
# page of samples stays small.
MAX_SIDE = 128


def feature_array_name(schema: dict) -> str | None:
    """The array holding the features: ``x``, else the only array besides the target."""
    arrays = schema.get("arrays") or {}
    if "x" in arrays:
        return "x"
    others = [name for name in arrays if name != schema.get("target")]
    return others[0] if len(others) == 1 else None


@dataclasses.dataclass(frozen=True)
class ImageLayout:
    """How a sample's values make an image of ``channels`` x ``height`` x ``width``: ``order`` is
    ``chw`` (channels first, or a flat row of C*H*W values), ``hwc`` (channels last), or
    ``first_channel`` (only the first of the sample's many channels is drawn, in grey)."""

    channels: int
    height: int
    width: int
    order: str = "chw"

    @property
    def shape(self) -> list[int]:
        return [self.channels, self.height, self.width]


def image_layout(sample_shape, *, hint=None) -> ImageLayout | None:
    """How to draw a sample of per-sample shape ``sample_shape``, or None when it is no image.

    ``hint`` is a known (C, H, W) for flat rows (a built-in's, or recorded at upload); it applies
    when it has as many values as a row."""
    shape = tuple(int(size) for size in sample_shape)
    if hint is not None:
        hint = tuple(int(size) for size in hint)
        if len(hint) == 3 and math.prod(hint) == math.prod(shape) and hint[0] in CHANNEL_COUNTS:
            return ImageLayout(*hint)
    if len(shape) == 2 and min(shape) >= 2:
        return ImageLayout(1, *shape)
    if len(shape) != 3:
        return None
    if shape[0] in CHANNEL_COUNTS and min(shape[1:]) >= 2:
        return ImageLayout(*shape)
    if shape[2] in CHANNEL_COUNTS and min(shape[:2]) >= 2:
        return ImageLayout(shape[2], shape[0], shape[1], order="hwc")
    if min(shape[1:]) >= 2:
        return ImageLayout(1, shape[1], shape[2], order="first_channel")
    return None


def dataset_image_layout(*, schema: dict, builtin_name: str = "") -> ImageLayout | None:
    """How the dataset's feature samples are drawn when they are images, from the stored schema."""
    name = feature_array_name(schema)
    if name is None:
        return None
    sample_shape = schema["arrays"][name].get("shape") or []
    hint = (schema.get("metadata") or {}).get("image_shape") or BUILTIN_IMAGE_SHAPES.get(builtin_name)
    return image_layout(sample_shape, hint=hint)


def as_pixels(sample: numpy.ndarray, layout: ImageLayout, *, low: float, high: float) -> numpy.ndarray:
    """One sample as 8-bit pixels (H, W) or (H, W, C), values ``low``..``high`` mapped to 0..255."""
    values = numpy.asarray(sample, dtype=numpy.float64)
    if layout.order == "hwc":
        values = values.transpose(2, 0, 1)
    elif layout.order == "first_channel":
        values = values[:1]
    values = values.reshape(layout.channels, layout.height, layout.width)
    span = high - low
    scaled = (values - low) / span if span > 0 else numpy.zeros_like(values)
    pixels = numpy.clip(numpy.nan_to_num(scaled, nan=0.0) * 255.0 + 0.5, 0, 255).astype(numpy.uint8)
    return pixels[0] if layout.channels == 1 else pixels.transpose(1, 2, 0)


def sample_image(sample: numpy.ndarray, layout: ImageLayout, *, low: float, high: float) -> str:
    """One sample as a PNG data URL."""
    return png_data_url(as_pixels(sample, layout, low=low, high=high))


def png_data_url(pixels: numpy.ndarray) -> str:
    """8-bit pixels (H, W), (H, W, 3) or (H, W, 4) as ``data:image/png;base64,...``, scaled down to
    at most ``MAX_SIDE`` pixels on a side."""
    from PIL import Image  # noqa: PLC0415 - only image datasets need it

    image = Image.fromarray(numpy.ascontiguousarray(pixels, dtype=numpy.uint8))  # L, RGB or RGBA by shape
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def value_range(array: numpy.ndarray, *, chunk_values: int = 1 << 20) -> tuple[float, float]:
    """The finite minimum and maximum of an array of pixel values (0, 1 when it has none), read in
    chunks of rows, so that a large (memory-mapped) array is never copied whole."""
    rows = max(1, chunk_values // max(1, int(numpy.prod(array.shape[1:], dtype=numpy.int64))))
    low, high = numpy.inf, -numpy.inf
    for start in range(0, len(array), rows):
        values = numpy.asarray(array[start:start + rows], dtype=numpy.float64)
        finite = values[numpy.isfinite(values)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return (0.0, 1.0) if low > high else (low, high)
