"""POST /api/projects/<id>/import: an ONNX model becomes a graph version the editor opens (laid
out, valid), its weights stored for a run to start from; a file with nodes the catalog lacks is a
400 naming each node and op type; a file that is not ONNX or too large is refused, nothing saved."""

from __future__ import annotations

import os
from pathlib import Path

import numpy
import onnx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from engine import onnx_export, zoo
from engine.model import Model
from webapp.datasets.selectors import load_engine_dataset
from webapp.projects import imports
from webapp.projects.imported_weights import imports_folder as imported_weights_folder_of
from webapp.projects.models import GraphVersion
from webapp.runs.models import Run
from workers.training import build_trainer

pytestmark = pytest.mark.django_db

LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"


def upload(client, project, content: bytes, name: str = "model.onnx"):
    return client.post(f"/api/projects/{project.pk}/import",
                       {"file": SimpleUploadedFile(name, content, content_type="application/octet-stream")},
                       format="multipart")


def imported_weights_folder(project) -> Path:
    return imported_weights_folder_of(project.pk)


def exported_mlp() -> tuple[bytes, dict]:
    spec = zoo.load("mlp")
    weights = Model(spec, seed=4).state_arrays()
    content = onnx_export.export(spec, weights, {"link": "softmax", "prediction": spec["outputs"]["prediction"]})
    return content, weights


