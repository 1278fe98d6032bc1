"""The editor document and its conversion to the engine format (contract 3): the one place where
what the browser draws becomes a ``netforge.graph/1`` spec.

The editor document (``netforge.editor/1``), as the canvas saves it::

    {"format": "netforge.editor/1",
     "nodes": [
       {"id": "x",    "type": "input",  "position": {"x": 0, "y": 0},
        "data": {"name": "x", "shape": [64], "dtype": "float32"}},
       {"id": "fc1",  "type": "dense",  "position": {"x": 0, "y": 170},
        "data": {"params": {"units": 128}, "label": "hidden"}},
       {"id": "output:prediction", "type": "output", "position": {"x": 0, "y": 340},
        "data": {"name": "prediction"}}],
     "edges": [
       {"id": "e1", "source": "x",   "sourceHandle": "out", "target": "fc1", "targetHandle": "x"},
       {"id": "e2", "source": "fc1", "sourceHandle": "out", "target": "output:prediction", "targetHandle": "in"}],
     "metadata": {...}}                                  (optional, copied to the spec)

- ``type`` is an op name from the catalog, or one of three special node types:
  ``input`` (``data``: ``name`` (default: the node id), ``shape`` per sample *without* the batch
  axis, ``dtype`` (default float32), ``batch`` (default true: the spec shape is ``[null, *shape]``));
  ``output`` (``data.name``, default the node id; one edge into handle ``in`` names a graph output);
  ``loss`` (one edge into handle ``in`` marks the value training minimizes). Without a ``loss``
  node, the graph's only loss op (catalog ``is_loss``) is the loss.
- Op node ids become engine node ids unchanged, so they must match the engine's id pattern
  (a letter or ``_`` first, then letters, digits, ``_ . - /``); ids are never derived from names.
  ``data.params`` are the op's parameters, ``data.label`` an optional display name.
- ``sourceHandle`` is an output port name (default: the op's first output; ``out`` for inputs);
  ``targetHandle`` is an input port name (may be left out when the op has one input port; ``in``
  for output and loss nodes). Several edges into a variadic port (``concat``'s ``x``) become a list
  ordered by the edge's ``data.order`` (a number) where given, then by the source node's position
  top to bottom (y, then x), then document order.
- Other keys (``viewport``, node ``width``, ``selected``, ...) are the canvas's own and ignored.

Errors are dicts ``{"node", "field", "code", "message"}`` (plus ``"edge"`` when an edge is at
fault) where ``node`` is the editor node id and ``field`` one of ``type``, ``id``, ``params``,
``params.<name>``, ``inputs.<port>``, ``outputs`` for op nodes, ``name``, ``shape``, ``dtype``,
``batch`` for input nodes and ``name``, ``inputs.in`` for output and loss nodes. Errors found
against a dataset (``webapp.projects.training_data``) may carry a ``fix`` and ``fixes``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from engine.errors import GraphError
from engine.graph import DEFAULT_BATCH_SIZE, FORMAT, ID_PATTERN, PORT_SEPARATOR, validate, value_key
from engine.registry import DTYPES, get_op, op_names
from webapp.core.json_input import collector_paused
from webapp.projects import training_data as training_data_checks
from webapp.projects.training_data import TrainingData

EDITOR_FORMAT = "netforge.editor/1"
INPUT, OUTPUT, LOSS = "input", "output", "loss"
SPECIAL_TYPES = (INPUT, OUTPUT, LOSS)
INPUT_HANDLE = "out"  # the one output handle of an input node
SINK_HANDLE = "in"  # the one input handle of output and loss nodes
# A converted graph (a template, an import, a spec sent over the API) flows top to bottom, as the
# editor's auto-layout lays it out (frontend/src/graph/layout.ts): fitted to the view, a 9-node
# chain read left to right was too small to read. Nodes are 200 px wide and grow to about 120 px
# tall with their shapes.
LAYER_SPACING = 170  # down, from a node's layer to the next
COLUMN_SPACING = 240  # across, between the nodes of one layer

SPECIAL_NODE_TYPES = [
    {"type": INPUT, "doc": "A graph input: one tensor per sample, fed from a dataset array of the same name "
                           "(or the dataset's x for the only float input).",
     "data": {"name": "input name (default: the node id)", "shape": "per-sample shape, without the batch axis",
              "dtype": f"one of {', '.join(DTYPES)} (default float32)",
              "batch": "true (default): a batch axis is prepended"},
     "inputs": [], "outputs": [{"name": INPUT_HANDLE}]},
    {"type": OUTPUT, "doc": "Names a graph output (what predictions return).",
     "data": {"name": "output name (default: the node id)"}, "inputs": [{"name": SINK_HANDLE}], "outputs": []},
    {"type": LOSS, "doc": "Marks the value training minimizes; needed only when the graph has no loss op or several.",
     "data": {}, "inputs": [{"name": SINK_HANDLE}], "outputs": []},
]


@dataclasses.dataclass
class Conversion:
    """An editor document turned into a spec, with what is needed to map engine results back."""

    spec: dict
    errors: list[dict]  # the converter's own, already in editor terms
    node_types: dict[str, str | None]  # editor node id -> "input" | "output" | "loss" | op name (as written)
    input_nodes: dict[str, str]  # spec input name -> editor node id
    output_nodes: dict[str, str]  # spec output name -> editor node id
    loss_node: str | None  # the editor's loss node, if it has one
    spec_index: list[str]  # position in spec["nodes"] -> editor node id
    edge_sources: dict[str, tuple[str, str]]  # edge id -> (source editor node id, port)
    rejected: set[str] = dataclasses.field(default_factory=set)  # node ids already reported as unusable


def _error(node: str | None, field: str | None, code: str, message: str, edge: str | None = None) -> dict:
    error = {"node": node, "field": field, "code": code, "message": message}
    if edge is not None:
        error["edge"] = edge
    return error


def editor_to_spec(document: Any) -> Conversion:
    """Convert an editor document to a ``netforge.graph/1`` spec, best effort: every problem the
    converter sees is collected, and what can be converted is, so the engine can check the rest."""
    conversion = Conversion({"format": FORMAT, "inputs": {}, "nodes": [], "outputs": {}}, [], {}, {}, {}, None, [], {})
    errors = conversion.errors
    if not isinstance(document, dict):
        errors.append(_error(None, None, "not_an_object",
                             f"an editor document must be a JSON object, got {type(document).__name__}"))
        return conversion
    fmt = document.get("format")
    if fmt != EDITOR_FORMAT:
        problem = "missing 'format'" if fmt is None else f"unsupported format {fmt!r}"
        errors.append(_error(None, "format", "bad_format", f"{problem}: expected \"{EDITOR_FORMAT}\""))
    raw_nodes = document.get("nodes")
    raw_edges = document.get("edges", [])
    if not isinstance(raw_nodes, list):
        errors.append(_error(None, "nodes", "bad_nodes", "'nodes' must be a list of node objects"))
        raw_nodes = []
    if not isinstance(raw_edges, list):
        errors.append(_error(None, "edges", "bad_edges", "'edges' must be a list of edge objects"))
        raw_edges = []

    nodes = _read_nodes(raw_nodes, conversion)
    incoming = _read_edges(raw_edges, nodes, conversion)
    _write_spec(document, nodes, incoming, conversion)
    return conversion


def _read_nodes(raw_nodes: list, conversion: Conversion) -> dict[str, dict]:
    """Editor node id -> node, for the well-formed nodes; their types go to ``node_types``."""
    errors = conversion.errors
    nodes: dict[str, dict] = {}
    for index, node in enumerate(raw_nodes):
        if not isinstance(node, dict):
            errors.append(_error(None, f"nodes[{index}]", "bad_node", f"nodes[{index}] must be an object"))
            continue
        node_id = node.get("id")
        if not isinstance(node_id, str) or not node_id:
            errors.append(_error(None, f"nodes[{index}].id", "bad_id", f"nodes[{index}] needs a non-empty string 'id'"))
            continue
        if node_id in nodes or node_id in conversion.rejected:
            errors.append(_error(node_id, "id", "duplicate_id",
                                 f"two nodes have the id '{node_id}'; ids must be unique"))
            continue
        node_type = node.get("type")
        data = node.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            errors.append(_error(node_id, "data", "bad_data", "'data' must be an object"))
            data = {}
        if node_type in SPECIAL_TYPES:
            pass
        elif not isinstance(node_type, str) or get_op(node_type) is None:
            suggestion = difflib.get_close_matches(node_type, op_names() + list(SPECIAL_TYPES), n=1) \
                if isinstance(node_type, str) else []
            hint = f" (did you mean '{suggestion[0]}'?)" if suggestion else ""
            errors.append(_error(node_id, "type", "unknown_op",
                                 f"node type {node_type!r} is neither an op of the catalog nor one of "
                                 f"{', '.join(SPECIAL_TYPES)}{hint}"))
            conversion.rejected.add(node_id)
            conversion.node_types[node_id] = node_type if isinstance(node_type, str) else None
            continue
        elif not ID_PATTERN.match(node_id):
            errors.append(_error(node_id, "id", "bad_id",
                                 f"node id '{node_id}' must start with a letter or _ and use only letters, digits, "
                                 "_ . - / (it becomes the engine node id)"))
            conversion.rejected.add(node_id)
            conversion.node_types[node_id] = node_type
            continue
        nodes[node_id] = {**node, "data": data}
        conversion.node_types[node_id] = node_type
    return nodes


def _read_edges(raw_edges: list, nodes: dict[str, dict], conversion: Conversion) -> dict[tuple[str, str], list]:
    """(target node, port) -> [(sort key, edge id, spec reference)] for the well-formed edges."""
    errors = conversion.errors
    incoming: dict[tuple[str, str], list] = {}
    seen_ids = set()
    for index, edge in enumerate(raw_edges):
        if not isinstance(edge, dict):
            errors.append(_error(None, f"edges[{index}]", "bad_edge", f"edges[{index}] must be an object"))
            continue
        edge_id = edge.get("id")
        if not isinstance(edge_id, str) or not edge_id:
            edge_id = f"edges[{index}]"
        if edge_id in seen_ids:
            errors.append(_error(None, "edges", "duplicate_id", f"two edges have the id '{edge_id}'", edge=edge_id))
            continue
        seen_ids.add(edge_id)
        source, target = edge.get("source"), edge.get("target")
        if target in conversion.rejected or source in conversion.rejected:
            continue  # the node's own error says what is wrong
        if target not in nodes:
            errors.append(_error(None, "edges", "unknown_target",
                                 f"edge '{edge_id}' goes to {target!r}, which is not a node of the graph",
                                 edge=edge_id))
            continue
        handle = edge.get("targetHandle")
        port, problem = _target_port(nodes[target], conversion.node_types[target], handle)
        field = f"inputs.{port or handle}" if isinstance(port or handle, str) else "inputs"
        if problem:
            errors.append(_error(target, field, "bad_port", f"edge '{edge_id}': {problem}", edge=edge_id))
            continue
        if source not in nodes:
            errors.append(_error(target, field, "unknown_source",
                                 f"edge '{edge_id}' comes from {source!r}, which is not a node of the graph",
                                 edge=edge_id))
            continue
        reference, source_port, problem = _source_reference(nodes[source], conversion.node_types[source],
                                                            edge.get("sourceHandle"))
        if problem:
            errors.append(_error(target, field, "bad_port", f"edge '{edge_id}' from '{source}': {problem}",
                                 edge=edge_id))
            continue
        conversion.edge_sources[edge_id] = (source, source_port)
        position = nodes[source].get("position")
        position = position if isinstance(position, dict) else {}
        order = (edge.get("data") or {}).get("order") if isinstance(edge.get("data"), dict) else None
        key = (
            order if _is_number(order) else math.inf,
            position.get("y") if _is_number(position.get("y")) else 0,
            position.get("x") if _is_number(position.get("x")) else 0,
            index,
        )
        incoming.setdefault((target, port), []).append((key, edge_id, reference))
    return incoming


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _target_port(node: dict, node_type: str, handle) -> tuple[str | None, str | None]:
    """The input port an edge goes into, or a problem."""
    if node_type == INPUT:
        return None, f"input node '{node['id']}' takes no incoming edges"
    if node_type in (OUTPUT, LOSS):
        if handle not in (None, SINK_HANDLE):
            return None, f"{node_type} node '{node['id']}' has one input handle, '{SINK_HANDLE}', not {handle!r}"
        return SINK_HANDLE, None
    op = get_op(node_type)
    ports = [port.name for port in op.inputs]
    if handle is None:
        if len(ports) == 1:
            return ports[0], None
        return None, f"op '{op.name}' has input ports {', '.join(ports)}: say which one in 'targetHandle'"
    if handle not in ports:
        return None, f"op '{op.name}' has no input port {handle!r}; its input ports are {', '.join(ports) or 'none'}"
    return handle, None


def _source_reference(node: dict, node_type: str, handle) -> tuple[str | None, str | None, str | None]:
    """(spec reference, output port, problem) for an edge leaving ``node`` through ``handle``."""
    if node_type == INPUT:
        if handle not in (None, INPUT_HANDLE):
            return None, None, f"an input node has one output handle, '{INPUT_HANDLE}', not {handle!r}"
        return _node_name(node), INPUT_HANDLE, None
    if node_type in (OUTPUT, LOSS):
        return None, None, f"{node_type} nodes have no outputs to connect from"
    op = get_op(node_type)
    ports = [port.name for port in op.outputs]
    port = ports[0] if handle is None else handle
    if port not in ports:
        return None, None, f"op '{op.name}' has no output port {handle!r}; its output ports are {', '.join(ports)}"
    return value_key(node["id"], op, port), port, None


def _node_name(node: dict):
    """An input's or output's name: ``data.name``, else the node id."""
    name = node["data"].get("name")
    return node["id"] if name is None or name == "" else name


def _write_spec(document: dict, nodes: dict[str, dict], incoming: dict, conversion: Conversion) -> None:
    errors = conversion.errors
    spec = conversion.spec
    connections: dict[str, dict[str, Any]] = {node_id: {} for node_id in nodes}
    for (target, port), entries in incoming.items():
        entries.sort(key=lambda entry: entry[0])
        node_type = conversion.node_types[target]
        variadic = node_type not in SPECIAL_TYPES and any(
            p.name == port and p.variadic for p in get_op(node_type).inputs)
        if variadic:
            connections[target][port] = [reference for _, _, reference in entries]
            continue
        first = sorted(entries, key=lambda entry: entry[0][3])[0]  # document order decides which edge stays
        for _, edge_id, _ in entries:
            if edge_id != first[1]:
                errors.append(_error(target, f"inputs.{port}", "duplicate_input",
                                     f"input port '{port}' already has an edge ('{first[1]}'); it takes one tensor, so "
                                     f"edge '{edge_id}' must go elsewhere", edge=edge_id))
        connections[target][port] = first[2]

    loss_candidates = []
    for node_id, node in nodes.items():
        node_type = conversion.node_types[node_id]
        data = node["data"]
        if node_type == INPUT:
            _write_input(node, spec, conversion)
        elif node_type == OUTPUT:
            name = _node_name(node)
            if not isinstance(name, str):
                errors.append(_error(node_id, "name", "bad_name", f"an output name must be a string, got {name!r}"))
            elif name in conversion.output_nodes:
                errors.append(_error(node_id, "name", "duplicate_name",
                                     f"output name '{name}' is also used by node '{conversion.output_nodes[name]}'"))
            elif SINK_HANDLE not in connections[node_id]:
                errors.append(_error(node_id, f"inputs.{SINK_HANDLE}", "missing_input",
                                     f"output '{name}' is not connected: draw an edge into it"))
            else:
                conversion.output_nodes[name] = node_id
                spec["outputs"][name] = connections[node_id][SINK_HANDLE]
        elif node_type == LOSS:
            if conversion.loss_node is not None:
                errors.append(_error(node_id, "type", "duplicate_loss",
                                     f"the graph already has a loss node ('{conversion.loss_node}'); keep one"))
                continue
            conversion.loss_node = node_id
            if SINK_HANDLE not in connections[node_id]:
                errors.append(_error(node_id, f"inputs.{SINK_HANDLE}", "missing_input",
                                     "the loss node is not connected: draw an edge from the value to minimize"))
            else:
                spec["loss"] = connections[node_id][SINK_HANDLE]
        else:
            op = get_op(node_type)
            params = data.get("params", {})
            if params is None:
                params = {}
            if not isinstance(params, dict):
                errors.append(_error(node_id, "params", "bad_params",
                                     f"'data.params' must be an object, got {params!r}"))
                params = {}
            entry = {"id": node_id, "op": node_type}
            if params:
                entry["params"] = params
            entry["inputs"] = connections[node_id]
            if isinstance(data.get("label"), str) and data["label"]:
                entry["label"] = data["label"]
            conversion.spec_index.append(node_id)
            spec["nodes"].append(entry)
            if op.is_loss:
                loss_candidates.append((node_id, op))

    if conversion.loss_node is None and loss_candidates:
        if len(loss_candidates) == 1:
            node_id, op = loss_candidates[0]
            spec["loss"] = value_key(node_id, op, op.outputs[0].name)
        else:
            listed = ", ".join(f"'{node_id}'" for node_id, _ in loss_candidates)
            errors.append(_error(None, "loss", "ambiguous_loss",
                                 f"the graph has several loss ops ({listed}): add a loss node and connect the value "
                                 "that training minimizes (e.g. their sum) to it"))
    if not spec["outputs"] and OUTPUT not in conversion.node_types.values() and len(loss_candidates) == 1:
        # No output node drawn: what the one loss op judges (its first input, e.g. the logits) is
        # the prediction, so a trained model can predict, be evaluated and be published.
        node_id, op = loss_candidates[0]
        entry = next(entry for entry in spec["nodes"] if entry["id"] == node_id)
        judged = entry["inputs"].get(op.inputs[0].name)
        if isinstance(judged, str):
            spec["outputs"] = {"prediction": judged}
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and metadata:
        spec["metadata"] = metadata
    # The engine's key order, for readable stored specs.
    conversion.spec = {key: spec[key] for key in ("format", "inputs", "nodes", "outputs", "loss", "metadata")
                       if key in spec}


def _write_input(node: dict, spec: dict, conversion: Conversion) -> None:
    errors = conversion.errors
    node_id, data = node["id"], node["data"]
    name = _node_name(node)
    if not isinstance(name, str) or not ID_PATTERN.match(name):
        errors.append(_error(node_id, "name", "bad_name",
                             f"input name {name!r} must start with a letter or _ and use only letters, digits, "
                             "_ . - /"))
        return
    if name in conversion.input_nodes:
        errors.append(_error(node_id, "name", "duplicate_name",
                             f"input name '{name}' is also used by node '{conversion.input_nodes[name]}'"))
        return
    conversion.input_nodes[name] = node_id
    shape = data.get("shape")
    batch = data.get("batch", True)
    if not isinstance(batch, bool):
        errors.append(_error(node_id, "batch", "bad_batch", f"'batch' must be true or false, got {batch!r}"))
        batch = True
    if not isinstance(shape, list) or not all(
            size is None or (isinstance(size, int) and not isinstance(size, bool) and size > 0) for size in shape):
        errors.append(_error(node_id, "shape", "bad_shape",
                             f"shape must be a list of positive sizes per sample, without the batch axis "
                             f"(e.g. [64] or [1, 28, 28]; null for a size that varies), got {shape!r}"))
        full_shape = shape
    else:
        full_shape = [None, *shape] if batch else list(shape)
    spec["inputs"][name] = {"shape": full_shape, "dtype": data.get("dtype", "float32")}


# -- validation: conversion plus the engine, reported per editor node -------------------------------------

def check_document_size(document: Any) -> None:
    """``GraphError`` naming the field when the document has more nodes than ``GRAPH_MAX_NODES`` or
    more edges than ``GRAPH_MAX_EDGES`` (settings): refused before any work is spent on it."""
    from django.conf import settings  # noqa: PLC0415  (the converter itself needs no Django)

    if not isinstance(document, dict):
        return
    for field, limit, setting in (("nodes", settings.GRAPH_MAX_NODES, "NETFORGE_GRAPH_MAX_NODES"),
                                  ("edges", settings.GRAPH_MAX_EDGES, "NETFORGE_GRAPH_MAX_EDGES")):
        items = document.get(field)
        if isinstance(items, list) and len(items) > limit:
            raise GraphError([_error(None, field, f"too_many_{field}",
                                     f"the graph has {len(items):,} {field}, over the limit of {limit:,} "
                                     f"(the server's {setting} setting)")])


def validate_editor_document(document: Any, *, batch_size: int = DEFAULT_BATCH_SIZE,
                             label_classes: dict[Any, tuple[str, int]] | None = None,
                             training_data: TrainingData | None = None) -> dict:
    """Convert and validate; per editor node its output shapes, parameters, FLOPs and errors, per
    edge the shape and dtype it carries. Does not raise for a bad document (``ok`` is false
    instead), only for one over the size limits (``check_document_size``).

    Returns ``{"ok", "spec", "nodes": {id: {"type", "outputs": {port: {shape, dtype}}, "parameters",
    "flops_per_sample", "weights", "errors"}}, "edges": {id: {"shape", "dtype", "errors"}},
    "errors": [graph-level errors], "error_count", "total_parameters", "flops_per_sample",
    "memory_bytes", "batch_size"}``.

    ``label_classes`` maps the ``data.dataset`` of input nodes bound as labels (``data.role``
    "labels") to the dataset's (name, number of classes): a classifier whose logits give another
    number of scores is then flagged on the node that makes them.

    ``training_data`` is the dataset the graph will train on: each input is checked with the
    trainer's binding rule and the loss against its labels (``webapp.projects.training_data``),
    errors carrying a ``fix`` where one exists.
    """
    check_document_size(document)
    with collector_paused():  # see webapp.core.json_input
        return _validate_editor_document(document, batch_size, label_classes, training_data)


def _validate_editor_document(document: Any, batch_size: int, label_classes, training_data) -> dict:
    conversion = editor_to_spec(document)
    report = validate(conversion.spec, batch_size=batch_size)
    # A document that is not even an object has nothing for the engine to find wrong besides.
    engine_errors = report.errors if isinstance(document, dict) else []
    nodes = {
        node_id: {"type": node_type, "outputs": {}, "parameters": 0, "flops_per_sample": 0, "weights": {}, "errors": []}
        for node_id, node_type in conversion.node_types.items()
    }
    graph_errors: list[dict] = []
    said = {(error["node"], error["field"]) for error in conversion.errors}
    edge_errors: dict[str, list] = {}

    def place(error: dict, from_engine: bool) -> None:
        if from_engine and (error["node"], error["field"]) in said:
            return  # the converter already said what is wrong with this node's field
        if error["node"] in nodes:
            nodes[error["node"]]["errors"].append(error)
        else:
            graph_errors.append(error)
        if error.get("edge"):
            edge_errors.setdefault(error["edge"], []).append(error)

    for error in conversion.errors:
        place(error, from_engine=False)
    for error in engine_errors:
        place(_to_editor_terms(error, conversion), from_engine=True)

    for node_id, entry in report.nodes.items():
        if node_id in nodes:
            nodes[node_id].update({key: entry[key] for key in ("outputs", "parameters", "flops_per_sample", "weights")})
    input_types = _input_types(conversion, nodes)
    for name, node_id in conversion.input_nodes.items():
        if name in input_types:
            nodes[node_id]["outputs"] = {INPUT_HANDLE: input_types[name]}

    classes_by_node = _bound_label_classes(document, label_classes or {})
    if training_data is not None and isinstance(document, dict):
        declared = {name: conversion.input_nodes[name] for name in input_types}
        binding, errors = training_data_checks.input_errors(input_types, declared, training_data)
        trained_classes, label_problems = training_data_checks.label_errors(document, nodes, declared, binding,
                                                                            training_data)
        classes_by_node.update(trained_classes)  # what trains wins over a label input's own binding
        for error in errors + label_problems:
            place(error, from_engine=False)
    for error in _class_count_errors(document, nodes, classes_by_node):
        place(error, from_engine=False)

    edges = {}
    for edge_id, (source, port) in conversion.edge_sources.items():
        carried = nodes.get(source, {}).get("outputs", {}).get(port, {})
        edges[edge_id] = {"shape": carried.get("shape"), "dtype": carried.get("dtype"),
                          "errors": edge_errors.pop(edge_id, [])}
    for edge_id, errors in edge_errors.items():  # edges that could not be resolved at all
        edges[edge_id] = {"shape": None, "dtype": None, "errors": errors}

    error_count = len(graph_errors) + sum(len(entry["errors"]) for entry in nodes.values())
    return {
        "ok": error_count == 0,
        "spec": conversion.spec,
        "nodes": nodes,
        "edges": edges,
        "errors": graph_errors,
        "error_count": error_count,
        "total_parameters": report.total_parameters,
        "flops_per_sample": report.total_flops,
        "memory_bytes": report.memory_bytes,
        "batch_size": batch_size,
    }


CLASSIFIER_LOSSES = ("softmax_cross_entropy",)


def _bound_label_classes(document: Any, label_classes: dict) -> dict[str, tuple[str, int]]:
    """Per editor node of an input bound as labels (``data.role``) to a dataset of ``label_classes``,
    that dataset's (name, number of classes)."""
    if not label_classes or not isinstance(document, dict):
        return {}
    bound = {}
    for node in document.get("nodes") or []:
        data = node.get("data") if isinstance(node, dict) else None
        if not isinstance(data, dict):
            continue
        dataset = data.get("dataset")
        if data.get("role") == "labels" and isinstance(dataset, int) and dataset in label_classes:
            bound[str(node.get("id"))] = label_classes[dataset]
    return bound


