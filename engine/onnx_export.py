"""A saved model as an ONNX model, built with the ``onnx`` package's helper API.

The ONNX graph takes the same raw features as the saved model's ``Predictor`` (the saved
standardization is applied inside, as Sub and Div), computes the graph's outputs in eval mode
(the loss and anything else the outputs do not need are left out; a loss named as an output is
computed, and then the labels are an input too), and for classifiers adds ``probabilities``
(Softmax or Sigmoid of the scores, as the predictor's link). Each op's translation below follows
its engine forward (same formula, same gate order, same padding); an op without one raises
``UnsupportedOp`` naming the node and the op.

Only this module imports ``onnx``; the engine itself never needs it.
"""

from __future__ import annotations

import math
import os

import numpy

from engine import serialization
from engine.data import Standardizer
from engine.errors import EngineError
from engine.graph import analyze
from engine.ops import _windows
from engine.ops._util import normalize_axes
from engine.ops.shape import permutation

OPSET = 17  # LayerNormalization's first opset; Reduce{Mean,Max} still take axes as an attribute
IR_VERSION = 8  # what onnxruntime releases of the last years all read
ELEMENT_TYPES = {"float32": 1, "int32": 6, "int64": 7, "bool": 9, "float64": 11}  # onnx.TensorProto values
INT64_MAX = 2**63 - 1


class UnsupportedOp(EngineError):
    """A node whose op has no ONNX translation."""

    def __init__(self, node_id: str, op: str):
        super().__init__(f"node '{node_id}' uses op '{op}', which the ONNX export does not support; "
                         f"supported ops: {', '.join(sorted(TRANSLATIONS))}")
        self.node_id, self.op = node_id, op


class _Builder:
    """Collects ONNX nodes and initializers. Every name it hands out is new: intermediate values
    are named after their node (``conv1/pads``) and get a suffix where that name is taken, so they
    never collide with graph inputs, graph outputs or each other."""

    def __init__(self, helper, numpy_helper, float_dtype: str, reserved):
        self.helper, self.numpy_helper, self.float_dtype = helper, numpy_helper, float_dtype
        self.nodes, self.initializers = [], []
        self.taken = set(reserved)

    def fresh(self, name: str) -> str:
        candidate, count = name, 0
        while candidate in self.taken:
            count += 1
            candidate = f"{name}_{count}"
        self.taken.add(candidate)
        return candidate

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        return self.outputs(op, inputs, [output], **attributes)[0]

    def outputs(self, op: str, inputs: list[str], outputs: list[str | None], **attributes) -> list[str]:
        """A node with several outputs; a ``None`` output is left unused ("")."""
        names = ["" if name is None else self.fresh(name) for name in outputs]
        self.append(op, inputs, names, **attributes)
        return names

    def append(self, op: str, inputs: list[str], outputs: list[str], **attributes) -> None:
        """A node writing exactly these (reserved) names: the graph's outputs."""
        name = next(name for name in outputs if name)
        self.nodes.append(self.helper.make_node(op, inputs, outputs, name=name, **attributes))

    def constant(self, name: str, array: numpy.ndarray) -> str:
        name = self.fresh(name)
        self.initializers.append(self.numpy_helper.from_array(numpy.ascontiguousarray(array), name=name))
        return name

    def scalar(self, name: str, value: float) -> str:
        """A float constant of the model's float type (broadcasts as a scalar)."""
        return self.constant(name, numpy.array(value, dtype=self.float_dtype))

    def ints(self, name: str, values) -> str:
        return self.constant(name, numpy.array(list(values), dtype=numpy.int64))


# -- element-wise maths and activations -----------------------------------------------------------

def _unary(onnx_op: str, **attributes):
    def translate(builder, node, args, weights, types):
        return builder.node(onnx_op, [args[0]], node.id, **attributes)
    return translate


def _binary(onnx_op: str):
    def translate(builder, node, args, weights, types):
        return builder.node(onnx_op, [args[0], args[1]], node.id)
    return translate


def _softmax(onnx_op: str):
    def translate(builder, node, args, weights, types):
        return builder.node(onnx_op, [args[0]], node.id, axis=node.params.axis)
    return translate


