"""Fixtures of the endpoint tests: a trained digits model (trained once per session), a succeeded
run that points at it, and a serving runtime that starts empty for every test.

The in-process tests (``test_*_api.py``) call the views through Django's test client, the async
prediction views included; ``test_servers.py`` runs the real uvicorn process, serving REST and gRPC.
The serving package's own tests (``tests/serving``) use these fixtures too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from engine import zoo
from tests.webapp.conftest import client, other_client, other_user, user  # noqa: F401 - the same users and clients

DIGITS_EPOCHS = 2


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory) -> Path:
    """A checkpoint folder of the zoo MLP trained on digits (as the worker writes them)."""
    from engine.data import load  # noqa: PLC0415
    from engine.trainer import TrainConfig, Trainer  # noqa: PLC0415

    folder = tmp_path_factory.mktemp("digits") / "epoch-0002"
    trainer = Trainer(zoo.load("mlp"), load("digits", seed=0),
                      config=TrainConfig.from_dict({"epochs": DIGITS_EPOCHS, "batch_size": 64, "seed": 0}))
    trainer.run()
    trainer.save_checkpoint(folder)
    return folder


@pytest.fixture
def serving_settings(settings, tmp_path):
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.SERVING_REFRESH_SECONDS = 3600.0  # in-process: routes are read again only when invalidated
    return settings


@pytest.fixture(autouse=True)
def fresh_runtime():
    from webapp.serving import runtime  # noqa: PLC0415

    runtime.reset_runtime()
    yield
    runtime.reset_runtime()


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.fixture
def make_run(db, serving_settings, user, trained_digits, tmp_path):  # noqa: F811 - the imported fixture
    """``make_run(state="succeeded")``: a run of the zoo MLP on digits with the trained checkpoint."""
    from webapp.datasets.services import dataset_create_builtin  # noqa: PLC0415
    from webapp.projects.converter import spec_to_editor_document  # noqa: PLC0415
    from webapp.projects.services import graph_version_create, project_create  # noqa: PLC0415
    from webapp.runs.models import Checkpoint, Run  # noqa: PLC0415

    project = project_create(owner=user, name="Digits")
    version = graph_version_create(project=project, editor_document=spec_to_editor_document(zoo.load("mlp")),
                                   created_by=user)
    dataset = dataset_create_builtin(owner=user, builtin="digits")
    counter = {"n": 0}

    def make(state: str = "succeeded", *, checkpoint: bool = True):
        counter["n"] += 1
        run = Run.objects.create(project=project, graph_version=version, dataset=dataset, created_by=user,
                                 state=state, epochs_completed=DIGITS_EPOCHS, final_metrics={"accuracy": 0.9})
        if checkpoint:
            folder = tmp_path / "runs" / str(run.pk) / f"epoch-{DIGITS_EPOCHS:04d}"
            shutil.copytree(trained_digits, folder)
            Checkpoint.objects.create(run=run, epoch=DIGITS_EPOCHS, step=1, path=str(folder))
        return run

    return make


@pytest.fixture
def digits_rows():
    """Raw digits rows (as a caller sends them) and the engine's own predictions for them."""
    from engine.data import load  # noqa: PLC0415

    data = load("digits", seed=0)
    return data.arrays["x"][:16].astype("float64")
