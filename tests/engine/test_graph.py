"""The graph format: validation finds every kind of mistake at once and names the node and field;
valid graphs get their shapes, parameter counts and FLOPs without running."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.graph import FORMAT, GraphBuilder, validate


def mlp_spec() -> dict:
    return {
        "format": FORMAT,
        "inputs": {"x": {"shape": [None, 64], "dtype": "float32"}, "y": {"shape": [None], "dtype": "int64"}},
        "nodes": [
            {"id": "fc1", "op": "dense", "params": {"units": 128}, "inputs": {"x": "x"}},
            {"id": "act1", "op": "relu", "inputs": {"x": "fc1"}},
            {"id": "logits", "op": "dense", "params": {"units": 10}, "inputs": {"x": "act1"}},
            {"id": "loss", "op": "softmax_cross_entropy", "inputs": {"logits": "logits", "labels": "y"}},
        ],
        "outputs": {"prediction": "logits"},
        "loss": "loss",
    }


def node(spec: dict, node_id: str) -> dict:
    return next(n for n in spec["nodes"] if n["id"] == node_id)


def test_valid_graph_reports_shapes_parameters_and_flops():
    report = validate(mlp_spec(), batch_size=128)
    assert report.ok, report.errors
    assert report.nodes["fc1"]["outputs"]["out"] == {"shape": [None, 128], "dtype": "float32"}
    assert report.nodes["logits"]["outputs"]["out"]["shape"] == [None, 10]
    assert report.nodes["loss"]["outputs"]["out"]["shape"] == []
    assert report.nodes["fc1"]["parameters"] == 64 * 128 + 128
    assert report.total_parameters == 64 * 128 + 128 + 128 * 10 + 10
    assert report.nodes["fc1"]["flops_per_sample"] == 2 * 64 * 128
    assert report.memory_bytes > 0
    json.dumps(report.to_dict())


def mutate_node(node_id, **changes):
    def mutate(spec):
        entry = node(spec, node_id)
        for key, value in changes.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
    return mutate


def add_nodes(*nodes):
    def mutate(spec):
        spec["nodes"].extend(copy.deepcopy(list(nodes)))
    return mutate


def set_top(key, value):
    def mutate(spec):
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return mutate


# (id, mutation, expected code, expected node, expected field, words the message must contain)
INVALID = [
    ("missing-format", set_top("format", None), "missing_format", None, "format", ["format"]),
    ("other-format", set_top("format", "netforge.graph/9"), "bad_format", None, "format", ["netforge.graph/9"]),
    ("unknown-top-field", set_top("nodez", []), "unknown_field", None, "nodez", ["nodez"]),
    ("no-inputs", set_top("inputs", None), "missing_inputs", None, "inputs", ["inputs"]),
    ("bad-input-shape", set_top("inputs", {"x": {"shape": [None, -3]}, "y": {"shape": [None], "dtype": "int64"}}),
     "bad_shape", None, "inputs.x.shape", ["-3"]),
    ("bad-input-dtype", set_top("inputs", {"x": {"shape": [None, 64], "dtype": "float16"},
                                           "y": {"shape": [None], "dtype": "int64"}}),
     "bad_dtype", None, "inputs.x.dtype", ["float16"]),
    ("nodes-not-list", set_top("nodes", {"fc1": {}}), "bad_nodes", None, "nodes", ["list"]),
    ("node-without-id", add_nodes({"op": "relu", "inputs": {"x": "fc1"}}), "bad_id", None, "nodes[4].id", ["id"]),
    ("duplicate-id", add_nodes({"id": "act1", "op": "relu", "inputs": {"x": "fc1"}}), "duplicate_id", "act1", "id",
     ["twice"]),
    ("id-equals-input", add_nodes({"id": "x", "op": "relu", "inputs": {"x": "fc1"}}), "duplicate_id", "x", "id",
     ["twice"]),
    ("unknown-op", mutate_node("act1", op="rellu"), "unknown_op", "act1", "op", ["rellu", "relu"]),
    ("unknown-param", mutate_node("fc1", params={"units": 8, "unit": 3}), "bad_param", "fc1", "params.unit",
     ["unit", "units"]),
    ("missing-param", mutate_node("fc1", params={}), "bad_param", "fc1", "params.units", ["units"]),
    ("param-below-minimum", mutate_node("fc1", params={"units": 0}), "bad_param", "fc1", "params.units", [">= 1", "0"]),
    ("param-wrong-type", mutate_node("fc1", params={"units": "ten"}), "bad_param", "fc1", "params.units",
     ["integer", "ten"]),
    ("param-infinite", mutate_node("fc1", params={"units": float("inf")}), "bad_param", "fc1", "params.units",
     ["integer", "inf"]),
    ("param-bad-choice", mutate_node("fc1", params={"units": 4, "kernel_init": "magic"}), "bad_param", "fc1",
     "params.kernel_init", ["magic", "glorot_uniform"]),
    ("missing-input", mutate_node("act1", inputs={}), "missing_input", "act1", "inputs.x", ["not connected"]),
    ("extra-input", mutate_node("act1", inputs={"x": "fc1", "y": "fc1"}), "extra_input", "act1", "inputs.y",
     ["no input port 'y'"]),
    ("unknown-reference", mutate_node("act1", inputs={"x": "fc9"}), "unknown_reference", "act1", "inputs.x", ["fc9"]),
    ("cycle", mutate_node("fc1", inputs={"x": "act1"}), "cycle", "fc1", "inputs", ["cycle", "fc1", "act1"]),
    ("shape-mismatch", add_nodes({"id": "mixed", "op": "add", "inputs": {"a": "fc1", "b": "logits"}},
                                 {"id": "mixed_out", "op": "relu", "inputs": {"x": "mixed"}}),
     "shape_mismatch", "mixed", "inputs.b", ["(N, 128)", "(N, 10)"]),
    ("matmul-inner-sizes", lambda spec: (spec["inputs"].update(w={"shape": [5, 3]}), add_nodes(
        {"id": "mm", "op": "matmul", "inputs": {"a": "fc1", "b": "w"}})(spec)),
     "shape_mismatch", "mm", "inputs.b", ["128 columns", "(5, 3) has 5 rows"]),
    ("dtype-mismatch", mutate_node("fc1", inputs={"x": "y"}), "dtype_mismatch", "fc1", "inputs.x", ["int64", "float"]),
    ("no-loss", set_top("loss", None), "no_loss", None, "loss", ["loss"]),
    ("loss-unknown", set_top("loss", "nothing"), "unknown_reference", None, "loss", ["nothing"]),
    ("loss-not-scalar", set_top("loss", "logits"), "bad_loss", "logits", "loss", ["scalar", "(N, 10)"]),
    ("weights-not-reaching-loss",
     add_nodes({"id": "side", "op": "dense", "params": {"units": 3}, "inputs": {"x": "act1"}}),
     "unreachable_loss", "side", "outputs", ["side", "loss"]),
    ("dangling-node", add_nodes({"id": "unused", "op": "relu", "inputs": {"x": "fc1"}}), "dangling", "unused",
     "outputs", ["unused"]),
    ("output-unknown", set_top("outputs", {"prediction": "nope"}), "unknown_reference", None, "outputs.prediction",
     ["nope"]),
    ("too-many-parameters", mutate_node("fc1", params={"units": 1_000_000}), "budget", None, "parameters",
     ["parameters", "limit"]),
]


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_each_invalid_graph_gets_its_error(case):
    _, mutate, code, node_id, field, words = case
    spec = mlp_spec()
    mutate(spec)
    report = validate(spec, max_parameters=50_000_000)
    assert not report.ok
    matching = [e for e in report.errors if e["code"] == code and e["node"] == node_id and e["field"] == field]
    assert matching, f"no error {code} at node={node_id} field={field}; got {report.errors}"
    for word in words:
        assert word in matching[0]["message"], (word, matching[0]["message"])


def test_memory_budget_names_the_largest_activations():
    spec = mlp_spec()
    node(spec, "fc1")["params"]["units"] = 200_000
    report = validate(spec, batch_size=4096, max_memory_bytes=1 << 30)
    error = next(e for e in report.errors if e["code"] == "budget" and e["field"] == "memory")
    assert "'fc1'" in error["message"] and "4096" in error["message"]


def test_every_problem_is_reported_at_once():
    spec = mlp_spec()
    node(spec, "fc1")["params"] = {"units": -1}
    node(spec, "act1")["op"] = "nonexistent"
    del spec["loss"]
    codes = {e["code"] for e in validate(spec).errors}
    assert {"bad_param", "unknown_op", "no_loss"} <= codes


def test_graph_error_message_lists_node_and_field():
    spec = mlp_spec()
    node(spec, "fc1")["params"]["units"] = 0
    with pytest.raises(engine.GraphError) as caught:
        engine.Model(spec)
    assert "node 'fc1', params.units" in str(caught.value)
    assert caught.value.errors[0]["node"] == "fc1"


def test_builder_writes_the_same_document():
    g = GraphBuilder()
    x = g.input("x", [None, 64])
    y = g.input("y", [None], dtype="int64")
    hidden = g.relu(g.dense(x, units=128, id="fc1"), id="act1")
    logits = g.dense(hidden, units=10, id="logits")
    g.loss(g.softmax_cross_entropy(logits, y, id="loss"))
    g.output("prediction", logits)
    built = g.to_spec()
    expected = mlp_spec()
    for entry in expected["nodes"]:
        entry.setdefault("params", {})
    assert built == expected


def test_builder_names_nodes_when_no_id_given():
    g = GraphBuilder()
    x = g.input("x", [None, 4])
    assert g.relu(x) == "relu1" and g.relu(x) == "relu2"
    with pytest.raises(AttributeError):
        g.no_such_op(x)


def test_variadic_and_multi_port_references():
    g = GraphBuilder()
    a = g.input("a", [None, 3])
    b = g.input("b", [None, 5])
    y = g.input("y", [None, 8])
    joined = g.concat([a, b], axis=-1, id="joined")
    g.loss(g.mse(joined, y, id="loss"))
    g.output("joined", joined)
    report = validate(g.to_spec())
    assert report.ok, report.errors
    assert report.nodes["joined"]["outputs"]["out"]["shape"] == [None, 8]


# -- robustness: random malformed documents never crash the validator ----------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=6)
    | st.sampled_from(["x", "y", "fc1", "act1", "logits", "loss", "dense", "relu", "units", "shape", FORMAT]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "op", "params", "inputs", "shape", "dtype", "units", "x", "a", "b", "logits", "labels"])
        | st.text(max_size=4), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values)
def test_random_documents_give_errors_not_crashes(document):
    report = validate(document)
    assert not report.ok
    for error in report.errors:
        assert set(error) == {"node", "field", "code", "message"} and isinstance(error["message"], str)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


ALL_PATHS = [p for p in _paths(mlp_spec()) if p]


@settings(max_examples=400, deadline=None)
@given(edits=st.lists(st.tuples(st.sampled_from(ALL_PATHS), json_values | st.just("__delete__")),
                      min_size=1, max_size=3))
def test_mutated_valid_documents_never_crash(edits):
    spec = mlp_spec()
    for path, value in edits:
        target = spec
        try:
            for key in path[:-1]:
                target = target[key]
            if value == "__delete__":
                del target[path[-1]]
            else:
                target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    report = validate(spec)
    for error in report.errors:
        assert isinstance(error["message"], str) and error["code"]
    if report.ok:
        engine.Model(spec)  # whatever validates also compiles
