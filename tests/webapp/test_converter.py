"""The editor document <-> engine spec converter (contract 3)."""

from __future__ import annotations

import copy

import pytest

from engine import zoo
from engine.errors import GraphError
from webapp.projects.converter import (
    EDITOR_FORMAT,
    editor_document_to_spec,
    editor_to_spec,
    spec_to_editor_document,
    validate_editor_document,
)


def node(node_id, node_type, *, x=0, y=0, **data):
    return {"id": node_id, "type": node_type, "position": {"x": x, "y": y}, "data": data}


def edge(edge_id, source, target, target_handle=None, source_handle=None, **data):
    entry = {"id": edge_id, "source": source, "sourceHandle": source_handle, "target": target,
             "targetHandle": target_handle}
    if data:
        entry["data"] = data
    return entry


def classifier(*extra_nodes, extra_edges=(), units=10):
    """x (4 features) -> dense -> softmax cross-entropy with labels y; output 'prediction'."""
    return {
        "format": EDITOR_FORMAT,
        "nodes": [
            node("x", "input", name="x", shape=[4]),
            node("y", "input", name="y", shape=[], dtype="int64", y=100),
            node("fc", "dense", params={"units": units}),
            node("loss", "softmax_cross_entropy"),
            node("out", "output", name="prediction"),
            *extra_nodes,
        ],
        "edges": [
            edge("e1", "x", "fc", "x"),
            edge("e2", "fc", "loss", "logits"),
            edge("e3", "y", "loss", "labels"),
            edge("e4", "fc", "out"),
            *extra_edges,
        ],
    }


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_model_round_trips(name):
    spec = zoo.load(name)
    document = spec_to_editor_document(spec)
    assert document["format"] == EDITOR_FORMAT
    report = validate_editor_document(document)
    assert report["ok"], report
    assert report["spec"] == spec


def test_a_graph_whose_loss_is_not_a_loss_op_round_trips_through_a_loss_node():
    spec = zoo.load("mlp")
    spec["nodes"].append({"id": "scaled", "op": "multiply", "inputs": {"a": "loss", "b": "loss"}})
    spec["loss"] = "scaled"
    document = spec_to_editor_document(spec)
    assert [n["type"] for n in document["nodes"]].count("loss") == 1
    assert editor_to_spec(document).spec == spec


def test_layout_puts_each_node_below_its_sources():
    document = spec_to_editor_document(zoo.load("wide_deep"))
    y_of = {n["id"]: n["position"]["y"] for n in document["nodes"]}
    for e in document["edges"]:
        assert y_of[e["source"]] < y_of[e["target"]], e
    positions = [(n["position"]["x"], n["position"]["y"]) for n in document["nodes"]]
    assert len(set(positions)) == len(positions), "no two nodes on top of each other"


def test_a_valid_document_reports_shapes_per_node_and_per_edge():
    report = validate_editor_document(classifier(), batch_size=16)
    assert report["ok"] and report["errors"] == [] and report["error_count"] == 0
    assert report["spec"]["nodes"][0] == {"id": "fc", "op": "dense", "params": {"units": 10}, "inputs": {"x": "x"}}
    assert report["spec"]["loss"] == "loss" and report["spec"]["outputs"] == {"prediction": "fc"}
    assert report["nodes"]["fc"]["outputs"] == {"out": {"shape": [None, 10], "dtype": "float32"}}
    assert report["nodes"]["fc"]["parameters"] == 4 * 10 + 10
    assert report["nodes"]["x"]["outputs"] == {"out": {"shape": [None, 4], "dtype": "float32"}}
    assert report["edges"]["e1"] == {"shape": [None, 4], "dtype": "float32", "errors": []}
    assert report["edges"]["e2"]["shape"] == [None, 10]
    assert report["edges"]["e3"] == {"shape": [None], "dtype": "int64", "errors": []}
    assert report["total_parameters"] == 50 and report["batch_size"] == 16 and report["memory_bytes"] > 0


def test_engine_errors_land_on_the_editor_node_with_the_field():
    report = validate_editor_document(classifier(units=0))
    assert not report["ok"]
    [error] = report["nodes"]["fc"]["errors"]
    assert error["field"] == "params.units" and error["code"] == "bad_param" and "units" in error["message"]
    assert report["errors"] == []


def test_an_edge_into_an_unknown_port_names_the_node_edge_and_port():
    document = classifier()
    document["edges"][1]["targetHandle"] = "logitz"
    report = validate_editor_document(document)
    errors = report["nodes"]["loss"]["errors"]
    bad_port = next(e for e in errors if e["code"] == "bad_port")
    assert bad_port["field"] == "inputs.logitz" and bad_port["edge"] == "e2"
    assert "no input port 'logitz'" in bad_port["message"] and "logits, labels" in bad_port["message"]
    assert any(e["code"] == "missing_input" and e["field"] == "inputs.logits" for e in errors)
    assert report["edges"]["e2"]["errors"] == [bad_port]


def test_two_edges_into_a_single_port_are_refused():
    document = classifier(node("x2", "input", name="x2", shape=[4]), extra_edges=[edge("e5", "x2", "fc", "x")])
    report = validate_editor_document(document)
    [error] = [e for e in report["nodes"]["fc"]["errors"] if e["code"] == "duplicate_input"]
    assert error["edge"] == "e5" and error["field"] == "inputs.x"
    assert report["spec"]["nodes"][0]["inputs"] == {"x": "x"}, "the first edge (document order) stays"


