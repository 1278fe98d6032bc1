"""Fine-tuning: a run that starts from another model's weights, with some nodes frozen and some
learning more slowly.

The training options (declared in ``engine.training_options``) are text a form can hold:
``init_map`` is ``"node=source_node, ..."`` (an empty source, ``"fc="``, starts that node fresh),
``freeze`` is ``"node, pattern*, ..."`` and ``lr_multipliers`` is ``"node=factor, pattern*=factor"``.
A pattern is a shell-style glob over node ids (``res2_*``); a composite block's id stands for the
nodes inside it. Each parser raises ``TrainingOptionsError`` naming its option.

``warm_start`` copies the source's weights into a model: each weight ``node/name`` is taken from
``source_node/name`` of the source, its shape checked (every mismatch named: node, weight, both
shapes); nodes the source has no weights for keep their fresh initialization.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
from pathlib import Path

import numpy

from engine.errors import ArtifactError, EngineError
from engine.option_schema import TrainingOptionsError, show

DECIMAL = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


@dataclasses.dataclass
class WarmStart:
    """What ``warm_start`` did: the source, the nodes whose weights came from it, those left fresh."""

    source: str
    loaded: list[str]
    initialized: list[str]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _entries(text, option: str) -> list[str]:
    if text is None:
        return []
    if not isinstance(text, str):
        raise TrainingOptionsError({option: f"{option} must be text, got {show(text)}"})
    return [entry.strip() for entry in text.split(",") if entry.strip()]


def _pairs(text, option: str, example: str) -> list[tuple[str, str]]:
    pairs = []
    for entry in _entries(text, option):
        name, separator, value = entry.partition("=")
        if not separator or not name.strip():
            raise TrainingOptionsError({option: f"{option} entry {show(entry)} is not of the form {example}"})
        pairs.append((name.strip(), value.strip()))
    return pairs


def parse_freeze(text) -> list[str]:
    """The node ids or patterns of ``freeze``."""
    return _entries(text, "freeze")


def parse_lr_multipliers(text) -> list[tuple[str, float]]:
    """``(pattern, factor)`` pairs of ``lr_multipliers``, in the order given (a later one wins)."""
    factors = []
    for pattern, value in _pairs(text, "lr_multipliers", "'node=factor' (e.g. 'conv1=0.1')"):
        factor = float(value) if DECIMAL.match(value) else math.nan  # the browser's validator reads it alike
        if not math.isfinite(factor) or factor < 0:
            raise TrainingOptionsError({"lr_multipliers": f"lr_multipliers gives {show(pattern)} the factor "
                                                          f"{show(value)}; a factor must be a number >= 0"})
        factors.append((pattern, factor))
    return factors


def parse_init_map(text) -> dict[str, str]:
    """``init_map`` as {node id: the source's node id, or "" for a fresh start}."""
    return dict(_pairs(text, "init_map", "'node=source_node' (e.g. 'classifier=fc8')"))


def check_text_options(options: dict) -> dict[str, str]:
    """The errors of the fine-tuning options' syntax, by option name (the validator's part)."""
    errors = {}
    for name, parse in (("freeze", parse_freeze), ("lr_multipliers", parse_lr_multipliers),
                        ("init_map", parse_init_map)):
        try:
            parse(options.get(name))
        except TrainingOptionsError as error:
            errors.update(error.errors)
    return errors


def node_of(key: str) -> str:
    """The node id of a weight key ``node/weight`` (node ids of a block's nodes hold '/' too)."""
    return key.rsplit("/", 1)[0]


def matches(node_id: str, pattern: str) -> bool:
    return node_id == pattern or node_id.startswith(f"{pattern}/") or fnmatch.fnmatchcase(node_id, pattern)


def select_parameters(parameter_keys, patterns: list[str], option: str) -> dict[str, set[str]]:
    """Each pattern's parameter keys; a pattern that matches no node with parameters is refused,
    naming the option and listing the nodes it could name."""
    nodes = sorted({node_of(key) for key in parameter_keys})
    chosen = {}
    for pattern in patterns:
        keys = {key for key in parameter_keys if matches(node_of(key), pattern)}
        if not keys:
            listed = ", ".join(nodes[:20]) + (", ..." if len(nodes) > 20 else "")
            raise TrainingOptionsError({option: f"{option} names {show(pattern)}, which matches no node with "
                                                f"trainable parameters; those are: {listed or '(none)'}"})
        chosen[pattern] = keys
    return chosen


def read_weights(source: str | Path) -> dict[str, numpy.ndarray]:
    """The weights of a checkpoint or saved-model folder (checksums verified) or of a ``.npz``
    keyed ``node/weight`` (read without pickles)."""
    from engine import serialization  # noqa: PLC0415

    path = Path(source)
    if path.is_dir():
        return dict(serialization.read_artifact(path).weights)
    if path.suffix == ".npz" and path.is_file():
        try:
            with numpy.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (OSError, ValueError) as error:
            raise ArtifactError(f"init_from: {path.name} is not a readable .npz of weights: {error}") from None
    raise ArtifactError(f"init_from: {source} is neither a checkpoint or saved-model folder nor a .npz of weights")


def match_weights(target_shapes: dict[str, tuple], source_shapes: dict[str, tuple], *,
                  init_map: dict[str, str] | None = None, source: str = "the source") -> dict[str, str]:
    """Which source weight starts each target weight (keys ``node/weight``, by node id or
    ``init_map``), checked without data: raises ``TrainingOptionsError`` for an ``init_map`` naming
    no node, and ``EngineError`` listing every shape mismatch (node, weight, both shapes)."""
    init_map = init_map or {}
    nodes = {node_of(key) for key in target_shapes}
    unknown = sorted(set(init_map) - nodes)
    if unknown:
        raise TrainingOptionsError({"init_map": f"init_map names {', '.join(map(show, unknown))}, which is no node "
                                                "with weights in this graph"})
    source_nodes = {node_of(key) for key in source_shapes}
    missing = sorted(target for target, origin in init_map.items() if origin and origin not in source_nodes)
    if missing:
        raise TrainingOptionsError({"init_map": "init_map maps " + ", ".join(
            f"{show(target)} to {show(init_map[target])}" for target in missing) + f", which {source} has no "
            "weights for"})
    mismatches, planned = [], {}
    for key, shape in target_shapes.items():
        node, weight = key.rsplit("/", 1)
        origin = init_map.get(node, node)
        if not origin or f"{origin}/{weight}" not in source_shapes:
            continue
        found = tuple(source_shapes[f"{origin}/{weight}"])
        if found != tuple(shape):
            named = f"node '{node}'" + (f" (from '{origin}')" if origin != node else "")
            mismatches.append(f"{named} weight '{weight}': {source} has shape {found}, this graph {tuple(shape)}")
            continue
        planned[key] = f"{origin}/{weight}"
    if mismatches:
        raise EngineError("the starting weights do not fit the graph: " + "; ".join(mismatches)
                          + " (map the node to another with init_map, or start it fresh with 'node=')")
    return planned


def warm_start(model, source_weights: dict, *, init_map: dict[str, str] | None = None,
               source: str = "the source") -> WarmStart:
    """Copy the matching weights of ``source_weights`` into ``model`` (its params and buffers, in
    place), after ``match_weights`` checked them all."""
    targets = {**model.params, **model.buffers}
    planned = match_weights({key: array.shape for key, array in targets.items()},
                            {key: array.shape for key, array in source_weights.items()},
                            init_map=init_map, source=source)
    for key, origin in planned.items():
        targets[key][...] = model.xp.asarray(source_weights[origin], dtype=targets[key].dtype)
    loaded = sorted({node_of(key) for key in planned})
    return WarmStart(str(source), loaded, sorted({node_of(key) for key in targets} - set(loaded)))


__all__ = ["WarmStart", "check_text_options", "match_weights", "parse_freeze", "parse_init_map", "parse_lr_multipliers",
           "read_weights", "select_parameters", "warm_start"]
