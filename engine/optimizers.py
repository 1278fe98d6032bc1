"""Gradient-descent optimizers that update parameters in place.

Each update rule is PyTorch's (``torch.optim``) written as in-place NumPy/CuPy ufunc calls with
``out=`` into per-parameter buffers allocated on the first step, so a step allocates no
parameter-sized arrays and float32 stays float32 (scalars are Python floats, which NumPy 2 does not
let promote an array). The array module comes from the parameters, so the same code runs on CuPy.

Shared options:

- ``lr`` is the base learning rate; ``schedule`` (a ``Schedule`` or its config) maps the step count
  to the rate of each update, see ``engine.schedules``.
- ``weight_decay`` adds ``weight_decay * param`` to the gradient (L2, PyTorch semantics); AdamW
  decays the parameters directly instead.
- ``clip_norm`` rescales all gradients together by ``clip_norm / (total_norm + 1e-6)`` when that is
  below 1 (``torch.nn.utils.clip_grad_norm_``). The scaled gradient goes into the optimizer's own
  buffer: the caller's gradient arrays are never written to.

Configs are JSON objects, ``{"name": "adam", "lr": 1e-3, "schedule": {"name": "cosine", ...}}``;
``make_optimizer`` builds one and ``Optimizer.to_config`` gives it back. Each optimizer declares its
options once, in ``params`` (the training-option schema of ``engine.option_schema``, with defaults,
bounds and docs): the constructor, the validator and the train panel's form all read them there.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import numpy

from engine import parallel
from engine.backend import array_module
from engine.errors import ArtifactError, EngineError
from engine.ops import _numba
from engine.option_schema import Option, TrainingOptionsError, check_object, checked_value, show
from engine.schedules import check_schedule_config, make_schedule

STATE_FORMAT = "netforge.optimizer/1"


def _learning_rate(default: float) -> Option:
    return Option("lr", "float", default=default, minimum=0, exclusive_minimum=True, label="Learning rate",
                  doc="the base step size; the schedule scales it per update")


def _epsilon(default: float) -> Option:
    return Option("eps", "float", default=default, minimum=0, exclusive_minimum=True, label="ε",
                  doc="added to the denominator for numerical stability")


def _weight_decay(default: float, doc: str = "L2 penalty: weight_decay * param is added to the gradient") -> Option:
    return Option("weight_decay", "float", default=default, minimum=0, label="Weight decay", doc=doc)


CLIP_NORM = Option("clip_norm", "float", default=None, nullable=True, minimum=0, exclusive_minimum=True,
                   label="Clip norm",
                   doc="rescale the gradients when their global norm exceeds this; null: no clipping")
SCHEDULE = Option("schedule", "schedule", default=None, nullable=True, label="Schedule",
                  doc="the learning-rate schedule (engine.schedules); null: constant")
MOMENTUM = Option("momentum", "float", default=0.9, minimum=0, maximum=1, exclusive_maximum=True, label="Momentum",
                  doc="fraction of the previous velocity kept")
BETA1 = Option("beta1", "float", default=0.9, minimum=0, maximum=1, exclusive_maximum=True, label="β1",
               doc="decay of the running mean of the gradient")
BETA2 = Option("beta2", "float", default=0.999, minimum=0, maximum=1, exclusive_maximum=True, label="β2",
               doc="decay of the running mean of the squared gradient")


class _ParamState:
    """What the optimizer keeps for one parameter: its slots (saved) and scratch buffers (not saved)."""

    __slots__ = ("xp", "slots", "steps", "work", "gradient")

    def __init__(self, xp, slots: dict, steps: int, work):
        self.xp = xp
        self.slots = slots  # slot name -> array shaped like the parameter
        self.steps = steps  # updates applied to this parameter (Adam's bias correction counts these)
        self.work = work  # scratch for the update rule
        self.gradient = None  # scratch for a decayed or clipped gradient, allocated when first needed


class Optimizer(abc.ABC):
    """Base class. Subclasses set ``name``, ``label``, ``params`` (their options: ``lr``,
    ``weight_decay``, ``clip_norm``, ``schedule`` and their own) and ``slot_names``, and implement
    ``_update``. The constructor takes the options as keywords; each becomes an attribute of the
    same name (``lr`` is ``base_lr``; ``schedule`` a ``Schedule``).

    ``step_count`` counts calls to ``step``; the schedule sees it before it is incremented."""

    name: ClassVar[str]
    label: ClassVar[str]
    params: ClassVar[tuple[Option, ...]]
    slot_names: ClassVar[tuple[str, ...]] = ()
    decoupled_weight_decay: ClassVar[bool] = False

    def __init__(self, **options):
        names = option_names(type(self))
        unknown = [key for key in options if key not in names]
        if unknown:
            listed = ", ".join(map(show, unknown))
            raise TrainingOptionsError({"optimizer": f"optimizer has unknown option(s) {listed}; "
                                                     f"valid options: {', '.join(names)}"})
        for option in self.params:
            value = options.get(option.name, option.default)
            if option.type == "schedule":
                self.schedule = make_schedule(value, path="optimizer.schedule")
            else:
                setattr(self, "base_lr" if option.name == "lr" else option.name,
                        checked_value(option, value, f"optimizer.{option.name}"))
        self.step_count = 0
        self.frozen: frozenset[str] = frozenset()  # fine-tuning: keys no step updates
        self.lr_multipliers: dict[str, float] = {}  # fine-tuning: key -> factor on the learning rate
        self._states: dict[str, _ParamState] = {}
        self._loaded: dict[str, tuple[int, dict]] = {}  # restored slots, moved next to their parameter on first use

    @property
    def lr(self) -> float:
        """The learning rate the next ``step`` uses (the schedule at the current step count)."""
        return self.schedule(self.step_count, self.base_lr)

    def set_parameter_groups(self, *, frozen=(), lr_multipliers: dict[str, float] | None = None) -> None:
        """Fine-tuning: the parameter keys no step touches (no update, no decay, no slots, left out
        of the clipping norm) and a factor on the learning rate per key (1 where not given)."""
        self.frozen = frozenset(frozen)
        self.lr_multipliers = dict(lr_multipliers or {})

    # -- the update ---------------------------------------------------------------------------
    def step(self, params: dict, grads: dict) -> None:
        """Update every parameter that has a gradient and is not frozen, in place; the others are
        left as they are."""
        lr = self.lr
        scale = self._clip_scale(params, grads) if self.clip_norm is not None else 1.0
        for key, param in params.items():
            grad = grads.get(key)
            if grad is None or key in self.frozen:
                continue
            if grad.shape != param.shape:
                raise EngineError(f"gradient of '{key}' has shape {grad.shape}, the parameter {param.shape}")
            state = self._states.get(key) or self._create_state(key, param)
            grad = self._effective_gradient(param, grad, state, scale)
            state.steps += 1
            self._update(param, grad, state, lr * self.lr_multipliers.get(key, 1.0))
        self.step_count += 1

    @abc.abstractmethod
    def _update(self, param, grad, state: _ParamState, lr: float) -> None:
        """Apply one update to ``param`` in place. ``grad`` is read-only; ``state.work`` is scratch."""

    def _clip_scale(self, params: dict, grads: dict) -> float:
        squares = 0.0
        for key in params:
            grad = grads.get(key)
            if grad is not None and key not in self.frozen:
                squares += float(array_module(grad).vdot(grad, grad))
        total_norm = math.sqrt(squares)
        scale = self.clip_norm / (total_norm + 1e-6)
        return scale if scale < 1.0 else 1.0

    def _effective_gradient(self, param, grad, state: _ParamState, scale: float):
        """``scale * grad + weight_decay * param`` (L2), written to the state's buffer when it differs from grad."""
        coupled_decay = self.weight_decay != 0.0 and not self.decoupled_weight_decay
        if scale == 1.0 and not coupled_decay:
            return grad
        xp = state.xp
        if state.gradient is None:
            state.gradient = xp.empty_like(param)
        buffer = state.gradient
        if scale == 1.0:
            xp.multiply(param, self.weight_decay, out=buffer)
            buffer += grad
        else:
            xp.multiply(grad, scale, out=buffer)
            if coupled_decay:
                xp.multiply(param, self.weight_decay, out=state.work)
                buffer += state.work
        return buffer

    def _create_state(self, key: str, param) -> _ParamState:
        xp = array_module(param)
        steps, loaded = self._loaded.pop(key, (0, None))
        slots = {}
        for slot in self.slot_names:
            if loaded is None:
                slots[slot] = xp.zeros_like(param)
                continue
            array = loaded[slot]
            if tuple(array.shape) != tuple(param.shape):
                raise ArtifactError(
                    f"optimizer slot '{key}/{slot}' has shape {tuple(array.shape)}, "
                    f"but the parameter has shape {tuple(param.shape)}"
                )
            slots[slot] = xp.array(array, dtype=param.dtype)  # a copy on the parameter's device
        state = _ParamState(xp, slots, steps, xp.empty_like(param))
        self._states[key] = state
        return state

    # -- configuration and state --------------------------------------------------------------
    def to_config(self) -> dict:
        """The JSON config ``make_optimizer`` turns back into an equal optimizer."""
        config = {"name": self.name}
        for option in option_names(type(self)):
            if option == "lr":
                config[option] = self.base_lr
            elif option == "schedule":
                config[option] = self.schedule.to_config()
            else:
                config[option] = getattr(self, option)
        return config

    def state_dict(self) -> tuple[dict, dict]:
        """``(arrays, meta)``: copies of the slots keyed ``"<param>/<slot>"`` (e.g. ``"fc1/W/m"``),
        on the parameters' device, and JSON-ready metadata (class, config, step counts, shapes)."""
        arrays, params = {}, {}
        entries = [(key, state.steps, state.slots) for key, state in self._states.items()]
        entries += [(key, steps, slots) for key, (steps, slots) in self._loaded.items()]
        for key, steps, slots in entries:
            for slot, array in slots.items():
                arrays[f"{key}/{slot}"] = array.copy()
            params[key] = {"steps": steps}
        meta = {
            "format": STATE_FORMAT,
            "name": self.name,
            "class": type(self).__name__,
            "config": self.to_config(),
            "step": self.step_count,
            "params": params,
        }
        return arrays, meta

    def load_state_dict(self, arrays: dict, meta: dict) -> None:
        """Restore what ``state_dict`` returned, replacing any state this optimizer holds.

        Continuing from it reproduces an uninterrupted run bit for bit, provided this optimizer was
        built with the same options: they come from the constructor, not from ``meta``, so that a
        resumed run may change them; ``make_optimizer(meta["config"])`` rebuilds the saved ones.
        Raises ``ArtifactError`` when the state belongs to another optimizer, a slot is missing or
        unexpected, or a slot's shape does not match its parameter's (checked on the next step)."""
        if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
            raise ArtifactError(f"optimizer state: expected format '{STATE_FORMAT}', got {_get(meta, 'format')!r}")
        if meta.get("name") != self.name:
            raise ArtifactError(f"optimizer state is for '{meta.get('name')}', but this optimizer is '{self.name}'")
        step, params = meta.get("step"), meta.get("params")
        if not isinstance(step, int) or step < 0 or not isinstance(params, dict):
            raise ArtifactError("optimizer state: 'step' must be a count and 'params' an object")
        expected = {f"{key}/{slot}" for key in params for slot in self.slot_names}
        missing = sorted(expected - set(arrays))
        if missing:
            raise ArtifactError(f"optimizer state is missing slot(s) {', '.join(map(repr, missing))}")
        unexpected = sorted(set(arrays) - expected)
        if unexpected:
            raise ArtifactError(
                f"optimizer state has unexpected slot(s) {', '.join(map(repr, unexpected))}; "
                f"'{self.name}' keeps {', '.join(self.slot_names) or 'no slots'} per parameter"
            )
        loaded = {}
        for key, entry in params.items():
            steps = _get(entry, "steps")
            if not isinstance(steps, int) or steps < 0:
                raise ArtifactError(f"optimizer state: parameter '{key}' has no valid 'steps' count")
            slots = {slot: arrays[f"{key}/{slot}"] for slot in self.slot_names}
            shapes = {tuple(array.shape) for array in slots.values()}
            if len(shapes) > 1:
                raise ArtifactError(f"optimizer state: the slots of '{key}' have different shapes {sorted(shapes)}")
            loaded[key] = (steps, slots)
        self.step_count = step
        self._states = {}
        self._loaded = loaded

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.to_config().items() if k != "name")
        return f"{type(self).__name__}({options})"


