"""A saved model as an ONNX model, built with the ``onnx`` package's helper API.

The ONNX graph takes the same raw features as the saved model's ``Predictor`` (the saved
standardization is applied inside, as Sub and Div), computes the graph's outputs (loss nodes and
anything else the outputs do not need are left out), and for classifiers adds ``probabilities``
(Softmax or Sigmoid of the scores, as the predictor's link). Ops without an ONNX translation
below raise ``UnsupportedOp`` naming the node and the op.

Only this module imports ``onnx``; the engine itself never needs it.
"""

from __future__ import annotations

import os

import numpy

from engine import serialization
from engine.data import Standardizer
from engine.errors import EngineError
from engine.graph import analyze

OPSET = 17
IR_VERSION = 8  # what onnxruntime releases of the last years all read
ELEMENT_TYPES = {"float32": 1, "int32": 6, "int64": 7, "float64": 11}  # onnx.TensorProto values

class UnsupportedOp(EngineError):
    """A node whose op has no ONNX translation."""

    def __init__(self, node_id: str, op: str):
        super().__init__(f"node '{node_id}' uses op '{op}', which the ONNX export does not support; "
                         f"supported ops: {', '.join(sorted(TRANSLATIONS))}")
        self.node_id, self.op = node_id, op

def _unary(onnx_op: str, **attributes):
    def translate(builder, node, args, weights):
        return [builder.node(onnx_op, [args[0]], node.id, **attributes)]
    return translate

def _binary(onnx_op: str):
    def translate(builder, node, args, weights):
        return [builder.node(onnx_op, [args[0], args[1]], node.id)]
    return translate

def _dense(builder, node, args, weights):
    product = builder.node("MatMul", [args[0], weights["W"]], f"{node.id}/matmul" if "b" in weights else node.id)
    if "b" in weights:
        return [builder.node("Add", [product, weights["b"]], node.id)]
    return [product]

def _flatten(builder, node, args, weights):
    start = node.params.start_axis
    shape = builder.constant(f"{node.id}/shape", numpy.array([0] * start + [-1], dtype=numpy.int64))
    return [builder.node("Reshape", [args[0], shape], node.id)]

def _softmax(onnx_op: str):
    def translate(builder, node, args, weights):
        return [builder.node(onnx_op, [args[0]], node.id, axis=node.params.axis)]
    return translate

def _leaky_relu(builder, node, args, weights):
    return [builder.node("LeakyRelu", [args[0]], node.id, alpha=float(node.params.slope))]

TRANSLATIONS = {
    "dense": _dense,
    "matmul": _binary("MatMul"),
    "add": _binary("Add"),
    "subtract": _binary("Sub"),
    "multiply": _binary("Mul"),
    "divide": _binary("Div"),
    "relu": _unary("Relu"),
    "leaky_relu": _leaky_relu,
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "softmax": _softmax("Softmax"),
    "log_softmax": _softmax("LogSoftmax"),
    "softplus": _unary("Softplus"),
    "exp": _unary("Exp"),
    "log": _unary("Log"),
    "sqrt": _unary("Sqrt"),
    "abs": _unary("Abs"),
    "negate": _unary("Neg"),
    "dropout": _unary("Identity"),  # identity in eval mode
    "flatten": _flatten,
}

class _Builder:
    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def constant(self, name: str, array: numpy.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(numpy.ascontiguousarray(array), name=name))
        return name

