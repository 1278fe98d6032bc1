"""Per-layer statistics: equal to NumPy's on the same batch, NaN attribution, and a bounded rate."""

from __future__ import annotations

import json
import math

import numpy
import pytest

from engine import data
from engine.errors import EngineError
from engine.layer_stats import HISTOGRAM_BINS, HISTOGRAM_EDGES, LayerStatsOptions, LayerStatsSampler
from engine.model import Model
from engine.trainer import TrainConfig, Trainer


def mlp_spec(features: int = 6, classes: int = 3) -> dict:
    return {
        "format": "netforge.graph/1",
        "inputs": {"x": {"shape": [None, features], "dtype": "float32"}, "y": {"shape": [None], "dtype": "int64"}},
        "nodes": [
            {"id": "fc1", "op": "dense", "params": {"units": 8}, "inputs": {"x": "x"}},
            {"id": "act1", "op": "relu", "inputs": {"x": "fc1"}},
            {"id": "fc2", "op": "dense", "params": {"units": 5}, "inputs": {"x": "act1"}},
            {"id": "act2", "op": "tanh", "inputs": {"x": "fc2"}},
            {"id": "gate", "op": "sigmoid", "inputs": {"x": "act2"}},
            {"id": "logits", "op": "dense", "params": {"units": classes}, "inputs": {"x": "gate"}},
            {"id": "loss", "op": "softmax_cross_entropy", "inputs": {"logits": "logits", "labels": "y"}},
        ],
        "outputs": {"prediction": "logits"},
        "loss": "loss",
    }


def batch(rows: int = 32, features: int = 6, seed: int = 0) -> dict:
    rng = numpy.random.default_rng(seed)
    return {"x": (rng.normal(size=(rows, features)) * 3).astype(numpy.float32),
            "y": rng.integers(0, 3, size=rows).astype(numpy.int64)}


def numpy_histogram(values: numpy.ndarray) -> list[int]:
    edges = numpy.asarray(HISTOGRAM_EDGES[1:-1])
    clipped = numpy.clip(values.astype(numpy.float64).ravel(), edges[0] - 1, edges[-1] + 1)
    counts, _ = numpy.histogram(clipped, bins=[edges[0] - 2, *edges, edges[-1] + 2])
    return counts.tolist()


def sampled_step(model: Model, feeds: dict, lr: float = 0.1) -> dict:
    """One plain SGD step with every statistic sampled."""
    sampler = LayerStatsSampler(model, LayerStatsOptions(every_steps=1, min_seconds=0, first_step=1))
    observer = sampler.begin_step(1)
    assert observer is not None
    _, _, grads = model.loss_and_grads(feeds, observer=observer)
    sampler.after_backward(grads)
    for key, gradient in grads.items():
        model.params[key] -= lr * gradient
    return sampler.after_update(epoch=0.5), grads


def test_statistics_equal_a_numpy_computation_on_the_same_batch():
    model = Model(mlp_spec(), seed=1)
    before = {key: value.copy() for key, value in model.params.items()}
    feeds = batch()
    sample, grads = sampled_step(model, feeds, lr=0.1)

    fc1 = feeds["x"] @ before["fc1/W"] + before["fc1/b"]
    act1 = numpy.maximum(fc1, 0)
    fc2 = act1 @ before["fc2/W"] + before["fc2/b"]
    act2 = numpy.tanh(fc2)
    gate = 1 / (1 + numpy.exp(-act2))
    expected = {"fc1": fc1, "act1": act1, "fc2": fc2, "act2": act2, "gate": gate}
    nodes = sample["nodes"]
    assert sample["step"] == 1 and sample["epoch"] == 0.5 and sample["nan"] is None
    for node_id, values in expected.items():
        stats = nodes[node_id]
        assert stats["mean"] == pytest.approx(values.astype(numpy.float64).mean(), rel=1e-5, abs=1e-6), node_id
        assert stats["std"] == pytest.approx(values.astype(numpy.float64).std(), rel=1e-5, abs=1e-6), node_id
        assert stats["histogram"] == numpy_histogram(values), node_id
        assert sum(stats["histogram"]) == values.size and len(stats["histogram"]) == HISTOGRAM_BINS
        assert stats["non_finite"] == 0
    assert nodes["act1"]["dead_fraction"] == pytest.approx((act1 == 0).all(axis=0).mean())
    assert nodes["act2"]["saturation"] == pytest.approx((numpy.abs(act2) >= 0.99).mean())
    assert nodes["gate"]["saturation"] == pytest.approx(((gate <= 0.01) | (gate >= 0.99)).mean())
    assert "dead_fraction" not in nodes["fc1"] and "saturation" not in nodes["act1"]

    for node_id in ("fc1", "fc2", "logits"):
        keys = (f"{node_id}/W", f"{node_id}/b")
        weight_norm = math.sqrt(sum(float((before[k].astype(numpy.float64) ** 2).sum()) for k in keys))
        grad_norm = math.sqrt(sum(float((grads[k].astype(numpy.float64) ** 2).sum()) for k in keys))
        change = math.sqrt(sum(float(((model.params[k] - before[k]).astype(numpy.float64) ** 2).sum()) for k in keys))
        assert nodes[node_id]["weight_norm"] == pytest.approx(weight_norm, rel=1e-6)
        assert nodes[node_id]["grad_norm"] == pytest.approx(grad_norm, rel=1e-6)
        assert nodes[node_id]["update_ratio"] == pytest.approx(change / weight_norm, rel=1e-5)
        assert nodes[node_id]["update_ratio"] == pytest.approx(0.1 * grad_norm / weight_norm, rel=1e-4)
    assert "grad_norm" not in nodes["act1"] and "loss" not in nodes
    json.dumps(sample, allow_nan=False)  # what the recorder stores and streams


