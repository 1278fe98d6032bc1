"""Reads of datasets: the user's records, the built-in catalogue, and the engine ``Dataset`` a
record stands for (what the training worker loads)."""

from __future__ import annotations

import numpy
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from engine import data as engine_data
from engine.data import store, views
from engine.errors import DataError
from webapp.core.exceptions import InvalidInput
from webapp.datasets import conversion, images, uploads
from webapp.datasets.models import Dataset
from webapp.projects.training_data import TrainingData

# The ``archived`` filter of the project, run and dataset lists: archived items are hidden unless asked for.
ARCHIVED_CHOICES = ("false", "true", "all")
ARCHIVED_HELP = ("false (the default): only items not archived; true: only archived ones; all: both")


def archived_filtered(items: QuerySet, archived: str | None) -> QuerySet:
    """``items`` filtered by ``archived`` (one of ``ARCHIVED_CHOICES``; None or "" is "false"),
    or a 400 naming the ``archived`` parameter."""
    archived = (archived or "false").lower()
    if archived not in ARCHIVED_CHOICES:
        raise InvalidInput(f"'archived' must be one of {', '.join(ARCHIVED_CHOICES)}, got {archived[:40]!r}",
                           details={"archived": ["unknown choice"]})
    if archived == "all":
        return items
    return items.filter(archived_at__isnull=archived == "false")


def builtin_list() -> list[dict]:
    """``engine.data.list_builtin()``: name, task, description, per-row shapes, options."""
    return engine_data.list_builtin()


def dataset_list(*, user, project_id: int | None = None, kind: str | None = None,
                 archived: str = "all") -> QuerySet[Dataset]:
    datasets = archived_filtered(Dataset.objects.filter(owner=user), archived)
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
    """The engine ``Dataset`` of a record, for the workers: a converted upload's store with its
    arrays memory-mapped (a batch reads only its rows), the built-in generated with the stored
    options, or (uploads stored before conversions existed) the stored file read by its loader."""
    check_ready(dataset)
    options = dict(dataset.options)
    if dataset.kind == Dataset.Kind.BUILTIN:
        loaded = engine_data.load_builtin(dataset.builtin_name, **options)
    elif (conversion.store_path(dataset.pk) / store.MANIFEST).is_file():
        loaded = store.open_store(conversion.store_path(dataset.pk))
    else:
        path = dataset.file.path
        loaders = {"csv": engine_data.load_csv, "npz": engine_data.load_npz, "idx": engine_data.load_idx}
        loaded = loaders[dataset.file_format](path, **options)
    loaded.name = dataset.name
    view = views.check_view(dataset.view or None)
    feature = images.feature_array_name(loaded.schema())
    if view is not None and feature is not None:
        statistics = views.view_channel_statistics(loaded.channel_statistics.pop(feature, None),
                                                   loaded.arrays[feature].shape[1:], view)
        if statistics is not None:
            loaded.channel_statistics[feature] = statistics
        loaded.arrays[feature] = views.apply_view(loaded.arrays[feature], view)
    return loaded


def check_ready(dataset: Dataset) -> None:
    """A ``DataError`` (a 400 for the API) when the dataset cannot be trained on yet or at all."""
    if dataset.state != Dataset.State.READY:
        raise DataError(f"dataset '{dataset.name}' is {dataset.state}"
                        + (f": {dataset.error}" if dataset.error else "; wait until it is ready"))


def viewed_schema(dataset: Dataset) -> dict:
    """The stored schema with the features' per-sample shape as the dataset's view gives it: what a
    graph bound to the dataset receives."""
    view = dataset.view or None
    feature = images.feature_array_name(dataset.schema)
    if not view or feature is None:
        return dataset.schema
    arrays = dict(dataset.schema.get("arrays") or {})
    stored = arrays[feature]
    arrays[feature] = {**stored, "shape": views.view_sample_shape(stored.get("shape") or [], views.check_view(view))}
    return {**dataset.schema, "arrays": arrays}


LISTED_FEATURE_NAMES = 100
LISTED_LABEL_NAMES = 1000
PREVIEW_VALUES = 100  # values shown of each preview row


def schema_summary(schema: dict) -> dict:
    """The stored schema with its name lists cut (a 100,000-column CSV would otherwise make every
    listing megabytes): ``feature_count`` and ``label_count`` give the totals."""
    summary = dict(schema)
    for key, count_key, limit in (("feature_names", "feature_count", LISTED_FEATURE_NAMES),
                                  ("label_names", "label_count", LISTED_LABEL_NAMES)):
        names = schema.get(key)
        if isinstance(names, list):
            summary[key] = names[:limit]
            summary[count_key] = len(names)
    return summary


def preview_summary(preview: dict) -> dict:
    """The stored preview with at most ``PREVIEW_VALUES`` values of each row."""
    if not preview:
        return preview
    summary = schema_summary(preview)
    summary["arrays"] = {name: [_first_values(row) for row in rows]
                         for name, rows in (preview.get("arrays") or {}).items()}
    return summary


def _first_values(row):
    return row[:PREVIEW_VALUES] if isinstance(row, list) else row


