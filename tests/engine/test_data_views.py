"""Declared views: a dataset's samples shaped for a graph without copying them."""

from __future__ import annotations

import numpy
import pytest

from engine.data.views import apply_view, check_view, view_channel_statistics, view_sample_shape
from engine.errors import DataError


def test_views_reshape_without_copying():
    rows = numpy.arange(2 * 12, dtype=numpy.float32).reshape(2, 12)
    image = apply_view(rows, check_view({"kind": "image", "shape": [3, 2, 2]}, [12]))
    assert image.shape == (2, 3, 2, 2) and numpy.shares_memory(image, rows)
    sequence = apply_view(rows, check_view({"kind": "sequence", "shape": [4, 3]}, [12]))
    assert sequence.shape == (2, 4, 3) and sequence[1, 0].tolist() == [12, 13, 14]
    flat = apply_view(image, check_view({"kind": "flat"}, [3, 2, 2]))
    assert flat.shape == (2, 12) and numpy.shares_memory(flat, rows)
    assert apply_view(rows, check_view({})) is rows


def test_channels_last_images_become_channels_first():
    pixels = numpy.arange(2 * 2 * 2 * 3).reshape(2, 2, 2, 3)  # N, H, W, C
    viewed = apply_view(pixels.reshape(2, -1), check_view({"kind": "image", "shape": [3, 2, 2], "layout": "hwc"}))
    assert numpy.array_equal(viewed, pixels.transpose(0, 3, 1, 2))


def test_the_shape_a_view_gives():
    assert view_sample_shape([64], check_view({"kind": "image", "shape": [1, 8, 8]})) == [1, 8, 8]
    assert view_sample_shape([1, 8, 8], check_view({"kind": "flat"})) == [64]
    assert view_sample_shape([5], None) == [5]


@pytest.mark.parametrize(("view", "words"), [
    ({"kind": "image", "shape": [1, 8, 9]}, "holds 72 values per sample"),
    ({"kind": "flat", "shape": [64]}, "a flat view takes no shape"),
    ({"kind": "sequence", "shape": [8, 8], "layout": "hwc"}, "only image views have a layout"),
    ({"kind": "image", "shape": [1, 8, True]}, "3 positive integers"),
    ({"kind": "image", "shape": [1, 8, 8], "colour": "red"}, "unknown field(s) ['colour']"),
    ("image", "expected an object"),
])
def test_bad_views_are_errors_naming_the_field(view, words):
    with pytest.raises(DataError, match=r"^view") as caught:
        check_view(view, [64])
    assert words in str(caught.value)


def test_channel_statistics_hold_under_a_view_only_where_its_channels_are_the_stored_ones():
    one = {"mean": [0.5], "std": [0.2]}
    three = {"mean": [1.0, 2.0, 3.0], "std": [1.0, 1.0, 1.0]}
    image = {"kind": "image", "shape": [3, 4, 4], "layout": "chw"}
    assert view_channel_statistics(one, [48], image) == one  # all values as one channel: any view
    assert view_channel_statistics(three, [3, 4, 4], None) == three
    assert view_channel_statistics(three, [3, 4, 4], image) == three  # the stored channels, as they are
    assert view_channel_statistics(three, [3, 4, 4], {**image, "layout": "hwc"}) is None
    assert view_channel_statistics(three, [3, 4, 4], {"kind": "flat"}) is None
    assert view_channel_statistics(None, [3, 4, 4], image) is None
