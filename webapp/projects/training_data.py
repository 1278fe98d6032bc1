"""A graph checked against the dataset it will train on (contract 7): each input fed by the
trainer's own binding rule (``engine.trainer.bind_inputs``) from the dataset's per-sample shapes, and
the loss's labels against the dataset's task and class count. Errors go on the editor node at fault,
with a machine-readable ``fix`` where one exists, which the editor offers as a button:

- ``{"kind": "insert_reshape", "shape": [1, 8, 8], "input_shape": [64]}``: the input takes the
  dataset's shape (``input_shape``) and a reshape node between it and its consumers gives them the
  shape they were built for;
- ``{"kind": "set_view", "dataset": 7, "view": {"kind": "image", "shape": [1, 8, 8], "layout": "chw"}}``:
  the dataset's declared view gives the samples the input's shape (a PATCH of the dataset);
- ``{"kind": "set_param", "param": "units", "value": 10}``: the logits' width set to the class count.

Like the converter, this module needs no Django: the web app reads the dataset into a
``TrainingData`` (``webapp.catalog.api``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from engine.data import views
from engine.errors import DataError, EngineError
from engine.registry import FLOAT_DTYPES, TensorType, get_op, op_names
from engine.trainer import bind_inputs

CLASSIFICATION_LOSSES = ("softmax_cross_entropy", "sigmoid_cross_entropy")
REGRESSION_LOSSES = ("mse", "mae", "huber")


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What a graph is checked against: a dataset as the trainer will read it."""

    dataset_id: int
    name: str
    arrays: dict[str, Any]  # array name -> zero-row stand-in with the per-row shape and dtype (view applied)
    target: str | None  # the labels' array
    task: str | None  # "classification", "binary", "regression", ...
    num_classes: int | None
    feature: str | None = None  # the array the dataset's view shapes
    stored_feature_shape: tuple[int, ...] | None = None  # its per-sample shape as stored, before the view
    view: dict | None = None  # the dataset's declared view (None: as stored)


def _error(node: str | None, field: str | None, code: str, message: str, fixes: list[dict] | None = None) -> dict:
    error = {"node": node, "field": field, "code": code, "message": message}
    if fixes:
        error["fix"] = fixes[0]
        error["fixes"] = fixes
    return error


def input_errors(input_types: dict[str, dict], input_nodes: dict[str, str], data: TrainingData
                 ) -> tuple[dict[str, str], list[dict]]:
    """Which dataset array feeds each input (input name -> array name) and an error on each input
    node the dataset cannot feed. ``input_types`` maps the spec's input names to their declared
    ``{"shape", "dtype"}`` (the batch axis included), ``input_nodes`` to their editor node ids."""
    types = {name: TensorType(tuple(declared["shape"]), declared["dtype"]) for name, declared in input_types.items()}
    float_count = sum(1 for declared in types.values() if declared.dtype in FLOAT_DTYPES)
    binding, errors = {}, []
    for name, declared in types.items():
        # One input at a time, so every input is reported; naming the input as its own feed keeps
        # the rule "the only float input takes x" from applying where the whole graph has several.
        feeds = {name: name} if float_count > 1 and declared.dtype in FLOAT_DTYPES else None
        node = input_nodes[name]
        try:
            source = bind_inputs({name: declared}, data.arrays, feeds, dataset_name=data.name)[name]
        except EngineError as error:
            source = _source_of_refused(name, declared, feeds, data)
            field = "shape" if source is not None else "name"
            errors.append(_error(node, field, "dataset_shape_mismatch" if source else "dataset_no_array",
                                 str(error), _shape_fixes(declared, source, data) if source else None))
            continue
        binding[name] = source
        actual = data.arrays[source].dtype
        if declared.dtype not in FLOAT_DTYPES and actual.kind == "f":
            errors.append(_error(node, "dtype", "dataset_dtype_mismatch",
                                 f"input '{name}' is {declared.dtype}, but dataset array '{source}' of "
                                 f"'{data.name}' holds {actual} values: they would be cut to whole numbers; "
                                 f"declare the input float32" + _regression_hint(source, data)))
    return binding, errors


