"""A sweep's search space: its parameters, checked; the grid; a random point; a point applied.

A parameter is named by what it changes:

- a training option by its path in the run's hyperparameters: ``epochs``, ``batch_size``,
  ``optimizer.lr``, ``early_stopping.patience``;
- a node's parameter as ``node:<node id>.<parameter>`` (``node:fc1.units``); the node id is
  everything between ``node:`` and the last dot, so ids with dots or colons still work.

Its values are a range, ``{"type": "float" | "int", "low", "high", "log"}`` (``log`` samples the
exponent evenly, for learning rates), or ``{"type": "choice", "choices": [...]}``. On a grid a range
is cut into ``grid_points`` values (3 unless given), evenly or, with ``log``, geometrically.
"""

from __future__ import annotations

import copy
import itertools
import math
import random

from webapp.core.exceptions import InvalidInput

NODE_PREFIX = "node:"
TYPES = ("float", "int", "choice")
MAX_PARAMETERS = 20
MAX_CHOICES = 100
MAX_GRID_POINTS = 100
DEFAULT_GRID_POINTS = 3


def _invalid(index: int, message: str) -> InvalidInput:
    return InvalidInput(f"parameters[{index}]: {message}", details={f"parameters[{index}]": [message]})


def is_node_parameter(name: str) -> bool:
    return name.startswith(NODE_PREFIX)


def split_node_parameter(name: str) -> tuple[str, str]:
    """``node:fc1.units`` -> ``("fc1", "units")``."""
    node_id, _, parameter = name.removeprefix(NODE_PREFIX).rpartition(".")
    return node_id, parameter