def test_an_onnx_model_becomes_a_laid_out_valid_graph_version_with_its_weights(client, project, settings,
                                                                              django_capture_on_commit_callbacks):
    response = upload(client, project, (LIGHT / "light_squeezenet.onnx").read_bytes(), "squeezenet.onnx")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == 1 and body["message"] == "imported from squeezenet.onnx"
    document, spec = body["editor_document"], body["spec"]
    convs = [node for node in spec["nodes"] if node["op"] == "conv2d"]
    assert len(convs) == 26  # SqueezeNet 1.0's convolutions, none dropped
    positions = {(node["position"]["x"], node["position"]["y"]) for node in document["nodes"]}
    assert len(positions) == len(document["nodes"])  # every node placed apart from the others
    imported = spec["metadata"]["imported"]
    assert imported["file"] == "squeezenet.onnx" and imported["format"] == "onnx"
    weights = Path(settings.ARTIFACT_ROOT) / imported["weights"]
    with numpy.load(weights, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(f"{node['id']}/{name}" for node in convs
                                               for name in ("W", "b"))
    # the editor's validation accepts the document as it is
    check = client.post("/api/graphs/validate?batch_size=1", document, format="json")
    assert check.status_code == 200 and check.json()["ok"], check.json()
    # the weights go with the project
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/projects/{project.pk}").status_code == 204
    assert not weights.exists() and not weights.parent.exists()


def test_unsupported_nodes_are_named_with_their_op_type_and_nothing_is_saved(client, project):
    response = upload(client, project, (LIGHT / "light_shufflenet.onnx").read_bytes(), "shufflenet.onnx")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsupported_onnx"
    assert [problem["op_type"] for problem in error["details"]["unsupported"]] == ["AveragePool"] * 3
    assert ("'shufflenet.onnx' cannot be imported: 3 ONNX node(s) cannot be imported: node 'n14' (AveragePool): "
            "count_include_pad=0 with padding") in error["message"]
    assert not GraphVersion.objects.exists()


def test_a_file_that_is_not_onnx_or_over_the_limit_is_refused(client, project, settings):
    response = upload(client, project, b"GIF89a not a model at all")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_onnx"
    assert "not an ONNX model" in response.json()["error"]["message"]
    settings.ONNX_IMPORT_MAX_BYTES = 1000
    response = upload(client, project, (LIGHT / "light_squeezenet.onnx").read_bytes())
    assert response.status_code == 413
    assert "over the ONNX import limit of 1,000 bytes (NETFORGE_ONNX_IMPORT_MAX_MB)" in \
        response.json()["error"]["message"]
    assert not GraphVersion.objects.exists()


def test_imports_at_once_are_bounded_per_user_and_per_process(client, user, other_user, project, settings):
    # Each import's child may take ONNX_IMPORT_MEMORY_MB: a slot held (as an import in progress holds
    # it) makes the next one a 429 at once rather than another child.
    content = exported_mlp()[0]
    with imports._import_slot(user.pk):
        response = upload(client, project, content)
    assert response.status_code == 429 and "one of your ONNX imports is still running" in \
        response.json()["error"]["message"]
    settings.ONNX_IMPORT_CONCURRENCY = 1
    with imports._import_slot(other_user.pk):
        response = upload(client, project, content)
    assert response.status_code == 429 and "NETFORGE_ONNX_IMPORT_CONCURRENCY" in response.json()["error"]["message"]
    assert not GraphVersion.objects.exists()
    assert upload(client, project, content).status_code == 201  # the slots are given back


def test_imported_weights_count_toward_the_storage_quota_and_a_full_quota_refuses_imports(
        client, project, settings):
    assert upload(client, project, exported_mlp()[0]).status_code == 201
    usage = client.get("/api/auth/me/").json()["usage"]
    stored = sum(path.stat().st_size for path in imported_weights_folder(project).rglob("*.npz"))
    assert usage["storage"]["imported_weights"] == stored > 0
    settings.STORAGE_QUOTA_BYTES = usage["storage_bytes"]
    response = upload(client, project, exported_mlp()[0])
    assert response.status_code == 400 and response.json()["error"]["code"] == "storage_quota"
    assert GraphVersion.objects.count() == 1


def test_only_the_owner_imports_into_a_project(other_client, project):
    response = upload(other_client, project, exported_mlp()[0])
    assert response.status_code == 404


def test_a_run_starts_from_the_imported_weights(client, user, project, digits, enqueued,
                                                django_capture_on_commit_callbacks):
    content, weights = exported_mlp()
    version = upload(client, project, content, "mlp.onnx").json()
    body = {"graph_version": version["id"], "dataset": digits.pk,
            "hyperparameters": {"epochs": 1, "init_from_import": True, "freeze": "fc1"}}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/runs", body, format="json")
    assert response.status_code == 201, response.json()
    run = Run.objects.get(pk=response.json()["id"])
    assert run.parent is None and run.hyperparameters["init_from_import"] is True
    trainer, _ = build_trainer(run, load_engine_dataset(digits), [])
    assert trainer.warm_start.loaded == ["fc1", "fc2", "logits"]
    trainer.run()
    assert trainer.model.params["fc1/W"].tobytes() == weights["fc1/W"].tobytes()  # frozen: bit for bit
    assert not numpy.array_equal(trainer.model.params["fc2/W"], weights["fc2/W"])


def test_init_from_import_needs_a_version_imported_in_this_project(client, user, project, graph_version, digits,
                                                                   other_user, enqueued):
    body = {"graph_version": graph_version.pk, "dataset": digits.pk, "hyperparameters": {"init_from_import": True}}
    response = client.post(f"/api/projects/{project.pk}/runs", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"hyperparameters.init_from_import": [
        "graph version 1 was not imported from ONNX (or its imported weights are gone): it has no weights to start "
        "from"]}
    # a document whose metadata names another project's weights file does not reach them
    imported = upload(client, project, exported_mlp()[0]).json()
    second = client.post("/api/projects", {"name": "Other"}, format="json").json()
    document = imported["editor_document"]
    saved = client.post(f"/api/projects/{second['id']}/versions", {"editor_document": document}, format="json")
    assert saved.status_code == 201, saved.json()
    body = {"graph_version": saved.json()["id"], "dataset": digits.pk, "hyperparameters": {"init_from_import": True}}
    response = client.post(f"/api/projects/{second['id']}/runs", body, format="json")
    assert response.status_code == 400
    assert "hyperparameters.init_from_import" in response.json()["error"]["details"]
