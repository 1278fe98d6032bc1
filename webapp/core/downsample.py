"""Min/max-preserving downsampling of a long series for charts (contract 4: the history keeps
minima and maxima).

The points are cut into contiguous buckets of near-equal length; each bucket keeps its first,
its smallest, its largest and its last point (fewer when they coincide). So a spike or a dip
survives however long the series grows, the ends of the series are exact, and at most
``max_points`` points come back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

POINTS_PER_BUCKET = 4  # first, min, max, last
MIN_POINTS = POINTS_PER_BUCKET


def downsample_indices(values: Sequence[float | None], max_points: int) -> list[int]:
    """Indices (ascending) of the points to keep from ``values``: all of them when there are at
    most ``max_points``, else per bucket the first, min, max and last. ``None`` and NaN values
    are never chosen as a minimum or maximum (but may be a bucket's first or last point)."""
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < MIN_POINTS:
        raise ValueError(f"max_points must be an integer >= {MIN_POINTS} (each bucket keeps its first, min, max and "
                         f"last point), got {max_points!r}")
    count = len(values)
    if count <= max_points:
        return list(range(count))
    buckets = max_points // POINTS_PER_BUCKET
    kept: list[int] = []
    for bucket in range(buckets):
        start = bucket * count // buckets
        stop = (bucket + 1) * count // buckets
        lowest = highest = None
        for index in range(start, stop):
            value = values[index]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if lowest is None or value < values[lowest]:
                lowest = index
            if highest is None or value > values[highest]:
                highest = index
        chosen = {start, stop - 1}
        chosen.update(index for index in (lowest, highest) if index is not None)
        kept.extend(sorted(chosen))
    return kept


def downsample(columns: dict[str, Sequence], *, by: str, max_points: int | None) -> dict[str, list]:
    """Downsample parallel columns (e.g. steps, values, wall times) together, judging min and
    max on the column ``by``. ``max_points=None`` keeps everything."""
    if max_points is None:
        return {name: list(column) for name, column in columns.items()}
    keep = downsample_indices(columns[by], max_points)
    return {name: [column[index] for index in keep] for name, column in columns.items()}
