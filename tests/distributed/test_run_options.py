"""The distributed options of a run's hyperparameters, as the web app checks them (a 400 naming
the field, never a 500), and as the worker strips them before the engine sees the rest."""

from __future__ import annotations

import pytest

from tests.platform.harness import mlp_spec
from webapp.core.exceptions import InvalidInput
from webapp.datasets.services import dataset_create_builtin
from webapp.projects.models import GraphVersion
from webapp.projects.services import project_create
from webapp.runs.services import run_create, validate_hyperparameters
from workers.training import DISTRIBUTED_OPTIONS


def test_strategy_and_staleness_are_kept_beside_the_training_options():
    config = validate_hyperparameters({"epochs": 2, "strategy": "ps", "staleness": 1, "workers": 3})
    assert config["strategy"] == "ps" and config["staleness"] == 1 and config["epochs"] == 2
    assert "workers" not in config  # the run's own field
    assert set(DISTRIBUTED_OPTIONS) == {"strategy", "staleness"}


@pytest.mark.parametrize(("hyperparameters", "field", "message"), [
    ({"strategy": "gossip"}, "strategy", "strategy must be one of allreduce, ps, got 'gossip'"),
    ({"strategy": "allreduce", "staleness": 1}, "staleness", "it needs strategy 'ps'"),
    ({"strategy": "ps", "staleness": -1}, "staleness", "staleness must be an integer >= 0"),
    ({"strategy": "ps", "staleness": True}, "staleness", "staleness must be an integer, got true"),
])
def test_bad_distributed_options_name_the_field(hyperparameters, field, message):
    with pytest.raises(InvalidInput) as raised:
        validate_hyperparameters(hyperparameters)
    assert message in str(raised.value)
    assert f"hyperparameters.{field}" in raised.value.details


def test_early_stopping_of_a_distributed_run_must_not_watch_a_training_metric(django_user_model, db):
    """Each worker's training metrics are its own shard's, so the workers would stop apart."""
    user = django_user_model.objects.create_user(username="distributed", password="x" * 12)
    project = project_create(owner=user, name="distributed")
    version = GraphVersion.objects.create(project=project, number=1, editor_document={}, spec=mlp_spec(2, 2),
                                          created_by=user)
    dataset = dataset_create_builtin(owner=user, builtin="moons", options={})
    options = {"early_stopping": {"monitor": "accuracy"}, "strategy": "allreduce"}
    with pytest.raises(InvalidInput, match="must monitor the loss or a validation metric"):
        run_create(project=project, graph_version=version, dataset=dataset, created_by=user, workers=2,
                   hyperparameters=options)
    run = run_create(project=project, graph_version=version, dataset=dataset, created_by=user, workers=2,
                     hyperparameters={**options, "early_stopping": {"monitor": "val_accuracy"}})
    assert run.workers == 2 and run.hyperparameters["strategy"] == "allreduce"
