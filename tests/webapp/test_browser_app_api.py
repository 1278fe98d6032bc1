"""The routes the browser app adds, as a whole: documented in the OpenAPI document, never a 500 for
bad input; and the validation summary the graph editor shows."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.webapp.helpers import error_of

pytestmark = pytest.mark.django_db


def test_the_new_routes_are_in_the_openapi_document():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path, method in [("/api/auth/register/", "post"), ("/api/auth/csrf/", "get"),
                         ("/api/projects/{project_id}/versions/{version_id}/script", "get"),
                         ("/api/runs/{run_id}/evaluation", "get"), ("/api/datasets/{dataset_id}/samples", "get"),
                         ("/api/datasets/{dataset_id}/file", "get"), ("/api/runs/{run_id}", "patch")]:
        assert method in paths[path], (path, method)
    script = paths["/api/projects/{project_id}/versions/{version_id}/script"]["get"]
    assert "text/x-python" in script["responses"]["200"]["content"]
    assert {p["name"] for p in script["parameters"]} >= {"dataset", "epochs", "batch_size", "optimizer",
                                                         "learning_rate"}


def test_validation_gives_each_nodes_parameters_and_flops_and_the_summary(client, mlp_document):
    report = client.post("/api/graphs/validate?batch_size=32", mlp_document, format="json").json()
    nodes = report["nodes"]
    assert nodes["fc1"]["parameters"] == 64 * 128 + 128 and nodes["fc1"]["flops_per_sample"] == 2 * 64 * 128
    assert nodes["fc1"]["weights"] == {"W": [64, 128], "b": [128]}
    assert report["total_parameters"] == sum(node["parameters"] for node in nodes.values()) == 17226
    assert report["flops_per_sample"] == sum(node["flops_per_sample"] for node in nodes.values())
    assert report["memory_bytes"] > 4 * report["total_parameters"] and report["batch_size"] == 32


GARBAGE = [[], "text", 42, None, {"unexpected": {"deeply": [1, {"x": None}]}}, {"username": ["a list"]},
           {"username": "x", "password": {"a": 1}}]


@pytest.mark.parametrize("body", GARBAGE)
def test_no_500_for_any_bad_sign_up(anonymous_client, body):
    response = anonymous_client.post("/api/auth/register/", body, format="json")
    assert response.status_code == 400, response.content[:300]
    error_of(response)


@pytest.mark.parametrize("query", ["dataset=1e9", "dataset=-1", "dataset=x&epochs=1e99", "dataset={}&seed=-3",
                                   "dataset={}&validation_fraction=2", "dataset={}&batch_size=0",
                                   "dataset={}&learning_rate=nan", "dataset={}&optimizer=rmsprop2"])
def test_no_500_for_any_bad_script_query(client, project, graph_version, digits, query):
    url = f"/api/projects/{project.pk}/versions/{graph_version.pk}/script?{query.format(digits.pk)}"
    response = client.get(url)
    assert response.status_code == 400, response.content[:300]
    error_of(response)
