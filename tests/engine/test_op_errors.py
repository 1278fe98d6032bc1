"""Bad inputs to the reduction, shape, regularization and recommender ops, and to the layers (convolution,
pooling, normalization, attention, residual add): each shape rule raises a ShapeError whose field names
the culprit and whose message names the shapes or values involved and says what to change, and the
graph validator passes those on with the node id."""

from __future__ import annotations

import numpy
import pytest

from engine import testing
from engine.errors import ShapeError
from engine.graph import FORMAT, validate
from engine.registry import TensorType, get_op

N = None  # the unknown batch size


def T(*shape, dtype="float32"):  # reads like a type in the table
    return TensorType(tuple(shape), dtype)


# (id, op, params, input types, field, words the message must contain)
SHAPE_ERRORS = [
    ("sum-axis-out-of-range", "sum", {"axis": 2}, [T(N, 3)], "params.axis", ["axis 2", "rank 2", "(N, 3)"]),
    ("mean-axis-repeated", "mean", {"axis": [1, -1]}, [T(N, 3)], "params.axis", ["[1, -1]", "repeats", "(N, 3)"]),
    ("max-negative-axis-out-of-range", "max", {"axis": -3}, [T(N, 4)], "params.axis", ["axis -3", "(N, 4)"]),
    ("reshape-size-mismatch", "reshape", {"shape": [5, 2]}, [T(N, 3, 4)], "params.shape",
     ["(3, 4)", "12 values", "(5, 2)", "10 values"]),
    ("reshape-inferred-size-does-not-divide", "reshape", {"shape": [5, -1]}, [T(N, 3, 4)], "params.shape",
     ["(3, 4)", "[5, -1]", "not a multiple of 5"]),
    ("reshape-scalar", "reshape", {"shape": [1]}, [T()], "inputs.x", ["batch axis", "()"]),
    ("flatten-start-axis-past-the-end", "flatten", {"start_axis": 2}, [T(N, 4)], "params.start_axis",
     ["start_axis 2", "(N, 4)", "at most 1"]),
    ("transpose-repeated-axis", "transpose", {"axes": [0, 0, 1]}, [T(N, 3, 4)], "params.axes",
     ["[0, 0, 1]", "permutation", "(N, 3, 4)"]),
    ("transpose-too-few-axes", "transpose", {"axes": [1, 0]}, [T(N, 3, 4)], "params.axes", ["[1, 0]", "3 axes"]),
    ("concat-mismatch-names-the-input", "concat", {"axis": 1}, [[T(N, 2, 3), T(N, 4, 3), T(N, 2, 5)]], "inputs.x",
     ["input 2", "(N, 2, 5)", "input 0", "(N, 2, 3)", "axis 2", "concat axis 1"]),
    ("concat-rank-mismatch", "concat", {}, [[T(N, 3), T(N, 3), T(N, 3, 1)]], "inputs.x",
     ["input 2", "(N, 3, 1)", "rank 3", "rank 2"]),
    ("concat-dtype-mismatch", "concat", {}, [[T(N, 3), T(N, 3, dtype="float64")]], "inputs.x",
     ["input 1", "float64", "float32"]),
    ("concat-axis-out-of-range", "concat", {"axis": 2}, [[T(N, 3), T(N, 3)]], "params.axis", ["axis 2", "(N, 3)"]),
    ("slice-start-past-the-end", "slice", {"start": 5}, [T(N, 4)], "params.start",
     ["[5::1]", "axis 1", "size 4", "(N, 4)", "empty"]),
    ("slice-stop-before-start", "slice", {"start": 2, "stop": 1}, [T(N, 4)], "params.stop", ["[2:1:1]", "empty"]),
    ("slice-axis-out-of-range", "slice", {"axis": 2}, [T(N, 4)], "params.axis", ["axis 2", "(N, 4)"]),
    ("dropout-rate-one", "dropout", {"rate": 1.0}, [T(N, 4)], "params.rate", ["below 1", "1.0"]),
    ("embedding-float-indices", "embedding", {"vocab_size": 5, "dim": 2}, [T(N, 3)], "inputs.indices",
     ["integers", "float32"]),
    ("fm-interaction-rank2", "fm_interaction", {}, [T(N, 12)], "inputs.x", ["(N, fields, dim)", "(N, 12)", "rank 2"]),
]


@pytest.mark.parametrize("case", SHAPE_ERRORS, ids=lambda case: case[0])
def test_shape_rule_names_the_field_and_the_shapes(case):
    _, op_name, params, inputs, field, words = case
    op = get_op(op_name)
    p, errors = op.resolve(params)
    assert not errors
    with pytest.raises(ShapeError) as raised:
        op.infer(p, *inputs)
    assert raised.value.field == field
    for word in words:
        assert word in str(raised.value), f"{word!r} not in {str(raised.value)!r}"


