"""The op catalog: one registry entry per op, the single source of truth for the editor too.

An op declares its parameter schema, named input and output ports, a shape rule that runs
without data (``infer``), the trainable weights it owns, a forward and a backward written as a
vector-Jacobian product. ``catalog()`` turns the registry into JSON-ready data.
"""

from __future__ import annotations

import dataclasses
import math
import types
from typing import Any, ClassVar

from engine.errors import EngineError, ShapeError

FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
DTYPES = FLOAT_DTYPES + INT_DTYPES


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

PARAM_TYPES = ("int", "float", "bool", "str", "choice", "axes", "int_list", "shape", "dict", "padding")


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of an op: its type, default (or REQUIRED), bounds or choices, and doc.

    Types: ``int``, ``float``, ``bool``, ``str``, ``choice`` (one of ``choices``), ``axes`` (an
    int, a list of ints, or null for all axes), ``int_list``, ``shape`` (a list of ints where -1
    may stand for one inferred size), ``dict`` (free-form JSON object, e.g. an initializer config),
    ``padding`` (an int, a list of ints within the bounds, or one of ``choices`` such as "same").
    """

    name: str
    type: str
    default: Any = REQUIRED
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    nullable: bool = False

    def __post_init__(self):
        assert self.type in PARAM_TYPES, self.type

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: Any) -> Any:
        """Return the value converted to its canonical form, or raise ValueError saying why."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError("must not be null")
        kind = self.type
        if kind == "int":
            value = _as_int(value)
            self._check_bounds(value)
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"must be a finite number, got {value!r}")
            value = float(value)
            self._check_bounds(value)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false, got {value!r}")
        elif kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"must be a string, got {value!r}")
        elif kind == "choice":
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        elif kind == "axes":
            value = _as_int(value) if not isinstance(value, (list, tuple)) else tuple(_as_int(v) for v in value)
        elif kind == "padding":
            if isinstance(value, str):
                if value not in self.choices:
                    raise ValueError(f"must be an integer, a list of integers or one of "
                                     f"{', '.join(map(repr, self.choices))}, got {value!r}")
                return value
            value = tuple(_as_int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
            for v in value:
                self._check_bounds(v)
        elif kind in ("int_list", "shape"):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = [value]
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"must be a list of integers, got {value!r}")
            value = tuple(_as_int(v) for v in value)
            if kind == "shape":
                if sum(1 for v in value if v == -1) > 1:
                    raise ValueError("may contain -1 (an inferred size) at most once")
                if any(v == 0 or v < -1 for v in value):
                    raise ValueError(f"sizes must be positive (or one -1), got {list(value)}")
            else:
                for v in value:
                    self._check_bounds(v)
        elif kind == "dict":
            if not isinstance(value, dict):
                raise ValueError(f"must be an object, got {value!r}")
        return value

    def _check_bounds(self, value) -> None:
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be >= {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be <= {self.maximum}, got {value}")

    def to_json(self) -> dict:
        data = {"name": self.name, "type": self.type, "doc": self.doc, "required": self.required}
        if not self.required:
            default = self.default
            data["default"] = list(default) if isinstance(default, tuple) else default
        for key in ("minimum", "maximum"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.choices is not None:
            data["choices"] = list(self.choices)
        if self.nullable:
            data["nullable"] = True
        return data


def _as_int(value) -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value)) or int(value) != value):
        raise ValueError(f"must be an integer, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class Port:
    """A named input or output. ``dtype`` is the kind accepted: float, int or any.

    A ``variadic`` input takes a list of tensors (concat); an ``optional`` one may be left out;
    no gradient flows into a port that is not ``differentiable`` (thresholded labels, masks).
    ``rank`` is (minimum, maximum) of the ranks the shape rule accepts, maximum ``None`` for
    unbounded, or ``None`` for any rank: the editor refuses a connection of another rank while it
    is drawn, the shape rule (which must agree, as the test suite checks) after.
    """

    name: str
    dtype: str = "float"
    doc: str = ""
    variadic: bool = False
    optional: bool = False
    differentiable: bool = True
    rank: tuple[int, int | None] | None = None

    def __post_init__(self):
        if self.rank is not None:
            low, high = self.rank
            assert low >= 0 and (high is None or high >= low), self.rank

    def accepts_rank(self, rank: int) -> bool:
        if self.rank is None:
            return True
        low, high = self.rank
        return low <= rank and (high is None or rank <= high)

    def accepts(self, dtype: str) -> bool:
        if self.dtype == "any":
            return True
        if self.dtype == "float":
            return dtype in FLOAT_DTYPES
        if self.dtype == "int":
            return dtype in INT_DTYPES
        raise AssertionError(self.dtype)

    def to_json(self) -> dict:
        data = {"name": self.name, "dtype": self.dtype, "doc": self.doc}
        if self.variadic:
            data["variadic"] = True
        if self.optional:
            data["optional"] = True
        if not self.differentiable:
            data["differentiable"] = False
        if self.rank is not None:
            data["rank"] = list(self.rank)
        return data


@dataclasses.dataclass(frozen=True)
class TensorType:
    """A symbolic tensor: a shape whose unknown sizes (the batch) are ``None``, and a dtype."""

    shape: tuple
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    def per_sample_size(self) -> int:
        """Elements per sample: the product of the known sizes."""
        return math.prod(s for s in self.shape if s is not None)

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "dtype": self.dtype}