def _leaky_relu(builder, node, args, weights, types):
    return builder.node("LeakyRelu", [args[0]], node.id, alpha=float(node.params.slope))


def _power(builder, node, args, weights, types):
    return builder.node("Pow", [args[0], builder.scalar(f"{node.id}/exponent", node.params.exponent)], node.id)


def _clip(builder, node, args, weights, types):
    p = node.params
    low = "" if p.minimum is None else builder.scalar(f"{node.id}/minimum", p.minimum)
    high = "" if p.maximum is None else builder.scalar(f"{node.id}/maximum", p.maximum)
    return builder.node("Clip", [args[0], low, high], node.id)


def _gelu(builder, node, args, weights, types):
    """x * Phi(x): 0.5 x (1 + erf(x / sqrt 2)), or 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
    (Gelu itself is an ONNX op only from opset 20)."""
    x, tag = args[0], node.id
    if node.params.approximate == "tanh":
        cube = builder.node("Mul", [builder.node("Mul", [x, x], f"{tag}/square"), x], f"{tag}/cube")
        inner = builder.node("Add", [x, builder.node("Mul", [cube, builder.scalar(f"{tag}/c", 0.044715)],
                                                     f"{tag}/cubic_term")], f"{tag}/inner")
        inner = builder.node("Mul", [inner, builder.scalar(f"{tag}/k", math.sqrt(2.0 / math.pi))], f"{tag}/scaled")
        curve = builder.node("Tanh", [inner], f"{tag}/tanh")
    else:
        scaled = builder.node("Mul", [x, builder.scalar(f"{tag}/inv_sqrt2", 1.0 / math.sqrt(2.0))], f"{tag}/scaled")
        curve = builder.node("Erf", [scaled], f"{tag}/erf")
    one_plus = builder.node("Add", [curve, builder.scalar(f"{tag}/one", 1.0)], f"{tag}/one_plus")
    half = builder.node("Mul", [one_plus, builder.scalar(f"{tag}/half", 0.5)], f"{tag}/cdf")
    return builder.node("Mul", [x, half], tag)


def _step(builder, node, args, weights, types):
    positive = builder.node("Greater", [args[0], builder.scalar(f"{node.id}/zero", 0.0)], f"{node.id}/positive")
    return builder.node("Cast", [positive], node.id, to=ELEMENT_TYPES[builder.float_dtype])


# -- layers --------------------------------------------------------------------------------------------

def _dense(builder, node, args, weights, types):
    kernel = builder.constant(f"{node.id}/W", weights["W"])
    if "b" not in weights:
        return builder.node("MatMul", [args[0], kernel], node.id)
    product = builder.node("MatMul", [args[0], kernel], f"{node.id}/matmul")
    return builder.node("Add", [product, builder.constant(f"{node.id}/b", weights["b"])], node.id)


def _onnx_pads(pads) -> list[int]:
    """Per-axis (before, after) pairs as ONNX lays them out: every begin, then every end."""
    return [before for before, _ in pads] + [after for _, after in pads]


def _conv(builder, node, args, weights, types):
    """Conv with explicit pads: "same" pads as the engine computes them (the extra one after)."""
    p, rank = node.params, node.op.rank
    geo = node.op.geometry(p, types[0].shape)
    axes = slice(2 - rank, 2)  # the geometry is two-dimensional, conv1d's with a height of 1
    inputs = [args[0], builder.constant(f"{node.id}/W", weights["W"])]
    if "b" in weights:
        inputs.append(builder.constant(f"{node.id}/b", weights["b"]))
    return builder.node("Conv", inputs, node.id, kernel_shape=list(geo.kernel[axes]), strides=list(geo.stride[axes]),
                        dilations=list(geo.dilation[axes]), pads=_onnx_pads(geo.pads[axes]), group=p.groups)


def _pool(onnx_op: str, **attributes):
    """Max pooling never picks the padding (as ONNX's MaxPool); average pooling divides by the
    whole window, padded zeros included (count_include_pad). Windows never pass the padding."""
    def translate(builder, node, args, weights, types):
        geo = node.op.geometry(node.params, types[0].shape)
        return builder.node(onnx_op, [args[0]], node.id, kernel_shape=list(geo.kernel), strides=list(geo.stride),
                            pads=_onnx_pads(geo.pads), **attributes)
    return translate


