"""GET /api/ops and POST /api/graphs/validate."""

from __future__ import annotations

import pytest

from engine import zoo
from tests.webapp.helpers import error_of
from webapp.datasets.models import Dataset
from webapp.datasets.services import dataset_create_builtin
from webapp.projects.converter import EDITOR_FORMAT, spec_to_editor_document
from webapp.projects.services import graph_version_create, project_create

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


# -- validation against the dataset the graph will train on (?dataset=<id>) ------------------------------

def _node(document: dict, node_id: str) -> dict:
    return next(node for node in document["nodes"] if node["id"] == node_id)


def test_an_input_the_dataset_cannot_feed_is_an_error_on_its_node_with_its_fixes(client, digits):
    small_cnn = spec_to_editor_document(zoo.load("small_cnn"))  # x is 1x8x8; the digits are rows of 64
    assert client.post("/api/graphs/validate", small_cnn, format="json").json()["ok"]
    report = client.post(f"/api/graphs/validate?dataset={digits.pk}", small_cnn, format="json").json()
    assert not report["ok"] and report["error_count"] == 1
    (error,) = report["nodes"]["x"]["errors"]
    assert error["field"] == "shape" and error["code"] == "dataset_shape_mismatch"
    assert "expects per-sample shape [1, 8, 8], but dataset array 'x' has [64]" in error["message"]
    assert error["fix"] == {"kind": "insert_reshape", "shape": [1, 8, 8], "input_shape": [64]}
    assert error["fixes"][1] == {"kind": "set_view", "dataset": digits.pk,
                                 "view": {"kind": "image", "shape": [1, 8, 8], "layout": "chw"}}

    # The set_view fix, applied as the editor does (PATCH of the dataset), makes the graph fit.
    assert client.patch(f"/api/datasets/{digits.pk}", {"view": error["fixes"][1]["view"]},
                        format="json").status_code == 200
    assert client.post(f"/api/graphs/validate?dataset={digits.pk}", small_cnn, format="json").json()["ok"]


def test_the_insert_reshape_fix_makes_the_graph_fit(client, digits):
    document = spec_to_editor_document(zoo.load("small_cnn"))
    consumers = [edge for edge in document["edges"] if edge["source"] == "x"]
    _node(document, "x")["data"]["shape"] = [64]
    document["nodes"].append({"id": "reshape1", "type": "reshape", "position": {"x": 0, "y": 0},
                              "data": {"params": {"shape": [1, 8, 8]}}})
    for edge in consumers:
        edge["source"] = "reshape1"
    document["edges"].append({"id": "x-reshape1", "source": "x", "sourceHandle": "out",
                              "target": "reshape1", "targetHandle": "x"})
    report = client.post(f"/api/graphs/validate?dataset={digits.pk}", document, format="json").json()
    assert report["ok"], report["nodes"]["x"]["errors"]


def test_logits_that_do_not_fit_the_trained_datasets_classes_are_flagged_with_the_fix(client, mlp_document, digits):
    _node(mlp_document, "logits")["data"]["params"]["units"] = 7  # the labels input is bound to nothing itself
    assert client.post("/api/graphs/validate", mlp_document, format="json").json()["ok"]
    report = client.post(f"/api/graphs/validate?dataset={digits.pk}", mlp_document, format="json").json()
    assert report["error_count"] == 1
    (error,) = report["nodes"]["logits"]["errors"]
    assert error["code"] == "class_count_mismatch" and error["field"] == "params.units"
    assert error["fix"] == {"kind": "set_param", "param": "units", "value": 10}


def test_a_regression_dataset_on_a_classification_loss_is_an_error_on_the_loss(client, user, mlp_document):
    sine = dataset_create_builtin(owner=user, builtin="sine")
    _node(mlp_document, "x")["data"]["shape"] = [1]
    report = client.post(f"/api/graphs/validate?dataset={sine.pk}", mlp_document, format="json").json()
    (loss,) = report["nodes"]["loss"]["errors"]
    assert loss["code"] == "regression_labels" and loss["field"] == "inputs.labels"
    assert "'sine' is a regression dataset" in loss["message"] and "mse" in loss["message"]
    (labels,) = report["nodes"]["y"]["errors"]  # int64 class ids would cut the real targets
    assert labels["code"] == "dataset_dtype_mismatch" and labels["field"] == "dtype"
    assert report["error_count"] == 2 and report["nodes"]["x"]["errors"] == []


def test_every_template_fits_its_recommended_dataset_as_added_for_its_project(client, user):
    for name in zoo.names():
        spec = zoo.load(name)
        metadata = spec["metadata"]
        project = project_create(owner=user, name=name)
        graph_version_create(project=project, editor_document=spec_to_editor_document(spec), created_by=user)
        created = client.post("/api/datasets", {"builtin": metadata["dataset"], "project": project.pk}, format="json")
        assert created.status_code in (200, 201), created.json()
        report = client.post(f"/api/graphs/validate?dataset={created.json()['id']}", spec_to_editor_document(spec),
                             format="json").json()
        assert report["ok"], (name, report["errors"],
                              {n: e["errors"] for n, e in report["nodes"].items() if e["errors"]})


def test_a_dataset_that_is_not_the_users_or_not_a_number_is_refused(client, other_user, mlp_document):
    others = dataset_create_builtin(owner=other_user, builtin="digits")
    assert client.post(f"/api/graphs/validate?dataset={others.pk}", mlp_document, format="json").status_code == 404
    response = client.post("/api/graphs/validate?dataset=digits", mlp_document, format="json")
    assert response.status_code == 400 and error_of(response)["message"].startswith("dataset:")


def test_a_dataset_still_processing_is_a_graph_level_error(client, digits, mlp_document):
    Dataset.objects.filter(pk=digits.pk).update(state=Dataset.State.PROCESSING)
    report = client.post(f"/api/graphs/validate?dataset={digits.pk}", mlp_document, format="json").json()
    assert not report["ok"] and [error["code"] for error in report["errors"]] == ["dataset_not_ready"]


def test_a_flat_input_on_image_data_is_offered_a_reshape_or_the_flat_view(client, user, mlp_document):
    images = dataset_create_builtin(owner=user, builtin="digits", options={"image": True})  # stored 1x8x8
    report = client.post(f"/api/graphs/validate?dataset={images.pk}", mlp_document, format="json").json()
    (error,) = report["nodes"]["x"]["errors"]
    assert error["fixes"] == [{"kind": "insert_reshape", "shape": [64], "input_shape": [1, 8, 8]},
                              {"kind": "set_view", "dataset": images.pk, "view": {"kind": "flat"}}]


def test_an_input_of_another_size_has_no_fix(client, user, mlp_document):
    sine = dataset_create_builtin(owner=user, builtin="sine")  # one feature; the MLP takes 64
    report = client.post(f"/api/graphs/validate?dataset={sine.pk}", mlp_document, format="json").json()
    (error,) = report["nodes"]["x"]["errors"]
    assert error["code"] == "dataset_shape_mismatch" and "fix" not in error
