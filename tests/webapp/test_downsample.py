"""Min/max-preserving downsampling: few points come back, and the extremes are among them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.core.downsample import downsample, downsample_indices


def test_a_short_series_is_kept_whole():
    assert downsample_indices([3.0, 1.0, 2.0], 10) == [0, 1, 2]
    assert downsample_indices([], 4) == []


def test_a_long_series_keeps_its_spike_and_dip_and_ends():
    values = [1.0] * 10_000
    values[1234] = 50.0  # a spike
    values[8765] = -7.0  # a dip
    kept = downsample_indices(values, 100)
    assert len(kept) <= 100
    assert {0, 1234, 8765, 9999} <= set(kept)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=600),
       max_points=st.integers(min_value=4, max_value=80))
def test_properties(values, max_points):
    kept = downsample_indices(values, max_points)
    assert len(kept) <= max_points
    assert kept == sorted(set(kept)), "ascending, no repeats"
    assert kept[0] == 0 and kept[-1] == len(values) - 1, "the ends are exact"
    chosen = [values[index] for index in kept]
    assert min(chosen) == min(values) and max(chosen) == max(values), "the global extremes survive"


def test_missing_values_are_never_taken_for_extremes():
    values = [None, 5.0, float("nan"), -2.0, 1.0, None, 3.0, 9.0, None, 0.0] * 10
    kept = downsample_indices(values, 8)
    chosen = [values[index] for index in kept]
    numbers = [v for v in chosen if v is not None and not math.isnan(v)]
    assert min(numbers) == -2.0 and max(numbers) == 9.0


def test_columns_are_cut_together():
    columns = {"steps": list(range(1000)), "values": [float((i * 37) % 101) for i in range(1000)]}
    result = downsample(columns, by="values", max_points=40)
    assert len(result["steps"]) == len(result["values"]) <= 40
    assert all(columns["values"][step] == value for step, value in zip(result["steps"], result["values"]))
    assert downsample(columns, by="values", max_points=None) == columns


@pytest.mark.parametrize("max_points", [0, 3, -1, 2.5, True, "10"])
def test_max_points_below_one_bucket_is_refused(max_points):
    with pytest.raises(ValueError, match="max_points"):
        downsample_indices([1.0] * 10, max_points)
