"""What the runs table of the browser app relies on: every run with what a comparison needs,
ordered by a final metric, a hyperparameter or the duration, and tags and notes edited in place."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from tests.webapp.helpers import error_of
from tests.webapp.test_runs_api import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_runs(project, graph_version, digits):
    start = timezone.now() - datetime.timedelta(hours=1)

    def finished(name, seconds, accuracy, batch_size):
        metrics = {"loss": 0.5} if accuracy is None else {"loss": 0.5, "val_accuracy": accuracy}
        return make_run(project, graph_version, digits, name=name, state="succeeded", started_at=start,
                        finished_at=start + datetime.timedelta(seconds=seconds), final_metrics=metrics,
                        hyperparameters={"epochs": 2, "batch_size": batch_size}, tags=["sweep"], notes=f"{name} notes")

    return {"slow": finished("slow", 300, 0.91, 64), "fast": finished("fast", 20, 0.97, 16),
            "unscored": finished("unscored", 60, None, 32)}


def names(client, query: str, path: str = "/api/runs") -> list[str]:
    response = client.get(f"{path}?{query}")
    assert response.status_code == 200, response.json()
    return [run["name"] for run in response.json()["results"]]


def test_each_run_has_what_a_comparison_table_shows(client, project, three_runs):
    run = client.get(f"/api/projects/{project.pk}/runs?ordering=name").json()["results"][0]
    assert run["name"] == "fast" and run["duration_seconds"] == 20.0
    assert run["final_metrics"]["val_accuracy"] == 0.97 and run["hyperparameters"]["batch_size"] == 16
    assert run["state"] == "succeeded" and run["tags"] == ["sweep"] and run["notes"] == "fast notes"
    assert run["graph_version_number"] == 1 and run["dataset_name"] == "digits"


def test_a_run_not_started_has_no_duration_and_a_running_one_counts_to_now(client, project, graph_version, digits):
    queued = make_run(project, graph_version, digits, state="queued")
    running = make_run(project, graph_version, digits, state="running",
                       started_at=timezone.now() - datetime.timedelta(seconds=30))
    assert client.get(f"/api/runs/{queued.pk}").json()["duration_seconds"] is None
    assert 30 <= client.get(f"/api/runs/{running.pk}").json()["duration_seconds"] < 60


@pytest.mark.parametrize(("ordering", "expected"), [
    ("-final_metrics__val_accuracy", ["fast", "slow", "unscored"]),
    ("final_metrics__val_accuracy", ["slow", "fast", "unscored"]),  # runs without the metric come last
    ("hyperparameters__batch_size", ["fast", "unscored", "slow"]),
    ("-duration", ["slow", "unscored", "fast"]),
    ("duration", ["fast", "unscored", "slow"]),
])
def test_runs_order_by_final_metrics_hyperparameters_and_duration(client, project, three_runs, ordering, expected):
    assert names(client, f"ordering={ordering}") == expected
    assert names(client, f"ordering={ordering}&tag=sweep&state=succeeded",
                 path=f"/api/projects/{project.pk}/runs") == expected


@pytest.mark.parametrize("ordering", ["final_metrics__", "final_metrics__val accuracy", "notes__x", "-colour"])
def test_unknown_orderings_are_a_400(client, ordering):
    response = client.get(f"/api/runs?ordering={ordering}")
    assert response.status_code == 400
    error = error_of(response)
    assert "ordering" in error["details"] and "final_metrics__<metric>" in error["message"]


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"tags": ["x" * 51]}, "tags", "no more than 50 characters"),
    ({"tags": [f"t{i}" for i in range(21)]}, "tags", "no more than 20 elements"),
    ({"tags": ["two\nlines"]}, "tags", "control character"),
    ({"tags": "baseline"}, "tags", "list"),
    ({"notes": "n" * 20_001}, "notes", "no more than 20000 characters"),
    ({"name": "n" * 201}, "name", "no more than 200 characters"),
])
def test_bad_edits_are_a_400_naming_the_field(client, project, graph_version, digits, body, field, words):
    run = make_run(project, graph_version, digits, tags=["keep"])
    response = client.patch(f"/api/runs/{run.pk}", body, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert field in error["details"] and words in error["message"], error
    run.refresh_from_db()
    assert run.tags == ["keep"]


def test_tags_and_notes_are_edited_in_place_on_a_finished_run(client, three_runs):
    run = three_runs["slow"]
    response = client.patch(f"/api/runs/{run.pk}", {"tags": ["best", " best ", "lr-sweep"], "notes": ""},
                            format="json")
    assert response.status_code == 200
    assert response.json()["tags"] == ["best", "lr-sweep"] and response.json()["notes"] == ""
    assert names(client, "tag=lr-sweep") == ["slow"]
