"""Composite blocks: defined once as graph-format JSON, listed in the catalog with their inner graph,
expanded with ids '<block id>/<inner id>', shapes inferred through them, errors named by the block node."""

from __future__ import annotations

import copy
import json

import numpy

import engine
from engine import blocks
from engine.graph import GraphBuilder, validate


def resnet_spec(projection: bool = True) -> dict:
    g = GraphBuilder()
    x = g.input("x", [None, 1, 8, 8])
    y = g.input("y", [None], dtype="int64")
    h = g.conv_bn_relu(x, filters=4, id="stem")
    h = g.resnet_basic_block(h, filters=4, id="res1")
    h = g.resnet_basic_block(h, filters=8, stride=2, projection=projection, id="res2")
    logits = g.dense(g.global_avg_pool2d(h, id="pool"), units=10, id="logits")
    g.loss(g.softmax_cross_entropy(logits, y, id="loss"))
    g.output("prediction", logits)
    return g.to_spec()


def test_catalog_lists_blocks_with_their_inner_graph():
    entries = {entry["name"]: entry for entry in engine.catalog()["ops"]}
    for name in ("conv_bn_relu", "resnet_basic_block", "lstm_classifier_head"):
        entry = entries[name]
        assert entry["kind"] == "block" and entry["block"] is True
        assert entry["graph"]["nodes"] and entry["graph"]["outputs"]
        assert [port["name"] for port in entry["inputs"]] == ["x"]
    assert entries["conv2d"]["kind"] == "op"
    json.dumps(engine.catalog())


def test_blocks_expand_with_prefixed_ids_and_infer_shapes():
    report = validate(resnet_spec())
    assert report.ok, report.errors
    assert report.nodes["res2"]["block"] is True
    assert report.nodes["res2"]["outputs"]["out"]["shape"] == [None, 8, 4, 4]
    assert "res2/projection" in report.nodes and "res1/projection" not in report.nodes
    assert "res2/conv1/conv" in report.nodes  # conv_bn_relu nested inside the residual block
    assert report.nodes["res2"]["parameters"] == sum(
        report.nodes[n]["parameters"] for n in report.nodes["res2"]["inner_nodes"])


def test_errors_inside_a_block_name_the_block_node():
    report = validate(resnet_spec(projection=False))
    assert [(e["node"], e["field"], e["code"]) for e in report.errors] == [
        ("res2", "block.add.inputs.shortcut", "shape_mismatch")]
    message = report.errors[0]["message"]
    assert "resnet_basic_block" in message and "project the shortcut" in message
    assert "(N, 8, 4, 4)" in message and "(N, 4, 8, 8)" in message


def test_bad_block_parameters_are_reported_once():
    spec = resnet_spec()
    spec["nodes"][1]["params"]["filters"] = 0
    report = validate(spec)
    assert [(e["node"], e["field"]) for e in report.errors] == [("res1", "params.filters")]


def test_expansion_leaves_the_document_unchanged_and_trains():
    spec = resnet_spec()
    original = copy.deepcopy(spec)
    model = engine.Model(spec)
    assert spec == original
    assert "res2/projection_bn/running_mean" in model.buffers
    feeds = {"x": numpy.random.default_rng(0).normal(size=(6, 1, 8, 8)), "y": numpy.arange(6)}
    loss, _, grads = model.loss_and_grads(feeds)
    assert numpy.isfinite(loss) and set(grads) == set(model.params)


def test_every_block_definition_is_valid_alone():
    for name in blocks.block_names():
        block = blocks.get_block(name)
        assert block.doc and block.inputs and block.outputs


def test_block_input_ranks_lie_inside_the_ranks_of_the_ports_they_feed():
    for name in blocks.block_names():
        block = blocks.get_block(name)
        for port in block.inputs:
            fed = [next(inner_port for inner_port in engine.get_op(node["op"]).inputs if inner_port.name == inner_name)
                   for node in block.nodes for inner_name, ref in node.get("inputs", {}).items()
                   if f"${port.name}" in str(ref).split("|")]
            assert fed, (name, port.name)
            for inner_port in fed:
                if inner_port.rank is not None:
                    assert port.rank is not None, f"{name}.{port.name} feeds {inner_port} but declares no rank"
                    low, high = port.rank
                    inside_above = inner_port.rank[1] is None if high is None else inner_port.accepts_rank(high)
                    assert inner_port.accepts_rank(low) and inside_above, (name, port.name, inner_port)


def test_lstm_classifier_head_block():
    g = GraphBuilder()
    x = g.input("x", [None, 20, 8])
    y = g.input("y", [None], dtype="int64")
    logits = g.lstm_classifier_head(x, units=6, classes=4, dropout=0.1, id="head")
    g.loss(g.softmax_cross_entropy(logits, y, id="loss"))
    g.output("prediction", logits)
    report = validate(g.to_spec())
    assert report.ok, report.errors
    assert report.nodes["head"]["outputs"]["out"]["shape"] == [None, 4]
    assert {"head/lstm", "head/dropout", "head/logits"} <= set(report.nodes)