def _get(mapping, key):
    return mapping.get(key) if isinstance(mapping, dict) else None


class SGD(Optimizer):
    """param -= lr * grad."""

    name = "sgd"
    label = "SGD"
    params = (_learning_rate(0.01), _weight_decay(0.0), CLIP_NORM, SCHEDULE)

    def _update(self, param, grad, state, lr):
        work = state.work
        state.xp.multiply(grad, lr, out=work)
        param -= work


class Momentum(Optimizer):
    """velocity = momentum * velocity + grad;  param -= lr * velocity  (torch SGD, dampening 0)."""

    name = "momentum"
    label = "SGD with momentum"
    params = (_learning_rate(0.01), MOMENTUM, _weight_decay(0.0), CLIP_NORM, SCHEDULE)
    slot_names = ("velocity",)

    def _update(self, param, grad, state, lr):
        velocity, work = state.slots["velocity"], state.work
        velocity *= self.momentum
        velocity += grad
        state.xp.multiply(velocity, lr, out=work)
        param -= work


class Nesterov(Momentum):
    """velocity = momentum * velocity + grad;  param -= lr * (grad + momentum * velocity)  (torch SGD, nesterov)."""

    name = "nesterov"
    label = "Nesterov momentum"

    def _update(self, param, grad, state, lr):
        velocity, work = state.slots["velocity"], state.work
        velocity *= self.momentum
        velocity += grad
        state.xp.multiply(velocity, self.momentum, out=work)
        work += grad
        work *= lr
        param -= work


