"""Declared views of a dataset's features: how each sample's values are shaped for a graph.

The same stored values can be fed as a flat row, an image or a sequence::

    {"kind": "flat"}                                        # (N, D)
    {"kind": "image", "shape": [1, 8, 8], "layout": "chw"}  # (N, C, H, W); "hwc": stored channels last
    {"kind": "sequence", "shape": [20, 3]}                  # (N, T, F)

A view never copies: it reshapes (and for ``hwc`` transposes) the stored array, so a memory-mapped
store stays mapped and each batch reads only its rows.
"""

from __future__ import annotations

import math

import numpy

from engine.errors import DataError

KINDS = ("flat", "image", "sequence")
LAYOUTS = ("chw", "hwc")
IMAGE_CHANNELS = (1, 3, 4)


def check_view(view: dict | None, sample_shape=None) -> dict | None:
    """The view in its normal form, or None for "as stored"; a ``DataError`` naming the field when it
    is malformed or (given ``sample_shape``, the stored per-sample shape) does not fit the values."""
    if view is None or view == {}:
        return None
    if not isinstance(view, dict):
        raise DataError(f"view: expected an object such as {{\"kind\": \"image\", \"shape\": [1, 28, 28]}}, "
                        f"got {view!r}")
    unknown = sorted(set(view) - {"kind", "shape", "layout"})
    if unknown:
        raise DataError(f"view: unknown field(s) {unknown}; a view has kind, shape and (images) layout")
    kind = view.get("kind")
    if kind not in KINDS:
        raise DataError(f"view.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    normal: dict = {"kind": kind}
    if kind == "flat":
        if "shape" in view or "layout" in view:
            raise DataError("view: a flat view takes no shape or layout (a sample becomes one row of its values)")
    else:
        size = 3 if kind == "image" else 2
        shape = view.get("shape")
        if (not isinstance(shape, list | tuple) or len(shape) != size
                or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
            expected = "[channels, height, width]" if kind == "image" else "[steps, features]"
            raise DataError(f"view.shape: a {kind} view needs {expected} as {size} positive integers, got {shape!r}")
        normal["shape"] = [int(n) for n in shape]
        if kind == "image":
            if normal["shape"][0] not in IMAGE_CHANNELS:
                raise DataError(f"view.shape: an image has 1, 3 or 4 channels, got {normal['shape'][0]}")
            layout = view.get("layout", "chw")
            if layout not in LAYOUTS:
                raise DataError(f"view.layout: expected chw (channels first) or hwc (channels last), got {layout!r}")
            normal["layout"] = layout
        elif "layout" in view:
            raise DataError("view.layout: only image views have a layout")
    if sample_shape is not None and "shape" in normal:
        stored = math.prod(int(n) for n in sample_shape)
        wanted = math.prod(normal["shape"])
        if stored != wanted:
            raise DataError(f"view.shape: {normal['shape']} holds {wanted} values per sample, but the dataset's "
                            f"samples have shape {list(sample_shape)} ({stored} values)")
    return normal


def view_sample_shape(sample_shape, view: dict | None) -> list[int]:
    """The per-sample shape a view gives to samples stored with ``sample_shape``."""
    if view is None:
        return [int(n) for n in sample_shape]
    if view["kind"] == "flat":
        return [math.prod(int(n) for n in sample_shape)]
    return list(view["shape"])


def view_channel_statistics(statistics: dict | None, sample_shape, view: dict | None) -> dict | None:
    """A stored array's per-channel statistics (``Dataset.channel_statistics``) as they hold for
    the array under ``view``, or None where the view gives its values other channels: statistics of
    one channel (all values) hold for any view, per-channel ones only where the view keeps the
    stored channels-first samples as they are."""
    if not statistics:
        return None
    if len(statistics.get("mean") or []) == 1 or view is None:
        return statistics
    keeps = view["kind"] == "image" and view.get("layout") == "chw" and list(view["shape"]) == list(sample_shape)
    return statistics if keeps else None


def apply_view(array, view: dict | None):
    """``array`` (N, ...) shaped as the view says, without copying."""
    if view is None:
        return array
    rows = array.shape[0]
    if view["kind"] == "flat":
        return array.reshape(rows, -1)
    shape = view["shape"]
    if view["kind"] == "image" and view.get("layout") == "hwc":
        channels, height, width = shape
        return numpy.asarray(array).reshape(rows, height, width, channels).transpose(0, 3, 1, 2)
    return array.reshape(rows, *shape)
