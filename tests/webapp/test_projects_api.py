"""Projects and their immutable graph versions over REST."""

from __future__ import annotations

import pytest

from tests.webapp.helpers import error_of
from webapp.projects.models import GraphVersion, Project
from webapp.runs.models import Run

pytestmark = pytest.mark.django_db


def test_projects_need_a_login(anonymous_client, project):
    for response in (anonymous_client.get("/api/projects"), anonymous_client.post("/api/projects", {"name": "x"}),
                     anonymous_client.get(f"/api/projects/{project.pk}")):
        assert response.status_code == 401
        assert error_of(response)["code"] == "not_authenticated"


def test_create_list_rename_and_delete(client):
    response = client.post("/api/projects", {"name": "  Iris  ", "description": "flowers"}, format="json")
    assert response.status_code == 201
    project = response.json()
    assert project["name"] == "Iris" and project["description"] == "flowers"
    listing = client.get("/api/projects").json()
    assert listing["count"] == 1 and listing["results"][0]["id"] == project["id"]
    renamed = client.patch(f"/api/projects/{project['id']}", {"name": "Irises"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Irises"
    assert client.delete(f"/api/projects/{project['id']}").status_code == 204
    assert not Project.objects.exists()


def test_project_names_are_unique_per_user(client, other_client, project):
    response = client.post("/api/projects", {"name": project.name}, format="json")
    assert response.status_code == 400
    assert "already have a project named" in error_of(response)["message"]
    assert other_client.post("/api/projects", {"name": project.name}, format="json").status_code == 201


def test_a_project_needs_a_name(client):
    response = client.post("/api/projects", {"description": "no name"}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == "name: This field is required." and "name" in error["details"]


def test_another_users_project_is_not_found(other_client, project, graph_version):
    for method, path in [("get", f"/api/projects/{project.pk}"), ("patch", f"/api/projects/{project.pk}"),
                         ("delete", f"/api/projects/{project.pk}"), ("get", f"/api/projects/{project.pk}/versions"),
                         ("post", f"/api/projects/{project.pk}/versions"),
                         ("get", f"/api/projects/{project.pk}/versions/{graph_version.pk}"),
                         ("get", f"/api/projects/{project.pk}/runs")]:
        response = getattr(other_client, method)(path, {}, format="json")
        assert response.status_code == 404, (method, path)
        assert error_of(response)["code"] == "not_found"
    assert other_client.get("/api/projects").json()["count"] == 0
    assert Project.objects.filter(pk=project.pk).exists()


def test_saving_versions_numbers_them(client, project, mlp_document):
    first = client.post(f"/api/projects/{project.pk}/versions", {"editor_document": mlp_document, "message": "v1"},
                        format="json")
    assert first.status_code == 201
    body = first.json()
    assert body["number"] == 1 and body["name"] == "main" and body["created_by"] == "alice"
    assert body["spec"]["format"] == "netforge.graph/1" and body["editor_document"] == mlp_document
    assert body["summary"]["total_parameters"] == 17226
    second = client.post(f"/api/projects/{project.pk}/versions", {"editor_document": mlp_document}, format="json")
    assert second.json()["number"] == 2
    other_graph = client.post(f"/api/projects/{project.pk}/versions", {"editor_document": mlp_document, "name": "wide"},
                              format="json")
    assert other_graph.json()["number"] == 1
    listing = client.get(f"/api/projects/{project.pk}/versions?name=main").json()
    assert [v["number"] for v in listing["results"]] == [2, 1]
    detail = client.get(f"/api/projects/{project.pk}/versions/{body['id']}").json()
    assert detail["editor_document"] == mlp_document


def test_an_invalid_graph_is_refused_with_the_errors_per_node(client, project, mlp_document):
    fc1 = next(n for n in mlp_document["nodes"] if n["id"] == "fc1")
    fc1["data"]["params"]["units"] = 0
    response = client.post(f"/api/projects/{project.pk}/versions", {"editor_document": mlp_document}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_graph" and "node 'fc1'" in error["message"]
    assert error["details"]["nodes"]["fc1"][0]["field"] == "params.units"
    assert not GraphVersion.objects.exists()


@pytest.mark.parametrize("document", [None, [], "graph", {"format": "netforge.editor/1", "nodes": "x"}])
def test_a_malformed_editor_document_is_a_400(client, project, document):
    response = client.post(f"/api/projects/{project.pk}/versions", {"editor_document": document}, format="json")
    assert response.status_code == 400
    assert error_of(response)["message"]


def test_malformed_json_is_a_400_naming_the_problem(client, project):
    response = client.post(f"/api/projects/{project.pk}/versions", '{"editor_document": {"nodes": [}',
                           content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in error_of(response)["message"]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_versions_are_immutable(client, project, graph_version, method):
    response = getattr(client, method)(f"/api/projects/{project.pk}/versions/{graph_version.pk}",
                                       {"message": "changed"}, format="json")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    graph_version.refresh_from_db()
    assert graph_version.message == ""


def test_a_project_with_an_active_run_cannot_be_deleted(client, project, graph_version, digits):
    run = Run.objects.create(project=project, graph_version=graph_version, dataset=digits, state=Run.State.RUNNING)
    response = client.delete(f"/api/projects/{project.pk}")
    assert response.status_code == 409
    assert str(run.pk) in error_of(response)["message"]
    run.state = Run.State.SUCCEEDED
    run.save()
    assert client.delete(f"/api/projects/{project.pk}").status_code == 204
    assert not Run.objects.exists() and not GraphVersion.objects.exists()


def test_paths_answer_with_and_without_a_trailing_slash(client, project):
    assert client.get("/api/projects/").status_code == 200
    assert client.get(f"/api/projects/{project.pk}/").json()["id"] == project.pk