class Adagrad(Optimizer):
    """sum_of_squares += grad^2;  param -= lr * grad / (sqrt(sum_of_squares) + eps)  (torch Adagrad, no lr decay)."""

    name = "adagrad"
    label = "Adagrad"
    params = (_learning_rate(0.01), _epsilon(1e-10), _weight_decay(0.0), CLIP_NORM, SCHEDULE)
    slot_names = ("sum_of_squares",)

    def _update(self, param, grad, state, lr):
        xp, total, work = state.xp, state.slots["sum_of_squares"], state.work
        xp.multiply(grad, grad, out=work)
        total += work
        xp.sqrt(total, out=work)
        work += self.eps
        xp.divide(grad, work, out=work)
        work *= lr
        param -= work


class RMSprop(Optimizer):
    """square_average = alpha * square_average + (1 - alpha) * grad^2;
    param -= lr * grad / (sqrt(square_average) + eps)  (torch RMSprop, no momentum, not centered)."""

    name = "rmsprop"
    label = "RMSprop"
    params = (
        _learning_rate(0.01),
        Option("alpha", "float", default=0.99, minimum=0, maximum=1, label="α (decay)",
               doc="decay of the running mean of the squared gradient"),
        _epsilon(1e-8), _weight_decay(0.0), CLIP_NORM, SCHEDULE,
    )
    slot_names = ("square_average",)

    def _update(self, param, grad, state, lr):
        xp, average, work = state.xp, state.slots["square_average"], state.work
        average *= self.alpha
        xp.multiply(grad, grad, out=work)
        work *= 1.0 - self.alpha
        average += work
        xp.sqrt(average, out=work)
        work += self.eps
        xp.divide(grad, work, out=work)
        work *= lr
        param -= work


