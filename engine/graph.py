"""The engine graph format (``netforge.graph/1``): parsing, validation and shape inference.

``analyze(spec)`` reads a JSON-ready document, collects every problem at once (each naming the
node id and the field), and for a valid graph infers every node's output types, weights,
parameter count and FLOPs per sample without running anything. ``validate(spec)`` returns that
as a ``Report``. ``GraphBuilder`` writes the same document from Python.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from typing import Any

from engine.errors import GraphError, ShapeError
from engine.ops._util import format_shape
from engine.registry import DTYPES, Op, TensorType, Weight, get_op, op_names

FORMAT = "netforge.graph/1"
ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
PORT_SEPARATOR = ":"
DEFAULT_MAX_PARAMETERS = 500_000_000
DEFAULT_MAX_MEMORY_BYTES = 8 * 1024**3
DEFAULT_BATCH_SIZE = 32


@dataclasses.dataclass
class Node:
    """One parsed node: its op, resolved params, and for each input port a value key or a list."""

    id: str
    op: Op
    params: Any
    inputs: dict[str, str | list[str]]
    output_keys: tuple[str, ...] = ()
    types: tuple[TensorType, ...] = ()
    weights: tuple[Weight, ...] = ()
    flops: int = 0


@dataclasses.dataclass
class Analysis:
    """Everything known about a graph document without running it."""

    inputs: dict[str, TensorType]
    nodes: dict[str, Node]
    order: list[str]
    outputs: dict[str, str]
    loss: str | None
    errors: list[dict]
    value_types: dict[str, TensorType]
    producers: dict[str, str]
    metadata: dict
    origins: dict[str, str] = dataclasses.field(default_factory=dict)  # inner node id -> block node id
    blocks: dict[str, dict] = dataclasses.field(default_factory=dict)  # block node id -> name, outputs
    failed_blocks: set[str] = dataclasses.field(default_factory=set)  # block nodes that could not expand

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        if self.errors:
            raise GraphError(self.errors)


@dataclasses.dataclass
class Report:
    """What ``validate`` returns: errors, or per-node shapes, parameter counts and FLOPs."""

    errors: list[dict]
    nodes: dict[str, dict]
    total_parameters: int
    total_flops: int
    memory_bytes: int
    batch_size: int

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "nodes": self.nodes,
            "total_parameters": self.total_parameters,
            "flops_per_sample": self.total_flops,
            "memory_bytes": self.memory_bytes,
            "batch_size": self.batch_size,
        }


def value_key(node_id: str, op: Op, port: str) -> str:
    """The key of a node's output: the node id for the first output, ``id:port`` for others."""
    return node_id if port == op.outputs[0].name else f"{node_id}{PORT_SEPARATOR}{port}"


def _error(errors: list, node: str | None, field: str | None, code: str, message: str) -> None:
    errors.append({"node": node, "field": field, "code": code, "message": message})


def analyze(spec: Any, *, require_loss: bool = True) -> Analysis:
    """Parse and check a graph document; never raises for bad input, returns errors instead."""
    errors: list[dict] = []
    analysis = Analysis({}, {}, [], {}, None, errors, {}, {}, {})
    if not isinstance(spec, dict):
        _error(errors, None, None, "not_an_object",
               f"a graph document must be a JSON object, got {type(spec).__name__}")
        return analysis
    fmt = spec.get("format")
    if fmt is None:
        _error(errors, None, "format", "missing_format", f"missing 'format': expected \"{FORMAT}\"")
    elif fmt != FORMAT:
        _error(errors, None, "format", "bad_format", f"unsupported format {fmt!r}: this engine reads \"{FORMAT}\"")
    known_top = {"format", "inputs", "nodes", "outputs", "loss", "metadata"}
    for key in spec:
        if key not in known_top:
            _error(errors, None, key, "unknown_field",
                   f"unknown top-level field '{key}'; expected {', '.join(sorted(known_top))}")
    metadata = spec.get("metadata", {})
    analysis.metadata = metadata if isinstance(metadata, dict) else {}

    _parse_inputs(spec.get("inputs"), analysis)
    spec = _expand_blocks(spec, analysis)
    _parse_nodes(spec.get("nodes"), analysis)
    _parse_outputs(spec, analysis, require_loss)
    _order_nodes(analysis)
    _infer_types(analysis)
    _check_loss_and_reachability(analysis, require_loss)
    _map_block_errors(analysis)
    return analysis