def test_a_nan_injected_at_a_known_node_is_attributed_to_it():
    dataset = data.Dataset(arrays=batch(rows=64), task="classification", name="random", num_classes=3)
    trainer = Trainer(mlp_spec(), dataset, config=TrainConfig(epochs=1, batch_size=16, validation_fraction=0))
    trainer.model.params["fc2/W"][2, 1] = numpy.nan  # fc1 and act1 stay finite; fc2 is the first that is not
    trainer.watch_layers(LayerStatsOptions(every_steps=1000, min_seconds=1000))
    samples = []
    trainer.on("layer_stats", samples.append)
    with pytest.raises(EngineError, match="the loss became nan"):
        trainer.run()
    assert samples[-1]["nan"] == {"step": 1, "node": "fc2", "where": "output"}
    assert samples[-1]["nodes"]["fc1"]["non_finite"] == 0 and samples[-1]["nodes"]["fc2"]["non_finite"] > 0


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_the_log_of_a_negative_is_attributed_to_the_log_node_after_steps_without_samples():
    spec = mlp_spec()
    spec["nodes"][4] = {"id": "gate", "op": "log", "inputs": {"x": "act2"}}  # tanh output is negative somewhere
    dataset = data.Dataset(arrays=batch(rows=64), task="classification", name="random", num_classes=3)
    trainer = Trainer(spec, dataset, config=TrainConfig(epochs=1, batch_size=16, validation_fraction=0))
    trainer.watch_layers()  # no sample is due at step 1: the log's NaN is found by replaying the step
    samples = []
    trainer.on("layer_stats", samples.append)
    with pytest.raises(EngineError, match="the loss became nan"):
        trainer.run()
    assert samples[-1]["nan"]["node"] == "gate" and samples[-1]["nan"]["step"] == 1


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_graph_input_fed_nan_is_named_instead_of_a_node():
    dataset = data.Dataset(arrays=batch(rows=16), task="classification", name="random", num_classes=3)
    dataset.arrays["x"][3, 2] = numpy.inf
    trainer = Trainer(mlp_spec(), dataset, config=TrainConfig(epochs=1, batch_size=16, validation_fraction=0,
                                                               standardize=False))
    trainer.watch_layers(LayerStatsOptions(every_steps=1000))
    samples = []
    trainer.on("layer_stats", samples.append)
    with pytest.raises(EngineError):
        trainer.run()
    assert samples[-1]["nan"] == {"step": 1, "node": None, "input": "x", "where": "input"}