class Adam(Optimizer):
    """m = beta1 m + (1 - beta1) grad;  v = beta2 v + (1 - beta2) grad^2;
    param -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)  (torch Adam; t counts this
    parameter's updates from 1)."""

    name = "adam"
    label = "Adam"
    params = (_learning_rate(1e-3), BETA1, BETA2, _epsilon(1e-8), _weight_decay(0.0), CLIP_NORM, SCHEDULE)
    slot_names = ("m", "v")

    def _update(self, param, grad, state, lr):
        xp, m, v, work = state.xp, state.slots["m"], state.slots["v"], state.work
        beta1, beta2, t = self.beta1, self.beta2, state.steps
        root_c2 = math.sqrt(1.0 - beta2**t)
        kernel = _adam_kernel(xp)
        if kernel is not None and param.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous:
            # One pass over the four arrays instead of ten (the same formula, below). A gradient that is a
            # transposed view (a convolution's dW) is copied first: reshape(-1) does it.
            flat = [a.reshape(-1) for a in (param, grad, m, v)]
            scalars = xp.array([beta1, beta2, self.eps * root_c2, lr * root_c2 / (1.0 - beta1**t)], dtype=param.dtype)
            if len(parallel.split(param.size, _numba.piece_work(param.size))) == 1:
                kernel(*flat, scalars)  # most parameters: one call, without the pool's bookkeeping
            else:
                parallel.run(param.size, lambda low, high: kernel(*(a[low:high] for a in flat), scalars),
                             work=_numba.piece_work(param.size))
            return
        m *= beta1
        xp.multiply(grad, 1.0 - beta1, out=work)
        m += work
        v *= beta2
        xp.multiply(grad, grad, out=work)
        work *= 1.0 - beta2
        v += work
        # lr/c1 * m / (sqrt(v)/sqrt(c2) + eps) == (lr*sqrt(c2)/c1) * m / (sqrt(v) + eps*sqrt(c2)): one pass fewer.
        xp.sqrt(v, out=work)
        work += self.eps * root_c2
        xp.divide(m, work, out=work)
        work *= lr * root_c2 / (1.0 - beta1**t)
        param -= work


