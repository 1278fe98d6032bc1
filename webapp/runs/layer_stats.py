"""A run's per-layer statistics (``engine.layer_stats``) kept with its record.

The samples are JSON lines in ``<ARTIFACT_ROOT>/runs/<id>/layer-stats.jsonl``, beside the run's
checkpoints (deleted with them by ``run_delete``): one sample holds every watched node, so a file
appended a line at a time costs the recorder far less than a row per node and step. The file keeps
at most ``LAYER_STATS_KEPT_SAMPLES`` in at most ``LAYER_STATS_MAX_BYTES``: past either, every other
sample is dropped (the first, the last and the one that found the first NaN always stay), so a
long run's record covers all its steps evenly, like a curve's downsampled history. Reads thin
further to what the caller asks for.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

FILE_NAME = "layer-stats.jsonl"


def layer_stats_file(run_id: int) -> Path:
    return Path(settings.ARTIFACT_ROOT) / "runs" / str(run_id) / FILE_NAME


def read_samples(run_id: int) -> list[dict]:
    """The stored samples in step order."""
    return read_samples_at(layer_stats_file(run_id))


class LayerStatsRecord:
    """The writer of one execution of a run: appends samples, keeps the file within its cap.

    A resumed execution replays the steps after its checkpoint: its first write drops the samples
    an earlier execution stored from that step on, so none is kept twice."""

    def __init__(self, run_id: int, *, kept_samples: int | None = None, max_bytes: int | None = None):
        self.path = layer_stats_file(run_id)
        self.kept_samples = max(3, int(kept_samples or settings.LAYER_STATS_KEPT_SAMPLES))
        self.max_bytes = max(1, int(max_bytes or settings.LAYER_STATS_MAX_BYTES))
        self._count: int | None = None  # samples in the file, read at the first write

    def append(self, samples: list[dict]) -> None:
        if not samples:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._count is None:
            first_step = samples[0]["step"]
            stored = read_samples_at(self.path)
            kept = [sample for sample in stored if sample["step"] < first_step]
            if len(kept) != len(stored):
                self._rewrite(kept)
            self._count = len(kept)
        with self.path.open("a") as file:
            file.write("".join(json.dumps(sample, allow_nan=False) + "\n" for sample in samples))
        self._count += len(samples)
        size = self.path.stat().st_size
        if self._count > self.kept_samples or size > self.max_bytes:
            # Half of what fits by count and by bytes (a big graph's samples are big): thinning
            # halves the file, so it is rewritten once per doubling, not at every sample.
            by_bytes = int(self._count * self.max_bytes / size) if size > self.max_bytes else self._count
            thinned = thin(read_samples_at(self.path), min(self.kept_samples, by_bytes) // 2 + 1)
            self._rewrite(thinned)
            self._count = len(thinned)

    def _rewrite(self, samples: list[dict]) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("".join(json.dumps(sample, allow_nan=False) + "\n" for sample in samples))
        os.replace(temporary, self.path)  # readers see the old file or the new one, never half of one


def read_samples_at(path: Path) -> list[dict]:
    """The samples of a file; a line cut short by a write in progress is skipped."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    samples = []
    for line in lines:
        try:
            samples.append(json.loads(line))
        except ValueError:
            continue
    return samples


def thin(samples: list[dict], at_most: int) -> list[dict]:
    """At most ``at_most`` samples (and at least 2), spread evenly over the steps: the one nearest
    each of ``at_most`` evenly spaced steps, and always the first, the last, and the first that
    reports a NaN. By steps, not by position: a record thinned again and again stays even."""
    if len(samples) <= at_most:
        return list(samples)
    at_most = max(2, at_most)
    keep = {0, len(samples) - 1}
    nan_index = next((i for i, sample in enumerate(samples) if sample.get("nan")), None)
    if nan_index is not None:
        keep.add(nan_index)
    steps = [sample["step"] for sample in samples]
    first, last = steps[0], steps[-1]
    slots = at_most - len(keep)
    for k in range(1, slots + 1):
        target = first + (last - first) * k / (slots + 1)
        index = bisect.bisect_left(steps, target)
        if index > 0 and (index == len(steps) or target - steps[index - 1] <= steps[index] - target):
            index -= 1
        keep.add(index)
    return [samples[i] for i in sorted(keep)]
