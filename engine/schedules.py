"""Learning-rate schedules: pure functions of the optimizer's step count.

A schedule maps ``(step, base_lr)`` to the learning rate of one update. ``step`` is the number of
updates the optimizer has made so far, so the first update uses ``schedule(0, base_lr)``; this
matches PyTorch's schedulers when ``scheduler.step()`` is called once after every
``optimizer.step()``. Schedules hold no state, so resuming a run needs only the step count.

Configs are JSON objects, ``{"name": "cosine", "total_steps": 1000, "min_lr": 1e-5}``;
``make_schedule`` builds one and ``Schedule.to_config`` gives it back. Each schedule declares its
options once, in ``params`` (the training-option schema of ``engine.option_schema``): the
constructor, the validator and the train panel's form all read them from there.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, ClassVar

from engine.option_schema import Option, TrainingOptionsError, check_object, checked_value, show


class Schedule(abc.ABC):
    """Base class: subclasses are frozen dataclasses whose fields are their options, declared with
    their types, bounds and docs in ``params`` (a test holds the two to the same defaults)."""

    name: ClassVar[str]
    label: ClassVar[str]
    params: ClassVar[tuple[Option, ...]] = ()

    def __post_init__(self):
        for option in self.params:
            value = getattr(self, option.name)
            if option.type == "schedule":
                value = None if value is None else make_schedule(value, path=f"schedule.{option.name}")
            else:
                value = checked_value(option, value, f"schedule.{option.name}")
            object.__setattr__(self, option.name, value)

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
    label: ClassVar[str] = "Constant"

    def __call__(self, step: int, base_lr: float) -> float:
        return float(base_lr)


@dataclasses.dataclass(frozen=True)
class StepDecay(Schedule):
    """lr = base_lr * gamma ** (step // step_size)  (PyTorch's StepLR)."""

    name: ClassVar[str] = "step"
    label: ClassVar[str] = "Step decay"
    params: ClassVar[tuple[Option, ...]] = (
        Option("step_size", "int", minimum=1, label="Every (steps)", doc="updates between two decays"),
        Option("gamma", "float", default=0.1, minimum=0, exclusive_minimum=True, label="Factor γ",
               doc="the rate is multiplied by this every step_size updates"),
    )
    step_size: int
    gamma: float = 0.1

    def __call__(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (step // self.step_size)


@dataclasses.dataclass(frozen=True)
class Exponential(Schedule):
    """lr = base_lr * gamma ** step  (PyTorch's ExponentialLR, stepped every update)."""

    name: ClassVar[str] = "exponential"
    label: ClassVar[str] = "Exponential"
    params: ClassVar[tuple[Option, ...]] = (
        Option("gamma", "float", default=0.999, minimum=0, exclusive_minimum=True, label="Factor γ per step",
               doc="the rate is multiplied by this after every update"),
    )
    gamma: float = 0.999

    def __call__(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma ** step


@dataclasses.dataclass(frozen=True)
class Cosine(Schedule):
    """lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * step / total_steps)) / 2  (CosineAnnealingLR).

    Held at ``min_lr`` from ``total_steps`` on, where PyTorch's closed form would rise again."""

    name: ClassVar[str] = "cosine"
    label: ClassVar[str] = "Cosine annealing"
    params: ClassVar[tuple[Option, ...]] = (
        Option("total_steps", "int", minimum=1, label="Total steps", doc="updates from the base rate down to min_lr"),
        Option("min_lr", "float", default=0.0, minimum=0, label="Minimum lr", doc="the rate at the end"),
    )
    total_steps: int
    min_lr: float = 0.0

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
    label: ClassVar[str] = "Linear warm-up, then…"
    params: ClassVar[tuple[Option, ...]] = (
        Option("warmup_steps", "int", minimum=0, label="Warm-up steps", doc="updates rising linearly to the base rate"),
        Option("then", "schedule", default=None, nullable=True, label="Then",
               doc="the schedule after the warm-up (constant when null)"),
    )
    warmup_steps: int
    then: Schedule | None = None

    def __call__(self, step: int, base_lr: float) -> float:
        if step < self.warmup_steps:
            return base_lr * (step + 1) / self.warmup_steps
        if self.then is None:
            return float(base_lr)
        return self.then(step - self.warmup_steps, base_lr)


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (Constant, StepDecay, Exponential, Cosine, Warmup)
}


def check_schedule_config(config: Any, path: str, errors: dict[str, str]) -> dict | None:
    """A schedule config (a name, or an object with ``name`` and options) checked against the
    schema: the config with canonical values, or None with each problem added to ``errors`` under
    its dotted path (``path`` is where the config sits, e.g. ``"optimizer.schedule"``)."""
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, dict):
        errors[path] = f"{path} must be a schedule name or an object with 'name', got {show(config)}"
        return None
    options = dict(config)
    name = options.pop("name", None)
    if not isinstance(name, str) or name not in SCHEDULES:
        errors[f"{path}.name"] = f"unknown schedule {show(name)}; valid schedules: {', '.join(SCHEDULES)}"
        return None
    before = len(errors)
    cleaned = check_object(SCHEDULES[name].params, options, path, errors, nested={"schedule": check_schedule_config})
    return {"name": name, **cleaned} if len(errors) == before else None


def make_schedule(config: dict | str | Schedule | None, *, path: str = "schedule") -> Schedule:
    """A schedule from its config (a dict with ``name``, or just the name); None means constant.
    Raises ``TrainingOptionsError`` naming each bad option by its path under ``path``."""
    if config is None:
        return Constant()
    if isinstance(config, Schedule):
        return config
    errors: dict[str, str] = {}
    cleaned = check_schedule_config(config, path, errors)
    if errors:
        raise TrainingOptionsError(errors)
    options = dict(cleaned)
    return SCHEDULES[options.pop("name")](**options)