def _adam_kernel(xp):
    """Adam's update as one compiled pass (``engine.ops._numba``) on NumPy arrays; None elsewhere."""
    return _numba.compile_kernel(_adam_pass) if _numba.available(xp) else None


def _adam_pass(param, grad, m, v, scalars):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  param -= step_size * m / (sqrt(v) + eps),
    with ``scalars`` = (b1, b2, eps, step_size) in the parameter's dtype."""
    beta1, beta2, eps, step_size = scalars[0], scalars[1], scalars[2], scalars[3]
    one = scalars.dtype.type(1.0)
    keep1, keep2 = one - beta1, one - beta2
    for i in range(param.shape[0]):
        g = grad[i]
        mi = beta1 * m[i] + keep1 * g
        vi = beta2 * v[i] + keep2 * (g * g)
        m[i] = mi
        v[i] = vi
        param[i] -= step_size * (mi / (numpy.sqrt(vi) + eps))


class AdamW(Adam):
    """param *= 1 - lr * weight_decay, then the Adam update without L2 (torch AdamW)."""

    name = "adamw"
    label = "AdamW"
    params = (_learning_rate(1e-3), BETA1, BETA2, _epsilon(1e-8),
              _weight_decay(0.01, "decoupled: the parameters shrink by lr * weight_decay each update"),
              CLIP_NORM, SCHEDULE)
    decoupled_weight_decay = True

    def _update(self, param, grad, state, lr):
        if self.weight_decay:
            param *= 1.0 - lr * self.weight_decay
        super()._update(param, grad, state, lr)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, Adagrad, RMSprop, Adam, AdamW)
}


def option_names(cls: type[Optimizer]) -> tuple[str, ...]:
    """The options an optimizer class takes, in the order it declares them."""
    return tuple(option.name for option in cls.params)


def check_optimizer_config(config: Any, path: str, errors: dict[str, str]) -> dict | None:
    """An optimizer config (a name, or an object with ``name`` and options) checked against the
    schema: the config with canonical values (only the options given), or None with each problem
    added to ``errors`` under its dotted path (``path`` is where the config sits: ``"optimizer"``)."""
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, dict):
        errors[path] = f"{path} must be an optimizer name or an object with 'name', got {show(config)}"
        return None
    options = dict(config)
    name = options.pop("name", None)
    if not isinstance(name, str) or name not in OPTIMIZERS:
        errors[f"{path}.name"] = f"unknown optimizer {show(name)}; valid optimizers: {', '.join(OPTIMIZERS)}"
        return None
    before = len(errors)
    cleaned = check_object(OPTIMIZERS[name].params, options, path, errors, nested={"schedule": check_schedule_config})
    return {"name": name, **cleaned} if len(errors) == before else None


def make_optimizer(config: dict | str, **overrides) -> Optimizer:
    """An optimizer from its config (a dict with ``name``, or just the name), ``overrides`` applied
    on top. Raises ``TrainingOptionsError`` naming each bad option (``optimizer.lr``)."""
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, dict):
        raise EngineError(f"an optimizer config must be a name or an object with 'name', got {config!r}")
    errors: dict[str, str] = {}
    cleaned = check_optimizer_config({**config, **overrides}, "optimizer", errors)
    if errors:
        raise TrainingOptionsError(errors)
    options = dict(cleaned)
    return OPTIMIZERS[options.pop("name")](**options)