def chain_spec(nodes: int) -> dict:
    """A graph of ``nodes`` nodes: alternating dense and tanh layers before a loss."""
    layers, previous = [], "x"
    for index in range((nodes - 1) // 2):
        layers.append({"id": f"fc{index}", "op": "dense", "params": {"units": 4}, "inputs": {"x": previous}})
        layers.append({"id": f"act{index}", "op": "tanh", "inputs": {"x": f"fc{index}"}})
        previous = f"act{index}"
    layers.append({"id": "loss", "op": "mse", "inputs": {"prediction": previous, "target": "y"}})
    return {"format": "netforge.graph/1",
            "inputs": {"x": {"shape": [None, 4], "dtype": "float32"}, "y": {"shape": [None, 4], "dtype": "float32"}},
            "nodes": layers, "outputs": {"prediction": previous}, "loss": "loss"}


class StepClock:
    """A clock that advances by ``tick`` seconds per reading: rate limits without real waiting."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_streaming_is_bounded_under_a_thousand_node_graph():
    spec = chain_spec(1001)
    assert len(spec["nodes"]) == 1001
    rng = numpy.random.default_rng(0)
    arrays = {"x": rng.normal(size=(64, 4)).astype(numpy.float32), "y": rng.normal(size=(64, 4)).astype(numpy.float32)}
    dataset = data.Dataset(arrays=arrays, task="regression", name="random")
    trainer = Trainer(spec, dataset, config=TrainConfig(epochs=6, batch_size=8, validation_fraction=0,
                                                        optimizer={"name": "sgd", "lr": 0.01}))
    options = LayerStatsOptions(every_steps=10, min_seconds=0, first_step=1)
    sampler = trainer.watch_layers(options)
    samples = []
    trainer.on("layer_stats", samples.append)
    started = __import__("time").perf_counter()
    trainer.run()
    elapsed = __import__("time").perf_counter() - started
    steps = trainer.step
    assert steps == 48
    assert 1 <= len(samples) <= 1 + steps // options.every_steps
    assert [s["step"] for s in samples][0] == 1
    assert all(b["step"] - a["step"] >= 10 for a, b in zip(samples, samples[1:]))
    assert len(samples[0]["nodes"]) == 1000  # every layer, not the loss
    for sample in samples:  # each under a client's 1 MiB WebSocket frame
        assert len(json.dumps(sample, allow_nan=False)) < 1_000_000
    # Sampling waits at least its last cost / max_overhead: its share of the time stays bounded.
    first = samples[0]
    assert sampler.seconds_spent <= options.max_overhead * elapsed + sampler.seconds_spent / len(samples) * 1.01 \
        or len(samples) == 1, (sampler.seconds_spent, elapsed, first["step"])


def test_by_default_the_first_sample_waits_until_it_costs_at_most_the_overhead_share():
    sampler = LayerStatsSampler(Model(chain_spec(11)), LayerStatsOptions())
    assert not sampler.due(1) and not sampler.due(100) and sampler.due(101)  # 2 steps' cost / 2% of the time
    resumed = LayerStatsSampler(Model(chain_spec(11)), LayerStatsOptions())
    assert not resumed.due(5001) and not resumed.due(5100) and resumed.due(5101)  # counted from its first step


def test_the_rate_follows_steps_seconds_and_the_cost_of_a_sample():
    model = Model(chain_spec(11), seed=0)
    clock = StepClock(0.0)
    sampler = LayerStatsSampler(model, LayerStatsOptions(every_steps=5, min_seconds=2.0, max_overhead=0.5),
                                clock=clock)
    assert not sampler.due(1) and not sampler.due(4) and sampler.due(5)  # after 2 steps' cost / 0.5 = 4 steps
    sampler.begin_step(5)
    sampler._cost = 3.0  # a sample that took 3 s: the next waits 3 / 0.5 = 6 s
    sampler._finish(0.1)
    clock.now = 5.9
    assert not sampler.due(20)
    clock.now = 6.1
    assert not sampler.due(9) and sampler.due(10)
    assert not LayerStatsSampler(model, LayerStatsOptions(every_steps=0)).due(1)


def test_options_are_checked_naming_the_field():
    with pytest.raises(EngineError, match="every_steps"):
        LayerStatsOptions(every_steps=-1)
    with pytest.raises(EngineError, match="max_overhead"):
        LayerStatsOptions(max_overhead=0)
    with pytest.raises(EngineError, match="first_step"):
        LayerStatsOptions(first_step=0)
    with pytest.raises(EngineError, match=r"\['nope'\]"):
        LayerStatsSampler(Model(mlp_spec()), LayerStatsOptions(nodes=("fc1", "nope")))


def test_only_marked_activations_are_watched():
    model = Model(mlp_spec(), seed=0)
    sampler = LayerStatsSampler(model, LayerStatsOptions(every_steps=1, min_seconds=0, nodes=("act1",), first_step=1))
    observer = sampler.begin_step(1)
    _, _, grads = model.loss_and_grads(batch(), observer=observer)
    sampler.after_backward(grads)
    sample = sampler.after_update(epoch=1.0)
    assert "mean" in sample["nodes"]["act1"] and "mean" not in sample["nodes"]["fc1"]
    assert set(sample["nodes"]) == {"act1", "fc1", "fc2", "logits"}  # the weighted nodes always
