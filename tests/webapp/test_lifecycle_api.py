"""The lifecycle of runs, projects and datasets over REST: archive (hidden from the lists, shown with
``archived=true`` or ``all``, brought back by unarchiving), delete with the storage it frees (the
usage on ``GET /api/auth/me/`` goes down), what a delete refuses and names (a running run, another
project's run on a project's dataset), a published model that keeps serving after its run is
deleted; and draft graph versions (saved with errors, refused by runs, promoted when valid)."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

from engine import zoo
from engine.inference import Predictor
from tests.webapp.helpers import error_of
from webapp.datasets.services import dataset_create_builtin
from webapp.projects.services import project_create
from webapp.runs.models import Checkpoint, MetricPoint, Run

pytestmark = pytest.mark.django_db


def make_run(project, graph_version, dataset, **fields) -> Run:
    return Run.objects.create(project=project, graph_version=graph_version, dataset=dataset, **fields)


def add_checkpoint(run: Run, root: Path, size: int = 5000) -> Path:
    """A checkpoint folder of ``size`` bytes under the artifact store, counted as the worker counts it."""
    folder = Path(root) / "runs" / str(run.pk) / "epoch-0001"
    folder.mkdir(parents=True)
    (folder / "weights.npz").write_bytes(b"\0" * size)
    Checkpoint.objects.create(run=run, epoch=1, step=10, path=str(folder), size_bytes=size)
    return folder


def listed_ids(client, url: str, archived: str | None = None) -> list[int]:
    body = client.get(url, {"archived": archived} if archived else {}).json()
    return [item["id"] for item in (body["results"] if isinstance(body, dict) else body)]


# -- archive --------------------------------------------------------------------------------------

def test_an_archived_run_is_hidden_from_the_lists_until_asked_for_and_unarchiving_brings_it_back(
        client, project, graph_version, digits):
    kept, archived = make_run(project, graph_version, digits), make_run(project, graph_version, digits)
    response = client.patch(f"/api/runs/{archived.pk}", {"archived": True}, format="json")
    assert response.status_code == 200 and response.json()["archived_at"] is not None
    first_date = response.json()["archived_at"]
    # archiving again keeps the first date
    again = client.patch(f"/api/runs/{archived.pk}", {"archived": True}, format="json")
    assert again.json()["archived_at"] == first_date
    for url in ("/api/runs", f"/api/projects/{project.pk}/runs"):
        assert listed_ids(client, url) == [kept.pk]
        assert listed_ids(client, url, "true") == [archived.pk]
        assert sorted(listed_ids(client, url, "all")) == sorted([kept.pk, archived.pk])
    assert client.get(f"/api/runs/{archived.pk}").status_code == 200  # still there by its id
    assert client.patch(f"/api/runs/{archived.pk}", {"archived": False}, format="json").json()["archived_at"] is None
    assert sorted(listed_ids(client, "/api/runs")) == sorted([kept.pk, archived.pk])


def test_an_unknown_archived_filter_is_a_400_naming_it(client):
    for url in ("/api/runs", "/api/projects", "/api/datasets"):
        response = client.get(url, {"archived": "maybe"})
        assert response.status_code == 400
        error = error_of(response)
        assert "'archived' must be one of false, true, all" in error["message"]
        assert error["details"] == {"archived": ["unknown choice"]}


def test_an_archived_project_is_hidden_from_the_list_and_keeps_its_versions_and_runs(client, project, graph_version,
                                                                                      digits):
    run = make_run(project, graph_version, digits, state=Run.State.SUCCEEDED)
    other = client.post("/api/projects", {"name": "Other"}, format="json").json()
    response = client.patch(f"/api/projects/{project.pk}", {"archived": True}, format="json")
    assert response.status_code == 200 and response.json()["archived_at"] is not None
    assert listed_ids(client, "/api/projects") == [other["id"]]
    assert listed_ids(client, "/api/projects", "true") == [project.pk]
    assert client.get(f"/api/projects/{project.pk}/versions").json()["count"] == 1
    assert client.get(f"/api/runs/{run.pk}").status_code == 200
    assert client.patch(f"/api/projects/{project.pk}", {"archived": False}, format="json").status_code == 200
    assert sorted(listed_ids(client, "/api/projects")) == sorted([project.pk, other["id"]])


def test_an_archived_dataset_is_hidden_from_the_list_and_its_runs_keep_it(client, project, graph_version, digits):
    run = make_run(project, graph_version, digits, state=Run.State.SUCCEEDED)
    response = client.patch(f"/api/datasets/{digits.pk}", {"archived": True}, format="json")
    assert response.status_code == 200 and response.json()["archived_at"] is not None
    assert listed_ids(client, "/api/datasets") == []
    assert listed_ids(client, "/api/datasets", "true") == [digits.pk]
    assert client.get(f"/api/runs/{run.pk}").json()["dataset_name"] == digits.name
    # adding the same built-in again makes a record the list shows, rather than answering the archived one
    added = client.post("/api/datasets", {"builtin": "digits"}, format="json")
    assert added.status_code == 201 and added.json()["id"] != digits.pk
    assert client.patch(f"/api/datasets/{digits.pk}", {"archived": False}, format="json").json()["archived_at"] is None
    assert sorted(listed_ids(client, "/api/datasets")) == sorted([digits.pk, added.json()["id"]])


# -- delete ---------------------------------------------------------------------------------------

def test_deleting_a_run_frees_its_checkpoints_and_the_usage_goes_down(client, project, graph_version, digits,
                                                                        settings, django_capture_on_commit_callbacks):
    run = make_run(project, graph_version, digits, state=Run.State.SUCCEEDED)
    folder = add_checkpoint(run, settings.ARTIFACT_ROOT, size=5000)
    MetricPoint.objects.create(run=run, sequence=1, name="loss", step=1, epoch=0.1, value=1.0, wall_time=0.0)
    before = client.get("/api/auth/me/").json()["usage"]
    assert before["storage"]["checkpoints"] == 5000
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/runs/{run.pk}").status_code == 204
    after = client.get("/api/auth/me/").json()["usage"]
    assert after["storage"]["checkpoints"] == 0
    assert after["storage_bytes"] == before["storage_bytes"] - 5000
    assert not folder.exists() and not (Path(settings.ARTIFACT_ROOT) / "runs" / str(run.pk)).exists()
    assert not MetricPoint.objects.filter(run_id=run.pk).exists()


@pytest.mark.parametrize("state", [Run.State.RUNNING, Run.State.QUEUED])
def test_a_running_run_cannot_be_deleted_and_the_error_says_cancel_first(client, project, graph_version, digits,
                                                                         state):
    run = make_run(project, graph_version, digits, state=state)
    response = client.delete(f"/api/runs/{run.pk}")
    assert response.status_code == 409
    assert error_of(response)["message"] == f"run {run.pk} is {state}; cancel it before deleting it"
    assert Run.objects.filter(pk=run.pk).exists()


def test_deleting_a_project_frees_its_runs_and_datasets_files(client, user, project, graph_version, settings,
                                                              django_capture_on_commit_callbacks):
    dataset = dataset_create_builtin(owner=user, builtin="digits", project=project)
    run = make_run(project, graph_version, dataset, state=Run.State.SUCCEEDED)
    checkpoint = add_checkpoint(run, settings.ARTIFACT_ROOT, size=7000)
    dataset_folder = Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk)
    dataset_folder.mkdir(parents=True, exist_ok=True)  # as a converted store would be
    assert client.get("/api/auth/me/").json()["usage"]["storage_bytes"] == 7000 + dataset.size_bytes
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/projects/{project.pk}").status_code == 204
    assert client.get("/api/auth/me/").json()["usage"]["storage_bytes"] == 0
    assert not checkpoint.exists() and not dataset_folder.exists()
    assert client.get(f"/api/datasets/{dataset.pk}").status_code == 404


def test_a_project_whose_dataset_another_projects_run_uses_cannot_be_deleted_and_the_refusal_names_the_run(
        client, user, project, graph_version):
    dataset = dataset_create_builtin(owner=user, builtin="digits", project=project)
    elsewhere = project_create(owner=user, name="Elsewhere")
    from webapp.projects.converter import spec_to_editor_document  # noqa: PLC0415
    from webapp.projects.services import graph_version_create  # noqa: PLC0415

    version = graph_version_create(project=elsewhere, editor_document=spec_to_editor_document(zoo.load("mlp")),
                                   created_by=user)
    borrower = make_run(elsewhere, version, dataset, state=Run.State.SUCCEEDED)
    response = client.delete(f"/api/projects/{project.pk}")
    assert response.status_code == 409
    error = error_of(response)
    assert error["message"] == (f"project 'Digits' cannot be deleted: its datasets are used by run {borrower.pk} of "
                                f"project 'Elsewhere' (dataset '{dataset.name}'); delete those runs first")
    assert error["details"] == {"runs": [borrower.pk]}


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint folder of the zoo MLP trained one epoch on digits (as the worker writes them)."""
    from engine.data import load  # noqa: PLC0415
    from engine.trainer import TrainConfig, Trainer  # noqa: PLC0415

    folder = tmp_path_factory.mktemp("digits") / "epoch-0001"
    trainer = Trainer(zoo.load("mlp"), load("digits", seed=0),
                      config=TrainConfig.from_dict({"epochs": 1, "batch_size": 64, "seed": 0}))
    trainer.run()
    trainer.save_checkpoint(folder)
    return folder