def _number(value, index: int, field: str, *, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(index, f"'{field}' must be a finite number, got {value!r}")
    if integer and value != int(value):
        raise _invalid(index, f"'{field}' of an int range must be a whole number, got {value!r}")
    return int(value) if integer else float(value)


def clean_parameters(parameters, *, node_ids: set[str]) -> list[dict]:
    """The parameters as the sweep stores them, or ``InvalidInput`` naming ``parameters[i]`` and
    the field. ``node_ids`` are the graph's nodes, which ``node:`` names must refer to."""
    if not isinstance(parameters, list) or not parameters:
        raise InvalidInput("parameters must be a non-empty list of the options and node parameters to search",
                           details={"parameters": ["empty or not a list"]})
    if len(parameters) > MAX_PARAMETERS:
        raise InvalidInput(f"at most {MAX_PARAMETERS} parameters in one sweep, got {len(parameters)}",
                           details={"parameters": ["too many"]})
    cleaned, seen = [], set()
    for index, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            raise _invalid(index, "must be an object with name and type")
        name = parameter.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _invalid(index, "'name' is required: an option path such as optimizer.lr, or node:<id>.<parameter>")
        name = name.strip()
        if name in seen:
            raise _invalid(index, f"'{name}' appears twice")
        seen.add(name)
        if is_node_parameter(name):
            node_id, field = split_node_parameter(name)
            if not node_id or not field:
                raise _invalid(index, f"'{name}' must read node:<node id>.<parameter>")
            if node_id not in node_ids:
                raise _invalid(index, f"the graph has no node '{node_id}'")
        elif not all(part.isidentifier() for part in name.split(".")):
            raise _invalid(index, f"'{name}' is not a training option path (such as optimizer.lr)")
        kind = parameter.get("type")
        if kind not in TYPES:
            raise _invalid(index, f"'type' must be one of {', '.join(TYPES)}, got {kind!r}")
        entry: dict = {"name": name, "type": kind}
        if kind == "choice":
            choices = parameter.get("choices")
            if not isinstance(choices, list) or not choices or len(choices) > MAX_CHOICES:
                raise _invalid(index, f"'choices' must be a list of 1 to {MAX_CHOICES} values")
            if not all(choice is None or isinstance(choice, bool | int | float | str) for choice in choices):
                raise _invalid(index, "'choices' may hold numbers, strings, true, false or null")
            if len({repr(choice) for choice in choices}) != len(choices):
                raise _invalid(index, "'choices' has the same value twice")
            entry["choices"] = choices
        else:
            integer = kind == "int"
            low = _number(parameter.get("low"), index, "low", integer=integer)
            high = _number(parameter.get("high"), index, "high", integer=integer)
            if not low < high:
                raise _invalid(index, f"'low' ({low}) must be below 'high' ({high})")
            log = parameter.get("log", False)
            if not isinstance(log, bool):
                raise _invalid(index, "'log' must be true or false")
            if log and low <= 0:
                raise _invalid(index, f"a log range must be above 0, got low {low}")
            grid_points = parameter.get("grid_points", DEFAULT_GRID_POINTS)
            if isinstance(grid_points, bool) or not isinstance(grid_points, int) or not \
                    2 <= grid_points <= MAX_GRID_POINTS:
                raise _invalid(index, f"'grid_points' must be a whole number from 2 to {MAX_GRID_POINTS}")
            entry.update(low=low, high=high, log=log, grid_points=grid_points)
        cleaned.append(entry)
    return cleaned


def grid_values(parameter: dict) -> list:
    """The values a grid tries for one parameter."""
    if parameter["type"] == "choice":
        return list(parameter["choices"])
    low, high, count = parameter["low"], parameter["high"], parameter["grid_points"]
    if parameter["log"]:
        values = [math.exp(math.log(low) + (math.log(high) - math.log(low)) * i / (count - 1)) for i in range(count)]
    else:
        values = [low + (high - low) * i / (count - 1) for i in range(count)]
    if parameter["type"] == "int":
        return list(dict.fromkeys(round(value) for value in values))
    return [float(f"{value:.6g}") for value in values]  # 0.001, not 0.0010000000000000002


def grid_size(parameters: list[dict]) -> int:
    return math.prod(len(grid_values(parameter)) for parameter in parameters)


def grid_point(parameters: list[dict], number: int) -> dict | None:
    """The ``number``-th point of the grid (the last parameter varies fastest), or None past its end."""
    if number >= grid_size(parameters):
        return None
    point = next(itertools.islice(itertools.product(*(grid_values(parameter) for parameter in parameters)),
                                  number, None))
    return {parameter["name"]: value for parameter, value in zip(parameters, point, strict=True)}


def random_point(parameters: list[dict], *, seed: int, number: int) -> dict:
    """A point drawn independently for each trial: the same seed and number give the same point."""
    generator = random.Random(f"{seed}:{number}")
    point = {}
    for parameter in parameters:
        if parameter["type"] == "choice":
            value = generator.choice(parameter["choices"])
        elif parameter["log"]:
            value = math.exp(generator.uniform(math.log(parameter["low"]), math.log(parameter["high"])))
        else:
            value = generator.uniform(parameter["low"], parameter["high"])
        if parameter["type"] == "int":
            value = min(max(round(value), parameter["low"]), parameter["high"])
        point[parameter["name"]] = value
    return point


def apply_to_hyperparameters(hyperparameters: dict, point: dict) -> dict:
    """A copy of the training options with the point's option values set (``optimizer.lr``
    sets ``lr`` inside ``optimizer``, which is made an object if it was not one)."""
    result = copy.deepcopy(hyperparameters)
    for name, value in point.items():
        if is_node_parameter(name):
            continue
        *parents, leaf = name.split(".")
        target = result
        for parent in parents:
            if not isinstance(target.get(parent), dict):
                target[parent] = {}
            target = target[parent]
        target[leaf] = value
    return result


def node_values(point: dict) -> dict:
    """The point's node parameters only."""
    return {name: value for name, value in point.items() if is_node_parameter(name)}


def apply_to_editor_document(document: dict, point: dict) -> dict:
    """A copy of the editor document with the point's node parameters set."""
    result = copy.deepcopy(document)
    nodes = {node.get("id"): node for node in result.get("nodes", [])}
    for name, value in node_values(point).items():
        node_id, field = split_node_parameter(name)
        node = nodes[node_id]
        node.setdefault("data", {}).setdefault("params", {})[field] = value
    return result