def _class_count_errors(document: Any, nodes: dict, classes_by_node: dict) -> list[dict]:
    """A classifier loss fed labels with K classes (``classes_by_node``: per editor node of a labels
    input, the dataset's name and K), and logits of another width: the error goes on the node that
    makes the logits (its ``units`` when it has them, with the fix that sets them)."""
    if not classes_by_node or not isinstance(document, dict) or not isinstance(document.get("edges"), list):
        return []
    sources: dict[tuple, tuple] = {}
    for edge in document["edges"]:
        if isinstance(edge, dict):
            sources[(edge.get("target"), edge.get("targetHandle"))] = (edge.get("source"), edge.get("sourceHandle"))
    errors = []
    for node_id, entry in nodes.items():
        if entry["type"] not in CLASSIFIER_LOSSES:
            continue
        labels_source, _ = sources.get((node_id, "labels"), (None, None))
        logits_source, logits_port = sources.get((node_id, "logits"), (None, None))
        if logits_source not in nodes:
            continue
        known = classes_by_node.get(labels_source)
        outputs = nodes[logits_source]["outputs"]
        carried = outputs.get(logits_port) or next(iter(outputs.values()), {})
        shape = carried.get("shape") or []
        if known is None or not shape or shape[-1] is None:
            continue
        name, classes = known
        if shape[-1] == classes:
            continue
        op = get_op(nodes[logits_source]["type"]) if isinstance(nodes[logits_source]["type"], str) else None
        has_units = op is not None and any(param.name == "units" for param in getattr(op, "params", ()))
        error = _error(
            logits_source, "params.units" if has_units else "outputs", "class_count_mismatch",
            f"gives {shape[-1]} scores per sample, but the labels of dataset '{name}' have {classes} classes"
            + (f": set units to {classes}" if has_units else ""),
        )
        if has_units:
            error["fix"] = {"kind": "set_param", "param": "units", "value": classes}
            error["fixes"] = [error["fix"]]
        errors.append(error)
    return errors


