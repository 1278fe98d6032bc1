"""Per-layer statistics through the whole platform: a real worker samples them while it trains,
keeps them with the run's record and publishes them on the run's WebSocket (``run.layer_stats``);
GET /api/runs/<id>/layer-stats replays the same samples, and names the node of a run's first NaN."""

from __future__ import annotations

import pytest

from tests.platform.harness import MOONS, RunSocket

pytestmark = pytest.mark.xdist_group("platform")


class StatsSocket(RunSocket):
    """A RunSocket that also keeps the ``run.layer_stats`` samples it receives."""

    def __init__(self, url: str):
        super().__init__(url)
        self.layer_samples: list[dict] = []

    def receive(self, timeout: float) -> dict:
        message = super().receive(timeout)
        if message["type"] == "run.layer_stats":
            self.layer_samples.extend(message["samples"])
        return message


def log_of_negative_spec() -> dict:
    """moons' two features through a dense layer into a log: about half its inputs are negative."""
    return {
        "format": "netforge.graph/1",
        "inputs": {"x": {"shape": [None, 2], "dtype": "float32"}, "y": {"shape": [None], "dtype": "int64"}},
        "nodes": [
            {"id": "fc1", "op": "dense", "params": {"units": 8}, "inputs": {"x": "x"}},
            {"id": "log1", "op": "log", "inputs": {"x": "fc1"}},
            {"id": "logits", "op": "dense", "params": {"units": 2}, "inputs": {"x": "log1"}},
            {"id": "loss", "op": "softmax_cross_entropy", "inputs": {"logits": "logits", "labels": "y"}},
        ],
        "outputs": {"prediction": "logits"},
        "loss": "loss",
    }


def test_statistics_stream_over_the_websocket_and_are_replayed_from_the_record(workspace):
    space = workspace(MOONS)
    run = space.start_run(epochs=4, batch_size=8, optimizer={"name": "adam", "lr": 0.01})  # a few seconds
    with StatsSocket(space.user.socket_url(run["id"])) as socket:
        state = socket.receive_until_finished(timeout=120)
    assert state == "succeeded"
    live = socket.layer_samples
    assert live and live[0]["step"] >= 101  # once a sample costs at most 2% of the steps before it
    steps = [sample["step"] for sample in live]
    assert steps == sorted(set(steps))
    assert all(b - a >= 20 for a, b in zip(steps, steps[1:]))  # NETFORGE_LAYER_STATS_EVERY_STEPS
    assert len(live) >= 2, steps

    response = space.user.api.get(f"/api/runs/{run['id']}/layer-stats", params={"max_samples": 10_000})
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["state"] == "succeeded" and record["nan"] is None
    assert [sample["step"] for sample in record["samples"]] == steps  # every live sample is in the record
    assert record["nodes"] == ["fc1", "act1", "logits"]
    first = record["samples"][0]["nodes"]
    assert first["fc1"]["weight_norm"] > 0 and first["fc1"]["grad_norm"] > 0 and first["fc1"]["update_ratio"] > 0
    assert 0 <= first["act1"]["dead_fraction"] <= 1 and first["act1"]["std"] > 0
    assert first["act1"] == {k: v for k, v in live[0]["nodes"]["act1"].items() if k != "histogram"}

    one = space.user.api.get(f"/api/runs/{run['id']}/layer-stats", params={"node": "act1"}).json()
    assert [sample["stats"]["histogram"] for sample in one["samples"]] == [s["nodes"]["act1"]["histogram"]
                                                                           for s in live]


def test_the_node_that_produced_the_first_nan_is_named_live_and_in_the_record(workspace):
    space = workspace({**MOONS, "spec": log_of_negative_spec})
    run = space.start_run(epochs=1, batch_size=32)
    with StatsSocket(space.user.socket_url(run["id"])) as socket:
        state = socket.receive_until_finished(timeout=120)
    assert state == "failed"
    assert "the loss became nan" in socket.states[-1]["error"]
    assert socket.layer_samples[-1]["nan"] == {"step": 1, "node": "log1", "where": "output"}
    record = space.user.api.get(f"/api/runs/{run['id']}/layer-stats").json()
    assert record["nan"] == {"step": 1, "node": "log1", "where": "output"}
    assert record["samples"][-1]["nodes"]["log1"]["non_finite"] > 0
    assert record["samples"][-1]["nodes"]["fc1"]["non_finite"] == 0
