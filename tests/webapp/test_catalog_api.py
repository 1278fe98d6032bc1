"""GET /api/ops and POST /api/graphs/validate."""

from __future__ import annotations

import pytest

from engine import zoo
from tests.webapp.helpers import error_of
from webapp.projects.converter import EDITOR_FORMAT

pytestmark = pytest.mark.django_db


def test_ops_serves_the_catalog_special_nodes_and_templates(client):
    response = client.get("/api/ops")
    assert response.status_code == 200
    body = response.json()
    assert body["format"] == "netforge.catalog/1" and body["editor_format"] == EDITOR_FORMAT
    dense = next(op for op in body["ops"] if op["name"] == "dense")
    assert {"name": "units", "type": "int"}.items() <= dense["params"][0].items()
    assert [special["type"] for special in body["special_nodes"]] == ["input", "output", "loss"]
    assert sorted(t["name"] for t in body["templates"]) == zoo.names()
    mlp = next(t for t in body["templates"] if t["name"] == "mlp")
    assert mlp["dataset"] == "digits" and mlp["editor_document"]["format"] == EDITOR_FORMAT


def test_every_template_validates(client):
    for template in client.get("/api/ops").json()["templates"]:
        report = client.post("/api/graphs/validate", template["editor_document"], format="json").json()
        assert report["ok"], (template["name"], report["errors"])


def test_validate_reports_shapes_per_edge(client, mlp_document):
    response = client.post("/api/graphs/validate?batch_size=64", mlp_document, format="json")
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] and report["batch_size"] == 64
    assert report["edges"]["fc1.out->act1.x"]["shape"] == [None, 128]
    assert report["nodes"]["fc1"]["parameters"] == 64 * 128 + 128


def test_logits_that_do_not_fit_the_bound_datasets_classes_are_flagged_on_their_node(client, mlp_document, digits):
    labels = next(n for n in mlp_document["nodes"] if n["id"] == "y")
    labels["data"].update(dataset=digits.pk, role="labels")
    logits = next(n for n in mlp_document["nodes"] if n["id"] == "logits")
    assert client.post("/api/graphs/validate", mlp_document, format="json").json()["ok"]  # 10 units, 10 classes
    logits["data"]["params"]["units"] = 7
    report = client.post("/api/graphs/validate", mlp_document, format="json").json()
    assert not report["ok"] and report["error_count"] == 1
    (error,) = report["nodes"]["logits"]["errors"]
    assert error["field"] == "params.units" and error["code"] == "class_count_mismatch"
    assert "7 scores" in error["message"] and "'digits' have 10 classes" in error["message"]


def test_without_an_output_node_what_the_loss_judges_is_the_prediction(client, mlp_document):
    mlp_document["nodes"] = [n for n in mlp_document["nodes"] if n["type"] != "output"]
    mlp_document["edges"] = [e for e in mlp_document["edges"] if not e["target"].startswith("output:")]
    report = client.post("/api/graphs/validate", mlp_document, format="json").json()
    assert report["ok"] and report["spec"]["outputs"] == {"prediction": "logits"}


def test_an_invalid_graph_is_still_a_200_with_per_node_errors(client, mlp_document):
    fc2 = next(n for n in mlp_document["nodes"] if n["id"] == "fc2")
    fc2["data"]["params"]["units"] = "many"
    mlp_document["edges"][0]["targetHandle"] = "input"
    response = client.post("/api/graphs/validate", mlp_document, format="json")
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is False
    assert [e["field"] for e in report["nodes"]["fc2"]["errors"]] == ["params.units"]
    assert report["nodes"]["fc1"]["errors"][0]["edge"] == mlp_document["edges"][0]["id"]


@pytest.mark.parametrize("body", [[], "text", 5, None])
def test_a_body_that_is_not_an_object_is_a_400(client, body):
    response = client.post("/api/graphs/validate", body, format="json")
    assert response.status_code == 400
    assert "JSON object" in error_of(response)["message"]


def test_malformed_json_is_a_400_naming_the_problem(client):
    response = client.post("/api/graphs/validate", '{"format": "netforge.editor/1", "nodes": [',
                           content_type="application/json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "parse_error" and "JSON parse error" in error["message"]


def test_bad_batch_size_is_a_400(client, mlp_document):
    response = client.post("/api/graphs/validate?batch_size=zero", mlp_document, format="json")
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("batch_size:")


def test_catalog_and_validation_need_a_login(anonymous_client, mlp_document):
    assert anonymous_client.get("/api/ops").status_code == 401
    assert anonymous_client.post("/api/graphs/validate", mlp_document, format="json").status_code == 401
