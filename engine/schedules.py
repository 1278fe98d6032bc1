"""Learning-rate schedules: pure functions of the optimizer's step count.

A schedule maps ``(step, base_lr)`` to the learning rate of one update. ``step`` is the number of
updates the optimizer has made so far, so the first update uses ``schedule(0, base_lr)``; this
matches PyTorch's schedulers when ``scheduler.step()`` is called once after every
``optimizer.step()``. Schedules hold no state, so resuming a run needs only the step count.

Configs are JSON objects, ``{"name": "cosine", "total_steps": 1000, "min_lr": 1e-5}``;
``make_schedule`` builds one and ``Schedule.to_config`` gives it back.
"""

from __future__ import annotations

import abc

import dataclasses
import math
import numbers
from typing import ClassVar

from engine.errors import EngineError


def require_number(owner: str, name: str, value, *, minimum: float | None = None, maximum: float | None = None,
                   exclusive_minimum: bool = False, exclusive_maximum: bool = False, integer: bool = False):
    """``value`` as a Python int or float, or an ``EngineError`` that names ``owner`` and ``name``.

    Python numbers keep NumPy 2 from promoting float32 arrays when they are used as scalars."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise EngineError(f"{owner}: '{name}' must be {kind}, got {value!r}")
    if not math.isfinite(value):
        raise EngineError(f"{owner}: '{name}' must be finite, got {value!r}")
    if integer and value != int(value):
        raise EngineError(f"{owner}: '{name}' must be {kind}, got {value!r}")
    value = int(value) if integer else float(value)
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        bound = ">" if exclusive_minimum else ">="
        raise EngineError(f"{owner}: '{name}' must be {bound} {minimum}, got {value!r}")
    if maximum is not None and (value >= maximum if exclusive_maximum else value > maximum):
        bound = "<" if exclusive_maximum else "<="
        raise EngineError(f"{owner}: '{name}' must be {bound} {maximum}, got {value!r}")
    return value


class Schedule(abc.ABC):
    """Base class: subclasses are frozen dataclasses whose fields are their options."""

    name: ClassVar[str]

    @abc.abstractmethod
    def __call__(self, step: int, base_lr: float) -> float:
        """The learning rate of the update after ``step`` earlier ones."""

    def to_config(self) -> dict:
        config = {"name": self.name}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            config[field.name] = value.to_config() if isinstance(value, Schedule) else value
        return config


@dataclasses.dataclass(frozen=True)
class Constant(Schedule):
    """lr = base_lr."""

    name: ClassVar[str] = "constant"

    def __call__(self, step: int, base_lr: float) -> float:
        return float(base_lr)


@dataclasses.dataclass(frozen=True)
class StepDecay(Schedule):
    """lr = base_lr * gamma ** (step // step_size)  (PyTorch's StepLR)."""

    name: ClassVar[str] = "step"
    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "step_size", require_number("step schedule", "step_size", self.step_size,
                                                             minimum=1, integer=True))
        object.__setattr__(self, "gamma", require_number("step schedule", "gamma", self.gamma,
                                                         minimum=0, exclusive_minimum=True))

    def __call__(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (step // self.step_size)


@dataclasses.dataclass(frozen=True)
class Exponential(Schedule):
    """lr = base_lr * gamma ** step  (PyTorch's ExponentialLR, stepped every update)."""

    name: ClassVar[str] = "exponential"
    gamma: float = 0.999

    def __post_init__(self):
        object.__setattr__(self, "gamma", require_number("exponential schedule", "gamma", self.gamma,
                                                         minimum=0, exclusive_minimum=True))

    def __call__(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma ** step


@dataclasses.dataclass(frozen=True)
class Cosine(Schedule):
    """lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * step / total_steps)) / 2  (CosineAnnealingLR).

    Held at ``min_lr`` from ``total_steps`` on, where PyTorch's closed form would rise again."""

    name: ClassVar[str] = "cosine"
    total_steps: int
    min_lr: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "total_steps", require_number("cosine schedule", "total_steps", self.total_steps,
                                                               minimum=1, integer=True))
        object.__setattr__(self, "min_lr", require_number("cosine schedule", "min_lr", self.min_lr, minimum=0))

    def __call__(self, step: int, base_lr: float) -> float:
        progress = min(step, self.total_steps) / self.total_steps
        return self.min_lr + (base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0


@dataclasses.dataclass(frozen=True)
class Warmup(Schedule):
    """lr = base_lr * (step + 1) / warmup_steps for the first ``warmup_steps`` updates, then
    ``then(step - warmup_steps, base_lr)`` (constant when ``then`` is None).

    Counting from ``step + 1`` makes the first update use a small non-zero rate and the last
    warm-up update the full ``base_lr``."""

    name: ClassVar[str] = "warmup"
    warmup_steps: int
    then: Schedule | None = None

    def __post_init__(self):
        object.__setattr__(self, "warmup_steps", require_number("warmup schedule", "warmup_steps", self.warmup_steps,
                                                                minimum=0, integer=True))
        if self.then is not None:
            object.__setattr__(self, "then", make_schedule(self.then))

    def __call__(self, step: int, base_lr: float) -> float:
        if step < self.warmup_steps:
            return base_lr * (step + 1) / self.warmup_steps
        if self.then is None:
            return float(base_lr)
        return self.then(step - self.warmup_steps, base_lr)


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (Constant, StepDecay, Exponential, Cosine, Warmup)
}


def make_schedule(config: dict | str | Schedule | None) -> Schedule:
    """A schedule from its config (a dict with ``name``, or just the name); None means constant."""
    if config is None:
        return Constant()
    if isinstance(config, Schedule):
        return config
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, dict):
        raise EngineError(f"a schedule config must be a name or an object with 'name', got {config!r}")
    options = dict(config)
    name = options.pop("name", None)
    if name not in SCHEDULES:
        raise EngineError(f"unknown schedule {name!r}; valid schedules: {', '.join(SCHEDULES)}")
    cls = SCHEDULES[name]
    valid = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise EngineError(
            f"{name} schedule: unknown option(s) {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(valid) or '(none)'}"
        )
    missing = [field.name for field in dataclasses.fields(cls)
               if field.default is dataclasses.MISSING and field.name not in options]
    if missing:
        raise EngineError(f"{name} schedule: missing required option(s) {', '.join(map(repr, missing))}")
    return cls(**options)
