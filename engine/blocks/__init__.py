"""Composite blocks: subgraphs written once in the graph format (``engine/blocks/*.json``), shown by
the editor as one node that can be opened, and expanded into their inner nodes before analysis.

A block document (``"format": "netforge.block/1"``) declares a name, category, doc, a parameter
schema (the op catalog's ``Param`` fields), named input ports (``name``, ``dtype``, ``doc`` and
``rank`` [min, max] as an op's ports have them), and ``nodes`` in the graph format
where a string ``"$name"`` stands for a block parameter (in ``params``) or a block input (in
``inputs``). A node with ``"when": "$flag"`` exists only when that boolean parameter is true; a
reference ``"a|b"`` takes the first of its alternatives that exists. ``outputs`` maps each output
port to an inner reference.

Expanding node ``res1`` of block ``B`` gives inner nodes ``res1/<inner id>`` (blocks nest:
``res1/conv1/conv``); references to ``res1`` or ``res1:<port>`` become the inner output references,
and ``origins`` maps every inner node id back to the outer node, so errors name the node the
author drew.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources

from engine.errors import EngineError
from engine.registry import Param, Port, resolve_params, schema_json

FORMAT = "netforge.block/1"
MAX_DEPTH = 8
SEPARATOR = "/"


class Block:
    """One block definition: its schema (like an op's) and its inner nodes."""

    is_loss = False
    block = True

    def __init__(self, document: dict):
        if document.get("format") != FORMAT:
            raise EngineError(f"block {document.get('name')!r}: format must be {FORMAT!r}")
        self.document = document
        self.name: str = document["name"]
        self.category: str = document.get("category", "blocks")
        self.doc: str = document["doc"]
        self.params = tuple(_param(entry) for entry in document.get("params", []))
        self.inputs = tuple(Port(entry["name"], entry.get("dtype", "float"), entry.get("doc", ""),
                                 rank=tuple(entry["rank"]) if entry.get("rank") is not None else None)
                            for entry in document["inputs"])
        self.outputs = tuple(Port(name, "float", "") for name in document["outputs"])
        self.nodes: list[dict] = document["nodes"]

    def resolve(self, raw: dict) -> tuple[dict, list[tuple[str, str]]]:
        """Checked parameter values with defaults, and [(field, message)] for bad ones."""
        return resolve_params(self.params, raw, owner=f"block '{self.name}'")

    def to_json(self) -> dict:
        """The catalog entry: an op's fields plus ``kind: block`` and the inner graph to open."""
        return {
            **schema_json(self),
            "is_loss": False,
            "block": True,
            "kind": "block",
            "has_weights": True,
            "graph": {"nodes": copy.deepcopy(self.nodes), "outputs": dict(self.document["outputs"])},
        }


def _param(entry: dict) -> Param:
    fields = dict(entry)
    for key in ("default",):
        if isinstance(fields.get(key), list):
            fields[key] = tuple(fields[key])
    if "choices" in fields:
        fields["choices"] = tuple(fields["choices"])
    return Param(**fields)


@functools.cache
def _blocks() -> dict[str, Block]:
    folder = resources.files(__name__)
    blocks = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            block = Block(json.loads(entry.read_text()))
            blocks[block.name] = block
    return blocks


def get_block(name: str) -> Block | None:
    return _blocks().get(name)


def block_names() -> list[str]:
    return sorted(_blocks())


def _substitute(value, params: dict):
    if isinstance(value, str) and value.startswith("$") and value[1:] in params:
        resolved = params[value[1:]]
        return list(resolved) if isinstance(resolved, tuple) else resolved
    if isinstance(value, dict):
        return {k: _substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    return value


def expand(nodes: list, errors: list) -> tuple[list, dict[str, str], dict[str, str], dict[str, dict]]:
    """Replace block nodes by their inner nodes.

    Returns (flat nodes, origins: inner node id -> outer node id, aliases: outer reference ->
    inner reference, blocks: outer node id -> {"block", "outputs"}). Problems with a block node
    itself (bad parameters) are appended to ``errors`` as the graph's error dicts."""
    origins: dict[str, str] = {}
    aliases: dict[str, str] = {}
    blocks: dict[str, dict] = {}
    flat = _expand(nodes, "", errors, origins, aliases, blocks, depth=0)
    return flat, origins, aliases, blocks


def _expand(nodes, prefix, errors, origins, aliases, blocks, depth):
    flat = []
    for entry in nodes:
        block = get_block(entry.get("op")) if isinstance(entry, dict) and isinstance(entry.get("op"), str) else None
        if block is None:
            flat.append(entry)
            continue
        node_id = entry.get("id")
        if not isinstance(node_id, str):
            flat.append(entry)  # the graph reports the bad id
            continue
        outer = origins.get(node_id, node_id)
        if depth >= MAX_DEPTH:
            errors.append({"node": outer, "field": "op", "code": "bad_block",
                           "message": f"blocks nest deeper than {MAX_DEPTH} levels"})
            continue
        raw_params = entry.get("params", {}) if isinstance(entry.get("params", {}), dict) else {}
        params, param_errors = block.resolve(raw_params)
        for field, message in param_errors:
            errors.append({"node": outer, "field": field, "code": "bad_param", "message": message})
        if param_errors:
            continue
        raw_inputs = entry.get("inputs", {}) if isinstance(entry.get("inputs", {}), dict) else {}
        for name in raw_inputs:
            if name not in {port.name for port in block.inputs}:
                errors.append({"node": outer, "field": f"inputs.{name}", "code": "extra_input",
                               "message": f"block '{block.name}' has no input port '{name}'; its ports are "
                                          f"{', '.join(port.name for port in block.inputs)}"})
        inputs = {}
        for port in block.inputs:
            if port.name not in raw_inputs:
                errors.append({"node": outer, "field": f"inputs.{port.name}", "code": "missing_input",
                               "message": f"input port '{port.name}' is not connected"})
            inputs[port.name] = raw_inputs.get(port.name, f"{node_id}{SEPARATOR}missing_{port.name}")
        inner_prefix = f"{node_id}{SEPARATOR}"
        present = {inner["id"] for inner in block.nodes if _included(inner, params)}
        reference = functools.partial(_inner_reference, block=block, inputs=inputs, present=present,
                                      prefix=inner_prefix)
        inner_nodes = []
        for inner in block.nodes:
            if not _included(inner, params):
                continue
            inner_id = inner_prefix + inner["id"]
            origins[inner_id] = outer
            inner_nodes.append({
                "id": inner_id,
                "op": inner["op"],
                "params": _substitute(inner.get("params", {}), params),
                "inputs": {port: [reference(r) for r in ref] if isinstance(ref, list) else reference(ref)
                           for port, ref in inner.get("inputs", {}).items()},
            })
        outputs = {port: reference(ref) for port, ref in block.document["outputs"].items()}
        first = block.outputs[0].name
        for port, ref in outputs.items():
            aliases[node_id if port == first else f"{node_id}:{port}"] = ref
        blocks[node_id] = {"block": block.name, "outputs": outputs}
        flat.extend(_expand(inner_nodes, inner_prefix, errors, origins, aliases, blocks, depth + 1))
    return flat


def _inner_reference(ref: str, *, block, inputs: dict, present: set, prefix: str) -> str:
    """A reference inside ``block`` as a node of the flat graph: ``$port`` is the block's input,
    ``a|b`` the first alternative whose node is included."""
    for alternative in ref.split("|"):
        if alternative.startswith("$"):
            return inputs[alternative[1:]]
        if alternative.split(":")[0] in present:
            return prefix + alternative
    raise EngineError(f"block '{block.name}': reference {ref!r} matches no input or included node")


def _included(inner: dict, params: dict) -> bool:
    condition = inner.get("when")
    return condition is None or bool(_substitute(condition, params))


def resolve_alias(ref: str, aliases: dict[str, str]) -> str:
    """Follow block output aliases (nested blocks alias to aliases) to a real node output."""
    seen = 0
    while ref in aliases and seen <= MAX_DEPTH:
        ref = aliases[ref]
        seen += 1
    return ref


def catalog_entries() -> list[dict]:
    return [block.to_json() for block in _blocks().values()]
