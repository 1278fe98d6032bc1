"""ONNX import: the onnx package's own backend test models (its ``pytorch-converted`` layer tests
and ``light_*`` architectures, shipped in the wheel under ``onnx/backend/test/data``) import into
graphs that reproduce the shipped outputs; NetForge's exports come back with the same predictions;
what the catalog cannot express is named, node and op type; and a hostile file is refused before
it costs memory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy
import pytest

from engine import onnx_export, onnx_import, zoo
from engine.graph import GraphBuilder, analyze, validate
from engine.model import Model
from tests.engine.test_onnx_export import randomize, zoo_feeds

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

DATA = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data"
CONVERTED = DATA / "pytorch-converted"
LIGHT = DATA / "light"

# The pytorch-converted layer tests whose ops the catalog covers (each named in docs/engine.md).
COVERED = [
    "test_AvgPool1d", "test_AvgPool1d_stride", "test_AvgPool2d", "test_AvgPool2d_stride",
    "test_BatchNorm1d_3d_input_eval", "test_BatchNorm2d_eval", "test_BatchNorm2d_momentum_eval",
    "test_BatchNorm3d_eval", "test_BatchNorm3d_momentum_eval",
    "test_Conv1d", "test_Conv1d_dilated", "test_Conv1d_groups", "test_Conv1d_pad1", "test_Conv1d_pad1size1",
    "test_Conv1d_pad2", "test_Conv1d_pad2size1", "test_Conv1d_stride",
    "test_Conv2d", "test_Conv2d_depthwise", "test_Conv2d_depthwise_padded", "test_Conv2d_depthwise_strided",
    "test_Conv2d_depthwise_with_multiplier", "test_Conv2d_dilated", "test_Conv2d_groups", "test_Conv2d_groups_thnn",
    "test_Conv2d_no_bias", "test_Conv2d_padding", "test_Conv2d_strided",
    "test_Embedding", "test_Embedding_sparse", "test_GLU", "test_GLU_dim", "test_LeakyReLU",
    "test_LeakyReLU_with_negval", "test_Linear", "test_Linear_no_bias", "test_LogSoftmax", "test_MaxPool2d",
    "test_PixelShuffle", "test_ReLU", "test_Sigmoid", "test_Softmax", "test_Softmin", "test_Softplus", "test_Tanh",
    "test_log_softmax_dim3", "test_log_softmax_lastdim", "test_softmax_functional_dim3", "test_softmax_lastdim",
]
# The others, by the ONNX op the catalog lacks (or the attribute it cannot express).
NOT_COVERED = {
    "test_AvgPool3d": "AveragePool", "test_AvgPool3d_stride": "AveragePool",
    "test_AvgPool3d_stride1_pad0_gpu_input": "AveragePool", "test_ConstantPad2d": "Pad",
    "test_Conv3d": "Conv", "test_Conv3d_dilated": "Conv", "test_Conv3d_dilated_strided": "Conv",
    "test_Conv3d_groups": "Conv", "test_Conv3d_no_bias": "Conv", "test_Conv3d_stride": "Conv",
    "test_Conv3d_stride_padding": "Conv", "test_ConvTranspose2d": "ConvTranspose",
    "test_ConvTranspose2d_no_bias": "ConvTranspose", "test_ELU": "Elu", "test_MaxPool1d": "MaxPool",
    "test_MaxPool1d_stride": "MaxPool", "test_MaxPool1d_stride_padding_dilation": "MaxPool",
    "test_MaxPool2d_stride_padding_dilation": "MaxPool", "test_MaxPool3d": "MaxPool",
    "test_MaxPool3d_stride": "MaxPool", "test_MaxPool3d_stride_padding": "MaxPool",
    "test_PReLU_1d": "PRelu", "test_PReLU_1d_multiparam": "PRelu", "test_PReLU_2d": "PRelu",
    "test_PReLU_2d_multiparam": "PRelu", "test_PReLU_3d": "PRelu", "test_PReLU_3d_multiparam": "PRelu",
    "test_PoissonNLLLLoss_no_reduce": "Mul", "test_ReflectionPad2d": "Pad", "test_ReplicationPad2d": "Pad",
    "test_SELU": "Selu", "test_Softsign": "Add", "test_ZeroPad2d": "Pad",
}
LIGHT_COVERED = ["light_bvlc_alexnet", "light_resnet50", "light_squeezenet", "light_vgg19", "light_zfnet512"]
LIGHT_NOT_COVERED = {"light_inception_v1": "AveragePool",
                     "light_inception_v2": "Mul", "light_densenet121": "Mul", "light_shufflenet": "AveragePool"}


def read_tensor(path: Path) -> numpy.ndarray:
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


def imported_outputs(content: bytes, inputs: list[numpy.ndarray]) -> tuple[onnx_import.ImportedModel, dict]:
    """Import, compile with the imported weights, and compute every output in eval mode (the
    graph inputs fed in the ONNX model's order)."""
    imported = onnx_import.import_model(content)
    dtype = "float64" if any(array.dtype == numpy.float64 for array in inputs) else "float32"
    model = Model(imported.spec, dtype=dtype)
    model.load_state_arrays(imported.weights, source="imported weights")
    feeds = dict(zip(imported.input_names, inputs))
    return imported, model.forward(feeds, outputs=list(imported.output_names))


def test_the_backend_test_data_ships_with_the_onnx_wheel():
    assert sorted(path.name for path in CONVERTED.iterdir()) == sorted([*COVERED, *NOT_COVERED])
    assert sorted(path.stem for path in LIGHT.glob("*.onnx")) == sorted([*LIGHT_COVERED, *LIGHT_NOT_COVERED])


@pytest.mark.parametrize("name", COVERED)
def test_pytorch_converted_layer_reproduces_the_shipped_output(name):
    folder = CONVERTED / name
    inputs = [read_tensor(path) for path in sorted((folder / "test_data_set_0").glob("input_*.pb"))]
    expected = [read_tensor(path) for path in sorted((folder / "test_data_set_0").glob("output_*.pb"))]
    imported, outputs = imported_outputs((folder / "model.onnx").read_bytes(), inputs)
    assert validate(imported.spec, batch_size=2).ok
    for output, want in zip(imported.output_names, expected):
        numpy.testing.assert_allclose(outputs[output], want, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", sorted(NOT_COVERED))
def test_pytorch_converted_layer_outside_the_catalog_is_named(name):
    with pytest.raises(onnx_import.UnsupportedOnnx) as caught:
        onnx_import.import_model((CONVERTED / name / "model.onnx").read_bytes())
    assert [problem["op_type"] for problem in caught.value.problems] == [NOT_COVERED[name]]
    problem = caught.value.problems[0]
    assert f"node '{problem['node']}' ({NOT_COVERED[name]})" in str(caught.value)


@pytest.mark.parametrize("name", LIGHT_COVERED)
def test_light_architecture_imports_validates_and_reproduces_the_shipped_output(name):
    content = (LIGHT / f"{name}.onnx").read_bytes()
    model_proto = onnx.load_from_string(content)
    declared = next(entry for entry in model_proto.graph.input
                    if entry.name not in {tensor.name for tensor in model_proto.graph.initializer})
    shape = [dim.dim_value for dim in declared.type.tensor_type.shape.dim]
    x = numpy.random.default_rng(0).standard_normal(shape).astype(numpy.float32)
    imported, outputs = imported_outputs(content, [x])
    report = validate(imported.spec, batch_size=1)
    assert report.ok, report.errors
    # every weight of the ONNX file became a weight of the graph, none was left out
    weights_in_file = sum(int(numpy.prod(shape)) for shape in _weight_shapes(model_proto))
    assert sum(array.size for array in imported.weights.values()) == weights_in_file
    expected = read_tensor(LIGHT / f"{name}_output_0.pb")
    (output,) = imported.output_names
    numpy.testing.assert_allclose(outputs[output], expected, rtol=1e-5, atol=1e-7)
    # a classifier: the scores under the final softmax are trained against labels 'y'
    assert imported.spec["inputs"]["y"] == {"shape": [None], "dtype": "int64"}
    loss = next(node for node in imported.spec["nodes"] if node["id"] == imported.spec["loss"])
    assert loss["op"] == "softmax_cross_entropy"


def _weight_shapes(model_proto) -> list[list[int]]:
    """The shapes of the tensors the model's Conv, Gemm and BatchNormalization nodes take as weights."""
    constants = {tensor.name: list(tensor.dims) for tensor in model_proto.graph.initializer}
    for node in model_proto.graph.node:
        if node.op_type == "ConstantOfShape":
            constants[node.output[0]] = [int(v) for v in numpy_helper.to_array(
                next(t for t in model_proto.graph.initializer if t.name == node.input[0]))]
    return [constants[name] for node in model_proto.graph.node
            if node.op_type in ("Conv", "Gemm", "BatchNormalization") for name in node.input[1:] if name]


@pytest.mark.parametrize("name", sorted(LIGHT_NOT_COVERED))
def test_light_architecture_outside_the_catalog_names_its_nodes(name):
    with pytest.raises(onnx_import.UnsupportedOnnx) as caught:
        onnx_import.import_model((LIGHT / f"{name}.onnx").read_bytes())
    assert LIGHT_NOT_COVERED[name] in {problem["op_type"] for problem in caught.value.problems}
    assert all(problem["node"] for problem in caught.value.problems)


# -- NetForge's own exports ------------------------------------------------------------------------

ROUND_TRIP_ZOO = ["lenet5", "logistic_regression", "mlp", "regression_mlp", "small_cnn", "small_resnet",
                  "softmax_regression"]


@pytest.mark.parametrize("name", ROUND_TRIP_ZOO)
def test_an_exported_zoo_model_comes_back_with_the_same_predictions(name):
    spec = zoo.load(name)
    model = Model(spec, seed=0)
    randomize(model)
    feeds = zoo_feeds(spec, numpy.random.default_rng(1))
    expected = model.predict(feeds)
    imported = onnx_import.import_model(onnx_export.export(spec, model.state_arrays()))
    back = Model(imported.spec)
    back.load_state_arrays(imported.weights)
    actual = back.predict({name: feeds[name] for name in imported.input_names}, outputs=list(imported.output_names))
    assert set(actual) == set(expected)
    for output, value in expected.items():
        numpy.testing.assert_allclose(actual[output], value, rtol=1e-5, atol=1e-5, err_msg=f"{name}: {output}")
    # a dense or convolution comes back as one node owning its bias, not a MatMul and an Add
    layers = {"dense", "conv1d", "conv2d"}
    assert sorted(node.op.name for node in analyze(imported.spec).nodes.values() if node.op.name in layers) == \
        sorted(node.op.name for node in analyze(spec).nodes.values() if node.op.name in layers)
    if not any(node["op"] not in layers and node.get("op") in zoo_blocks() for node in spec["nodes"]):
        assert {node["id"] for node in imported.spec["nodes"] if node["op"] in layers} <= \
            {node["id"] for node in spec["nodes"]}  # the same ids: a fine-tuning run matches them


def zoo_blocks() -> set[str]:
    from engine.blocks import catalog_entries  # noqa: PLC0415

    return {entry["name"] for entry in catalog_entries()}


def test_an_imported_classifier_is_trained_on_the_scores_under_its_softmax():
    builder = GraphBuilder()
    x = builder.input("x", [None, 4])
    probabilities = builder.softmax(builder.dense(x, units=3, id="fc"))
    builder.output("probabilities", probabilities)
    builder.loss(builder.mean(probabilities, id="loss"))
    spec = builder.to_spec()
    model = Model(spec, seed=3)
    imported = onnx_import.import_model(onnx_export.export(spec, model.state_arrays()))
    assert imported.spec["loss"] == "loss" and "y" in imported.spec["inputs"]
    loss_node = next(node for node in imported.spec["nodes"] if node["id"] == "loss")
    assert loss_node["inputs"]["logits"] == "fc"  # the scores, not the probabilities
    numpy.testing.assert_array_equal(imported.weights["fc/W"], model.params["fc/W"])


# -- what cannot be imported, and hostile files ------------------------------------------------------

def _model(nodes, inputs, outputs, initializers=(), opset=17) -> bytes:
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _float_input(name: str, shape) -> object:
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


def test_every_unsupported_node_is_named_with_its_op_type():
    content = _model(
        [helper.make_node("Elu", ["x"], ["a"], name="first_elu"),
         helper.make_node("Relu", ["a"], ["b"], name="relu"),
         helper.make_node("HardSwish", ["b"], ["c"], name="swish")],
        [_float_input("x", [1, 4])], [_float_input("c", [1, 4])])
    with pytest.raises(onnx_import.UnsupportedOnnx) as caught:
        onnx_import.import_model(content)
    assert caught.value.problems[0]["node"] == "first_elu" and caught.value.problems[0]["op_type"] == "Elu"
    assert "node 'first_elu' (Elu)" in str(caught.value)
    assert "node 'swish' (HardSwish)" in str(caught.value)  # each unsupported node, not just the first


def test_a_declared_huge_constant_is_refused_before_it_is_allocated():
    shape = numpy_helper.from_array(numpy.array([100_000, 100_000, 100], dtype=numpy.int64), name="shape")
    content = _model([helper.make_node("ConstantOfShape", ["shape"], ["w"], name="bomb"),
                      helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                     [_float_input("x", [1, 100_000])], [_float_input("y", [1, 100])], [shape])
    with pytest.raises(onnx_import.OnnxImportError, match=r"'bomb' \(ConstantOfShape\) declares shape "
                                                          r"\[100000, 100000, 100\]"):
        onnx_import.import_model(content)


def test_an_initializer_declaring_more_values_than_the_limit_is_refused():
    tensor = onnx.TensorProto(name="W", data_type=onnx.TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    content = _model([helper.make_node("MatMul", ["x", "W"], ["y"])], [_float_input("x", [1, 1 << 20])],
                     [_float_input("y", [1, 1 << 20])], [tensor])
    with pytest.raises(onnx_import.OnnxImportError, match=r"initializer 'W' declares shape \[1048576, 1048576\]"):
        onnx_import.import_model(content)


def test_external_data_is_refused_whatever_path_it_names():
    tensor = onnx.TensorProto(name="W", data_type=onnx.TensorProto.FLOAT, dims=[4, 2],
                              data_location=onnx.TensorProto.EXTERNAL)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    content = _model([helper.make_node("MatMul", ["x", "W"], ["y"])], [_float_input("x", [1, 4])],
                     [_float_input("y", [1, 2])], [tensor])
    with pytest.raises(onnx_import.OnnxImportError, match="'W' keeps its data in an external file"):
        onnx_import.import_model(content)


def test_a_file_that_is_not_onnx_or_too_large_is_refused():
    with pytest.raises(onnx_import.OnnxImportError, match="not an ONNX model"):
        onnx_import.import_model(b"\x08\x96\x01 this is not a protobuf \xff\xff\xff")
    with pytest.raises(onnx_import.OnnxImportError, match="over the import limit of 10 bytes"):
        onnx_import.import_model(b"x" * 11, limits=onnx_import.ImportLimits(max_file_bytes=10))


def test_the_child_imports_like_the_caller_and_stops_at_its_memory_limit():
    content = (CONVERTED / "test_Conv2d" / "model.onnx").read_bytes()
    in_child = onnx_import.import_in_child(content)
    here = onnx_import.import_model(content)
    assert in_child.spec == here.spec
    assert sorted(in_child.weights) == sorted(here.weights)
    for key, array in here.weights.items():
        numpy.testing.assert_array_equal(in_child.weights[key], array)
    # within the size limits, beyond the memory the child may use: 400 MB of fill for 64 MB
    shape = numpy_helper.from_array(numpy.array([10_000, 10_000], dtype=numpy.int64), name="shape")
    big = _model([helper.make_node("ConstantOfShape", ["shape"], ["w"], name="fill"),
                  helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                 [_float_input("x", [1, 10_000])], [_float_input("y", [1, 10_000])], [shape])
    with pytest.raises(onnx_import.OnnxImportError, match="more than 67,108,864 bytes of memory"):
        onnx_import.import_in_child(big, memory_bytes=64 * 1024**2)
    # the limit is on what the file's content takes: a small model imports under it
    assert onnx_import.import_in_child(content, memory_bytes=64 * 1024**2).spec == here.spec
    with pytest.raises(onnx_import.UnsupportedOnnx, match="node 'first' \\(Elu\\)"):
        onnx_import.import_in_child(_model([helper.make_node("Elu", ["x"], ["y"], name="first")],
                                           [_float_input("x", [1, 4])], [_float_input("y", [1, 4])]))


def test_imported_ids_are_valid_and_unique_whatever_the_onnx_names():
    weight = numpy_helper.from_array(numpy.ones((4, 3), dtype=numpy.float32), name="0weight")
    content = _model([helper.make_node("MatMul", ["in put", "0weight"], ["1"], name="gpu_0/fc 1"),
                      helper.make_node("Relu", ["1"], ["2"], name="gpu_0/fc 1")],
                     [_float_input("in put", [1, 4])], [_float_input("2", [1, 3])], [weight])
    imported = onnx_import.import_model(content)
    analysis = analyze(imported.spec)
    assert analysis.ok, analysis.errors
    assert [node["id"] for node in imported.spec["nodes"]] == ["gpu_0_fc_1", "gpu_0_fc_1_2", "loss"]
    assert imported.input_names == {"in_put": "in put"}