def _global_avg_pool(builder, node, args, weights, types):
    return builder.node("ReduceMean", [args[0]], node.id, axes=[2, 3], keepdims=0)


def _upsample(builder, node, args, weights, types):
    """Nearest neighbour by integer factors: out[y] = x[floor(y / s)], Resize's asymmetric floor."""
    sh, sw = _windows.spatial(node.params.scale_factor, 2, "scale_factor")
    scales = builder.constant(f"{node.id}/scales", numpy.array([1, 1, sh, sw], dtype=numpy.float32))
    return builder.node("Resize", [args[0], "", scales], node.id, mode="nearest",
                        coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _batch_norm(builder, node, args, weights, types):
    """Eval mode: the running statistics; without affine, a scale of ones and a shift of zeros."""
    channels = types[0].shape[1]
    dtype = weights["running_mean"].dtype
    arrays = {"gamma": weights.get("gamma", numpy.ones(channels, dtype)),
              "beta": weights.get("beta", numpy.zeros(channels, dtype)),
              "running_mean": weights["running_mean"], "running_var": weights["running_var"]}
    inputs = [args[0]] + [builder.constant(f"{node.id}/{name}", array) for name, array in arrays.items()]
    return builder.node("BatchNormalization", inputs, node.id, epsilon=float(node.params.epsilon))


def _layer_norm(builder, node, args, weights, types):
    p = node.params
    shape = tuple(types[0].shape[-p.axes:])
    gamma = weights.get("gamma", numpy.ones(shape, builder.float_dtype))
    beta = weights.get("beta", numpy.zeros(shape, builder.float_dtype))
    inputs = [args[0], builder.constant(f"{node.id}/gamma", gamma), builder.constant(f"{node.id}/beta", beta)]
    return builder.node("LayerNormalization", inputs, node.id, axis=-p.axes, epsilon=float(p.epsilon))


def _lrn(builder, node, args, weights, types):
    p = node.params
    return builder.node("LRN", [args[0]], node.id, size=p.size, alpha=float(p.alpha), beta=float(p.beta),
                        bias=float(p.bias))


def _embedding(builder, node, args, weights, types):
    """Gather rows of the table; the padding row is exported as zeros, which is what it looks up."""
    table = weights["table"]
    if node.params.padding_index is not None:
        table = table.copy()
        table[node.params.padding_index] = 0
    return builder.node("Gather", [builder.constant(f"{node.id}/table", table), args[0]], node.id, axis=0)


def _fm_interaction(builder, node, args, weights, types):
    """0.5 * ((sum_f x)^2 - sum_f x^2) over the fields (axis 1), summed over k when reduced."""
    x, tag = args[0], node.id
    fields = builder.ints(f"{tag}/fields", [1])
    field_sum = builder.node("ReduceSum", [x, fields], f"{tag}/field_sum", keepdims=0)
    square_of_sum = builder.node("Mul", [field_sum, field_sum], f"{tag}/square_of_sum")
    squares = builder.node("Mul", [x, x], f"{tag}/squares")
    sum_of_squares = builder.node("ReduceSum", [squares, fields], f"{tag}/sum_of_squares", keepdims=0)
    difference = builder.node("Sub", [square_of_sum, sum_of_squares], f"{tag}/difference")
    if not node.params.reduce:
        return builder.node("Mul", [difference, builder.scalar(f"{tag}/half", 0.5)], tag)
    half = builder.node("Mul", [difference, builder.scalar(f"{tag}/half", 0.5)], f"{tag}/per_component")
    return builder.node("ReduceSum", [half, builder.ints(f"{tag}/components", [1])], tag, keepdims=1)


def _sequence_mask(builder, node, args, weights, types):
    """mask[n, t] = t < lengths[n], in the float type, shaped as the op's form: (N, [1, 1,] T)."""
    tag, steps = node.id, node.params.steps
    lengths = builder.node("Cast", [args[0]], f"{tag}/lengths", to=ELEMENT_TYPES["int64"])
    lengths = builder.node("Unsqueeze", [lengths, builder.ints(f"{tag}/column", [1])], f"{tag}/lengths_column")
    valid = builder.node("Less", [builder.ints(f"{tag}/steps", range(steps)), lengths], f"{tag}/valid")
    shape = node.types[0].shape
    if len(shape) == 2:
        return builder.node("Cast", [valid], tag, to=ELEMENT_TYPES[builder.float_dtype])
    mask = builder.node("Cast", [valid], f"{tag}/mask", to=ELEMENT_TYPES[builder.float_dtype])
    return builder.node("Reshape", [mask, builder.ints(f"{tag}/shape", [0, *shape[1:]])], tag)


# -- shapes and reductions --------------------------------------------------------------------------

def _reshape(builder, node, args, weights, types):
    shape = builder.ints(f"{node.id}/shape", [0, *node.params.shape])  # 0 keeps the batch size
    return builder.node("Reshape", [args[0], shape], node.id)


def _flatten(builder, node, args, weights, types):
    start = node.params.start_axis
    shape = builder.ints(f"{node.id}/shape", [0] * start + [-1])
    return builder.node("Reshape", [args[0], shape], node.id)


def _transpose(builder, node, args, weights, types):
    return builder.node("Transpose", [args[0]], node.id, perm=list(permutation(node.params.axes, types[0].shape)))


def _concat(builder, node, args, weights, types):
    return builder.node("Concat", list(args[0]), node.id, axis=node.params.axis % types[0][0].rank)


def _slice(builder, node, args, weights, types):
    p, tag = node.params, node.id
    stop = INT64_MAX if p.stop is None else p.stop
    inputs = [args[0], builder.ints(f"{tag}/starts", [p.start]), builder.ints(f"{tag}/ends", [stop]),
              builder.ints(f"{tag}/axes", [p.axis % types[0].rank]), builder.ints(f"{tag}/steps", [p.step])]
    return builder.node("Slice", inputs, tag)


def _reduce(onnx_op: str, axes_as_input: bool = False):
    def translate(builder, node, args, weights, types):
        axes = list(normalize_axes(node.params.axis, types[0].rank))
        keepdims = int(node.params.keepdims)
        if axes_as_input:  # ReduceSum takes its axes as an input from opset 13
            return builder.node(onnx_op, [args[0], builder.ints(f"{node.id}/axes", axes)], node.id, keepdims=keepdims)
        return builder.node(onnx_op, [args[0]], node.id, axes=axes, keepdims=keepdims)
    return translate


# -- attention --------------------------------------------------------------------------------------

def _attend(builder, tag: str, query: str, key: str, value: str, key_rank: int, mask: str | None, mask_dtype,
            causal: bool, scale: float) -> str:
    """softmax(q k^T * scale, masked to finfo.min) v, then zero weights where masked: a query
    that may see no key gives zeros, as in ``engine.ops.attention.attend``."""
    swap = list(range(key_rank - 2)) + [key_rank - 1, key_rank - 2]
    key_t = builder.node("Transpose", [key], f"{tag}/key_t", perm=swap)
    scores = builder.node("MatMul", [query, key_t], f"{tag}/qk")
    scores = builder.node("Mul", [scores, builder.scalar(f"{tag}/scale", scale)], f"{tag}/scores")
    keep = None
    if mask is not None:
        zero = builder.constant(f"{tag}/mask_zero", numpy.array(0, dtype=mask_dtype))
        keep = builder.node("Not", [builder.node("Equal", [mask, zero], f"{tag}/masked")], f"{tag}/mask_keep")
    if causal:
        size = builder.node("Shape", [scores], f"{tag}/lq_lk", start=-2)
        ones = builder.node("ConstantOfShape", [size], f"{tag}/ones",
                            value=builder.numpy_helper.from_array(numpy.ones(1, dtype=numpy.int64)))
        lower = builder.node("Trilu", [ones], f"{tag}/lower_ones", upper=0)
        lower = builder.node("Cast", [lower], f"{tag}/lower", to=ELEMENT_TYPES["bool"])
        keep = lower if keep is None else builder.node("And", [keep, lower], f"{tag}/keep")
    if keep is not None:
        lowest = builder.scalar(f"{tag}/lowest", numpy.finfo(builder.float_dtype).min)
        scores = builder.node("Where", [keep, scores, lowest], f"{tag}/masked_scores")
    weights = builder.node("Softmax", [scores], f"{tag}/weights", axis=-1)
    if keep is not None:
        kept = builder.node("Cast", [keep], f"{tag}/kept", to=ELEMENT_TYPES[builder.float_dtype])
        weights = builder.node("Mul", [weights, kept], f"{tag}/kept_weights")
    return builder.node("MatMul", [weights, value], tag)


def _scaled_dot_product_attention(builder, node, args, weights, types):
    p = node.params
    query, key, value, mask = args
    scale = 1.0 / math.sqrt(types[0].shape[-1]) if p.scale is None else p.scale
    mask_dtype = None if mask is None else types[3].dtype
    return _attend(builder, node.id, query, key, value, types[1].rank, mask, mask_dtype, p.causal, scale)


def _multi_head_attention(builder, node, args, weights, types):
    p, tag = node.params, node.id
    query, key, value, mask = args
    key = query if key is None else key
    value = key if value is None else value
    head_dim = weights["Wq"].shape[1] // p.heads

    def project(x: str, name: str) -> str:  # (N, L, D) -> (N, heads, L, head_dim)
        h = builder.node("MatMul", [x, builder.constant(f"{tag}/W{name}", weights[f"W{name}"])], f"{tag}/{name}_proj")
        if p.use_bias:
            h = builder.node("Add", [h, builder.constant(f"{tag}/b{name}", weights[f"b{name}"])], f"{tag}/{name}_bias")
        h = builder.node("Reshape", [h, builder.ints(f"{tag}/{name}_heads_shape", [0, 0, p.heads, -1])],
                         f"{tag}/{name}_split")
        return builder.node("Transpose", [h], f"{tag}/{name}_heads", perm=[0, 2, 1, 3])

    mask_dtype = None if mask is None else types[3].dtype
    attended = _attend(builder, f"{tag}/attention", project(query, "q"), project(key, "k"), project(value, "v"), 4,
                       mask, mask_dtype, p.causal, 1.0 / math.sqrt(head_dim))
    merged = builder.node("Transpose", [attended], f"{tag}/merged_heads", perm=[0, 2, 1, 3])
    merged = builder.node("Reshape", [merged, builder.ints(f"{tag}/merged_shape", [0, 0, -1])], f"{tag}/merged")
    wo = builder.constant(f"{tag}/Wo", weights["Wo"])
    if not p.use_bias:
        return builder.node("MatMul", [merged, wo], tag)
    out = builder.node("MatMul", [merged, wo], f"{tag}/out_proj")
    return builder.node("Add", [out, builder.constant(f"{tag}/bo", weights["bo"])], tag)


# -- recurrent layers ----------------------------------------------------------------------------------

# The engine lays gates out as PyTorch does (LSTM i, f, g, o; GRU r, z, n); ONNX wants LSTM i, o, f, c and
# GRU z, r, h: the engine's gate blocks in ONNX order.
RECURRENT = {"rnn": ("RNN", (0,)), "lstm": ("LSTM", (0, 3, 1, 2)), "gru": ("GRU", (1, 0, 2))}


def _recurrent(builder, node, args, weights, types):
    """One ONNX RNN/LSTM/GRU per stacked layer, time-major in between (Transpose in and out);
    ``lengths`` become sequence_lens: padded steps keep the state and output zeros, the backward
    direction starts at each sequence's last step, as in the engine."""
    p, tag = node.params, node.id
    onnx_op, order = RECURRENT[node.op.name]
    suffixes = ("", "_reverse") if p.bidirectional else ("",)

    def onnx_layout(matrix):  # (fan_in, G*H) or (G*H,) in engine order -> (G*H, fan_in) or (G*H,) in ONNX order
        blocks = numpy.split(matrix.T, len(order), axis=0)
        return numpy.concatenate([blocks[index] for index in order], axis=0)

    attributes = {"hidden_size": p.units, "direction": "bidirectional" if p.bidirectional else "forward"}
    if onnx_op == "GRU":
        attributes["linear_before_reset"] = 1  # r multiplies h U_n + b_hn, PyTorch's (and the engine's) form
    if onnx_op == "RNN":
        attributes["activations"] = [p.activation.capitalize()] * len(suffixes)
    lengths = "" if args[1] is None else builder.node("Cast", [args[1]], f"{tag}/sequence_lens",
                                                      to=ELEMENT_TYPES["int32"])
    sequence = builder.node("Transpose", [args[0]], f"{tag}/time_major", perm=[1, 0, 2])  # (T, N, F)
    for layer in range(p.num_layers):
        names = [f"_l{layer}{suffix}" for suffix in suffixes]
        kernel = numpy.stack([onnx_layout(weights[f"kernel{name}"]) for name in names])
        recurrent = numpy.stack([onnx_layout(weights[f"recurrent_kernel{name}"]) for name in names])
        bias = numpy.stack([numpy.concatenate([
            onnx_layout(weights[f"bias{name}"]),
            onnx_layout(weights.get(f"recurrent_bias{name}", numpy.zeros_like(weights[f"bias{name}"])))])
            for name in names])
        inputs = [sequence, builder.constant(f"{tag}/W_l{layer}", kernel),
                  builder.constant(f"{tag}/R_l{layer}", recurrent), builder.constant(f"{tag}/B_l{layer}", bias),
                  lengths]
        last_layer = layer == p.num_layers - 1
        wants_sequence = not last_layer or p.return_sequences
        states, last = builder.outputs(onnx_op, inputs, [f"{tag}/Y_l{layer}" if wants_sequence else None,
                                                         f"{tag}/Y_h_l{layer}"], **attributes)
        if not wants_sequence:  # Y_h (directions, N, H) -> (N, directions * H)
            last = builder.node("Transpose", [last], f"{tag}/last_batch_major", perm=[1, 0, 2])
            return builder.node("Reshape", [last, builder.ints(f"{tag}/last_shape", [0, -1])], tag)
        # Y (T, directions, N, H) -> (T, N, directions * H) for the next layer, (N, T, directions * H) at the end
        perm = [2, 0, 1, 3] if last_layer else [0, 2, 1, 3]
        states = builder.node("Transpose", [states], f"{tag}/Y_l{layer}_moved", perm=perm)
        shape = builder.ints(f"{tag}/Y_l{layer}_shape", [0, 0, -1])
        sequence = builder.node("Reshape", [states, shape], tag if last_layer else f"{tag}/Y_l{layer}_features")
    return sequence


# -- losses (an output only where a graph names one: the ONNX model then takes the labels) -------------

def _reduce_loss(builder, node, values: str) -> str:
    """The mean or the sum of every element, as the loss's reduction."""
    return builder.node("ReduceMean" if node.params.reduction == "mean" else "ReduceSum", [values], node.id, keepdims=0)


def _target(builder, node, prediction: str, target: str) -> str:
    """The target as floats shaped like the prediction ((N,) and (N, 1) alike)."""
    target = builder.node("Cast", [target], f"{node.id}/target_float", to=ELEMENT_TYPES[builder.float_dtype])
    shape = builder.node("Shape", [prediction], f"{node.id}/prediction_shape")
    return builder.node("Reshape", [target, shape], f"{node.id}/target")


def _difference(builder, node, args) -> str:
    return builder.node("Sub", [args[0], _target(builder, node, args[0], args[1])], f"{node.id}/difference")


def _mse(builder, node, args, weights, types):
    difference = _difference(builder, node, args)
    return _reduce_loss(builder, node, builder.node("Mul", [difference, difference], f"{node.id}/squares"))


def _mae(builder, node, args, weights, types):
    return _reduce_loss(builder, node, builder.node("Abs", [_difference(builder, node, args)], f"{node.id}/magnitude"))


def _huber(builder, node, args, weights, types):
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta)."""
    tag, delta = node.id, node.params.delta
    difference = _difference(builder, node, args)
    magnitude = builder.node("Abs", [difference], f"{tag}/magnitude")
    quadratic = builder.node("LessOrEqual", [magnitude, builder.scalar(f"{tag}/delta", delta)], f"{tag}/is_quadratic")
    square = builder.node("Mul", [difference, difference], f"{tag}/square")
    half_square = builder.node("Mul", [square, builder.scalar(f"{tag}/half", 0.5)], f"{tag}/half_square")
    linear = builder.node("Sub", [magnitude, builder.scalar(f"{tag}/half_delta", 0.5 * delta)], f"{tag}/shifted")
    linear = builder.node("Mul", [linear, builder.scalar(f"{tag}/delta_factor", delta)], f"{tag}/linear")
    return _reduce_loss(builder, node, builder.node("Where", [quadratic, half_square, linear], f"{tag}/values"))


def _sigmoid_cross_entropy(builder, node, args, weights, types):
    """log(1 + e^z) - y z (Softplus is computed stably)."""
    tag, logits = node.id, args[0]
    product = builder.node("Mul", [_target(builder, node, logits, args[1]), logits], f"{tag}/target_logits")
    values = builder.node("Sub", [builder.node("Softplus", [logits], f"{tag}/softplus"), product], f"{tag}/values")
    return _reduce_loss(builder, node, values)


def _margin_loss(margin_of):
    """max(0, margin - y f) with labels 0/1 or -1/+1 read as -1/+1 (hinge; the perceptron has margin 0)."""
    def translate(builder, node, args, weights, types):
        tag, scores = node.id, args[0]
        target = _target(builder, node, scores, args[1])
        positive = builder.node("Greater", [target, builder.scalar(f"{tag}/zero", 0.0)], f"{tag}/positive")
        plus, minus = builder.scalar(f"{tag}/plus", 1.0), builder.scalar(f"{tag}/minus", -1.0)
        signed = builder.node("Where", [positive, plus, minus], f"{tag}/signed")
        margin = builder.node("Mul", [signed, scores], f"{tag}/margin")
        slack = builder.node("Sub", [builder.scalar(f"{tag}/required", margin_of(node.params)), margin], f"{tag}/slack")
        return _reduce_loss(builder, node, builder.node("Relu", [slack], f"{tag}/values"))
    return translate


def _softmax_cross_entropy(builder, node, args, weights, types):
    """-sum_c target_c log softmax(logits)_c per row, integer labels as one-hot rows, smoothed
    toward the uniform distribution; the mean divides by the rows."""
    tag, logits = node.id, args[0]
    classes = types[0].shape[-1]
    log_probabilities = builder.node("LogSoftmax", [logits], f"{tag}/log_probabilities", axis=-1)
    if types[1].dtype.startswith("int"):
        off_on = builder.constant(f"{tag}/off_on", numpy.array([0.0, 1.0], dtype=builder.float_dtype))
        depth = builder.constant(f"{tag}/classes", numpy.array(classes, dtype=numpy.int64))
        target = builder.node("OneHot", [args[1], depth, off_on], f"{tag}/one_hot", axis=-1)
    else:
        target = builder.node("Cast", [args[1]], f"{tag}/target", to=ELEMENT_TYPES[builder.float_dtype])
    smoothing = node.params.label_smoothing
    if smoothing:
        target = builder.node("Mul", [target, builder.scalar(f"{tag}/keep", 1.0 - smoothing)], f"{tag}/kept_target")
        target = builder.node("Add", [target, builder.scalar(f"{tag}/uniform", smoothing / classes)],
                              f"{tag}/smoothed_target")
    products = builder.node("Mul", [target, log_probabilities], f"{tag}/products")
    rows = builder.node("ReduceSum", [products, builder.ints(f"{tag}/class_axis", [-1])], f"{tag}/row_sums", keepdims=0)
    return _reduce_loss(builder, node, builder.node("Neg", [rows], f"{tag}/row_losses"))


TRANSLATIONS = {
    # maths and activations
    "matmul": _binary("MatMul"),
    "add": _binary("Add"),
    "residual_add": _binary("Add"),
    "subtract": _binary("Sub"),
    "multiply": _binary("Mul"),
    "divide": _binary("Div"),
    "power": _power,
    "clip": _clip,
    "relu": _unary("Relu"),
    "leaky_relu": _leaky_relu,
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "gelu": _gelu,
    "step": _step,
    "softmax": _softmax("Softmax"),
    "log_softmax": _softmax("LogSoftmax"),
    "softplus": _unary("Softplus"),
    "exp": _unary("Exp"),
    "log": _unary("Log"),
    "sqrt": _unary("Sqrt"),
    "abs": _unary("Abs"),
    "negate": _unary("Neg"),
    # layers
    "dense": _dense,
    "dropout": _unary("Identity"),  # identity in eval mode
    "conv1d": _conv,
    "conv2d": _conv,
    "max_pool2d": _pool("MaxPool"),
    "avg_pool2d": _pool("AveragePool", count_include_pad=1),
    "global_avg_pool2d": _global_avg_pool,
    "upsample2d": _upsample,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "lrn": _lrn,
    "embedding": _embedding,
    "fm_interaction": _fm_interaction,
    "scaled_dot_product_attention": _scaled_dot_product_attention,
    "multi_head_attention": _multi_head_attention,
    "rnn": _recurrent,
    "lstm": _recurrent,
    "gru": _recurrent,
    "sequence_mask": _sequence_mask,
    # shapes and reductions
    "reshape": _reshape,
    "flatten": _flatten,
    "transpose": _transpose,
    "concat": _concat,
    "slice": _slice,
    "sum": _reduce("ReduceSum", axes_as_input=True),
    "mean": _reduce("ReduceMean"),
    "max": _reduce("ReduceMax"),
    # losses
    "mse": _mse,
    "mae": _mae,
    "huber": _huber,
    "sigmoid_cross_entropy": _sigmoid_cross_entropy,
    "softmax_cross_entropy": _softmax_cross_entropy,
    "hinge": _margin_loss(lambda p: p.margin),
    "perceptron": _margin_loss(lambda p: 0.0),
}


def export(spec: dict, weights: dict, input_schema: dict | None = None) -> bytes:
    """The serialized ONNX model of a graph document with its weights (keyed ``node/weight``)."""
    import onnx  # noqa: PLC0415
    from onnx import helper, numpy_helper  # noqa: PLC0415

    schema = input_schema or {}
    analysis = analyze(spec, require_loss=False)
    analysis.raise_for_errors()
    needed = _needed_nodes(analysis)
    for node_id in needed:
        node = analysis.nodes[node_id]
        if node.op.name not in TRANSLATIONS:
            raise UnsupportedOp(node_id, node.op.name)
    float_dtype = next((str(array.dtype) for array in weights.values() if array.dtype.kind == "f"), "float32")
    link = schema.get("link") if schema.get("link") in ("softmax", "sigmoid") else None
    reserved = {*analysis.inputs, *analysis.outputs, *(("probabilities",) if link else ())}
    builder = _Builder(helper, numpy_helper, float_dtype, reserved)
    used_inputs = sorted({key for node_id in needed for key in _flat(analysis.nodes[node_id].inputs.values())
                          if key in analysis.inputs})  # the labels too where an output is a loss
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
        args, types = [], []
        for port in node.op.inputs:
            key = node.inputs.get(port.name)
            if isinstance(key, list):
                args.append([values[k] for k in key])
                types.append([analysis.value_types[k] for k in key])
            else:
                args.append(None if key is None else values[key])
                types.append(None if key is None else analysis.value_types[key])
        node_weights = {weight.name: weights[f"{node_id}/{weight.name}"] for weight in node.weights}
        values[node.output_keys[0]] = TRANSLATIONS[node.op.name](builder, node, args, node_weights, types)
    graph_outputs = []
    element = ELEMENT_TYPES[float_dtype]
    for name, key in analysis.outputs.items():
        builder.append("Identity", [values[key]], [name])
        declared = analysis.value_types[key]
        kind = ELEMENT_TYPES[declared.dtype] if declared.dtype.startswith("int") else element
        graph_outputs.append(helper.make_tensor_value_info(name, kind, list(declared.shape)))
        if link and key == schema.get("prediction"):
            link_op = "Softmax" if link == "softmax" else "Sigmoid"
            link = None  # one probabilities output, however many outputs name the prediction
            attributes = {"axis": -1} if link_op == "Softmax" else {}
            builder.append(link_op, [values[key]], ["probabilities"], **attributes)
            graph_outputs.append(helper.make_tensor_value_info("probabilities", element, list(declared.shape)))
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