# (op, params, field, words): caught by the parameter schema before any shape rule runs
PARAM_ERRORS = [
    ("slice", {"step": 0}, "params.step", [">= 1"]),
    ("dropout", {"rate": 1.5}, "params.rate", ["<= 1"]),
    ("reshape", {"shape": [-1, 2, -1]}, "params.shape", ["-1", "at most once"]),
    ("embedding", {"vocab_size": 10, "dim": 0}, "params.dim", [">= 1"]),
    ("embedding", {"vocab_size": 10, "dim": 4, "init": "lognormal"}, "params.init", ["glorot_uniform"]),
    ("sum", {"axis": 1.5}, "params.axis", ["integer"]),
    ("fm_interaction", {"reduce": "yes"}, "params.reduce", ["true or false"]),
]


@pytest.mark.parametrize("case", PARAM_ERRORS, ids=lambda case: f"{case[0]}-{case[2]}")
def test_parameter_schema_rejects_bad_values(case):
    op_name, params, field, words = case
    _, errors = get_op(op_name).resolve(params)
    assert [f for f, _ in errors] == [field]
    for word in words:
        assert word in errors[0][1]


def graph(inputs: dict, nodes: list, outputs: dict) -> dict:
    return {"format": FORMAT, "inputs": inputs, "nodes": nodes, "outputs": outputs}


def test_validator_rejects_embedding_of_float_input_as_dtype_mismatch():
    spec = graph(
        {"x": {"shape": [None, 3], "dtype": "float32"}},
        [{"id": "embed", "op": "embedding", "params": {"vocab_size": 10, "dim": 4}, "inputs": {"indices": "x"}}],
        {"vectors": "embed"},
    )
    errors = validate(spec, require_loss=False).errors
    assert [(e["node"], e["field"], e["code"]) for e in errors] == [("embed", "inputs.indices", "dtype_mismatch")]
    assert "int" in errors[0]["message"] and "float32" in errors[0]["message"]


def test_validator_reports_concat_mismatch_on_the_node():
    spec = graph(
        {"a": {"shape": [None, 2, 3]}, "b": {"shape": [None, 2, 4]}},
        [{"id": "joined", "op": "concat", "params": {"axis": 1}, "inputs": {"x": ["a", "b"]}}],
        {"joined": "joined"},
    )
    errors = validate(spec, require_loss=False).errors
    assert [(e["node"], e["field"], e["code"]) for e in errors] == [("joined", "inputs.x", "shape_mismatch")]
    assert "input 1" in errors[0]["message"]


def test_valid_recommender_graph_infers_shapes():
    spec = graph(
        {"x": {"shape": [None, 8], "dtype": "int64"}},
        [
            {"id": "embed", "op": "embedding", "params": {"vocab_size": 160, "dim": 4}, "inputs": {"indices": "x"}},
            {"id": "fm", "op": "fm_interaction", "inputs": {"x": "embed"}},
            {"id": "flat", "op": "flatten", "inputs": {"x": "embed"}},
            {"id": "both", "op": "concat", "inputs": {"x": ["flat", "fm"]}},
        ],
        {"both": "both"},
    )
    report = validate(spec, require_loss=False)
    assert report.ok, report.errors
    assert report.nodes["embed"]["outputs"]["out"] == {"shape": [None, 8, 4], "dtype": "float32"}
    assert report.nodes["both"]["outputs"]["out"]["shape"] == [None, 33]
    assert report.nodes["embed"]["parameters"] == 160 * 4