def _expand_blocks(spec: dict, analysis: Analysis) -> dict:
    """The document with block nodes replaced by their inner nodes and references to block
    outputs replaced by the inner values (see ``engine.blocks``); the caller's spec is not changed."""
    from engine import blocks  # noqa: PLC0415 - blocks load their JSON files on first use

    nodes = spec.get("nodes")
    if not isinstance(nodes, list) or not any(
        isinstance(entry, dict) and isinstance(entry.get("op"), str) and blocks.get_block(entry["op"])
        for entry in nodes
    ):
        return spec
    before = len(analysis.errors)
    flat, origins, aliases, expanded = blocks.expand(nodes, analysis.errors)
    analysis.origins, analysis.blocks = origins, expanded
    analysis.failed_blocks = {error["node"] for error in analysis.errors[before:]}

    def resolve(ref):
        if isinstance(ref, list):
            return [resolve(r) for r in ref]
        return blocks.resolve_alias(ref, aliases) if isinstance(ref, str) else ref

    rewritten = []
    for entry in flat:
        if isinstance(entry, dict) and isinstance(entry.get("inputs"), dict):
            entry = {**entry, "inputs": {port: resolve(ref) for port, ref in entry["inputs"].items()}}
        rewritten.append(entry)
    for info in expanded.values():
        info["outputs"] = {port: resolve(ref) for port, ref in info["outputs"].items()}
    result = {**spec, "nodes": rewritten}
    if isinstance(spec.get("outputs"), dict):
        result["outputs"] = {name: resolve(ref) for name, ref in spec["outputs"].items()}
    if "loss" in spec:
        result["loss"] = resolve(spec["loss"])
    return result


def _map_block_errors(analysis: Analysis) -> None:
    """Errors inside a block name the block node the author drew; the field says where inside.
    While a block cannot be expanded (bad parameters), the errors that follow from its absence
    (references to it, nodes left without a path to the loss) are left out."""
    if analysis.failed_blocks:
        failed = {f"'{node_id}'" for node_id in analysis.failed_blocks}
        analysis.errors[:] = [
            error for error in analysis.errors
            if error["code"] not in ("unreachable_loss", "dangling")
            and not (error["code"] == "unknown_reference" and any(name in error["message"] for name in failed))
        ]
    for error in analysis.errors:
        inner = error.get("node")
        outer = analysis.origins.get(inner)
        if outer is None:
            continue
        relative = inner[len(outer) + 1:]
        error["node"] = outer
        error["field"] = f"block.{relative}" + (f".{error['field']}" if error.get("field") else "")
        error["message"] = f"inside block '{analysis.blocks[outer]['block']}', node '{relative}': {error['message']}"


def _parse_inputs(raw, analysis: Analysis) -> None:
    errors = analysis.errors
    if raw is None:
        _error(errors, None, "inputs", "missing_inputs", "missing 'inputs': declare the graph's input tensors")
        return
    if not isinstance(raw, dict) or not raw:
        _error(errors, None, "inputs", "bad_inputs", "'inputs' must be a non-empty object of name -> {shape, dtype}")
        return
    for name, declaration in raw.items():
        field = f"inputs.{name}"
        if not isinstance(name, str) or not ID_PATTERN.match(name):
            _error(errors, None, field, "bad_id",
                   f"input name {name!r} must start with a letter or _ and use letters, digits, _ . - /")
            continue
        if not isinstance(declaration, dict):
            _error(errors, None, field, "bad_input", f"input '{name}' must be an object with 'shape' and 'dtype'")
            continue
        shape = declaration.get("shape")
        dtype = declaration.get("dtype", "float32")
        ok = True
        if not isinstance(shape, list) or not all(
            s is None or (isinstance(s, int) and not isinstance(s, bool) and s > 0) for s in shape
        ):
            _error(errors, None, f"{field}.shape", "bad_shape",
                   f"input '{name}' shape must be a list of positive integers or null (the batch), got {shape!r}")
            ok = False
        if dtype not in DTYPES:
            _error(errors, None, f"{field}.dtype", "bad_dtype",
                   f"input '{name}' dtype {dtype!r} is not one of {', '.join(DTYPES)}")
            ok = False
        if ok:
            analysis.inputs[name] = TensorType(tuple(shape), dtype)
            analysis.value_types[name] = analysis.inputs[name]