def test_a_published_model_keeps_serving_after_its_run_is_deleted(client, project, graph_version, digits, settings,
                                                                  trained_checkpoint,
                                                                  django_capture_on_commit_callbacks):
    import shutil  # noqa: PLC0415

    from webapp.serving import runtime  # noqa: PLC0415

    runtime.reset_runtime()
    run = make_run(project, graph_version, digits, state=Run.State.SUCCEEDED)
    folder = Path(settings.ARTIFACT_ROOT) / "runs" / str(run.pk) / "epoch-0001"
    shutil.copytree(trained_checkpoint, folder)
    Checkpoint.objects.create(run=run, epoch=1, step=10, path=str(folder), size_bytes=1)
    try:
        response = client.post(f"/api/runs/{run.pk}/publish", {"endpoint": "kept-digits"}, format="json")
        assert response.status_code == 201, response.content
        assert client.get(f"/api/runs/{run.pk}").json()["published"] == [{"endpoint": "kept-digits", "number": 1}]
        with django_capture_on_commit_callbacks(execute=True):
            assert client.delete(f"/api/runs/{run.pk}").status_code == 204
        assert not folder.exists()  # the run's checkpoint is gone ...
        version = client.get("/api/v1/endpoints/kept-digits/versions/1").json()
        assert version["state"] == "ready" and version["source"]["run"] == run.pk
        endpoint_id = client.get("/api/v1/endpoints/kept-digits").json()["id"]
        served = Path(settings.ARTIFACT_ROOT) / "endpoints" / str(endpoint_id) / "v1"
        rows = numpy.zeros((2, 64), dtype=numpy.float32)
        assert len(Predictor.load(served).predict(rows)["classes"]) == 2  # ... the version's own copy serves
    finally:
        runtime.reset_runtime()


