"""Every field checked where it is parsed: values that cannot be stored, rendered or computed with
are a 400 naming where they are, never a 500, and never saved."""

from __future__ import annotations

import json

import pytest

from tests.security.conftest import dense_chain
from tests.webapp.helpers import error_of
from webapp.projects.services import graph_version_create

pytestmark = pytest.mark.django_db

LONE_SURROGATE = "\ud800"  # json.dumps writes it as the escape \ud800, which Python's json reads back


def post_json(client, path: str, body) -> object:
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, data=text, content_type="application/json")


def with_label(document: dict, label: str) -> dict:
    first = {**document["nodes"][1], "data": {**document["nodes"][1].get("data", {}), "label": label}}
    return {**document, "nodes": [document["nodes"][0], first, *document["nodes"][2:]]}


@pytest.mark.parametrize(("text", "problem"), [
    (LONE_SURROGATE, "lone surrogate"),
    ("a\x00b", "NUL character"),
])
def test_unstorable_strings_in_an_editor_document_are_refused_and_not_saved(client, project, mlp_document, text,
                                                                           problem):
    response = post_json(client, f"/api/projects/{project.pk}/versions",
                         {"editor_document": with_label(mlp_document, text)})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_value" and problem in error["message"], error
    assert list(error["details"]) == ["editor_document.nodes[1].data.label"], error
    assert client.get(f"/api/projects/{project.pk}/versions").json()["count"] == 0


def test_a_lone_surrogate_saved_before_the_checks_is_still_read(client, project, user, mlp_document):
    # Saved through the service, as the API did before its parser checked strings.
    version = graph_version_create(project=project, editor_document=with_label(mlp_document, LONE_SURROGATE),
                                   created_by=user)
    response = client.get(f"/api/projects/{project.pk}/versions/{version.pk}")
    assert response.status_code == 200
    assert json.loads(response.content)["editor_document"]["nodes"][1]["data"]["label"] == LONE_SURROGATE


@pytest.mark.parametrize(("raw", "path", "problem"), [
    ('{"format": "netforge.editor/1", "nodes": [{"id": "\\ud800", "type": "dense"}], "edges": []}',
     "nodes[0].id", "lone surrogate"),
    ('{"format": "netforge.editor/1", "nodes": [{"id": "x", "type": "input", "data": {"shape": [1e400]}}]}',
     "nodes[0].data.shape[0]", "not a finite number"),
    ('{"format": "netforge.editor/1", "nodes": [{"id": "x", "type": "input", '
     '"data": {"shape": [18446744073709551616]}}]}',
     "nodes[0].data.shape[0]", "beyond 64 bits"),
    ('{"format": "netforge.editor/1", "nodes": [], "\\u0000": 1}', "\\u0000", "NUL character"),
])
def test_graph_validation_names_the_unsafe_value(client, raw, path, problem):
    response = post_json(client, "/api/graphs/validate", raw)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["details"] == {path: [error["details"][path][0]]} and problem in error["message"], error


@pytest.mark.parametrize("raw", ['{"name": NaN}', '{"name": Infinity}', '{"name": -Infinity}',
                                 '{"name": ' + "9" * 5000 + "}"])
def test_non_json_numbers_are_parse_errors(client, raw):
    response = post_json(client, "/api/projects", raw)
    assert response.status_code == 400 and error_of(response)["code"] == "parse_error"


def test_integers_beyond_64_bits_are_refused_in_any_body(client, project, graph_version, digits, enqueued):
    response = post_json(client, f"/api/projects/{project.pk}/runs",
                         {"graph_version": graph_version.pk, "dataset": digits.pk,
                          "hyperparameters": {"batch_size": 2**64}})
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("hyperparameters.batch_size: the integer 18446744073709551616")
    huge_id = post_json(client, f"/api/projects/{project.pk}/runs", {"graph_version": 2**64, "dataset": digits.pk})
    assert huge_id.status_code == 400 and "graph_version" in error_of(huge_id)["details"]


@pytest.mark.parametrize("query", ["limit=", "limit=99999999999999999999", "offset=99999999999999999999",
                                   "limit=-1", "offset=abc"])
def test_page_parameters_out_of_range_give_a_page(client, project, graph_version, query):
    for path in ("/api/projects", "/api/runs", f"/api/projects/{project.pk}/runs",
                 f"/api/projects/{project.pk}/versions"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 200, (path, query, response.content[:300])
    assert len(client.get("/api/projects?limit=99999999999999999999").json()["results"]) == 1


@pytest.mark.parametrize("name", ["project", "graph_version", "dataset"])
@pytest.mark.parametrize("value", ["99999999999999999999", "9" * 5000, "-1", "1e3", "١٢"])
def test_run_filters_that_are_not_ids_are_a_400_naming_the_filter(client, project, name, value):
    for path in ("/api/runs", f"/api/projects/{project.pk}/runs"):
        if name == "project" and path != "/api/runs":
            continue
        response = client.get(f"{path}?{name}={value}")
        assert response.status_code == 400, (path, name, response.content[:300])
        assert list(error_of(response)["details"]) == [name]


def test_ids_beyond_64_bits_in_paths_are_not_found(client, project):
    for path in (f"/api/projects/{2**64}", f"/api/projects/{project.pk}/versions/{2**64}", f"/api/runs/{2**64}",
                 f"/api/datasets/{2**64}", f"/api/projects/{'9' * 5000}"):
        assert client.get(path).status_code == 404, path


def test_a_graph_over_the_node_limit_is_a_400_naming_the_field(client, project, settings):
    settings.GRAPH_MAX_NODES = 10
    document = dense_chain(11)
    for path, body in (("/api/graphs/validate", document),
                       (f"/api/projects/{project.pk}/versions", {"editor_document": document})):
        response = post_json(client, path, body)
        assert response.status_code == 400, response.content
        error = error_of(response)
        assert error["details"]["errors"][0]["field"] == "nodes", error
        assert "11 nodes, over the limit of 10 (the server's NETFORGE_GRAPH_MAX_NODES setting)" in error["message"]
    assert post_json(client, "/api/graphs/validate", dense_chain(10)).status_code == 200


def test_a_graph_over_the_edge_limit_is_a_400_naming_the_field(client, settings):
    settings.GRAPH_MAX_EDGES = 5
    response = post_json(client, "/api/graphs/validate", dense_chain(8))
    assert response.status_code == 400 and error_of(response)["details"]["errors"][0]["field"] == "edges"
