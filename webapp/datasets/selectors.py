"""Reads of datasets: the user's records, the built-in catalogue, and the engine ``Dataset`` a
record stands for (what the training worker loads)."""

from __future__ import annotations

import numpy
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from engine import data as engine_data
from webapp.datasets.models import Dataset


def builtin_list() -> list[dict]:
    """``engine.data.list_builtin()``: name, task, description, per-row shapes, options."""
    return engine_data.list_builtin()


def dataset_list(*, user, project_id: int | None = None, kind: str | None = None) -> QuerySet[Dataset]:
    datasets = Dataset.objects.filter(owner=user)
    if project_id is not None:
        datasets = datasets.filter(project_id=project_id)
    if kind:
        datasets = datasets.filter(kind=kind)
    return datasets


def dataset_get(*, user, dataset_id: int) -> Dataset:
    """The user's dataset, or 404 (also when it belongs to someone else)."""
    return get_object_or_404(dataset_list(user=user), pk=dataset_id)


def dataset_find(*, user, dataset_id) -> Dataset | None:
    """The user's dataset, or None (for request bodies that name a dataset)."""
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, int):
        return None
    return dataset_list(user=user).filter(pk=dataset_id).first()


def load_engine_dataset(dataset: Dataset) -> engine_data.Dataset:
    """The engine ``Dataset`` of a record: the built-in generated with the stored options, or the
    stored file read by the loader of its format with the stored options. For the workers."""
    options = dict(dataset.options)
    if dataset.kind == Dataset.Kind.BUILTIN:
        loaded = engine_data.load_builtin(dataset.builtin_name, **options)
    else:
        path = dataset.file.path
        loaders = {"csv": engine_data.load_csv, "npz": engine_data.load_npz, "idx": engine_data.load_idx}
        loaded = loaders[dataset.file_format](path, **options)
    loaded.name = dataset.name
    return loaded


def dataset_array_stand_ins(dataset: Dataset) -> dict[str, numpy.ndarray]:
    """Zero-row arrays with the per-row shape and dtype of each of the dataset's arrays, from the
    stored schema: enough to check that a graph's inputs can be fed, without loading the data."""
    return {
        name: numpy.empty((0, *array["shape"]), dtype=array["dtype"])
        for name, array in dataset.schema.get("arrays", {}).items()
    }