# -- drafts ---------------------------------------------------------------------------------------

def broken(document: dict) -> dict:
    """The document with its first dense layer's units set to a value the engine refuses."""
    document = {**document, "nodes": [dict(node) for node in document["nodes"]]}
    dense = next(node for node in document["nodes"] if node["type"] == "dense")
    dense["data"] = {**dense["data"], "params": {**dense["data"].get("params", {}), "units": 0}}
    return document


def test_a_graph_with_errors_saves_as_a_draft_that_runs_refuse_and_promotes_once_fixed(client, project, mlp_document,
                                                                                         digits, enqueued):
    bad = broken(mlp_document)
    refused = client.post(f"/api/projects/{project.pk}/versions", {"editor_document": bad}, format="json")
    assert refused.status_code == 400 and error_of(refused)["code"] == "invalid_graph"
    draft = client.post(f"/api/projects/{project.pk}/versions", {"editor_document": bad, "draft": True,
                                                                   "message": "half done"}, format="json")
    assert draft.status_code == 201, draft.content
    assert draft.json()["draft"] is True and draft.json()["number"] == 1
    listed = client.get(f"/api/projects/{project.pk}/versions").json()["results"]
    assert [(version["number"], version["draft"]) for version in listed] == [(1, True)]
    run = client.post(f"/api/projects/{project.pk}/runs", {"graph_version": draft.json()["id"], "dataset": digits.pk},
                      format="json")
    assert run.status_code == 400
    error = error_of(run)
    assert error["code"] == "draft_graph_version"
    assert error["message"].startswith("graph version 1 of 'main' is a draft (work in progress) and cannot be trained")
    assert error["details"] == {"graph_version": ["a draft"]}
    script = client.get(f"/api/projects/{project.pk}/versions/{draft.json()['id']}/script", {"dataset": digits.pk})
    assert script.status_code == 400 and error_of(script)["code"] == "draft_graph_version"
    # still invalid: promoting is the same 400 as saving
    promote = client.post(f"/api/projects/{project.pk}/versions/{draft.json()['id']}/promote")
    assert promote.status_code == 400 and error_of(promote)["code"] == "invalid_graph"
    # a draft of a valid graph is promoted as the next ordinary version, which trains
    valid_draft = client.post(f"/api/projects/{project.pk}/versions", {"editor_document": mlp_document, "draft": True},
                              format="json").json()
    assert valid_draft["draft"] is True and valid_draft["summary"]["total_parameters"] > 0
    promoted = client.post(f"/api/projects/{project.pk}/versions/{valid_draft['id']}/promote")
    assert promoted.status_code == 201
    assert (promoted.json()["number"], promoted.json()["draft"]) == (3, False)
    assert promoted.json()["message"] == "promoted from draft v2"
    assert client.post(f"/api/projects/{project.pk}/versions/{promoted.json()['id']}/promote").status_code == 409
    started = client.post(f"/api/projects/{project.pk}/runs", {"graph_version": promoted.json()["id"],
                                                               "dataset": digits.pk}, format="json")
    assert started.status_code == 201, started.content