# Engine messages about the spec's structure, said in the editor's terms.
_EDITOR_MESSAGES = {
    "missing_inputs": "the graph has no input nodes: add one for each tensor the data feeds",
    "bad_inputs": "the graph has no input nodes: add one for each tensor the data feeds",
    "no_loss": "the graph has no loss: add a loss op (e.g. softmax_cross_entropy or mse), or a loss node "
               "connected to the value training minimizes",
}


def _to_editor_terms(error: dict, conversion: Conversion) -> dict:
    """An engine error re-addressed to the editor node it is about."""
    node, field = error.get("node"), error.get("field") or ""
    mapped = dict(error)
    if error.get("code") in _EDITOR_MESSAGES and node is None:
        mapped["message"] = _EDITOR_MESSAGES[error["code"]]
    if node is None:
        head, _, rest = field.partition(".")
        if field.startswith("nodes[") and "]" in field:
            index = int(field[len("nodes["):field.index("]")])
            if index < len(conversion.spec_index):
                mapped["node"] = conversion.spec_index[index]
                mapped["field"] = field[field.index("]") + 1:].lstrip(".") or None
        elif head == "inputs" and rest:
            name, _, sub = rest.partition(".")
            if name in conversion.input_nodes:
                mapped["node"] = conversion.input_nodes[name]
                mapped["field"] = sub or "name"
        elif head == "outputs" and rest and rest in conversion.output_nodes:
            mapped["node"] = conversion.output_nodes[rest]
            mapped["field"] = f"inputs.{SINK_HANDLE}"
        elif field == "loss" and conversion.loss_node is not None:
            mapped["node"] = conversion.loss_node
            mapped["field"] = f"inputs.{SINK_HANDLE}"
    return mapped


