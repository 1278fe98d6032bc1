"""Weight initializers.

Every initializer draws from a NumPy ``Generator`` in float64 and casts afterwards, and the array
moves to the device last (``xp.asarray``), so one seed gives the same initial weights in every
dtype's precision on CPU and GPU alike. ``fan_in``/``fan_out`` are the layer's input and output
sizes (for convolutions, channels times kernel area).

A config is a name, ``"he_normal"``, or an object with options, ``{"name": "normal", "std": 0.01}``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from collections.abc import Callable

import numpy

from engine.errors import EngineError


@dataclasses.dataclass(frozen=True)
class Initializer:
    """``sample(shape, fan_in, fan_out, rng, **options)`` returns a float64 NumPy array."""

    name: str
    sample: Callable[..., numpy.ndarray]
    doc: str
    options: dict = dataclasses.field(default_factory=dict)  # option name -> default value


def _zeros(shape, fan_in, fan_out, rng):
    return numpy.zeros(shape)


def _ones(shape, fan_in, fan_out, rng):
    return numpy.ones(shape)


def _constant(shape, fan_in, fan_out, rng, value):
    return numpy.full(shape, value, dtype=numpy.float64)


def _normal(shape, fan_in, fan_out, rng, mean, std):
    return rng.normal(mean, std, size=shape)


def _uniform(shape, fan_in, fan_out, rng, low, high):
    return rng.uniform(low, high, size=shape)


def _glorot_uniform(shape, fan_in, fan_out, rng):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def _glorot_normal(shape, fan_in, fan_out, rng):
    return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def _he_uniform(shape, fan_in, fan_out, rng):
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


def _he_normal(shape, fan_in, fan_out, rng):
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)


def _lecun_normal(shape, fan_in, fan_out, rng):
    return rng.normal(0.0, math.sqrt(1.0 / fan_in), size=shape)


def _orthogonal(shape, fan_in, fan_out, rng, gain):
    """Orthonormal rows or columns (whichever are fewer) of the (shape[0], rest) matrix, times gain:
    the QR factor Q of a Gaussian matrix, signs fixed by diag(R) so that Q is uniformly distributed.
    A vector has no orthogonal form and gets N(0, gain^2)."""
    if len(shape) < 2:
        return rng.normal(0.0, 1.0, size=shape) * gain
    rows, columns = shape[0], math.prod(shape[1:])
    gaussian = rng.normal(0.0, 1.0, size=(max(rows, columns), min(rows, columns)))
    q, r = numpy.linalg.qr(gaussian)
    q *= numpy.sign(numpy.diag(r))
    if rows < columns:
        q = q.T
    return (gain * q).reshape(shape)


INITIALIZERS: dict[str, Initializer] = {init.name: init for init in (
    Initializer("zeros", _zeros, "all 0"),
    Initializer("ones", _ones, "all 1"),
    Initializer("constant", _constant, "all equal to value", {"value": 0.0}),
    Initializer("normal", _normal, "N(mean, std^2)", {"mean": 0.0, "std": 0.05}),
    Initializer("uniform", _uniform, "U[low, high)", {"low": -0.05, "high": 0.05}),
    Initializer("glorot_uniform", _glorot_uniform, "Glorot/Xavier: U[-a, a), a = sqrt(6 / (fan_in + fan_out))"),
    Initializer("glorot_normal", _glorot_normal, "Glorot/Xavier: N(0, 2 / (fan_in + fan_out))"),
    Initializer("he_uniform", _he_uniform, "He/Kaiming (fan_in, gain sqrt 2): U[-a, a), a = sqrt(6 / fan_in)"),
    Initializer("he_normal", _he_normal, "He/Kaiming (fan_in, gain sqrt 2): N(0, 2 / fan_in)"),
    Initializer("lecun_normal", _lecun_normal, "LeCun: N(0, 1 / fan_in), for SELU networks"),
    Initializer("orthogonal", _orthogonal, "gain times a random orthogonal matrix (Saxe et al.), for recurrent "
                "weights; a tensor is seen as (shape[0], rest)", {"gain": 1.0}),
)}

# The choices an op's ``*_init`` parameter offers in the catalog.
INITIALIZER_NAMES: tuple[str, ...] = tuple(INITIALIZERS)


def resolve(name_or_config: str | dict) -> tuple[Initializer, dict]:
    """The initializer and its complete options for a config, or an ``EngineError``."""
    if isinstance(name_or_config, str):
        config = {"name": name_or_config}
    elif isinstance(name_or_config, dict):
        config = dict(name_or_config)
    else:
        raise EngineError(f"an initializer must be a name or an object with 'name', got {name_or_config!r}")
    name = config.pop("name", None)
    if name not in INITIALIZERS:
        raise EngineError(f"unknown initializer {name!r}; valid initializers: {', '.join(INITIALIZER_NAMES)}")
    initializer = INITIALIZERS[name]
    unknown = sorted(set(config) - set(initializer.options))
    if unknown:
        raise EngineError(
            f"initializer {name}: unknown option(s) {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(initializer.options) or '(none)'}"
        )
    options = {**initializer.options, **config}
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise EngineError(f"initializer {name}: '{key}' must be a finite number, got {value!r}")
        options[key] = float(value)
    if name == "normal" and options["std"] < 0:
        raise EngineError(f"initializer normal: 'std' must be >= 0, got {options['std']}")
    if name == "uniform" and options["low"] > options["high"]:
        raise EngineError(f"initializer uniform: 'low' ({options['low']}) must be <= 'high' ({options['high']})")
    return initializer, options


def initialize(name_or_config: str | dict, shape: tuple, *, fan_in: int, fan_out: int,
               rng: numpy.random.Generator, dtype="float32", xp: types.ModuleType = numpy):
    """A new ``shape`` array of ``dtype`` on ``xp``'s device, drawn with ``rng`` (float64, then cast)."""
    initializer, options = resolve(name_or_config)
    if fan_in < 1 or fan_out < 1:
        raise EngineError(f"initializer {initializer.name}: fan_in and fan_out must be >= 1, got {fan_in}, {fan_out}")
    values = initializer.sample(tuple(shape), fan_in, fan_out, rng, **options)
    return xp.asarray(values.astype(dtype, copy=False))
