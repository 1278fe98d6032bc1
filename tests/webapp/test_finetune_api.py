"""Fine-tuning over REST: a run started from another run (``init_from_run``) records it as its
parent (the run page's lineage), its graph's weights are checked against the parent's before it is
queued (a mismatch named: node, weight, both shapes), and the worker's own steps start it from the
parent's newest checkpoint with the frozen nodes left bit for bit as they were."""

from __future__ import annotations

import numpy
import pytest

from engine import zoo
from webapp.datasets.selectors import load_engine_dataset
from webapp.projects.converter import spec_to_editor_document
from webapp.projects.services import graph_version_create
from webapp.runs.models import Checkpoint, Run
from workers.training import build_trainer, checkpoint_folder

pytestmark = pytest.mark.django_db


def start_run(client, project, version, dataset, capture, **hyperparameters):
    body = {"graph_version": version.pk, "dataset": dataset.pk, "hyperparameters": {"epochs": 1, **hyperparameters}}
    with capture(execute=True):
        return client.post(f"/api/projects/{project.pk}/runs", body, format="json")


@pytest.fixture
def parent(client, project, graph_version, digits, enqueued, django_capture_on_commit_callbacks):
    """A run trained one epoch by the worker's own steps, with its checkpoint recorded."""
    response = start_run(client, project, graph_version, digits, django_capture_on_commit_callbacks, seed=3)
    run = Run.objects.get(pk=response.json()["id"])
    trainer, _ = build_trainer(run, load_engine_dataset(digits), [])
    trainer.run()
    folder = checkpoint_folder(run.pk, 1)
    trainer.save_checkpoint(folder)
    Checkpoint.objects.create(run=run, epoch=1, step=trainer.step, path=str(folder))
    Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED)
    return run, trainer.model.state_arrays()


def test_a_run_from_another_run_records_its_parent_and_starts_from_its_checkpoint(
        client, project, graph_version, digits, enqueued, django_capture_on_commit_callbacks, parent):
    parent_run, parent_weights = parent
    response = start_run(client, project, graph_version, digits, django_capture_on_commit_callbacks,
                         init_from_run=parent_run.pk, freeze="fc1", lr_multipliers="fc2=0.1", seed=8)
    assert response.status_code == 201, response.json()
    assert response.json()["parent"] == parent_run.pk
    assert response.json()["hyperparameters"]["init_from_run"] == parent_run.pk
    assert client.get(f"/api/runs/{response.json()['id']}").json()["parent"] == parent_run.pk
    child = Run.objects.get(pk=response.json()["id"])
    trainer, _ = build_trainer(child, load_engine_dataset(digits), [])
    assert trainer.warm_start.loaded == ["fc1", "fc2", "logits"] and trainer.frozen_nodes == ["fc1"]
    trainer.run()
    after = trainer.model.state_arrays()
    assert after["fc1/W"].tobytes() == parent_weights["fc1/W"].tobytes()
    assert after["fc1/b"].tobytes() == parent_weights["fc1/b"].tobytes()
    assert not numpy.array_equal(after["logits/W"], parent_weights["logits/W"])


def test_a_parent_whose_weights_do_not_fit_is_refused_naming_node_weight_and_shapes(
        client, user, project, digits, enqueued, django_capture_on_commit_callbacks, parent):
    parent_run, _ = parent
    spec = zoo.load("mlp")
    next(node for node in spec["nodes"] if node["id"] == "fc2")["params"]["units"] = 7
    wider = graph_version_create(project=project, editor_document=spec_to_editor_document(spec), created_by=user)
    response = start_run(client, project, wider, digits, django_capture_on_commit_callbacks,
                         init_from_run=parent_run.pk)
    assert response.status_code == 400
    (message,) = response.json()["error"]["details"]["hyperparameters.init_from_run"]
    assert f"node 'fc2' weight 'W': run {parent_run.pk} has shape (128, 64), this graph (128, 7)" in message
    assert f"node 'logits' weight 'W': run {parent_run.pk} has shape (64, 10), this graph (7, 10)" in message
    # starting the changed nodes fresh is allowed
    response = start_run(client, project, wider, digits, django_capture_on_commit_callbacks,
                         init_from_run=parent_run.pk, init_map="fc2=, logits=")
    assert response.status_code == 201, response.json()


def test_a_parent_must_be_a_run_of_the_project_with_a_checkpoint(
        client, user, project, graph_version, digits, enqueued, django_capture_on_commit_callbacks):
    response = start_run(client, project, graph_version, digits, django_capture_on_commit_callbacks)
    fresh = response.json()["id"]
    response = start_run(client, project, graph_version, digits, django_capture_on_commit_callbacks,
                         init_from_run=fresh)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"hyperparameters.init_from_run": [
        f"run {fresh} has no checkpoint to start from (it has not finished an epoch)"]}
    response = start_run(client, project, graph_version, digits, django_capture_on_commit_callbacks,
                         init_from_run=987654)
    assert response.json()["error"]["details"] == {"hyperparameters.init_from_run": [
        "run 987654 is not a run of project 'Digits'"]}


def test_malformed_fine_tuning_options_are_named(client, project, graph_version, digits, enqueued,
                                                django_capture_on_commit_callbacks):
    response = start_run(client, project, graph_version, digits, django_capture_on_commit_callbacks,
                         lr_multipliers="fc1=-1", init_from="/etc")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "hyperparameters.init_from": ["'init_from' is not a training option here: set from init_from_run or "
                                      "init_from_import: the platform finds the weights"],
        "hyperparameters.lr_multipliers": ["lr_multipliers gives 'fc1' the factor '-1'; a factor must be a number "
                                           ">= 0"],
    }