def _input_types(conversion: Conversion, nodes: dict) -> dict[str, dict]:
    """Declared type of each input whose declaration is valid (the engine checked it)."""
    types = {}
    for name, declaration in conversion.spec["inputs"].items():
        node_id = conversion.input_nodes.get(name)
        if node_id is None or any(e["field"] in ("shape", "dtype", "name") for e in nodes[node_id]["errors"]):
            continue
        types[name] = {"shape": list(declaration["shape"]), "dtype": declaration["dtype"]}
    return types


def editor_document_to_spec(document: Any, *, batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[dict, dict]:
    """The valid spec of a document and its validation report, or ``GraphError`` with every problem
    (in editor terms) when it is not valid. For saving graph versions."""
    report = validate_editor_document(document, batch_size=batch_size)
    if not report["ok"]:
        problems = list(report["errors"])
        for entry in report["nodes"].values():
            problems.extend(entry["errors"])
        raise GraphError(problems)
    return report["spec"], report


# -- the other way: a spec opened in the editor (zoo models, templates) -----------------------------------

def spec_to_editor_document(spec: dict) -> dict:
    """An editor document for a ``netforge.graph/1`` spec, laid out left to right in topological
    layers (inputs first, outputs last). Converting it back gives the same spec (up to empty
    ``params``, which are left out)."""
    if not (isinstance(spec, dict) and isinstance(spec.get("nodes"), list) and isinstance(spec.get("inputs"), dict)):
        raise GraphError([_error(None, None, "bad_spec", "a netforge.graph/1 spec needs 'inputs' and 'nodes'")])
    spec_nodes = [node for node in spec["nodes"] if isinstance(node, dict) and isinstance(node.get("id"), str)]
    ops = {node["id"]: get_op(node.get("op")) for node in spec_nodes}

    def source_of(reference: str) -> tuple[str, str]:
        if reference in spec["inputs"]:
            return reference, INPUT_HANDLE
        node_id, separator, port = reference.partition(PORT_SEPARATOR)
        if separator:
            return node_id, port
        op = ops.get(reference)
        return reference, op.outputs[0].name if op is not None else "out"

    layers = _layers(spec_nodes, spec["inputs"], lambda reference: source_of(reference)[0])

    def layer_of(node_id: str) -> int:
        return layers.get(node_id, 0)

    nodes, edges = [], []
    for name, declaration in spec["inputs"].items():
        shape = list(declaration.get("shape") or [])
        data = {"name": name, "shape": shape[1:], "dtype": declaration.get("dtype", "float32")}
        if not shape or shape[0] is not None:
            data.update(shape=shape, batch=False)
        nodes.append({"id": name, "type": INPUT, "data": data, "_layer": 0})
    for node in spec_nodes:
        data = {"params": dict(node.get("params") or {})}
        if node.get("label"):
            data["label"] = node["label"]
        nodes.append({"id": node["id"], "type": node.get("op"), "data": data, "_layer": layer_of(node["id"])})
        for port, value in (node.get("inputs") or {}).items():
            references = value if isinstance(value, list) else [value]
            for order, reference in enumerate(references):
                if not isinstance(reference, str):
                    continue
                source, handle = source_of(reference)
                edge = {"id": f"{source}.{handle}->{node['id']}.{port}", "source": source, "sourceHandle": handle,
                        "target": node["id"], "targetHandle": port}
                if isinstance(value, list):
                    edge["id"] += f"[{order}]"
                    edge["data"] = {"order": order}
                edges.append(edge)

    taken = {node["id"] for node in nodes}

    def sink(node_type: str, wanted_id: str, data: dict, reference: str) -> None:
        node_id, suffix = wanted_id, 2
        while node_id in taken:
            node_id, suffix = f"{wanted_id}_{suffix}", suffix + 1
        taken.add(node_id)
        source, handle = source_of(reference)
        nodes.append({"id": node_id, "type": node_type, "data": data, "_layer": layer_of(source) + 1})
        edges.append({"id": f"{source}.{handle}->{node_id}.{SINK_HANDLE}", "source": source, "sourceHandle": handle,
                      "target": node_id, "targetHandle": SINK_HANDLE})

    for name, reference in (spec.get("outputs") or {}).items():
        if isinstance(reference, str):
            sink(OUTPUT, f"output:{name}", {"name": name}, reference)
    loss = spec.get("loss")
    loss_ops = [node["id"] for node in spec_nodes if ops.get(node["id"]) is not None and ops[node["id"]].is_loss]
    implied = len(loss_ops) == 1 and loss == value_key(loss_ops[0], ops[loss_ops[0]], ops[loss_ops[0]].outputs[0].name)
    if isinstance(loss, str) and not implied:
        sink(LOSS, "loss:target", {}, loss)

    columns: dict[int, int] = {}
    for node in nodes:
        layer = node.pop("_layer")
        column = columns.get(layer, 0)
        columns[layer] = column + 1
        node["position"] = {"x": column * COLUMN_SPACING, "y": layer * LAYER_SPACING}
    document = {"format": EDITOR_FORMAT, "nodes": [_ordered(node) for node in nodes], "edges": edges}
    if isinstance(spec.get("metadata"), dict) and spec["metadata"]:
        document["metadata"] = spec["metadata"]
    return document


def _layers(spec_nodes: list[dict], inputs: dict, source_node) -> dict[str, int]:
    """Layer of each node: inputs 0, a node one more than its deepest source (Kahn's order;
    nodes on a cycle, which the engine rejects anyway, stay in layer 0)."""
    layers = {name: 0 for name in inputs}
    deps = {node["id"]: {source_node(ref) for ref in _references(node.get("inputs"))} for node in spec_nodes}
    users: dict[str, list[str]] = {}
    for node_id, sources in deps.items():
        for source in sources:
            users.setdefault(source, []).append(node_id)
    waiting = {node_id: len([s for s in sources if s in deps]) for node_id, sources in deps.items()}
    ready = [node_id for node_id, count in waiting.items() if count == 0]
    while ready:
        node_id = ready.pop()
        layers[node_id] = 1 + max((layers.get(source, 0) for source in deps[node_id]), default=0)
        for user in users.get(node_id, []):
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    return layers


def _ordered(node: dict) -> dict:
    return {"id": node["id"], "type": node["type"], "position": node["position"], "data": node["data"]}


def _references(inputs) -> list[str]:
    if not isinstance(inputs, dict):
        return []
    references = []
    for value in inputs.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                references.append(item)
    return references