def test_an_unknown_node_type_is_reported_on_that_node_with_a_suggestion():
    document = classifier(node("oops", "densse"), extra_edges=[edge("e5", "x", "oops", "x")])
    report = validate_editor_document(document)
    [error] = report["nodes"]["oops"]["errors"]
    assert error["field"] == "type" and error["code"] == "unknown_op" and "did you mean 'dense'" in error["message"]
    assert "e5" not in report["edges"], "edges of a node that is not an op are left out, not reported twice"


def test_node_ids_must_be_usable_as_engine_ids():
    document = classifier()
    document["nodes"][2]["id"] = "1st dense"
    for e in document["edges"]:
        e["source"] = "1st dense" if e["source"] == "fc" else e["source"]
        e["target"] = "1st dense" if e["target"] == "fc" else e["target"]
    report = validate_editor_document(document)
    assert [e["code"] for e in report["nodes"]["1st dense"]["errors"]] == ["bad_id"]


def test_variadic_ports_take_edges_in_explicit_order_then_by_position():
    concat = node("cat", "concat", params={"axis": -1}, x=200)
    inputs = [node("a", "input", shape=[1], y=300), node("b", "input", shape=[2], y=0),
              node("c", "input", shape=[3], y=100)]
    document = {"format": EDITOR_FORMAT, "nodes": [*inputs, concat, node("out", "output", name="joined")],
                "edges": [edge("ea", "a", "cat", "x"), edge("eb", "b", "cat", "x"), edge("ec", "c", "cat", "x"),
                          edge("eo", "cat", "out")]}
    by_position = editor_to_spec(document).spec["nodes"][0]["inputs"]["x"]
    assert by_position == ["b", "c", "a"], "top to bottom"
    document["edges"][0]["data"] = {"order": 0}
    assert editor_to_spec(document).spec["nodes"][0]["inputs"]["x"] == ["a", "b", "c"]
    report = validate_editor_document(document, batch_size=8)
    assert report["nodes"]["cat"]["outputs"]["out"]["shape"] == [None, 6]


def test_input_node_problems_are_reported_on_the_input_node():
    document = classifier()
    document["nodes"][0]["data"]["shape"] = [4, 0]
    document["nodes"][1]["data"]["dtype"] = "int8"
    report = validate_editor_document(document)
    assert [e["field"] for e in report["nodes"]["x"]["errors"]] == ["shape"]
    assert [e["field"] for e in report["nodes"]["y"]["errors"]] == ["dtype"]


def test_unconnected_outputs_and_several_losses_are_explained():
    document = classifier(node("lonely", "output", name="lonely"),
                          node("loss2", "softmax_cross_entropy"),
                          extra_edges=[edge("e5", "fc", "loss2", "logits"), edge("e6", "y", "loss2", "labels")])
    report = validate_editor_document(document)
    assert report["nodes"]["lonely"]["errors"][0]["code"] == "missing_input"
    assert [e["code"] for e in report["errors"]] == ["ambiguous_loss"]
    # A loss node settles which value is minimized.
    document["nodes"].append(node("objective", "loss"))
    document["edges"].append(edge("e7", "loss", "objective"))
    report = validate_editor_document(document)
    assert report["spec"]["loss"] == "loss" and report["errors"] == []


def test_a_graph_without_a_loss_gets_a_graph_level_error():
    document = classifier()
    document["nodes"] = [n for n in document["nodes"] if n["id"] != "loss"]
    document["edges"] = [e for e in document["edges"] if e["target"] != "loss"]
    report = validate_editor_document(document)
    assert "no_loss" in [e["code"] for e in report["errors"]]


@pytest.mark.parametrize(("document", "code"), [
    ([], "not_an_object"),
    ("graph", "not_an_object"),
    ({"nodes": [], "edges": []}, "bad_format"),
    ({"format": "netforge.editor/0", "nodes": [], "edges": []}, "bad_format"),
    ({"format": EDITOR_FORMAT, "nodes": {"x": 1}, "edges": []}, "bad_nodes"),
    ({"format": EDITOR_FORMAT, "nodes": [], "edges": "e1"}, "bad_edges"),
    ({"format": EDITOR_FORMAT, "nodes": [5], "edges": []}, "bad_node"),
    ({"format": EDITOR_FORMAT, "nodes": [{"type": "relu"}], "edges": []}, "bad_id"),
    ({"format": EDITOR_FORMAT, "nodes": [], "edges": [{"id": "e", "source": "a", "target": "b"}]}, "unknown_target"),
])
def test_malformed_documents_never_raise(document, code):
    report = validate_editor_document(document)
    assert not report["ok"]
    assert code in [e["code"] for e in report["errors"]]


def test_editor_document_to_spec_raises_with_every_problem():
    with pytest.raises(GraphError) as caught:
        editor_document_to_spec(classifier(units=-1))
    assert caught.value.errors[0]["node"] == "fc"
    spec, report = editor_document_to_spec(classifier())
    assert spec == report["spec"]


def test_conversion_does_not_change_the_document():
    document = classifier()
    before = copy.deepcopy(document)
    validate_editor_document(document)
    assert document == before