def _parse_nodes(raw, analysis: Analysis) -> None:
    errors = analysis.errors
    if raw is None:
        _error(errors, None, "nodes", "missing_nodes", "missing 'nodes': the graph has no operations")
        return
    if not isinstance(raw, list):
        _error(errors, None, "nodes", "bad_nodes", "'nodes' must be a list of node objects")
        return
    # First pass: ids and ops, so that references can be checked against every node.
    pending = []
    pending_ids: set[str] = set()
    for index, entry in enumerate(raw):
        where = f"nodes[{index}]"
        if not isinstance(entry, dict):
            _error(errors, None, where, "bad_node", f"{where} must be an object with 'id', 'op', 'params', 'inputs'")
            continue
        node_id = entry.get("id")
        if not isinstance(node_id, str) or not ID_PATTERN.match(node_id):
            _error(errors, None, f"{where}.id", "bad_id",
                   f"{where} needs an 'id' that starts with a letter or _ and uses letters, digits, _ . - / "
                   f"(got {node_id!r})")
            continue
        if node_id in analysis.nodes or node_id in analysis.inputs or node_id in pending_ids:
            _error(errors, node_id, "id", "duplicate_id",
                   f"id '{node_id}' is used twice (node ids and input names must be unique)")
            continue
        for key in entry:
            if key not in ("id", "op", "params", "inputs", "label", "ui"):
                _error(errors, node_id, key, "unknown_field", f"unknown field '{key}' in node '{node_id}'")
        op_name = entry.get("op")
        op = get_op(op_name) if isinstance(op_name, str) else None
        if not isinstance(op, Op):
            op = None
        if op is None:
            suggestion = _closest(op_name, op_names() + _block_names()) if isinstance(op_name, str) else None
            hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
            _error(errors, node_id, "op", "unknown_op", f"unknown op {op_name!r}{hint}")
            continue
        pending.append((node_id, op, entry))
        pending_ids.add(node_id)
    output_owner = {}
    for node_id, op, _entry in pending:
        for port in op.outputs:
            output_owner[value_key(node_id, op, port.name)] = node_id
    for node_id, op, entry in pending:
        raw_params = entry.get("params", {})
        if not isinstance(raw_params, dict):
            _error(errors, node_id, "params", "bad_params", "'params' must be an object")
            raw_params = {}
        params, param_errors = op.resolve(raw_params)
        for field, message in param_errors:
            _error(errors, node_id, field, "bad_param", message)
        node = Node(node_id, op, params, {})
        node.output_keys = tuple(value_key(node_id, op, port.name) for port in op.outputs)
        _parse_node_inputs(node, entry.get("inputs", {}), output_owner, analysis)
        analysis.nodes[node_id] = node
        for key in node.output_keys:
            analysis.producers[key] = node_id
    for key in list(analysis.inputs):
        analysis.producers.setdefault(key, None)


def _parse_node_inputs(node: Node, raw, output_owner: dict, analysis: Analysis) -> None:
    errors = analysis.errors
    if not isinstance(raw, dict):
        _error(errors, node.id, "inputs", "bad_inputs", "'inputs' must be an object of port -> reference")
        return
    ports = {port.name: port for port in node.op.inputs}
    for name in raw:
        if name not in ports:
            _error(errors, node.id, f"inputs.{name}", "extra_input",
                   f"op '{node.op.name}' has no input port '{name}'; its ports are {', '.join(ports)}")
    for port in node.op.inputs:
        field = f"inputs.{port.name}"
        ref = raw.get(port.name)
        if ref is None:
            if not port.optional:
                _error(errors, node.id, field, "missing_input", f"input port '{port.name}' is not connected")
            continue
        refs = ref if isinstance(ref, list) else [ref]
        if port.variadic and not isinstance(ref, list):
            refs = [ref]
        if not port.variadic and isinstance(ref, list):
            _error(errors, node.id, field, "bad_reference", f"input port '{port.name}' takes one tensor, got a list")
            continue
        if port.variadic and not refs:
            _error(errors, node.id, field, "missing_input", f"input port '{port.name}' needs at least one tensor")
            continue
        resolved = []
        for item in refs:
            if not isinstance(item, str):
                _error(errors, node.id, field, "bad_reference",
                       f"input port '{port.name}' must reference a node or input by name, got {item!r}")
                break
            key = _resolve_reference(item, output_owner, analysis)
            if key is None:
                _error(errors, node.id, field, "unknown_reference",
                       f"input port '{port.name}' refers to '{item}', which is neither a graph input nor a node output")
                break
            resolved.append(key)
        else:
            node.inputs[port.name] = resolved if port.variadic else resolved[0]


