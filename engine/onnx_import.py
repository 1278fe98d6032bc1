"""An ONNX model as an editable graph: a ``netforge.graph/1`` document and its starting weights.

Each ONNX node becomes the catalog ops that compute the same thing (the exporter,
``engine.onnx_export``, is the same table read the other way): Conv and Gemm become conv and dense
nodes owning their weights, BatchNormalization a batch_norm with its running statistics, and so
on. Tensors known without data (initializers, Constant, ConstantOfShape, and whatever is computed
from those alone, e.g. a Shape of a fixed-size tensor) are folded while translating and end up as
a node's weights or parameters. A node with no translation, or an attribute the catalog cannot
express, is reported with its node name and op type (``UnsupportedOnnx``): nothing is dropped.

The batch axis: ONNX models declare a fixed batch size (often 1); the graph's inputs take any.
For training the import adds what the engine needs: a classifier ending in Softmax gets an int64
input ``y`` and a softmax_cross_entropy on the scores before the Softmax; anything else gets a
float input ``target`` and an mse on its first output.

The file is untrusted: ``import_in_child`` parses it in a new interpreter under ``RLIMIT_AS`` and a
time limit, external data is refused, and every tensor's declared size (an initializer's dims, a
ConstantOfShape's shape) is checked against ``ImportLimits`` before anything is allocated.

Only this module and ``engine.onnx_export`` import ``onnx``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy

from engine.errors import EngineError
from engine.graph import FORMAT, ID_PATTERN

ELEMENT_DTYPES = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 11: "float64", 10: "float16"}
INPUT_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float32", "int32": "int32", "int64": "int64"}
LABEL_INPUT, TARGET_INPUT = "y", "target"


class OnnxImportError(EngineError):
    """The upload is not an ONNX model this importer may read (malformed, too large, external data)."""


class UnsupportedOnnx(OnnxImportError):
    """ONNX nodes with no translation into the catalog: ``problems`` lists each as a dict with
    ``node`` (the ONNX node's name, or its first output's when unnamed), ``op_type`` and ``reason``."""

    def __init__(self, problems: list[dict]):
        self.problems = list(problems)
        lines = [f"node '{p['node']}' ({p['op_type']}): {p['reason']}" for p in self.problems]
        super().__init__(f"{len(lines)} ONNX node(s) cannot be imported: " + "; ".join(lines))


@dataclasses.dataclass(frozen=True)
class ImportLimits:
    """What one import may read: the file, any one tensor, all weights together, the nodes."""

    max_file_bytes: int = 512 * 1024**2
    max_tensor_elements: int = 256 * 1024**2
    max_total_elements: int = 512 * 1024**2
    max_nodes: int = 20_000


@dataclasses.dataclass
class ImportedModel:
    """The graph document, its weights keyed ``node/weight`` and the ONNX names of the graph's
    inputs and outputs by the names the document gives them."""

    spec: dict
    weights: dict[str, numpy.ndarray]
    input_names: dict[str, str]
    output_names: dict[str, str]


# -- parsing -------------------------------------------------------------------------------------

def _load(data: bytes, limits: ImportLimits):
    import onnx  # noqa: PLC0415
    from google.protobuf.message import DecodeError  # noqa: PLC0415

    if len(data) > limits.max_file_bytes:
        raise OnnxImportError(f"the ONNX file has {len(data):,} bytes, over the import limit of "
                              f"{limits.max_file_bytes:,} bytes")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise OnnxImportError(f"the file is not an ONNX model (protobuf could not read it: {error})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxImportError("the file is not an ONNX model: it has no graph, or a graph without nodes")
    if len(model.graph.node) > limits.max_nodes:
        raise OnnxImportError(f"the ONNX graph has {len(model.graph.node):,} nodes, over the import limit of "
                              f"{limits.max_nodes:,}")
    _check_tensors(model, limits)
    return model


def _check_tensors(model, limits: ImportLimits) -> None:
    """Refuse external data and any tensor whose declared size passes the limits, before one is
    read into an array (a small file may declare a huge tensor)."""
    from onnx import TensorProto  # noqa: PLC0415

    total = 0

    def check(tensor, where: str) -> None:
        nonlocal total
        if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
            raise OnnxImportError(f"{where} '{tensor.name}' keeps its data in an external file; only a "
                                  "self-contained .onnx file can be imported (save it without external data)")
        count = math.prod(tensor.dims) if tensor.dims else 1
        if any(size < 0 for size in tensor.dims) or count > limits.max_tensor_elements:
            raise OnnxImportError(f"{where} '{tensor.name}' declares shape {list(tensor.dims)} ({count:,} values), "
                                  f"over the import limit of {limits.max_tensor_elements:,} values per tensor")
        total += count
        if total > limits.max_total_elements:
            raise OnnxImportError(f"the ONNX model's tensors hold more than {limits.max_total_elements:,} values "
                                  "together, the import limit")

    for tensor in model.graph.initializer:
        check(tensor, "initializer")
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                check(attribute.t, f"node '{node.name or node.output[0]}' attribute '{attribute.name}' tensor")
            if attribute.g.node or attribute.graphs:
                raise OnnxImportError(f"node '{node.name or node.output[0]}' ({node.op_type}) holds a subgraph; "
                                      "control flow (If, Loop, Scan) cannot be imported")


def _to_array(tensor) -> numpy.ndarray:
    from onnx import numpy_helper  # noqa: PLC0415

    array = numpy_helper.to_array(tensor)
    expected = tuple(tensor.dims)
    if array.shape != expected:
        raise OnnxImportError(f"tensor '{tensor.name}' declares shape {list(expected)} but holds "
                              f"{array.size} values")
    return array


# -- the translation -----------------------------------------------------------------------------

class _Unsupported(Exception):
    """Raised by a translation: the node cannot be imported, for ``reason``."""


@dataclasses.dataclass
class _Value:
    """An ONNX value during translation: an engine reference, or a constant array, with its
    inferred shape (batch first) when known."""

    reference: str | None = None
    constant: numpy.ndarray | None = None
    shape: tuple | None = None
    dtype: str = "float32"


class _Translator:
    def __init__(self, model, limits: ImportLimits):
        self.model, self.limits = model, limits
        self.opset = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 1)
        self.values: dict[str, _Value] = {}
        self.nodes: list[dict] = []
        self.weights: dict[str, numpy.ndarray] = {}
        self.taken: set[str] = set()
        self.problems: list[dict] = []
        self.shapes = _inferred_shapes(model)
        self.producer_of: dict[str, dict] = {}  # engine node id -> its spec node
        self.softmax_scores: dict[str, str] = {}  # an old opset's softmax over axis 1 -> its 2-D scores
        self.uses: dict[str, int] = {}
        for node in model.graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1

    # ids and nodes
    def fresh(self, wanted: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_.\-]", "_", wanted) or "node"
        if not re.match(r"[A-Za-z_]", name[0]):
            name = f"n_{name}"
        candidate, count = name, 1
        while candidate in self.taken:
            count += 1
            candidate = f"{name}_{count}"
        self.taken.add(candidate)
        assert ID_PATTERN.match(candidate), candidate
        return candidate

    def add(self, op: str, inputs: dict, params: dict | None = None, *, name: str,
            weights: dict | None = None) -> str:
        node_id = self.fresh(name)
        node = {"id": node_id, "op": op, "params": params or {}, "inputs": inputs}
        self.nodes.append(node)
        self.producer_of[node_id] = node
        for weight, array in (weights or {}).items():
            self.weights[f"{node_id}/{weight}"] = numpy.ascontiguousarray(array)
        return node_id

    # values
    def value(self, name: str) -> _Value:
        if name not in self.values:
            raise _Unsupported(f"its input '{name}' is not computed by any imported node")
        return self.values[name]

    def dynamic(self, name: str) -> str:
        value = self.value(name)
        if value.reference is None:
            raise _Unsupported(f"input '{name}' is a constant tensor where the catalog's op takes a computed one")
        return value.reference

    def constant(self, name: str, what: str) -> numpy.ndarray:
        if not name:
            raise _Unsupported(f"{what} is missing")
        value = self.value(name)
        if value.constant is None:
            raise _Unsupported(f"{what} ('{name}') must be a constant (an initializer) to become a weight")
        return value.constant

    def shape_of(self, name: str) -> tuple | None:
        value = self.values.get(name)
        if value is not None and value.constant is not None:
            return value.constant.shape
        if value is not None and value.shape is not None:
            return value.shape
        return self.shapes.get(name)

    def set_output(self, onnx_node, reference: str, index: int = 0) -> None:
        name = onnx_node.output[index]
        self.values[name] = _Value(reference=reference, shape=self.shapes.get(name))

    # the walk
    def run(self) -> ImportedModel:
        graph = self.model.graph
        for tensor in graph.initializer:
            self.values[tensor.name] = _Value(constant=_to_array(tensor))
        produced = {name for node in graph.node for name in node.output}
        input_names = {}
        spec_inputs = {}
        for declared in graph.input:
            if declared.name in self.values or declared.name in produced:
                continue  # an initializer listed as an input too (IR 3)
            name = self.fresh(declared.name)
            tensor_type = declared.type.tensor_type
            dtype = INPUT_DTYPES.get(ELEMENT_DTYPES.get(tensor_type.elem_type, ""), None)
            if dtype is None:
                raise OnnxImportError(f"graph input '{declared.name}' has element type {tensor_type.elem_type}, "
                                      "which the engine has no dtype for (float32, float64, int32, int64)")
            dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor_type.shape.dim]
            if not dims:
                raise OnnxImportError(f"graph input '{declared.name}' has no batch axis (a scalar input)")
            spec_inputs[name] = {"shape": [None, *dims[1:]], "dtype": dtype}
            input_names[name] = declared.name
            self.values[declared.name] = _Value(reference=name, shape=tuple(dims), dtype=dtype)
        for index, node in enumerate(graph.node):
            label = node.name or (node.output[0] if node.output else f"{node.op_type}_{index}")
            try:
                self.translate(node, label)
            except _Unsupported as error:
                self.problems.append({"node": label, "op_type": node.op_type, "reason": str(error)})
                for output in node.output:  # its users are not reported again
                    self.values.setdefault(output, _Value(reference="<unsupported>"))
        outputs, output_names = {}, {}
        for declared in graph.output:
            value = self.values.get(declared.name)
            if value is not None and value.constant is not None:
                self.problems.append({"node": declared.name, "op_type": "output",
                                      "reason": "the graph output is a constant, computed from no input"})
                continue
            if value is None:
                continue
            name = self.fresh(f"out_{declared.name}") if declared.name in self.taken else declared.name
            name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
            outputs[name] = value.reference
            output_names[name] = declared.name
        if self.problems:
            raise UnsupportedOnnx(self.problems)
        spec = {"format": FORMAT, "inputs": spec_inputs, "nodes": self.nodes, "outputs": outputs}
        self.add_loss(spec)
        return ImportedModel(spec, self.weights, input_names, output_names)

    def add_loss(self, spec: dict) -> None:
        """A loss, so that the graph trains: cross-entropy on the scores under an output's softmax
        (the labels as ``y``), else mean squared error of the first output against ``target``."""
        if not spec["outputs"]:
            return
        reference = next(iter(spec["outputs"].values()))
        scores = next((found for found in map(self.scores_under_softmax, spec["outputs"].values())
                       if found is not None), None)
        if scores is not None:
            spec["inputs"][LABEL_INPUT] = {"shape": [None], "dtype": "int64"}
            loss = self.add("softmax_cross_entropy", {"logits": scores, "labels": LABEL_INPUT}, name="loss")
        else:
            shape = next((self.values[n].shape for n in self.values if self.values[n].reference == reference), None)
            if shape is None:
                return
            spec["inputs"][TARGET_INPUT] = {"shape": [None, *shape[1:]], "dtype": "float32"}
            loss = self.add("mse", {"prediction": reference, "target": TARGET_INPUT}, name="loss")
        spec["loss"] = loss

    def scores_under_softmax(self, reference: str) -> str | None:
        """The scores a Softmax output is computed from (through the reshapes that carry an old
        opset's Softmax over axis 1), when they are (N, classes)."""
        if reference in self.softmax_scores:
            return self.softmax_scores[reference]
        node = self.producer_of.get(reference)
        if node is None or node["op"] != "softmax" or node["params"].get("axis") != -1:
            return None
        scores = node["inputs"]["x"]
        shape = next((value.shape for value in self.values.values() if value.reference == scores), None)
        return scores if shape is not None and len(shape) == 2 else None

    def translate(self, node, label: str) -> None:
        attributes = _attributes(node)
        if node.op_type in CONSTANTS:
            array = CONSTANTS[node.op_type](self, node, attributes)
            self.values[node.output[0]] = _Value(constant=array)
            return
        inputs = [name for name in node.input if name]
        if node.op_type in FOLDABLE and inputs and all(
                self.values.get(name) is not None and self.values[name].constant is not None for name in inputs):
            arrays = [self.values[name].constant if name else None for name in node.input]
            results = FOLDABLE[node.op_type](self, node, attributes, arrays)
            for output, array in zip(node.output, results):
                if array.size > self.limits.max_tensor_elements:
                    raise OnnxImportError(f"node '{label}' ({node.op_type}) would compute a tensor of "
                                          f"{array.size:,} values, over the import limit")
                self.values[output] = _Value(constant=array)
            return
        if node.op_type == "Shape" and self.shape_of(node.input[0]) is not None and None not in self.shape_of(
                node.input[0]):
            self.values[node.output[0]] = _Value(constant=numpy.array(self.shape_of(node.input[0]), dtype=numpy.int64))
            return
        translation = TRANSLATIONS.get(node.op_type)
        if translation is None or (node.domain not in ("", "ai.onnx")):
            raise _Unsupported(f"no catalog op computes {node.op_type}"
                               + (f" of domain '{node.domain}'" if node.domain not in ("", "ai.onnx") else ""))
        translation(self, node, attributes, label)


def _attributes(node) -> dict:
    from onnx import helper  # noqa: PLC0415

    values = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        values[attribute.name] = value
    return values


def _inferred_shapes(model) -> dict[str, tuple]:
    """Each value's shape by ONNX shape inference (batch axis as declared); empty where it fails."""
    import onnx  # noqa: PLC0415

    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:  # noqa: BLE001 - inference is a help, translation names what it misses
        return {}
    shapes = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        tensor_type = info.type.tensor_type
        if tensor_type.HasField("shape"):
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
    return shapes


# -- constants and folding -------------------------------------------------------------------------

def _constant(translator, node, attributes):
    if "value" in attributes:
        return _to_array(attributes["value"])
    for key, dtype in (("value_float", numpy.float32), ("value_int", numpy.int64)):
        if key in attributes:
            return numpy.array(attributes[key], dtype=dtype)
    for key, dtype in (("value_floats", numpy.float32), ("value_ints", numpy.int64)):
        if key in attributes:
            return numpy.array(list(attributes[key]), dtype=dtype)
    raise _Unsupported(f"Constant with attribute(s) {sorted(attributes)}")


def _constant_of_shape(translator, node, attributes):
    shape = translator.constant(node.input[0], "its shape")
    shape = [int(size) for size in numpy.asarray(shape).reshape(-1)]
    count = math.prod(shape)
    if any(size < 0 for size in shape) or count > translator.limits.max_tensor_elements:
        raise OnnxImportError(f"node '{node.name or node.output[0]}' (ConstantOfShape) declares shape {shape} "
                              f"({count:,} values), over the import limit of "
                              f"{translator.limits.max_tensor_elements:,} values per tensor")
    fill = _to_array(attributes["value"]).reshape(-1) if "value" in attributes else numpy.zeros(1, numpy.float32)
    return numpy.full(shape, fill[0], dtype=fill.dtype)


CONSTANTS = {"Constant": _constant, "ConstantOfShape": _constant_of_shape}


def _axes_of(attributes, arrays, index: int = 1):
    if "axes" in attributes:
        return [int(a) for a in attributes["axes"]]
    if len(arrays) > index and arrays[index] is not None:
        return [int(a) for a in arrays[index].reshape(-1)]
    return None


def _fold_unsqueeze(translator, node, attributes, arrays):
    array, axes = arrays[0], _axes_of(attributes, arrays)
    rank = array.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        array = numpy.expand_dims(array, axis)
    return [array]


def _fold_squeeze(translator, node, attributes, arrays):
    axes = _axes_of(attributes, arrays)
    return [numpy.squeeze(arrays[0], axis=None if axes is None else tuple(axes))]


def _fold_reshape(translator, node, attributes, arrays):
    shape = [int(s) for s in arrays[1].reshape(-1)]
    shape = [arrays[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [arrays[0].reshape(shape)]


def _fold_gather(translator, node, attributes, arrays):
    return [numpy.take(arrays[0], arrays[1].astype(numpy.int64), axis=attributes.get("axis", 0))]


def _fold_cast(translator, node, attributes, arrays):
    from onnx import helper  # noqa: PLC0415

    return [arrays[0].astype(helper.tensor_dtype_to_np_dtype(attributes["to"]))]


def _fold_binary(function):
    return lambda translator, node, attributes, arrays: [numpy.asarray(function(arrays[0], arrays[1]))]


FOLDABLE = {
    "Identity": lambda translator, node, attributes, arrays: [arrays[0]],
    "Transpose": lambda translator, node, attributes, arrays: [numpy.transpose(arrays[0], attributes.get("perm"))],
    "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze,
    "Reshape": _fold_reshape,
    "Gather": _fold_gather,
    "Cast": _fold_cast,
    "Concat": lambda translator, node, attributes, arrays: [numpy.concatenate(
        [numpy.atleast_1d(a) for a in arrays], axis=attributes.get("axis", 0))],
    "Add": _fold_binary(numpy.add),
    "Sub": _fold_binary(numpy.subtract),
    "Mul": _fold_binary(numpy.multiply),
    "Div": _fold_binary(lambda a, b: a // b if a.dtype.kind in "iu" else a / b),
    "Neg": lambda translator, node, attributes, arrays: [numpy.negative(arrays[0])],
    "Sqrt": lambda translator, node, attributes, arrays: [numpy.sqrt(arrays[0])],
}


# -- translations: element-wise --------------------------------------------------------------------

def _unary(op: str, **fixed):
    def translate(translator, node, attributes, label):
        translator.set_output(node, translator.add(op, {"x": translator.dynamic(node.input[0])}, dict(fixed),
                                                   name=label))
    return translate


def _leaky_relu(translator, node, attributes, label):
    params = {"slope": float(attributes.get("alpha", 0.01))}
    translator.set_output(node, translator.add("leaky_relu", {"x": translator.dynamic(node.input[0])}, params,
                                               name=label))


def _binary(op: str):
    def translate(translator, node, attributes, label):
        if attributes.get("broadcast") and attributes.get("axis") is not None:
            raise _Unsupported("the legacy 'axis' broadcast of opset 6 and before")
        first, second = translator.value(node.input[0]), translator.value(node.input[1])
        if op == "add" and (first.constant is None) != (second.constant is None):
            _fuse_bias(translator, node, label)
            return
        inputs = {"a": translator.dynamic(node.input[0]), "b": translator.dynamic(node.input[1])}
        translator.set_output(node, translator.add(op, inputs, name=label))
    return translate


def _fuse_bias(translator, node, label: str) -> None:
    """x + b where x is a dense or convolution without a bias, used nowhere else: b becomes its bias
    (how a MatMul then Add, NetForge's own export of dense, comes back as one node)."""
    computed, constant = ((node.input[0], node.input[1]) if translator.values[node.input[0]].constant is None
                          else (node.input[1], node.input[0]))
    bias = translator.values[constant].constant
    producer = translator.producer_of.get(translator.values[computed].reference)
    if producer is not None and producer["op"] in ("dense", "conv1d", "conv2d") \
            and producer["params"].get("use_bias") is False and translator.uses.get(computed) == 1:
        units = producer["params"].get("units", producer["params"].get("filters"))
        trailing = (1,) * {"dense": 0, "conv1d": 1, "conv2d": 2}[producer["op"]]
        if bias.size == units and bias.shape in ((units,), (1, units), (units, *trailing), (1, units, *trailing)):
            # The sum is the layer: it takes the Add's name (an export's "fc1", not "fc1/matmul").
            old_id = producer["id"]
            translator.taken.discard(old_id)
            new_id = translator.fresh(label)
            producer["id"] = new_id
            translator.producer_of[new_id] = translator.producer_of.pop(old_id)
            translator.weights[f"{new_id}/W"] = translator.weights.pop(f"{old_id}/W")
            translator.weights[f"{new_id}/b"] = numpy.ascontiguousarray(bias.reshape(units), numpy.float32)
            producer["params"]["use_bias"] = True
            translator.values[computed] = _Value(reference=new_id, shape=translator.values[computed].shape)
            translator.set_output(node, new_id)
            return
    raise _Unsupported(f"adds a constant tensor of shape {list(bias.shape)} to a computed one; the catalog adds "
                       "constants only as a dense or convolution's bias")


def _sum(translator, node, attributes, label):
    references = [translator.dynamic(name) for name in node.input]
    total = references[0]
    for index, reference in enumerate(references[1:], start=1):
        last = index == len(references) - 1
        total = translator.add("add", {"a": total, "b": reference}, name=label if last else f"{label}_{index}")
    translator.set_output(node, total)


def _softmax(op: str):
    def translate(translator, node, attributes, label):
        x = translator.dynamic(node.input[0])
        shape = translator.shape_of(node.input[0])
        legacy = translator.opset < 13  # before 13: the input flattened to 2-D at axis, softmax over the rows
        axis = attributes.get("axis", 1 if legacy else -1)
        if shape is None:
            raise _Unsupported("the input's shape is unknown (ONNX shape inference found none)")
        rank = len(shape)
        axis = axis % rank
        if axis == 0:
            raise _Unsupported("a softmax over the batch axis")
        if axis == rank - 1 or not legacy:
            translator.set_output(node, translator.add(op, {"x": x}, {"axis": axis - rank}, name=label))
            return
        flat = translator.add("flatten", {"x": x}, {"start_axis": axis}, name=f"{label}/flatten")
        out = translator.add(op, {"x": flat}, {"axis": -1}, name=label)
        restored = translator.add("reshape", {"x": out}, {"shape": list(shape[1:])}, name=f"{label}/restore")
        translator.values[node.output[0]] = _Value(reference=restored, shape=shape)
        translator.softmax_scores[restored] = flat
    return translate


def _clip(translator, node, attributes, label):
    low = attributes.get("min")
    high = attributes.get("max")
    if len(node.input) > 1 and node.input[1]:
        low = float(translator.constant(node.input[1], "the minimum"))
    if len(node.input) > 2 and node.input[2]:
        high = float(translator.constant(node.input[2], "the maximum"))
    params = {key: float(value) for key, value in (("minimum", low), ("maximum", high)) if value is not None}
    translator.set_output(node, translator.add("clip", {"x": translator.dynamic(node.input[0])}, params, name=label))


def _pow(translator, node, attributes, label):
    exponent = translator.constant(node.input[1], "the exponent")
    if exponent.size != 1:
        raise _Unsupported("an exponent that is not a scalar")
    translator.set_output(node, translator.add("power", {"x": translator.dynamic(node.input[0])},
                                               {"exponent": float(exponent.reshape(-1)[0])}, name=label))


def _identity(translator, node, attributes, label):
    translator.values[node.output[0]] = translator.value(node.input[0])


def _dropout(translator, node, attributes, label):
    rate = attributes.get("ratio", 0.5)
    if len(node.input) > 1 and node.input[1]:
        rate = float(translator.constant(node.input[1], "the ratio"))
    translator.set_output(node, translator.add("dropout", {"x": translator.dynamic(node.input[0])},
                                               {"rate": float(rate)}, name=label))


# -- translations: layers ------------------------------------------------------------------------------

def _gemm(translator, node, attributes, label):
    if attributes.get("transA", 0):
        raise _Unsupported("transA=1 (the computed input transposed)")
    x = translator.dynamic(node.input[0])
    kernel = translator.constant(node.input[1], "B, the weight matrix")
    kernel = kernel.T if attributes.get("transB", 0) else kernel
    kernel = kernel * attributes.get("alpha", 1.0)
    units = kernel.shape[1]
    weights = {"W": kernel.astype(numpy.float32)}
    if len(node.input) > 2 and node.input[2]:
        bias = translator.constant(node.input[2], "C, the bias") * attributes.get("beta", 1.0)
        weights["b"] = numpy.broadcast_to(bias.reshape(-1) if bias.size == units else bias, (units,)).astype(
            numpy.float32)
    params = {"units": int(units), "use_bias": "b" in weights}
    translator.set_output(node, translator.add("dense", {"x": x}, params, name=label, weights=weights))


def _matmul(translator, node, attributes, label):
    second = translator.value(node.input[1])
    if second.constant is not None and second.constant.ndim == 2:
        x = translator.dynamic(node.input[0])
        kernel = second.constant
        params = {"units": int(kernel.shape[1]), "use_bias": False}
        translator.set_output(node, translator.add("dense", {"x": x}, params, name=label,
                                                   weights={"W": kernel.astype(numpy.float32)}))
        return
    inputs = {"a": translator.dynamic(node.input[0]), "b": translator.dynamic(node.input[1])}
    translator.set_output(node, translator.add("matmul", inputs, name=label))


def _padding(attributes, rank: int, kernel, strides, dilations, shape, label_op: str):
    """ONNX pads (every begin, then every end) as the engine's symmetric padding, or 'same'."""
    auto = attributes.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER",):
        return "same"
    if auto == "VALID":
        return [0] * rank
    if auto == "SAME_LOWER":
        raise _Unsupported("auto_pad SAME_LOWER (the extra padding before; the catalog puts it after)")
    pads = list(attributes.get("pads", [0] * (2 * rank)))
    begins, ends = pads[:rank], pads[rank:]
    if begins == ends:
        return begins
    if shape is not None and None not in shape[2:]:
        same = []
        for size, k, s, d in zip(shape[2:], kernel, strides, dilations):
            extent = d * (k - 1) + 1
            total = max((-(-size // s) - 1) * s + extent - size, 0)
            same.append((total // 2, total - total // 2))
        if [b for b, _ in same] == begins and [a for _, a in same] == ends:
            return "same"
    raise _Unsupported(f"asymmetric pads {pads}: the catalog's {label_op} pads both sides of an axis alike")


def _conv(translator, node, attributes, label):
    x = translator.dynamic(node.input[0])
    kernel = translator.constant(node.input[1], "W, the filters")
    rank = kernel.ndim - 2
    if rank not in (1, 2):
        raise _Unsupported(f"a {rank}-D convolution; the catalog has conv1d and conv2d")
    sizes = list(attributes.get("kernel_shape", kernel.shape[2:]))
    strides = list(attributes.get("strides", [1] * rank))
    dilations = list(attributes.get("dilations", [1] * rank))
    padding = _padding(attributes, rank, sizes, strides, dilations, translator.shape_of(node.input[0]), "convolution")
    weights = {"W": kernel.astype(numpy.float32)}
    if len(node.input) > 2 and node.input[2]:
        weights["b"] = translator.constant(node.input[2], "B, the bias").astype(numpy.float32)
    params = {"filters": int(kernel.shape[0]), "kernel_size": sizes, "stride": strides, "padding": padding,
              "dilation": dilations, "groups": int(attributes.get("group", 1)), "use_bias": "b" in weights}
    translator.set_output(node, translator.add(f"conv{rank}d", {"x": x}, params, name=label, weights=weights))


def _pool(op: str):
    def translate(translator, node, attributes, label):
        x = translator.dynamic(node.input[0])
        sizes = list(attributes["kernel_shape"])
        rank = len(sizes)
        if rank != 2:
            raise _Unsupported(f"pooling over {rank} spatial axes; the catalog pools images (N, C, H, W)")
        if attributes.get("ceil_mode", 0):
            raise _Unsupported("ceil_mode=1 (the catalog's output sizes round down)")
        if any(d != 1 for d in attributes.get("dilations", [1, 1])):
            raise _Unsupported(f"dilations {list(attributes['dilations'])} (the catalog's pooling has none)")
        strides = list(attributes.get("strides", [1] * rank))
        padding = _padding(attributes, rank, sizes, strides, [1] * rank, translator.shape_of(node.input[0]), op)
        if op == "avg_pool2d" and not attributes.get("count_include_pad", 0) and padding != [0, 0]:
            raise _Unsupported("count_include_pad=0 with padding (the catalog's average counts the padded zeros)")
        params = {"kernel_size": sizes, "stride": strides, "padding": padding}
        translator.set_output(node, translator.add(op, {"x": x}, params, name=label))
    return translate


def _global_average_pool(translator, node, attributes, label):
    shape = translator.shape_of(node.input[0])
    if shape is None or len(shape) != 4:
        raise _Unsupported("an input that is not known to be images (N, C, H, W)")
    pooled = translator.add("global_avg_pool2d", {"x": translator.dynamic(node.input[0])}, name=label)
    out = translator.add("reshape", {"x": pooled}, {"shape": [shape[1], 1, 1]}, name=f"{label}/keepdims")
    translator.set_output(node, out)


def _batch_norm(translator, node, attributes, label):
    x = translator.dynamic(node.input[0])
    names = ("gamma", "beta", "running_mean", "running_var")
    what = ("scale", "B, the shift", "the running mean", "the running variance")
    weights = {name: translator.constant(node.input[index + 1], text).astype(numpy.float32)
               for index, (name, text) in enumerate(zip(names, what))}
    params = {"epsilon": float(attributes.get("epsilon", 1e-5)),
              "momentum": float(min(max(1.0 - attributes.get("momentum", 0.9), 0.0), 1.0))}
    translator.set_output(node, translator.add("batch_norm", {"x": x}, params, name=label, weights=weights))


def _lrn(translator, node, attributes, label):
    size = int(attributes["size"])
    if size % 2 == 0:
        raise _Unsupported(f"an even size {size} (the catalog's lrn centres an odd window)")
    params = {"size": size, "alpha": float(attributes.get("alpha", 1e-4)), "beta": float(attributes.get("beta", 0.75)),
              "bias": float(attributes.get("bias", 1.0))}
    translator.set_output(node, translator.add("lrn", {"x": translator.dynamic(node.input[0])}, params, name=label))


def _gather(translator, node, attributes, label):
    table = translator.value(node.input[0])
    if table.constant is None or table.constant.ndim != 2 or attributes.get("axis", 0) != 0:
        raise _Unsupported("a Gather that is not a lookup of rows in a constant table (an embedding)")
    array = table.constant
    params = {"vocab_size": int(array.shape[0]), "dim": int(array.shape[1])}
    translator.set_output(node, translator.add("embedding", {"indices": translator.dynamic(node.input[1])}, params,
                                               name=label, weights={"table": array.astype(numpy.float32)}))


# -- translations: shapes ---------------------------------------------------------------------------

def _reshape_to(translator, node, label, target: list[int]) -> None:
    """A reshape to the ONNX target shape (batch axis first): its batch entry must keep the batch."""
    source = translator.shape_of(node.input[0])
    batch = source[0] if source else None
    if not target or target[0] not in (0, -1, batch):
        raise _Unsupported(f"a reshape to {target} that moves values across the batch axis")
    rest = [source[i + 1] if size == 0 and source else size for i, size in enumerate(target[1:])]
    if target[0] == -1 and -1 in rest:
        raise _Unsupported(f"a reshape to {target} with two inferred sizes")
    if any(size is None or size == 0 for size in rest):
        raise _Unsupported(f"a reshape to {target} whose sizes are not known")
    translator.set_output(node, translator.add("reshape", {"x": translator.dynamic(node.input[0])},
                                               {"shape": [int(s) for s in rest]}, name=label))


def _reshape(translator, node, attributes, label):
    target = attributes.get("shape")
    if target is None:
        target = translator.constant(node.input[1], "the target shape").reshape(-1)
    _reshape_to(translator, node, label, [int(s) for s in target])


def _to_inferred_shape(translator, node, attributes, label):
    """Squeeze and Unsqueeze of a computed tensor: a reshape to the shape ONNX infers for it."""
    shape = translator.shapes.get(node.output[0])
    if shape is None or None in shape[1:]:
        raise _Unsupported("its output shape is unknown (ONNX shape inference found none)")
    _reshape_to(translator, node, label, [0, *shape[1:]])


def _flatten(translator, node, attributes, label):
    axis = attributes.get("axis", 1)
    shape = translator.shape_of(node.input[0])
    if axis != 1 and not (shape is not None and axis == len(shape) - 1 and len(shape) == 2):
        raise _Unsupported(f"Flatten at axis {axis}; the catalog's flatten keeps the batch axis alone (axis 1)")
    translator.set_output(node, translator.add("flatten", {"x": translator.dynamic(node.input[0])},
                                               {"start_axis": 1}, name=label))


def _transpose(translator, node, attributes, label):
    perm = list(attributes.get("perm") or [])
    if not perm or perm[0] != 0:
        raise _Unsupported(f"perm {perm} moves the batch axis")
    translator.set_output(node, translator.add("transpose", {"x": translator.dynamic(node.input[0])},
                                               {"axes": perm}, name=label))


def _concat(translator, node, attributes, label):
    references = [translator.dynamic(name) for name in node.input if name]
    if attributes.get("axis", 0) == 0:
        raise _Unsupported("a concatenation along the batch axis")
    translator.set_output(node, translator.add("concat", {"x": references}, {"axis": int(attributes["axis"])},
                                               name=label))


def _split(translator, node, attributes, label):
    axis = attributes.get("axis", 0)
    shape = translator.shape_of(node.input[0])
    if shape is None or axis % len(shape) == 0:
        raise _Unsupported("a split of unknown shape or along the batch axis")
    axis %= len(shape)
    sizes = attributes.get("split")
    if sizes is None and len(node.input) > 1 and node.input[1]:
        sizes = translator.constant(node.input[1], "the split sizes").reshape(-1)
    if sizes is None:
        sizes = [shape[axis] // len(node.output)] * len(node.output)
    x = translator.dynamic(node.input[0])
    start = 0
    for index, size in enumerate(sizes):
        params = {"axis": int(axis), "start": int(start), "stop": int(start + size)}
        translator.set_output(node, translator.add("slice", {"x": x}, params, name=f"{label}_{index}"), index)
        start += int(size)


def _reduce(op: str):
    def translate(translator, node, attributes, label):
        axes = _axes_of(attributes, [None, *(translator.constant(n, "the axes") for n in node.input[1:2] if n)])
        keepdims = bool(attributes.get("keepdims", 1))
        shape = translator.shape_of(node.input[0])
        x = translator.dynamic(node.input[0])
        if op == "mean" and shape is not None and len(shape) == 4 and sorted(a % 4 for a in axes or []) == [2, 3] \
                and not keepdims:
            translator.set_output(node, translator.add("global_avg_pool2d", {"x": x}, name=label))
            return
        if axes is None or (shape is not None and 0 in [a % len(shape) for a in axes]):
            raise _Unsupported("a reduction over the batch axis")
        translator.set_output(node, translator.add(op, {"x": x}, {"axis": axes, "keepdims": keepdims}, name=label))
    return translate


TRANSLATIONS = {
    "Relu": _unary("relu"),
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "Softplus": _unary("softplus"),
    "Abs": _unary("abs"),
    "Exp": _unary("exp"),
    "Log": _unary("log"),
    "Sqrt": _unary("sqrt"),
    "Neg": _unary("negate"),
    "LeakyRelu": _leaky_relu,
    "Softmax": _softmax("softmax"),
    "LogSoftmax": _softmax("log_softmax"),
    "Add": _binary("add"),
    "Sub": _binary("subtract"),
    "Mul": _binary("multiply"),
    "Div": _binary("divide"),
    "Sum": _sum,
    "Clip": _clip,
    "Pow": _pow,
    "Identity": _identity,
    "Dropout": _dropout,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Conv": _conv,
    "MaxPool": _pool("max_pool2d"),
    "AveragePool": _pool("avg_pool2d"),
    "GlobalAveragePool": _global_average_pool,
    "BatchNormalization": _batch_norm,
    "LRN": _lrn,
    "Gather": _gather,
    "Reshape": _reshape,
    "Squeeze": _to_inferred_shape,
    "Unsqueeze": _to_inferred_shape,
    "Flatten": _flatten,
    "Transpose": _transpose,
    "Concat": _concat,
    "Split": _split,
    "ReduceMean": _reduce("mean"),
    "ReduceSum": _reduce("sum"),
    "ReduceMax": _reduce("max"),
}


# -- entry points ----------------------------------------------------------------------------------------

def import_model(data: bytes, *, limits: ImportLimits | None = None) -> ImportedModel:
    """The graph document and weights of a serialized ONNX model, in this process. Raises
    ``OnnxImportError`` for a file it may not read and ``UnsupportedOnnx`` naming every node that
    has no translation. Untrusted files go through ``import_in_child``."""
    limits = limits or ImportLimits()
    model = _load(data, limits)
    return _Translator(model, limits).run()


def import_in_child(data: bytes, *, limits: ImportLimits | None = None, memory_bytes: int = 2 * 1024**3,
                    timeout_seconds: float = 120.0) -> ImportedModel:
    """``import_model`` in a new interpreter whose address space may grow by ``memory_bytes`` at
    most (``RLIMIT_AS``) and which is stopped after ``timeout_seconds``: the parser of an untrusted
    file never runs in the caller's process. The same errors as ``import_model``, and
    ``OnnxImportError`` naming the limit the child ran into."""
    limits = limits or ImportLimits()
    if len(data) > limits.max_file_bytes:
        raise OnnxImportError(f"the ONNX file has {len(data):,} bytes, over the import limit of "
                              f"{limits.max_file_bytes:,} bytes")
    with tempfile.TemporaryDirectory(prefix="netforge-onnx-") as folder:
        request = {"limits": dataclasses.asdict(limits), "memory_bytes": int(memory_bytes), "folder": folder}
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        child = subprocess.Popen([sys.executable, "-m", __name__, json.dumps(request)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
                                 cwd=str(Path(__file__).resolve().parent.parent))
        try:
            output, errors = child.communicate(data, timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise OnnxImportError(f"reading the ONNX file took longer than {timeout_seconds:g} s, the import "
                                  "time limit") from None
        try:
            answer = json.loads(output.decode("utf-8") or "null")
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            if b"MemoryError" in errors or child.returncode in (-9, 137):
                raise OnnxImportError(f"reading the ONNX file needed more than {memory_bytes:,} bytes of memory, "
                                      "the import limit")
            raise OnnxImportError(f"reading the ONNX file failed (exit status {child.returncode}): "
                                  f"{errors.decode('utf-8', 'replace')[-500:].strip()}")
        if answer.get("unsupported"):
            raise UnsupportedOnnx(answer["unsupported"])
        if answer.get("error"):
            raise OnnxImportError(answer["error"])
        with numpy.load(Path(folder) / "weights.npz", allow_pickle=False) as archive:
            weights = {key: archive[key] for key in archive.files}
        return ImportedModel(answer["spec"], weights, answer["input_names"], answer["output_names"])


def _child_main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    memory = int(request["memory_bytes"])
    import onnx  # noqa: F401, PLC0415 - loaded before the limit, which is then what the file's content may use
    if memory > 0:
        with open("/proc/self/status") as status:
            current = next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:")), 0)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = current + memory
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    data = sys.stdin.buffer.read()
    try:
        imported = import_model(data, limits=ImportLimits(**request["limits"]))
    except UnsupportedOnnx as error:
        answer = {"unsupported": error.problems}
    except OnnxImportError as error:
        answer = {"error": str(error)}
    except MemoryError:
        answer = {"error": f"reading the ONNX file needed more than {memory:,} bytes of memory, the import limit"}
    else:
        buffer = io.BytesIO()
        numpy.savez(buffer, **imported.weights)
        (Path(request["folder"]) / "weights.npz").write_bytes(buffer.getvalue())
        answer = {"spec": imported.spec, "input_names": imported.input_names, "output_names": imported.output_names}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))


__all__ = ["ImportLimits", "ImportedModel", "OnnxImportError", "UnsupportedOnnx", "import_in_child", "import_model"]
