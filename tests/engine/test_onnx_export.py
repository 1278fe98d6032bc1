"""ONNX export: every zoo model and every eval-mode case of the shared op table, exported with random
weights, runs in onnxruntime like the engine (float32, within 1e-5 relative and absolute).

The op table (``tests.engine.op_cases``) already holds the variants that matter to the export:
strides, "same" and explicit padding, dilation, groups, pooling with padding, masks, causal
attention, bidirectional and stacked recurrent layers, and true lengths.
"""

from __future__ import annotations

import numpy
import pytest

from engine import onnx_export, zoo
from engine.graph import GraphBuilder, analyze
from engine.model import Model
from engine.registry import get_op, op_names
from tests.engine.op_cases import CASES, NON_DIFFERENTIABLE

onnxruntime = pytest.importorskip("onnxruntime")

RTOL = ATOL = 1e-5
BATCH = 3


def randomize(model: Model, seed: int = 0) -> None:
    """Weights that start constant (biases, gammas, running statistics) made random, so that a
    wrong bias layout or a skipped statistic shows; running variances stay positive."""
    rng = numpy.random.default_rng(seed)
    for key, array in {**model.params, **model.buffers}.items():
        if key.endswith("running_var"):
            array[...] = rng.uniform(0.5, 2.0, array.shape)
        elif array.size > 1 and numpy.all(array == array.flat[0]):
            array[...] = rng.normal(0.0, 0.5, array.shape)


def run_onnx(content: bytes, feeds: dict) -> dict:
    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    inputs = {entry.name: feeds[entry.name] for entry in session.get_inputs()}
    names = [entry.name for entry in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs)))


def assert_round_trip(spec: dict, feeds: dict) -> dict:
    """Export ``spec`` with random weights and compare every graph output with the engine's."""
    model = Model(spec, seed=0)
    randomize(model)
    expected = model.predict(feeds)
    actual = run_onnx(onnx_export.export(spec, model.state_arrays()), feeds)
    for name, value in expected.items():
        numpy.testing.assert_allclose(actual[name], value, rtol=RTOL, atol=ATOL, err_msg=f"output '{name}'")
    return actual


def zoo_feeds(spec: dict, rng) -> dict:
    """Random inputs for a zoo graph: floats, or integer ids below the smallest vocabulary they index."""
    analysis = analyze(spec)
    feeds = {}
    for name, declared in analysis.inputs.items():
        shape = tuple(BATCH if size is None else size for size in declared.shape)
        if declared.dtype.startswith("float"):
            feeds[name] = rng.normal(size=shape).astype(declared.dtype)
            continue
        vocabularies = [node.params.vocab_size for node in analysis.nodes.values()
                        if node.op.name == "embedding" and node.inputs.get("indices") == name]
        feeds[name] = rng.integers(0, min(vocabularies, default=2), size=shape).astype(declared.dtype)
    return feeds


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_model_runs_in_onnxruntime_like_the_engine(name):
    spec = zoo.load(name)
    assert_round_trip(spec, zoo_feeds(spec, numpy.random.default_rng(0)))


def case_spec(case, arrays) -> dict:
    """One node of the case's op fed by graph inputs, as output ``out``; a mean of it as the loss
    (the engine's models need one)."""
    op = get_op(case.op)
    graph = GraphBuilder()
    refs = []
    for port, array in zip(op.inputs, arrays):
        if array is None:
            refs.append(None)
        elif isinstance(array, list):
            refs.append([graph.input(f"{port.name}{index}", part.shape, str(part.dtype))
                         for index, part in enumerate(array)])
        else:
            refs.append(graph.input(port.name, array.shape, str(array.dtype)))
    out = graph.node(case.op, *refs, id="op", **case.params)
    graph.output("out", out)
    graph.loss(graph.mean(out, id="loss"))
    return graph.to_spec()


def case_feeds(op, arrays) -> dict:
    feeds = {}
    for port, array in zip(op.inputs, arrays):
        if isinstance(array, list):
            feeds.update({f"{port.name}{index}": part for index, part in enumerate(array)})
        elif array is not None:
            feeds[port.name] = array
    return feeds


EXPORTED_CASES = [case for case in CASES + NON_DIFFERENTIABLE if not case.training]  # the export is eval mode


@pytest.mark.parametrize("case", EXPORTED_CASES, ids=[case.id for case in EXPORTED_CASES])
def test_op_case_runs_in_onnxruntime_like_the_engine(case):
    arrays = case.make_inputs(dtype="float32")
    assert_round_trip(case_spec(case, arrays), case_feeds(get_op(case.op), arrays))


def test_every_op_of_the_catalog_exports_and_has_a_case():
    assert [name for name in op_names() if name not in onnx_export.TRANSLATIONS] == []
    assert sorted(set(op_names()) - {case.op for case in EXPORTED_CASES}) == []