def _resolve_reference(ref: str, output_owner: dict, analysis: Analysis) -> str | None:
    if ref in analysis.inputs or ref in output_owner:
        return ref
    return None


def _parse_outputs(spec: dict, analysis: Analysis, require_loss: bool) -> None:
    errors = analysis.errors
    raw = spec.get("outputs", {})
    known = set(analysis.inputs) | set(analysis.producers)
    if not isinstance(raw, dict):
        _error(errors, None, "outputs", "bad_outputs", "'outputs' must be an object of name -> node reference")
        raw = {}
    for name, ref in raw.items():
        if not isinstance(ref, str) or ref not in known:
            _error(errors, None, f"outputs.{name}", "unknown_reference",
                   f"output '{name}' refers to {ref!r}, which is not a node output")
        else:
            analysis.outputs[name] = ref
    loss = spec.get("loss")
    if loss is None:
        if require_loss:
            _error(errors, None, "loss", "no_loss",
                   "the graph has no 'loss': name the node whose value training minimizes")
    elif not isinstance(loss, str) or loss not in analysis.producers or analysis.producers[loss] is None:
        _error(errors, None, "loss", "unknown_reference", f"'loss' refers to {loss!r}, which is not a node output")
    else:
        analysis.loss = loss


def _order_nodes(analysis: Analysis) -> None:
    """Topological order (Kahn); nodes left over sit on a cycle, reported with the loop."""
    nodes = analysis.nodes
    deps: dict[str, set[str]] = {}
    for node in nodes.values():
        deps[node.id] = {analysis.producers[key] for key in _flat_inputs(node) if analysis.producers.get(key)}
    users: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for node_id, ds in deps.items():
        for d in ds:
            users[d].append(node_id)
    remaining = {node_id: len(ds) for node_id, ds in deps.items()}
    queue = deque(node_id for node_id in nodes if remaining[node_id] == 0)
    order = []
    while queue:
        node_id = queue.popleft()
        order.append(node_id)
        for user in users[node_id]:
            remaining[user] -= 1
            if remaining[user] == 0:
                queue.append(user)
    analysis.order = order
    stuck = [node_id for node_id in nodes if remaining[node_id] > 0]
    cyclic = _nodes_on_cycles(stuck, deps)
    for node_id in stuck:
        if node_id in cyclic:
            loop = " -> ".join(cyclic[node_id])
            _error(analysis.errors, node_id, "inputs", "cycle", f"node '{node_id}' is part of a cycle: {loop}")
        else:
            _error(analysis.errors, node_id, "inputs", "cycle", f"node '{node_id}' depends on a cycle upstream")


def _nodes_on_cycles(stuck: list[str], deps: dict[str, set[str]]) -> dict[str, list[str]]:
    """For each stuck node that lies on a cycle, one loop through it (for the message)."""
    stuck_set = set(stuck)
    loops = {}
    for start in stuck:
        # Breadth-first search from start back to start along dependency edges.
        parents = {start: None}
        queue = deque([start])
        found = None
        while queue and found is None:
            current = queue.popleft()
            for dep in sorted(deps[current]):
                if dep == start:
                    found = current
                    break
                if dep in stuck_set and dep not in parents:
                    parents[dep] = current
                    queue.append(dep)
        if found is not None:
            path = [found]
            while parents[path[-1]] is not None:
                path.append(parents[path[-1]])
            path = list(reversed(path))  # start ... found, and found depends on start
            loops[start] = [start] + list(reversed(path[1:])) + [start] if len(path) > 1 else [start, start]
    return loops


def _flat_inputs(node: Node) -> list[str]:
    keys = []
    for value in node.inputs.values():
        keys.extend(value if isinstance(value, list) else [value])
    return keys