def export(spec: dict, weights: dict, input_schema: dict | None = None) -> bytes:
    """The serialized ONNX model of a graph document with its weights (keyed ``node/weight``)."""
    import onnx  # noqa: PLC0415
    from onnx import helper, numpy_helper  # noqa: PLC0415

    schema = input_schema or {}
    analysis = analyze(spec)
    analysis.raise_for_errors()
    needed = _needed_nodes(analysis)
    for node_id in needed:
        node = analysis.nodes[node_id]
        if node.op.name not in TRANSLATIONS:
            raise UnsupportedOp(node_id, node.op.name)
    builder = _Builder(helper, numpy_helper)
    float_dtype = next((str(array.dtype) for array in weights.values() if array.dtype.kind == "f"), "float32")
    label_input = schema.get("label_input")
    used_inputs = sorted({key for node_id in needed for key in _flat(analysis.nodes[node_id].inputs.values())
                          if key in analysis.inputs and key != label_input})
    graph_inputs = []
    values: dict[str, str] = {}
    for name in used_inputs:
        declared = analysis.inputs[name]
        graph_inputs.append(helper.make_tensor_value_info(
            name, ELEMENT_TYPES[declared.dtype], [None if size is None else size for size in declared.shape]))
        current = name
        if declared.dtype.startswith("float") and declared.dtype != float_dtype:
            current = builder.node("Cast", [current], f"{name}/cast", to=ELEMENT_TYPES[float_dtype])
        standardization = (schema.get("inputs", {}).get(name) or {}).get("standardization")
        if standardization:
            standardizer = Standardizer.from_dict(standardization)
            mean = builder.constant(f"{name}/mean", standardizer.mean.astype(float_dtype))
            std = builder.constant(f"{name}/std", standardizer.std.astype(float_dtype))
            current = builder.node("Div", [builder.node("Sub", [current, mean], f"{name}/centered"), std],
                                   f"{name}/standardized")
        values[name] = current
    for node_id in needed:
        node = analysis.nodes[node_id]
        args = []
        for port in node.op.inputs:
            key = node.inputs.get(port.name)
            args.append(None if key is None else values[key] if not isinstance(key, list) else [values[k] for k in key])
        node_weights = {weight.name: builder.constant(f"{node_id}/{weight.name}", weights[f"{node_id}/{weight.name}"])
                        for weight in node.weights}
        outputs = TRANSLATIONS[node.op.name](builder, node, args, node_weights)
        for key, produced in zip(node.output_keys, outputs):
            values[key] = produced
    graph_outputs = []
    element = ELEMENT_TYPES[float_dtype]
    for name, key in analysis.outputs.items():
        builder.node("Identity", [values[key]], name)
        shape = list(analysis.value_types[key].shape)
        graph_outputs.append(helper.make_tensor_value_info(name, element, shape))
        if key == schema.get("prediction") and schema.get("link") in ("softmax", "sigmoid"):
            link = "Softmax" if schema["link"] == "softmax" else "Sigmoid"
            attributes = {"axis": -1} if link == "Softmax" else {}
            builder.node(link, [values[key]], "probabilities", **attributes)
            graph_outputs.append(helper.make_tensor_value_info("probabilities", element, shape))
    graph = helper.make_graph(builder.nodes, "netforge", graph_inputs, graph_outputs, builder.initializers)
    model = helper.make_model(graph, producer_name="netforge", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()

def export_folder(path: str | os.PathLike) -> bytes:
    """The ONNX model of a saved model folder (``engine.serialization``; checksums verified)."""
    artifact = serialization.read_artifact(path)
    return export(artifact.spec, artifact.weights, artifact.manifest.get("input_schema"))

def _needed_nodes(analysis) -> list[str]:
    seen: set[str] = set()
    stack = [analysis.producers.get(key) for key in analysis.outputs.values()]
    while stack:
        node_id = stack.pop()
        if node_id is None or node_id in seen:
            continue
        seen.add(node_id)
        stack.extend(analysis.producers.get(key) for key in _flat(analysis.nodes[node_id].inputs.values()))
    return [node_id for node_id in analysis.order if node_id in seen]

def _flat(values) -> list[str]:
    keys = []
    for value in values:
        if value is None:
            continue
        keys.extend(value if isinstance(value, list) else [value])
    return keys

__all__ = ["UnsupportedOp", "export", "export_folder"]