@dataclasses.dataclass(frozen=True)
class Weight:
    """A tensor an op owns: trainable (updated by the optimizer) or a buffer (running stats).

    Buffers are saved and loaded with the weights but never optimized; an op returns ``None`` as
    their gradient and sets new values in ``ctx.updates``. ``zero_rows`` lists rows (first-axis
    indices) set to zero after initialization (an embedding's padding row).
    """

    name: str
    shape: tuple
    init: Any = "zeros"
    fan_in: int = 1
    fan_out: int = 1
    trainable: bool = True
    zero_rows: tuple = ()

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Context:
    """What one forward call leaves for its backward: ops set attributes on it.

    ``training`` says train or eval mode, ``rng`` is the graph's random generator (dropout),
    ``needs`` is a tuple, aligned with the op's inputs then weights, of which ones need a gradient
    (``False`` entries may be answered with ``None``), and ``updates`` collects new buffer values.

    ``weights_ready``, where not None (a data-parallel worker sends gradients while backward goes
    on), takes the op's weight gradients, in weight order, as soon as they are final: an op whose
    input gradient costs as much again (a dense layer's) may compute its weight gradients first and
    hand them over before it, then return the same ones.
    """

    def __init__(self, training: bool = False, rng=None, needs: tuple = ()):
        self.training = training
        self.rng = rng
        self.needs = needs
        self.updates: dict | None = None
        self.weights_ready = None


class Op:
    """Base class of every op. Subclasses set the class attributes and override the methods."""

    name: ClassVar[str]
    category: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    inputs: ClassVar[tuple[Port, ...]] = (Port("x"),)
    outputs: ClassVar[tuple[Port, ...]] = (Port("out"),)
    differentiable: ClassVar[bool] = True
    is_loss: ClassVar[bool] = False
    block: ClassVar[bool] = False

    def resolve(self, raw: dict) -> tuple[types.SimpleNamespace, list[tuple[str, str]]]:
        """Check raw params against the schema: (namespace with defaults, [(field, message)])."""
        values, errors = resolve_params(self.params, raw, owner=f"op '{self.name}'")
        return types.SimpleNamespace(**values), errors

    # -- the rules, overridden by each op -------------------------------------------------
    def infer(self, p, *inputs: TensorType) -> TensorType | tuple[TensorType, ...]:
        """Output type(s) from input types, without data. Raise ShapeError naming the field."""
        raise EngineError(f"op '{self.name}' defines no shape rule")

    def weights(self, p, *inputs: TensorType) -> list[Weight]:
        return []

    def flops(self, p, inputs: tuple, outputs: tuple) -> int:
        """Floating-point operations per sample in the forward; default one per output element."""
        return sum(out.per_sample_size() for out in outputs)

    def forward(self, ctx: Context, p, *args):
        raise EngineError(f"op '{self.name}' defines no forward")

    def backward(self, ctx: Context, p, grad) -> tuple:
        raise EngineError(f"op '{self.name}' defines no backward")

    def to_json(self) -> dict:
        return {**schema_json(self), "is_loss": self.is_loss, "block": self.block, "kind": "op",
                "has_weights": type(self).weights is not Op.weights}