def _infer_types(analysis: Analysis) -> None:
    for node_id in analysis.order:
        node = analysis.nodes[node_id]
        if any(key not in analysis.value_types for key in _flat_inputs(node)):
            continue  # an upstream problem is already reported
        if len(node.inputs) != sum(1 for port in node.op.inputs if port.name in node.inputs) or any(
            port.name not in node.inputs and not port.optional for port in node.op.inputs
        ):
            continue
        if any(getattr(node.params, param.name) is None and param.required for param in node.op.params):
            continue
        args = []
        dtype_ok = True
        for port in node.op.inputs:
            if port.name not in node.inputs:
                args.append(None)
                continue
            value = node.inputs[port.name]
            keys = value if isinstance(value, list) else [value]
            types_ = [analysis.value_types[key] for key in keys]
            for key, t in zip(keys, types_):
                if not port.accepts(t.dtype):
                    _error(analysis.errors, node_id, f"inputs.{port.name}", "dtype_mismatch",
                           f"input port '{port.name}' takes {port.dtype} tensors, but '{key}' is {t.dtype}")
                    dtype_ok = False
            args.append(types_ if port.variadic else types_[0])
        if not dtype_ok:
            continue
        try:
            result = node.op.infer(node.params, *args)
            outputs = result if isinstance(result, tuple) else (result,)
            weights = tuple(node.op.weights(node.params, *args))
        except ShapeError as error:
            _error(analysis.errors, node_id, error.field or "inputs", "shape_mismatch", str(error))
            continue
        node.types = outputs
        node.weights = weights
        arg_types = tuple(a for a in args if a is not None)
        node.flops = int(node.op.flops(node.params, arg_types, outputs))
        for key, t in zip(node.output_keys, outputs):
            analysis.value_types[key] = t


def _check_loss_and_reachability(analysis: Analysis, require_loss: bool) -> None:
    errors = analysis.errors
    nodes = analysis.nodes
    if analysis.loss is not None:
        loss_node = nodes[analysis.producers[analysis.loss]]
        loss_type = analysis.value_types.get(analysis.loss)
        if loss_type is not None and (loss_type.shape != () or loss_type.dtype not in ("float32", "float64")):
            _error(errors, loss_node.id, "loss", "bad_loss",
                   f"the loss must be a float scalar, but '{analysis.loss}' has shape {format_shape(loss_type.shape)} "
                   f"and dtype {loss_type.dtype}; reduce it with a loss op or 'mean'")
    if analysis.errors and any(e["code"] in ("cycle",) for e in errors):
        return
    feeds_loss = _ancestors(analysis, [analysis.loss] if analysis.loss else [])
    feeds_output = _ancestors(analysis, list(analysis.outputs.values()))
    for node_id in analysis.order:
        node = nodes[node_id]
        if require_loss and analysis.loss and node_id not in feeds_loss:
            if any(w.trainable for w in node.weights):
                _error(errors, node_id, "outputs", "unreachable_loss",
                       f"node '{node_id}' has trainable weights but does not reach the loss '{analysis.loss}', "
                       "so they would never train")
                continue
        if node_id not in feeds_loss and node_id not in feeds_output:
            _error(errors, node_id, "outputs", "dangling",
                   f"the output of node '{node_id}' reaches neither the loss nor a graph output")


