"""Image augmentation for training batches: random crops of a zero-padded image and horizontal
flips, each drawn per sample but applied to the whole batch at once (no loop over samples).

The draws come from a generator seeded by (seed, epoch, step) (``batch_generator``), not from a
generator carried along the run, so a run resumed from a checkpoint after epoch k draws exactly
what an uninterrupted run draws, and the same step of a data-parallel run gets the same draws on
every worker (each takes its share of the global batch's)::

    rng = batch_generator(seed=0, epoch=3, step=120)
    draws = draw_augmentation(rng, rows=128, padding=4, flip=True)
    images = augment_images(images, draws)           # (N, C, H, W) in, same shape out
"""

from __future__ import annotations

import dataclasses

import numpy

from engine import backend
from engine.errors import DataError

# Mixed into the seed so the augmentation's stream differs from the other streams drawn from it.
_AUGMENTATION_STREAM = 0x6175676D


def batch_generator(*, seed: int, epoch: int, step: int) -> numpy.random.Generator:
    """The generator of one training step's draws: a function of the run's seed, the epoch
    (counted from 0) and the step (the run's step counter before the update)."""
    return numpy.random.default_rng([_AUGMENTATION_STREAM, int(seed), int(epoch), int(step)])


@dataclasses.dataclass
class AugmentationDraws:
    """Per-sample draws of one batch: crop offsets into the padded image (0 .. 2 * padding) on each
    axis, and which samples are flipped left to right."""

    padding: int
    offsets: numpy.ndarray | None  # (rows, 2) int64: (top, left); None without cropping
    flips: numpy.ndarray | None  # (rows,) bool; None without flipping

    def share(self, start: int, stop: int) -> AugmentationDraws:
        """The draws of rows ``start:stop`` (a worker's share of the global batch)."""
        return AugmentationDraws(self.padding,
                                 None if self.offsets is None else self.offsets[start:stop],
                                 None if self.flips is None else self.flips[start:stop])


def draw_augmentation(rng: numpy.random.Generator, *, rows: int, padding: int, flip: bool) -> AugmentationDraws:
    """The draws for a batch of ``rows`` samples: offsets when ``padding`` > 0, flips when ``flip``."""
    offsets = rng.integers(0, 2 * padding + 1, size=(rows, 2)) if padding > 0 else None
    flips = rng.random(rows) < 0.5 if flip else None
    return AugmentationDraws(int(padding), offsets, flips)


def augment_images(images, draws: AugmentationDraws):
    """``images`` (N, C, H, W; NumPy or CuPy) cropped and flipped as ``draws`` say, as a new array.

    Crop: each sample is padded with ``padding`` zeros on every side and an H x W window taken at
    its offsets, so a sample moves by up to ``padding`` pixels each way. Flip: the width axis is
    reversed for the flipped samples."""
    if images.ndim != 4:
        raise DataError(f"augmentation takes images of shape (N, C, H, W), got shape {list(images.shape)}")
    xp = backend.array_module(images)
    rows, _, height, width = images.shape
    if draws.offsets is not None and len(draws.offsets) != rows or draws.flips is not None and len(draws.flips) != rows:
        raise DataError(f"augmentation draws for {len(draws.offsets if draws.offsets is not None else draws.flips)} "
                        f"samples, but the batch has {rows}")
    result = images
    if draws.offsets is not None and draws.padding > 0:
        pad = draws.padding
        padded = xp.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        offsets = xp.asarray(draws.offsets)
        # One gather: sample n's rows top..top+H and columns left..left+W of every channel.
        row_index = (offsets[:, 0, None] + xp.arange(height))[:, None, :, None]
        column_index = (offsets[:, 1, None] + xp.arange(width))[:, None, None, :]
        samples = xp.arange(rows)[:, None, None, None]
        channels = xp.arange(images.shape[1])[None, :, None, None]
        result = padded[samples, channels, row_index, column_index]
    if draws.flips is not None and draws.flips.any():
        flips = xp.asarray(draws.flips)[:, None, None, None]
        result = xp.where(flips, result[..., ::-1], result)
    return result
