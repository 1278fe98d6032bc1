"""Datasets for training: the ``Dataset`` container, built-in datasets, file loaders,
standardization and mini-batches.

::

    from engine import data
    digits = data.load_builtin("digits")                 # x (1797, 64) float32, y (1797,) int64
    train, validation = digits.split(0.2, seed=0)        # stratified by class
    scaler = data.Standardizer().fit(train.arrays["x"])  # fitted on training rows only
    order = numpy.random.default_rng(0).permutation(len(train))
    for batch in data.iter_batches(train.arrays, 32, order=order):
        ...
    table = data.load("measurements.csv", target="species")
"""

from __future__ import annotations

from engine.data.builtin import ClickModel, click_model, list_builtin, load_builtin
from engine.data.dataset import TASKS, Dataset, encode_labels, from_arrays, infer_task, iter_batches
from engine.data.loaders import load, load_csv, load_idx, load_npz, read_idx
from engine.data.standardizer import Standardizer

__all__ = [
    "TASKS",
    "ClickModel",
    "Dataset",
    "Standardizer",
    "click_model",
    "encode_labels",
    "from_arrays",
    "infer_task",
    "iter_batches",
    "list_builtin",
    "load",
    "load_builtin",
    "load_csv",
    "load_idx",
    "load_npz",
    "read_idx",
]