def dataset_array_stand_ins(dataset: Dataset) -> dict[str, numpy.ndarray]:
    """Zero-row arrays with the per-row shape and dtype of each of the dataset's arrays, from the
    stored schema: enough to check that a graph's inputs can be fed, without loading the data."""
    check_ready(dataset)
    return {
        name: numpy.empty((0, *array["shape"]), dtype=array["dtype"])
        for name, array in viewed_schema(dataset).get("arrays", {}).items()
    }


def dataset_training_data(dataset: Dataset) -> TrainingData | None:
    """What the editor checks a graph against when it will train on ``dataset`` (the arrays' stand-ins
    with the view applied, the labels, the task), or None while the dataset is not ready."""
    if dataset.state != Dataset.State.READY:
        return None
    schema = dataset.schema or {}
    feature = images.feature_array_name(schema)
    stored = (schema.get("arrays") or {}).get(feature) or {}
    num_classes = schema.get("num_classes")
    return TrainingData(
        dataset_id=dataset.pk, name=dataset.name, arrays=dataset_array_stand_ins(dataset),
        target=schema.get("target"), task=schema.get("task"),
        num_classes=num_classes if isinstance(num_classes, int) else None, feature=feature,
        stored_feature_shape=tuple(stored["shape"]) if isinstance(stored.get("shape"), list) else None,
        view=dataset.view or None,
    )


def dataset_image_layout(dataset: Dataset) -> images.ImageLayout | None:
    """How the dataset's samples are drawn as images, or None when they are not images."""
    view = dataset.view or None
    if view and view.get("kind") == "image":  # samples are channels-first once the view is applied
        return images.ImageLayout(*view["shape"])
    if view and view.get("kind") == "sequence":
        return None
    return images.dataset_image_layout(schema=viewed_schema(dataset), builtin_name=dataset.builtin_name)


def dataset_file_name(dataset: Dataset) -> str:
    """The name of the file a stored upload is read from, as its owner knows it: the uploaded
    file's name where it is stored as uploaded, else (IDX pairs and zips, converted to one .npz)
    the stored .npz's name. Empty for built-ins."""
    if not dataset.file:
        return ""
    stored = dataset.file.name.rsplit("/", 1)[-1]
    original = dataset.original_name
    if original and engine_data_format(original) == engine_data_format(stored):
        return original
    return stored


def engine_data_format(file_name: str) -> str | None:
    """The stored format a file name says (``csv`` for TSV too, as the loaders read both)."""
    detected = uploads.detect_format(file_name)
    return "csv" if detected == "tsv" else detected


def dataset_samples(dataset: Dataset, *, offset: int = 0, limit: int = 16) -> dict:
    """Rows ``offset`` to ``offset + limit`` of the dataset, each with its label and, for image
    data, the sample as a PNG data URL (pixel values scaled by the whole array's minimum and
    maximum); other arrays as nested lists. Loads the dataset as the worker does."""
    loaded = load_engine_dataset(dataset)
    layout = dataset_image_layout(dataset)
    image_array = images.feature_array_name(dataset.schema) if layout is not None else None
    labels = loaded.labels
    names = loaded.label_names
    stored_range = (dataset.schema.get("metadata") or {}).get("value_range")
    if not image_array:
        low, high = 0.0, 1.0
    elif isinstance(stored_range, list) and len(stored_range) == 2:  # measured at conversion
        low, high = stored_range
    else:
        low, high = images.value_range(loaded.arrays[image_array])
    rows = range(min(offset, len(loaded)), min(offset + limit, len(loaded)))
    results = []
    for index in rows:
        sample: dict = {"index": index, "label": None, "label_name": None}
        if labels is not None:
            label = labels[index]
            sample["label"] = _json_value(label)
            if names and label.ndim == 0 and label.dtype.kind in "iu" and 0 <= int(label) < len(names):
                sample["label_name"] = names[int(label)]
        if image_array:
            sample["image"] = images.sample_image(loaded.arrays[image_array][index], layout, low=low, high=high)
        sample["features"] = {
            name: _first_values(_json_value(array[index])) for name, array in loaded.arrays.items()
            if name != loaded.target and name != image_array
        }
        results.append(sample)
    return {
        "dataset": dataset.pk,
        "count": len(loaded),
        "offset": offset,
        "limit": limit,
        "task": loaded.task,
        "image_shape": layout.shape if layout is not None else None,
        "label_names": names,
        "feature_names": loaded.feature_names[:LISTED_FEATURE_NAMES] if loaded.feature_names else None,
        "feature_count": len(loaded.feature_names) if loaded.feature_names else None,
        "results": results,
    }


def _json_value(value):
    """A NumPy value or array as JSON numbers and lists (non-finite numbers as null)."""
    array = numpy.asarray(value)
    if array.dtype.kind == "f":
        as_float = array.astype(numpy.float64)
        return numpy.where(numpy.isfinite(as_float), as_float, None).tolist()
    if array.dtype.kind in "biu":
        return array.tolist()
    return array.astype(str).tolist()