def _ancestors(analysis: Analysis, keys: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = [analysis.producers.get(key) for key in keys]
    while stack:
        node_id = stack.pop()
        if node_id is None or node_id in seen or node_id not in analysis.nodes:
            continue
        seen.add(node_id)
        stack.extend(analysis.producers.get(key) for key in _flat_inputs(analysis.nodes[node_id]))
    return seen


def _block_names() -> list[str]:
    from engine.blocks import block_names  # noqa: PLC0415

    return block_names()


def _closest(name: str, candidates: list[str]) -> str | None:
    import difflib  # noqa: PLC0415

    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def validate(
    spec: Any,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_parameters: int = DEFAULT_MAX_PARAMETERS,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    require_loss: bool = True,
) -> Report:
    """Check a graph document and describe it: every error at once, else shapes and costs."""
    analysis = analyze(spec, require_loss=require_loss)
    nodes_report = {}
    total_parameters = 0
    total_flops = 0
    activation_elements = 0
    largest = []
    for node_id in analysis.order:
        node = analysis.nodes[node_id]
        if not node.types:
            continue
        parameters = sum(w.size for w in node.weights if w.trainable)
        total_parameters += parameters
        total_flops += node.flops
        per_sample = sum(t.per_sample_size() for t in node.types)
        activation_elements += per_sample
        largest.append((per_sample, node_id))
        nodes_report[node_id] = {
            "op": node.op.name,
            "outputs": {port.name: t.to_json() for port, t in zip(node.op.outputs, node.types)},
            "parameters": parameters,
            "flops_per_sample": node.flops,
            "weights": {w.name: list(w.shape) for w in node.weights},
        }
    for block_id, info in analysis.blocks.items():
        inner = [node_id for node_id, outer in analysis.origins.items() if outer == block_id]
        types = {port: analysis.value_types.get(ref) for port, ref in info["outputs"].items()}
        nodes_report[block_id] = {
            "op": info["block"],
            "block": True,
            "outputs": {port: t.to_json() for port, t in types.items() if t is not None},
            "parameters": sum(nodes_report.get(n, {}).get("parameters", 0) for n in inner),
            "flops_per_sample": sum(nodes_report.get(n, {}).get("flops_per_sample", 0) for n in inner),
            "weights": {f"{n[len(block_id) + 1:]}/{name}": shape for n in inner
                        for name, shape in nodes_report.get(n, {}).get("weights", {}).items()},
            "inner_nodes": [n for n in inner if n in analysis.nodes],
        }
    weight_elements = sum(w.size for node in analysis.nodes.values() for w in node.weights)
    # Weights, their gradients and two optimizer slots, plus activations kept for backward
    # and their gradients, in 4-byte floats.
    memory_bytes = 4 * (4 * weight_elements + 2 * activation_elements * batch_size)
    errors = list(analysis.errors)
    if total_parameters > max_parameters:
        _error(errors, None, "parameters", "budget",
               f"the graph has {total_parameters:,} trainable parameters, over the limit of {max_parameters:,}")
    if memory_bytes > max_memory_bytes:
        biggest = ", ".join(f"'{node_id}' ({size:,} values per sample)"
                            for size, node_id in sorted(largest, reverse=True)[:3])
        _error(errors, None, "memory", "budget",
               f"training would need about {_bytes(memory_bytes)} at batch size {batch_size}, over the limit of "
               f"{_bytes(max_memory_bytes)}; largest activations: {biggest}")
    return Report(errors, nodes_report, total_parameters, total_flops, memory_bytes, batch_size)


def _bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class GraphBuilder:
    """Writes a ``netforge.graph/1`` document from Python.

    >>> g = GraphBuilder()
    >>> x = g.input("x", [None, 64]); y = g.input("y", [None], dtype="int64")
    >>> logits = g.dense(g.relu(g.dense(x, units=32)), units=10, id="logits")
    >>> g.loss(g.softmax_cross_entropy(logits, y)); g.output("prediction", logits)
    >>> spec = g.to_spec()

    Any registered op is a method (``g.node("add", a, b)`` does the same by name): positional
    arguments fill its input ports in order (a list for a variadic port), keyword arguments are
    parameters, ``id=`` names the node.
    """

    def __init__(self):
        self._inputs: dict[str, dict] = {}
        self._nodes: list[dict] = []
        self._outputs: dict[str, str] = {}
        self._loss: str | None = None
        self._metadata: dict = {}
        self._counts: dict[str, int] = {}

    def input(self, name: str, shape, dtype: str = "float32") -> str:
        self._inputs[name] = {"shape": list(shape), "dtype": dtype}
        return name

    def node(self, op_name: str, *inputs, id: str | None = None, **params) -> str:  # matches the format
        """Add a node of ``op_name``; returns its id (the reference to its first output)."""
        op = get_op(op_name)
        if op is None:
            raise GraphError([{"node": id, "field": "op", "code": "unknown_op", "message": f"unknown op {op_name!r}"}])
        if len(inputs) > len(op.inputs):
            raise GraphError([{"node": id, "field": "inputs", "code": "extra_input",
                               "message": f"op '{op_name}' takes {len(op.inputs)} inputs, got {len(inputs)}"}])
        if id is None:
            self._counts[op_name] = self._counts.get(op_name, 0) + 1
            id = f"{op_name}{self._counts[op_name]}"
        ports = {port.name: ref for port, ref in zip(op.inputs, inputs) if ref is not None}
        self._nodes.append({"id": id, "op": op_name, "params": params, "inputs": ports})
        return id

    def __getattr__(self, op_name: str):
        if op_name.startswith("_") or get_op(op_name) is None:
            raise AttributeError(op_name)
        return lambda *inputs, **params: self.node(op_name, *inputs, **params)

    def output(self, name: str, ref: str) -> None:
        self._outputs[name] = ref

    def loss(self, ref: str) -> None:
        self._loss = ref

    def metadata(self, **values) -> None:
        self._metadata.update(values)

    def to_spec(self) -> dict:
        spec = {"format": FORMAT, "inputs": self._inputs, "nodes": self._nodes, "outputs": self._outputs}
        if self._loss is not None:
            spec["loss"] = self._loss
        if self._metadata:
            spec["metadata"] = self._metadata
        return spec


__all__ = ["FORMAT", "Analysis", "GraphBuilder", "Node", "Report", "analyze", "validate", "value_key"]