def resolve_params(params: tuple[Param, ...], raw: dict, *, owner: str) -> tuple[dict, list[tuple[str, str]]]:
    """Raw values checked against a schema (of an op or a block): (values with defaults filled in,
    [(field, message)] for unknown, missing and bad ones)."""
    errors: list[tuple[str, str]] = []
    values = {}
    known = {param.name for param in params}
    for key in raw:
        if key not in known:
            hint = f"; known parameters: {', '.join(sorted(known))}" if known else "; this op takes none"
            errors.append((f"params.{key}", f"unknown parameter '{key}' for {owner}{hint}"))
    for param in params:
        if param.name in raw:
            try:
                values[param.name] = param.check(raw[param.name])
            except ValueError as error:
                errors.append((f"params.{param.name}", f"parameter '{param.name}' {error}"))
                values[param.name] = None if param.required else param.default
        elif param.required:
            errors.append((f"params.{param.name}", f"missing required parameter '{param.name}'"))
            values[param.name] = None
        else:
            values[param.name] = param.default
    return values, errors


def schema_json(entry) -> dict:
    """The catalog fields an op and a block share: name, category, doc, parameters and ports."""
    return {
        "name": entry.name,
        "category": entry.category,
        "doc": entry.doc,
        "params": [param.to_json() for param in entry.params],
        "inputs": [port.to_json() for port in entry.inputs],
        "outputs": [port.to_json() for port in entry.outputs],
    }


_REGISTRY: dict[str, Op] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator adding an op to the catalog."""
    if cls.name in _REGISTRY:
        raise EngineError(f"op '{cls.name}' is registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def _load_ops() -> None:
    import engine.ops  # noqa: F401, PLC0415 - importing the package registers every op


def get_op(name: str):
    """The op of that name, or the composite block of that name (``engine.blocks.Block``, with the
    same catalog fields: name, category, doc, params, inputs, outputs, is_loss, block), or None."""
    _load_ops()
    op = _REGISTRY.get(name)
    if op is None and isinstance(name, str):
        from engine.blocks import get_block  # noqa: PLC0415

        return get_block(name)
    return op


def op_names() -> list[str]:
    _load_ops()
    return sorted(_REGISTRY)


def catalog() -> dict:
    """The whole op catalog as JSON-ready data (what ``GET /api/ops`` serves): every op, and every
    composite block (``"kind": "block"``, with its inner ``graph`` for the editor to open)."""
    _load_ops()
    from engine import __version__  # noqa: PLC0415
    from engine.blocks import catalog_entries  # noqa: PLC0415

    entries = sorted([op.to_json() for op in _REGISTRY.values()] + catalog_entries(),
                     key=lambda entry: (entry["category"], entry["name"]))
    return {
        "format": "netforge.catalog/1",
        "engine_version": __version__,
        "categories": sorted({entry["category"] for entry in entries}),
        "ops": entries,
    }


__all__ = [
    "Context",
    "Op",
    "Param",
    "Port",
    "REQUIRED",
    "ShapeError",
    "TensorType",
    "Weight",
    "catalog",
    "get_op",
    "op_names",
    "register",
]