def recurrent_spec(op: str, lengths: bool, **params) -> dict:
    graph = GraphBuilder()
    x = graph.input("x", [None, 5, 3])
    steps = graph.input("lengths", [None], "int64") if lengths else None
    out = graph.node(op, x, steps, id="rnn", units=4, **params)
    graph.output("out", out)
    graph.loss(graph.mean(out, id="loss"))
    return graph.to_spec()


@pytest.mark.parametrize("op", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("params", [
    {"num_layers": 3, "bidirectional": True},
    {"num_layers": 2, "bidirectional": True, "return_sequences": True},
], ids=["three-layers-last", "two-layers-sequences"])
def test_stacked_recurrent_layers_with_lengths_and_a_dynamic_batch(op, params):
    rng = numpy.random.default_rng(1)
    feeds = {"x": rng.normal(size=(4, 5, 3)).astype(numpy.float32),
             "lengths": numpy.array([5, 1, 3, 4], dtype=numpy.int64)}
    assert_round_trip(recurrent_spec(op, lengths=True, **params), feeds)


def test_sequence_mask_hides_padded_keys_from_causal_attention_over_a_dynamic_batch():
    graph = GraphBuilder()
    x = graph.input("x", [None, 5, 4])
    lengths = graph.input("lengths", [None], "int64")
    mask = graph.sequence_mask(lengths, steps=5, form="attention", id="mask")
    attended = graph.multi_head_attention(x, None, None, mask, heads=2, causal=True, id="attention")
    out = graph.layer_norm(graph.residual_add(attended, x, id="residual"), id="norm")
    graph.output("out", out)
    graph.loss(graph.mean(out, id="loss"))
    rng = numpy.random.default_rng(3)
    feeds = {"x": rng.normal(size=(4, 5, 4)).astype(numpy.float32), "lengths": numpy.array([5, 0, 2, 4])}
    assert_round_trip(graph.to_spec(), feeds)


def test_embedding_padding_row_looks_up_zeros_whatever_the_table_holds():
    graph = GraphBuilder()
    ids = graph.input("ids", [None, 4], "int64")
    out = graph.embedding(ids, vocab_size=6, dim=3, padding_index=2, id="embed")
    graph.output("out", out)
    graph.loss(graph.mean(out, id="loss"))
    spec = graph.to_spec()
    model = Model(spec)
    model.params["embed/table"][2] = 7.0  # e.g. a loaded table whose padding row is not zero
    feeds = {"ids": numpy.array([[0, 2, 5, 2], [1, 1, 2, 3]], dtype=numpy.int64)}
    actual = run_onnx(onnx_export.export(spec, model.state_arrays()), feeds)
    numpy.testing.assert_array_equal(actual["out"], model.predict(feeds)["out"])
    assert not actual["out"][0, 1].any()


def test_standardization_and_probabilities_are_inside_the_graph():
    spec = zoo.load("mlp")
    model = Model(spec)
    randomize(model)
    rng = numpy.random.default_rng(2)
    rows = rng.normal(3.0, 2.0, size=(5, 64)).astype(numpy.float32)
    mean, std = rows.mean(axis=0), rows.std(axis=0) + 0.5
    schema = {"inputs": {"x": {"standardization": {"mean": mean.tolist(), "std": std.tolist()}}},
              "label_input": "y", "prediction": spec["outputs"]["prediction"], "link": "softmax"}
    actual = run_onnx(onnx_export.export(spec, model.state_arrays(), schema), {"x": rows})
    scores = model.predict({"x": (rows - mean) / std})["prediction"]
    numpy.testing.assert_allclose(actual["prediction"], scores, rtol=RTOL, atol=ATOL)
    probabilities = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    numpy.testing.assert_allclose(actual["probabilities"], probabilities, rtol=RTOL, atol=ATOL)


def test_a_loss_named_as_an_output_takes_the_labels():
    spec = zoo.load("mlp")
    spec["outputs"]["training_loss"] = spec["loss"]
    feeds = zoo_feeds(spec, numpy.random.default_rng(4))
    feeds["y"] = numpy.array([0, 3, 9], dtype=numpy.int64)
    actual = assert_round_trip(spec, feeds)
    assert actual["training_loss"].shape == ()


def test_an_op_without_a_translation_is_refused_naming_the_node_and_op(monkeypatch):
    spec = zoo.load("mlp")
    monkeypatch.delitem(onnx_export.TRANSLATIONS, "relu")
    relu = next(node["id"] for node in spec["nodes"] if node["op"] == "relu")
    with pytest.raises(onnx_export.UnsupportedOp, match=f"node '{relu}' uses op 'relu'"):
        onnx_export.export(spec, Model(spec).state_arrays())
