"""The parameter schema of training options: ``Option``, the op catalog's ``Param`` with a label,
exclusive bounds and the structured kinds a training run has (an optimizer, a schedule, early
stopping, metrics), and the one set of rules and messages that checks a value against it.

Every message names the field by its dotted path (``optimizer.lr``) and shows the offending value
as JSON would (``true``, ``null``, ``'text'``, ``0.00001``): the browser's validator
(frontend/src/runs/trainingOptions.ts) repeats these rules word for word, and a shared table of
cases (tests/fixtures/training_option_cases.json) holds both to it.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import math
import numbers
from collections.abc import Callable
from typing import Any

from engine.errors import EngineError
from engine.registry import PARAM_TYPES, Param

# Kinds only training options have; the validator checks them as objects of their own.
STRUCTURED_TYPES = ("optimizer", "schedule", "early_stopping", "metrics")


class TrainingOptionsError(EngineError):
    """Training options that do not fit the schema. ``errors`` maps each bad field's dotted path
    (``"epochs"``, ``"optimizer.lr"``, ``"early_stopping.patience"``) to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(self.errors.values()))


@dataclasses.dataclass(frozen=True)
class Option(Param):
    """One training option: a ``Param`` (type, default, bounds or choices, doc) with the label a
    form shows, bounds that may exclude their end (a learning rate > 0), the form section it belongs
    to (``group``; empty for options no form shows) and its ``scope``: ``"trainer"`` for what the
    engine's ``TrainConfig`` takes (filled with the default when left out), ``"run"`` for how the
    platform runs the trainers (workers, distributed strategy; kept only when given)."""

    label: str = ""
    group: str = ""
    scope: str = "trainer"
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def __post_init__(self):
        assert self.type in PARAM_TYPES + STRUCTURED_TYPES, self.type
        assert self.scope in ("trainer", "run"), self.scope

    def check(self, value: Any) -> Any:
        """The value in its canonical form, or ``ValueError`` with what is wrong (no field name)."""
        if value is None and self.nullable:
            return None
        kind = self.type
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                    or value != int(value):
                raise ValueError(f"must be an integer, got {show(value)}")
            value = int(value)
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"must be a number, got {show(value)}")
            if not math.isfinite(value):
                raise ValueError(f"must be finite, got {show(value)}")
            value = float(value)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false, got {show(value)}")
            return value
        elif kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"must be a string, got {show(value)}")
            return value
        elif kind == "choice":
            if isinstance(value, bool) or value not in self.choices:
                raise ValueError(f"must be one of {', '.join(map(str, self.choices))}, got {show(value)}")
            return value
        else:
            raise AssertionError(f"option '{self.name}' of type {kind} is checked by its own validator")
        if not self._within_bounds(value):
            raise ValueError(f"must be {self.domain()}, got {show(value)}")
        return value

    def _within_bounds(self, value) -> bool:
        low, high = self.minimum, self.maximum
        if low is not None and (value <= low if self.exclusive_minimum else value < low):
            return False
        return not (high is not None and (value >= high if self.exclusive_maximum else value > high))

    def domain(self) -> str:
        """The allowed range in words: 'a positive integer', 'in [0, 1)', '> 0'."""
        low, high = self.minimum, self.maximum
        if self.type == "int":
            if low == 1 and high is None:
                return "a positive integer"
            if low is not None and high is not None:
                return f"an integer from {show(low)} to {show(high)}"
            if low is not None:
                return f"an integer >= {show(low)}"
            return f"an integer <= {show(high)}" if high is not None else "an integer"
        if low is not None and high is not None:
            return (f"in {'(' if self.exclusive_minimum else '['}{show(low)}, "
                    f"{show(high)}{')' if self.exclusive_maximum else ']'}")
        if low is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {show(low)}"
        if high is not None:
            return f"{'<' if self.exclusive_maximum else '<='} {show(high)}"
        return "a number"

    def to_json(self) -> dict:
        data = super().to_json()
        data.update(label=self.label or self.name, group=self.group, scope=self.scope)
        if self.exclusive_minimum:
            data["exclusive_minimum"] = True
        if self.exclusive_maximum:
            data["exclusive_maximum"] = True
        return data


def show(value: Any) -> str:
    """A value as a message shows it: JSON's spelling, numbers as JavaScript prints them, strings
    in single quotes, so that the browser's messages read the same."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return _javascript_number(float(value))
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return repr(value)


def _javascript_number(value: float) -> str:
    """``String(value)`` in JavaScript: whole numbers without '.0', positional notation from 1e-6
    up to 1e21, else an exponent like '1e-7' or '1.5e+21'."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if -7 < power < 21:
        return format(decimal.Decimal(text), "f")
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def check_object(options: tuple[Option, ...], raw: dict, path: str, errors: dict[str, str],
                 nested: dict[str, Callable[[Any, str, dict], Any]] | None = None) -> dict:
    """The given entries of an object of options (a schedule's, early stopping's) checked one by
    one: unknown ones are reported at ``path``, missing required ones and bad values at
    ``path.name``. ``nested`` checks the structured kinds (``{"schedule": check(value, path,
    errors)}``). Returns the given entries in canonical form; defaults are left to the reader."""
    known = [option.name for option in options]
    unknown = [key for key in raw if key not in known]
    if unknown:
        errors[path] = (f"{path} has unknown option(s) {', '.join(show(key) for key in unknown)}; "
                        f"valid options: {', '.join(known) or '(none)'}")
    cleaned = {}
    for option in options:
        field = f"{path}.{option.name}"
        if option.name not in raw:
            if option.required:
                errors[field] = f"{path} is missing required option '{option.name}'"
            continue
        value = raw[option.name]
        if option.type in STRUCTURED_TYPES:
            cleaned[option.name] = (None if value is None and option.nullable
                                    else nested[option.type](value, field, errors))
            continue
        try:
            cleaned[option.name] = option.check(value)
        except ValueError as error:
            errors[field] = f"{field} {error}"
    return cleaned


def checked_value(option: Option, value: Any, path: str) -> Any:
    """``option.check(value)``, raising ``TrainingOptionsError`` naming ``path``: for constructors
    (an optimizer's, a schedule's) called directly rather than through the validator."""
    try:
        return option.check(value)
    except ValueError as error:
        raise TrainingOptionsError({path: f"{path} {error}"}) from None


def find_option(options: tuple[Option, ...], name: str) -> Option:
    return next(option for option in options if option.name == name)