def _source_of_refused(name: str, declared: TensorType, feeds, data: TrainingData) -> str | None:
    """The array the binding rule picked for an input it then refused (None when it found none)."""
    if name in data.arrays:
        return name
    if feeds is None and declared.dtype in FLOAT_DTYPES and "x" in data.arrays:
        return "x"
    return None


def _regression_hint(source: str, data: TrainingData) -> str:
    return f" ('{data.name}' is a regression dataset)" if source == data.target and data.task == "regression" else ""


def _shape_fixes(declared: TensorType, source: str, data: TrainingData) -> list[dict]:
    """The one-click fixes for an input whose per-sample shape differs from the array's, when they
    hold the same number of values: reshape in the graph, or a view of the dataset that gives the
    samples the input's shape."""
    wanted = list(declared.shape[1:])
    actual = [int(size) for size in data.arrays[source].shape[1:]]
    if any(size is None for size in wanted) or not actual or math.prod(wanted) != math.prod(actual):
        return []
    fixes = []
    if wanted:
        fixes.append({"kind": "insert_reshape", "shape": wanted, "input_shape": actual})
    view = _view_for(wanted)
    if view is not None and source == data.feature and data.stored_feature_shape is not None:
        try:
            normal = views.check_view(view, data.stored_feature_shape)
        except DataError:
            normal = None
        if normal is not None and views.view_sample_shape(data.stored_feature_shape, normal) == wanted:
            fixes.append({"kind": "set_view", "dataset": data.dataset_id, "view": normal})
    return fixes


def _view_for(sample_shape: list[int]) -> dict | None:
    """The declared view that gives samples this shape."""
    if len(sample_shape) == 1:
        return {"kind": "flat"}
    if len(sample_shape) == 2:
        return {"kind": "sequence", "shape": sample_shape}
    if len(sample_shape) == 3 and sample_shape[0] in views.IMAGE_CHANNELS:
        return {"kind": "image", "shape": sample_shape, "layout": "chw"}
    return None


def label_errors(document: dict, nodes: dict, input_nodes: dict[str, str], binding: dict[str, str],
                 data: TrainingData) -> tuple[dict[str, tuple[str, int]], list[dict]]:
    """The loss against the dataset's labels: a classification loss on a regression dataset's targets
    (or a regression loss on class ids) is an error on the loss node. Also returns, per editor node of
    an input fed the dataset's labels, the dataset's (name, number of classes) for the class-count check."""
    classes_by_node = {}
    label_nodes = {input_nodes[name] for name, source in binding.items() if source == data.target}
    if isinstance(data.num_classes, int) and data.task != "regression":
        classes_by_node = {node: (data.name, data.num_classes) for node in label_nodes}
    sources = {}
    for edge in document.get("edges") or []:
        if isinstance(edge, dict):
            sources[(edge.get("target"), edge.get("targetHandle"))] = edge.get("source")
    errors = []
    known_ops = set(op_names())
    for node_id, entry in nodes.items():
        op_name = entry["type"]
        if op_name not in CLASSIFICATION_LOSSES + REGRESSION_LOSSES or op_name not in known_ops:
            continue
        target_port = get_op(op_name).inputs[1].name
        if sources.get((node_id, target_port)) not in label_nodes:
            continue
        field = f"inputs.{target_port}"
        if op_name in CLASSIFICATION_LOSSES and data.task == "regression":
            errors.append(_error(node_id, field, "regression_labels",
                                 f"{op_name} needs class labels, but '{data.name}' is a regression dataset "
                                 f"(its '{data.target}' holds real values): use a regression loss such as mse"))
        elif op_name in REGRESSION_LOSSES and data.task == "classification" and (data.num_classes or 0) > 2:
            errors.append(_error(node_id, field, "classification_labels",
                                 f"{op_name} would treat the {data.num_classes} class ids of '{data.name}' as "
                                 f"numbers to predict: use softmax_cross_entropy on {data.num_classes} scores"))
    return classes_by_node, errors
