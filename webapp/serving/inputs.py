"""Request payloads to checked input arrays, and predictions back to payloads.

One set of rules for every protocol (REST instances, REST columns, KServe v2 tensors, gRPC raw
tensors): each feature input of the model must be present, numeric of the right kind, and of
the declared shape (the first axis is the batch). A problem is an ``InputError`` that names the
field and says what was expected; it becomes a 400 / INVALID_ARGUMENT. Nothing here unpickles:
raw tensors are read with ``numpy.frombuffer``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy

DTYPES = {"float32": numpy.float32, "float64": numpy.float64, "int32": numpy.int32, "int64": numpy.int64}
V2_DATATYPES = {"FP32": "float32", "FP64": "float64", "INT32": "int32", "INT64": "int64"}
DTYPE_TO_V2 = {value: key for key, value in V2_DATATYPES.items()}
MAX_DIMENSIONS = 32  # NumPy's own limit is 64; no model input has more than a handful
MAX_TENSOR_BYTES = 2**31  # far above any request the size caps let in


class InputError(Exception):
    """A request input that does not fit the model: ``field`` names it (``instances[3].x``)."""

    def __init__(self, field: str, message: str, *, expected: dict | None = None):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.expected = expected or {}


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One feature input: its name, shape (``None`` for the batch and other free axes), dtype."""

    name: str
    shape: tuple
    dtype: str

    @property
    def instance_shape(self) -> tuple:
        return self.shape[1:]

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith("float")

    def describe(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    def shape_text(self) -> str:
        return "[" + ", ".join("N" if index == 0 else ("?" if size is None else str(size))
                               for index, size in enumerate(self.shape)) + "]"


def _expected(spec: InputSpec) -> dict:
    return {"input": spec.name, "shape": list(spec.shape), "dtype": spec.dtype}


def check_array(array: numpy.ndarray, spec: InputSpec, field: str) -> numpy.ndarray:
    """``array`` (a batch) checked against ``spec`` and cast to its dtype."""
    kind = array.dtype.kind
    if spec.is_float:
        if kind not in "iuf":
            got = "booleans" if kind == "b" else ("strings" if kind in "USO" else f"dtype {array.dtype}")
            raise InputError(field, f"expected numbers ({spec.dtype}), got {got}", expected=_expected(spec))
    elif kind not in "iu":
        got = "floats" if kind == "f" else (
            "booleans" if kind == "b" else ("strings" if kind in "USO" else f"dtype {array.dtype}"))
        raise InputError(field, f"expected integers ({spec.dtype}), got {got}", expected=_expected(spec))
    shape = array.shape
    if len(shape) != len(spec.shape) or any(want is not None and want != got
                                            for want, got in zip(spec.shape[1:], shape[1:])):
        raise InputError(field, f"expected shape {spec.shape_text()} (a batch of {list(spec.instance_shape)}), "
                                f"got {list(shape)}", expected=_expected(spec))
    if kind == "f" and not numpy.isfinite(array).all():
        raise InputError(field, "values must be finite numbers (no NaN or infinity)", expected=_expected(spec))
    if kind in "iu" and not spec.is_float:
        limits = numpy.iinfo(DTYPES[spec.dtype])
        if array.size and (array.min() < limits.min or array.max() > limits.max):
            raise InputError(field, f"values overflow {spec.dtype} (from {limits.min} to {limits.max})",
                             expected=_expected(spec))
    with numpy.errstate(over="ignore"):
        cast = array.astype(DTYPES[spec.dtype], copy=False)
    if spec.is_float and not numpy.isfinite(cast).all():
        largest = float(numpy.finfo(DTYPES[spec.dtype]).max)
        raise InputError(field, f"values overflow {spec.dtype} (at most {largest:.3g} in magnitude)",
                         expected=_expected(spec))
    return cast


def _as_array(values, field: str, spec: InputSpec) -> numpy.ndarray:
    try:
        array = numpy.asarray(values)
    except (ValueError, TypeError):
        raise InputError(field, f"rows of different lengths; expected shape {spec.shape_text()}",
                         expected=_expected(spec)) from None
    if array.dtype.kind == "O":
        raise InputError(field, f"expected numbers ({spec.dtype}) in nested lists of shape {spec.shape_text()}, "
                                "got nulls, objects or ragged rows", expected=_expected(spec))
    return array


def from_instances(instances, specs: list[InputSpec]) -> tuple[dict, int]:
    """REST ``"instances"``: a list of rows (single-input models) or of objects by input name."""
    if not isinstance(instances, list) or not instances:
        raise InputError("instances", "expected a non-empty list of instances",
                         expected={"inputs": [spec.describe() for spec in specs]})
    if isinstance(instances[0], dict):
        arrays = {}
        for spec in specs:
            column = []
            for index, instance in enumerate(instances):
                if not isinstance(instance, dict):
                    raise InputError(f"instances[{index}]",
                                     "expected an object of inputs by name, like the first instance")
                if spec.name not in instance:
                    raise InputError(f"instances[{index}].{spec.name}", f"missing; expected shape "
                                     f"{list(spec.instance_shape)} {spec.dtype}", expected=_expected(spec))
                column.append(instance[spec.name])
            arrays[spec.name] = check_array(_as_array(column, f"instances[*].{spec.name}", spec), spec,
                                            f"instances[*].{spec.name}")
        _reject_unknown({key for instance in instances if isinstance(instance, dict) for key in instance}, specs,
                        "instances[*]")
        return arrays, len(instances)
    if len(specs) != 1:
        raise InputError("instances", f"this model takes several inputs {[spec.name for spec in specs]}; "
                                      "send each instance as an object of inputs by name")
    spec = specs[0]
    return {spec.name: check_array(_as_array(instances, "instances", spec), spec, "instances")}, len(instances)


def from_columns(inputs, specs: list[InputSpec]) -> tuple[dict, int]:
    """REST ``"inputs"``: an object of batches by input name (columnar)."""
    if not isinstance(inputs, dict):
        raise InputError("inputs", "expected an object of input batches by name",
                         expected={"inputs": [spec.describe() for spec in specs]})
    arrays = {}
    for spec in specs:
        if spec.name not in inputs:
            raise InputError(f"inputs.{spec.name}", f"missing; expected shape {spec.shape_text()} {spec.dtype}",
                             expected=_expected(spec))
        arrays[spec.name] = check_array(_as_array(inputs[spec.name], f"inputs.{spec.name}", spec), spec,
                                        f"inputs.{spec.name}")
    _reject_unknown(set(inputs), specs, "inputs")
    return arrays, batch_size_of(arrays, "inputs")


def from_v2(inputs, specs: list[InputSpec]) -> tuple[dict, int]:
    """KServe v2 / Open Inference Protocol ``"inputs"``: ``[{name, shape, datatype, data}]``."""
    if not isinstance(inputs, list):
        raise InputError("inputs", "expected a list of tensors {name, shape, datatype, data}",
                         expected={"inputs": [{**spec.describe(), "datatype": DTYPE_TO_V2[spec.dtype]}
                                              for spec in specs]})
    by_name = {spec.name: spec for spec in specs}
    arrays = {}
    for index, tensor in enumerate(inputs):
        field = f"inputs[{index}]"
        if not isinstance(tensor, dict):
            raise InputError(field, "expected a tensor object {name, shape, datatype, data}")
        name = tensor.get("name")
        if name not in by_name:
            raise InputError(f"{field}.name", f"unknown input {name!r}; this model takes {sorted(by_name)}")
        spec = by_name[name]
        datatype = tensor.get("datatype")
        if datatype != DTYPE_TO_V2[spec.dtype]:
            raise InputError(f"{field}.datatype", f"expected {DTYPE_TO_V2[spec.dtype]}, got {datatype!r}",
                             expected=_expected(spec))
        shape = tensor.get("shape")
        if not isinstance(shape, list) or len(shape) > MAX_DIMENSIONS or not all(
                isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 2**31 for size in shape):
            raise InputError(f"{field}.shape", f"expected a list of sizes like {spec.shape_text()}",
                             expected=_expected(spec))
        data = _as_array(tensor.get("data"), f"{field}.data", spec)
        if data.size != math.prod(shape):
            raise InputError(f"{field}.data", f"holds {data.size} values, shape {shape} needs {math.prod(shape)}",
                             expected=_expected(spec))
        arrays[name] = check_array(data.reshape(shape), spec, f"{field}.shape")
    for spec in specs:
        if spec.name not in arrays:
            raise InputError("inputs", f"missing input {spec.name!r} (shape {spec.shape_text()}, "
                                       f"datatype {DTYPE_TO_V2[spec.dtype]})", expected=_expected(spec))
    return arrays, batch_size_of(arrays, "inputs")


def from_tensor(dtype: str, shape, content: bytes, spec: InputSpec, field: str) -> numpy.ndarray:
    """A raw tensor (gRPC): little-endian bytes of ``dtype`` in C order, of ``shape``."""
    if dtype != spec.dtype:
        raise InputError(f"{field}.dtype", f"expected {spec.dtype!r}, got {dtype!r}", expected=_expected(spec))
    shape = [int(size) for size in shape]
    if len(shape) > MAX_DIMENSIONS:
        raise InputError(f"{field}.shape", f"{len(shape)} dimensions; at most {MAX_DIMENSIONS} (and this input "
                                           f"has {len(spec.shape)})", expected=_expected(spec))
    if any(size < 0 for size in shape):
        raise InputError(f"{field}.shape", f"sizes must be >= 0, got {shape}", expected=_expected(spec))
    itemsize = numpy.dtype(DTYPES[dtype]).itemsize
    needed = math.prod(shape) * itemsize
    if any(size >= 2**31 for size in shape) or needed > MAX_TENSOR_BYTES:
        # [2**63 - 1, 0] holds no values, but NumPy cannot describe it (its strides overflow)
        raise InputError(f"{field}.shape", f"sizes must be below 2**31, got {shape}", expected=_expected(spec))
    if len(content) != needed:
        raise InputError(f"{field}.content", f"holds {len(content)} bytes, shape {shape} of {dtype} needs {needed}",
                         expected=_expected(spec))
    array = numpy.frombuffer(content, dtype=numpy.dtype(DTYPES[dtype]).newbyteorder("<")).reshape(shape)
    return check_array(array, spec, f"{field}.shape")


def _reject_unknown(names: set, specs: list[InputSpec], field: str) -> None:
    unknown = sorted(names - {spec.name for spec in specs})
    if unknown:
        raise InputError(f"{field}.{unknown[0]}", f"unknown input; this model takes {[spec.name for spec in specs]}")


def batch_size_of(arrays: dict, field: str) -> int:
    sizes = {name: len(array) for name, array in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise InputError(field, f"the inputs have different batch sizes {sizes}")
    size = next(iter(sizes.values()))
    if size == 0:
        raise InputError(field, "the batch is empty; send at least one instance")
    return size


# -- predictions to payloads -----------------------------------------------------------------------

def to_instances(result: dict) -> list[dict]:
    """One prediction object per instance: class, label, probabilities (classifiers), or value."""
    if "classes" in result:
        probabilities = result["probabilities"]
        if probabilities.ndim == 1:  # a binary classifier's P(class 1)
            probabilities = numpy.stack([1.0 - probabilities, probabilities], axis=1)
        labels = result.get("labels")
        return [
            {"class": int(cls), "label": labels[index] if labels else None, "probabilities": row}
            for index, (cls, row) in enumerate(zip(result["classes"].tolist(), probabilities.tolist()))
        ]
    if "values" in result:
        return [{"value": value} for value in result["values"].tolist()]
    outputs = result["outputs"]
    names = list(outputs)
    columns = [outputs[name].tolist() for name in names]
    return [dict(zip(names, row)) for row in zip(*columns)]


def output_arrays(result: dict) -> dict[str, numpy.ndarray]:
    """Named output tensors: probabilities and classes, or values; then the raw graph outputs."""
    arrays = {}
    for key in ("probabilities", "classes", "values"):
        if key in result:
            arrays[key] = result[key]
    for name, array in result["outputs"].items():
        arrays.setdefault(name, array)
    return arrays
