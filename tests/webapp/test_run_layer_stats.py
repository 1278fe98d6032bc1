"""A run's per-layer statistics kept with its record: thinned evenly within the cap, a resumed
execution's replayed steps kept once, and served by GET /api/runs/<id>/layer-stats. The same
through a real worker and WebSocket: tests/platform/test_layer_stats.py."""

from __future__ import annotations

import json

import pytest

from engine.errors import EngineError
from engine.layer_stats import HISTOGRAM_BINS, HISTOGRAM_EDGES
from tests.webapp.helpers import error_of
from webapp.runs.layer_stats import LayerStatsRecord, layer_stats_file, read_samples, thin
from webapp.runs.models import Run
from workers.training import marked_activations

pytestmark = pytest.mark.django_db


def sample(step: int, *, nan: dict | None = None) -> dict:
    histogram = [0] * HISTOGRAM_BINS
    histogram[step % HISTOGRAM_BINS] = 32
    return {"step": step, "epoch": step / 10, "wall_time": 1000.0 + step, "nan": nan,
            "nodes": {"fc1": {"op": "dense", "weight_norm": 1.0 + step, "grad_norm": 0.5, "update_ratio": 0.01,
                              "mean": 0.1, "std": 1.0, "histogram": histogram, "non_finite": 0},
                      "act1": {"op": "relu", "mean": 0.3, "std": 0.5, "histogram": histogram, "non_finite": 0,
                               "dead_fraction": 0.25}}}


@pytest.fixture
def run(project, graph_version, digits) -> Run:
    return Run.objects.create(project=project, graph_version=graph_version, dataset=digits)


def test_the_record_is_thinned_evenly_keeping_the_first_the_last_and_the_nan(run):
    record = LayerStatsRecord(run.pk, kept_samples=20)
    nan = {"step": 37, "node": "fc1", "where": "output"}
    for step in range(1, 101):
        record.append([sample(step, nan=nan if step >= 37 else None)])
    steps = [s["step"] for s in read_samples(run.pk)]
    assert len(steps) <= 20 and steps == sorted(steps)
    assert steps[0] == 1 and steps[-1] == 100 and 37 in steps
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert max(gaps) <= 4 * (100 / 20), steps  # spread over the run, not bunched at one end


def test_a_large_graphs_record_is_thinned_to_its_byte_cap_too(run):
    one = len(json.dumps(sample(1))) + 1
    record = LayerStatsRecord(run.pk, kept_samples=1000, max_bytes=10 * one)  # room for ~10 of 1000
    for step in range(1, 201):
        record.append([sample(step)])
        assert layer_stats_file(run.pk).stat().st_size <= 11 * one
    steps = [s["step"] for s in read_samples(run.pk)]
    assert steps[0] == 1 and steps[-1] == 200 and len(steps) >= 3


def test_thin_keeps_everything_under_the_cap_and_spreads_the_rest():
    samples = [sample(step) for step in range(1, 11)]
    assert thin(samples, 20) == samples
    assert [s["step"] for s in thin(samples, 4)][0::3] == [1, 10]
    assert len(thin(samples, 4)) == 4


def test_a_resumed_execution_replaces_the_samples_from_its_first_step(run):
    LayerStatsRecord(run.pk).append([sample(step) for step in (1, 21, 41, 61)])
    LayerStatsRecord(run.pk).append([sample(41), sample(45)])  # resumed from a checkpoint at step 40
    assert [s["step"] for s in read_samples(run.pk)] == [1, 21, 41, 45]


def test_a_line_cut_short_by_a_write_in_progress_is_skipped(run):
    LayerStatsRecord(run.pk).append([sample(1), sample(2)])
    with layer_stats_file(run.pk).open("a") as file:
        file.write('{"step": 3, "nod')
    assert [s["step"] for s in read_samples(run.pk)] == [1, 2]


def test_the_api_serves_every_node_without_histograms_and_one_node_with_them(client, run):
    nan = {"step": 30, "node": "act1", "where": "output"}
    LayerStatsRecord(run.pk).append([sample(step, nan=nan if step >= 30 else None) for step in range(1, 51)])
    response = client.get(f"/api/runs/{run.pk}/layer-stats", {"max_samples": 10})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["run"] == run.pk and body["state"] == "queued" and body["total"] == 50
    assert body["nodes"] == ["fc1", "act1"] and body["nan"] == nan
    assert body["histogram_edges"] == list(HISTOGRAM_EDGES[1:-1])
    steps = [s["step"] for s in body["samples"]]
    assert len(steps) == 10 and steps[0] == 1 and steps[-1] == 50 and 30 in steps
    assert body["samples"][0]["nodes"]["fc1"]["weight_norm"] == 2.0
    assert all("histogram" not in stats for s in body["samples"] for stats in s["nodes"].values())

    one = client.get(f"/api/runs/{run.pk}/layer-stats", {"node": "act1"}).json()
    assert [s["step"] for s in one["samples"]] == list(range(1, 51))
    assert one["samples"][4]["stats"]["histogram"] == sample(5)["nodes"]["act1"]["histogram"]
    assert one["samples"][4]["stats"]["dead_fraction"] == 0.25


def test_the_api_names_an_unknown_node_and_hides_other_users_runs(client, other_client, run):
    LayerStatsRecord(run.pk).append([sample(1)])
    response = client.get(f"/api/runs/{run.pk}/layer-stats", {"node": "conv9"})
    assert response.status_code == 400
    assert "no layer statistics of node 'conv9'" in error_of(response)["message"]
    assert "fc1" in error_of(response)["message"]
    assert other_client.get(f"/api/runs/{run.pk}/layer-stats").status_code == 404
    bad = client.get(f"/api/runs/{run.pk}/layer-stats", {"max_samples": 1})
    assert bad.status_code == 400 and "max_samples" in json.dumps(error_of(bad))


def test_a_run_without_statistics_has_an_empty_record(client, run):
    body = client.get(f"/api/runs/{run.pk}/layer-stats").json()
    assert body["samples"] == [] and body["nodes"] == [] and body["nan"] is None and body["total"] == 0


def test_the_activations_watched_are_those_the_graph_document_marks():
    assert marked_activations({"nodes": []}) is None
    assert marked_activations({"metadata": {"author": "ada"}}) is None
    assert marked_activations({"metadata": {"layer_stats": {"nodes": ["act1", "act2"]}}}) == ("act1", "act2")
    with pytest.raises(EngineError, match="metadata.layer_stats.nodes must be a list of node ids"):
        marked_activations({"metadata": {"layer_stats": {"nodes": "act1"}}})