# Layers, as the editor's user meets them: a graph validation error on the node, naming the field.
# (id, graph inputs {name: shape}, node, field, words the message must contain)
LAYER_ERRORS = [
    ("conv2d-groups-do-not-divide-the-channels", {"x": [None, 4, 8, 8]},
     {"op": "conv2d", "params": {"filters": 6, "kernel_size": 3, "groups": 3}, "inputs": {"x": "x"}},
     "params.groups", ["groups 3", "4 input channels", "(N, 4, 8, 8)", "filters (6)", "one of 1, 2"]),
    ("conv2d-groups-do-not-divide-the-filters", {"x": [None, 4, 8, 8]},
     {"op": "conv2d", "params": {"filters": 6, "kernel_size": 3, "groups": 4}, "inputs": {"x": "x"}},
     "params.groups", ["groups 4", "filters 6", "one of 1, 2"]),
    ("conv2d-kernel-larger-than-the-input", {"x": [None, 1, 4, 6]},
     {"op": "conv2d", "params": {"filters": 2, "kernel_size": 5}, "inputs": {"x": "x"}},
     "params.kernel_size", ["kernel_size 5", "height", "(N, 1, 4, 6)", "4 plus padding 0", "smaller kernel_size",
                            "'same'"]),
    ("conv1d-dilated-kernel-larger-than-the-padded-input", {"x": [None, 2, 4]},
     {"op": "conv1d", "params": {"filters": 2, "kernel_size": 3, "dilation": 3, "padding": 1}, "inputs": {"x": "x"}},
     "params.kernel_size", ["kernel_size 3", "extent 7 with dilation 3", "length", "4 plus padding 2", "dilation"]),
    ("max-pool-kernel-larger-than-the-input", {"x": [None, 3, 2, 2]},
     {"op": "max_pool2d", "params": {"kernel_size": 3}, "inputs": {"x": "x"}},
     "params.kernel_size", ["kernel_size 3", "(N, 3, 2, 2)"]),
    ("max-pool-padding-over-half-the-kernel", {"x": [None, 3, 8, 8]},
     {"op": "max_pool2d", "params": {"kernel_size": 2, "padding": 2}, "inputs": {"x": "x"}},
     "params.padding", ["padding 2", "kernel_size 2", "at most 1", "'same'"]),
    ("avg-pool-padding-over-half-the-kernel-width", {"x": [None, 3, 8, 8]},
     {"op": "avg_pool2d", "params": {"kernel_size": [5, 3], "padding": [2, 2]}, "inputs": {"x": "x"}},
     "params.padding", ["padding 2", "kernel_size 3", "width", "at most 1"]),
    ("batch-norm-rank-1", {"x": [None]},
     {"op": "batch_norm", "inputs": {"x": "x"}}, "inputs.x", ["(N,)", "rank 1", "(N, C)", "(N, 1)"]),
    ("attention-query-key-features-differ", {"q": [None, 3, 4], "k": [None, 5, 6], "v": [None, 5, 2]},
     {"op": "scaled_dot_product_attention", "inputs": {"query": "q", "key": "k", "value": "v"}},
     "inputs.key", ["query (N, 3, 4)", "4 features", "key (N, 5, 6)", "has 6", "dense layer"]),
    ("attention-key-value-lengths-differ", {"q": [None, 3, 4], "k": [None, 5, 4], "v": [None, 6, 2]},
     {"op": "scaled_dot_product_attention", "inputs": {"query": "q", "key": "k", "value": "v"}},
     "inputs.value", ["key (N, 5, 4)", "5 steps", "value (N, 6, 2)", "has 6"]),
    ("residual-add-shapes-differ", {"a": [None, 8], "b": [None, 4]},
     {"op": "residual_add", "inputs": {"x": "a", "shortcut": "b"}},
     "inputs.shortcut", ["x (N, 8)", "shortcut (N, 4)", "size 8 against 4 at axis 1", "project the shortcut", "dense"]),
]


@pytest.mark.parametrize("case", LAYER_ERRORS, ids=lambda case: case[0])
def test_layer_errors_name_the_node_and_the_field(case):
    _, inputs, node, field, words = case
    spec = graph({name: {"shape": shape} for name, shape in inputs.items()}, [{"id": "layer", **node}],
                 {"out": "layer"})
    errors = validate(spec, require_loss=False).errors
    assert [(e["node"], e["field"], e["code"]) for e in errors] == [("layer", field, "shape_mismatch")]
    for word in words:
        assert word in errors[0]["message"], f"{word!r} not in {errors[0]['message']!r}"


# Run-time behaviour that no shape rule can see.


def test_embedding_index_out_of_range_names_the_range():
    indices = numpy.array([[0, 3], [7, 1]])
    with pytest.raises(ValueError, match=r"\[0, 5\).*from 0 to 7"):
        testing.run_op("embedding", {"vocab_size": 5, "dim": 2}, [indices])


def test_max_splits_the_gradient_evenly_among_ties():
    x = numpy.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], dtype="float32")
    _, ctx, op, p, _ = testing.run_op("max", {"axis": 1}, [x])
    (grad,) = op.backward(ctx, p, numpy.array([1.0, 4.0], dtype="float32"))
    numpy.testing.assert_array_equal(grad, [[0.0, 0.5, 0.5], [2.0, 0.0, 2.0]])
    assert grad.dtype == numpy.float32


def test_dropout_scales_kept_values_in_training_and_is_identity_in_eval():
    x = numpy.ones((200, 50), dtype="float32")
    (out,), ctx, op, p, _ = testing.run_op("dropout", {"rate": 0.25}, [x], training=True)
    assert out.dtype == numpy.float32
    assert set(numpy.unique(out).tolist()) == {0.0, numpy.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.02
    (grad,) = op.backward(ctx, p, x)
    numpy.testing.assert_array_equal(grad, out)
    (out,), _, _, _, _ = testing.run_op("dropout", {"rate": 0.25}, [x], training=False)
    assert out is x
