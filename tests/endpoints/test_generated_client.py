"""A Python client generated from the OpenAPI document (openapi-python-client) drives the app: log in
for a token, create a project, a graph version, a dataset and a run, publish the run, make a key and
predict. Every call goes through the generated code and the whole Django app (over WSGI, in process,
as the other in-process API tests do)."""

from __future__ import annotations

import importlib
import io
import os
import shutil
import subprocess
import sys

import httpx
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command

from engine import zoo
from tests.endpoints.conftest import DIGITS_EPOCHS

pytestmark = pytest.mark.django_db
PACKAGE = "netforge_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory, django_db_blocker):
    """The client package, generated from the document the server makes now."""
    folder = tmp_path_factory.mktemp("client")
    document = folder / "openapi.json"
    with django_db_blocker.unblock():
        call_command("spectacular", "--format", "openapi-json", "--file", str(document), stderr=io.StringIO())
    # the generator formats its output with ruff, which lives beside this interpreter
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document),
                             "--output-path", str(folder / PACKAGE), "--meta", "none"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_every_generated_module_imports(generated):
    import pkgutil  # noqa: PLC0415 - only this test walks the package

    failed = {}
    modules = list(pkgutil.walk_packages(generated.__path__, f"{PACKAGE}."))
    for module in modules:
        try:
            importlib.import_module(module.name)
        except Exception as error:  # noqa: BLE001 - every failure is reported, with its module
            failed[module.name] = repr(error)
    assert len(modules) > 100 and not failed, failed


def test_the_generated_client_logs_in_creates_trains_publishes_and_predicts(generated, user, serving_settings,
                                                                           trained_digits, tmp_path):
    from webapp.runs.models import Checkpoint, Run  # noqa: PLC0415

    models = importlib.import_module(f"{PACKAGE}.models")
    auth = importlib.import_module(f"{PACKAGE}.api.auth.auth_token_create")
    projects = importlib.import_module(f"{PACKAGE}.api.projects.projects_create")
    versions = importlib.import_module(f"{PACKAGE}.api.projects.projects_versions_create")
    datasets = importlib.import_module(f"{PACKAGE}.api.datasets.datasets_create")
    runs = importlib.import_module(f"{PACKAGE}.api.projects.projects_runs_create")
    publish = importlib.import_module(f"{PACKAGE}.api.runs.runs_publish_create")
    keys = importlib.import_module(f"{PACKAGE}.api.v1.v1_endpoints_keys_create")
    predict = importlib.import_module(f"{PACKAGE}.api.predictions.endpoint_predict")

    app = {"base_url": "http://localhost", "httpx_args": {"transport": httpx.WSGITransport(app=WSGIHandler())}}
    anonymous = generated.Client(**app)
    token = auth.sync_detailed(client=anonymous, body=models.CredentialsRequest(username="alice",
                                                                                 password="alice-password"))
    assert token.status_code == 200, token.content
    owner = generated.AuthenticatedClient(**app, token=token.parsed.token, prefix="Token")

    project = projects.sync(client=owner, body=models.ProjectRequest(name="Digits from a generated client"))
    from webapp.projects.converter import spec_to_editor_document  # noqa: PLC0415

    version = versions.sync(project.id, client=owner, body=models.GraphVersionCreateRequest(
        editor_document=spec_to_editor_document(zoo.load("mlp"))))
    dataset = datasets.sync(client=owner, body=models.BuiltinDatasetCreateRequest(builtin="digits"))
    created = runs.sync_detailed(project.id, client=owner, body=models.RunCreateRequest(
        graph_version=version.id, dataset=dataset.id, hyperparameters={"epochs": DIGITS_EPOCHS}))
    assert created.status_code == 201, created.content
    assert getattr(created.parsed.state, "value", created.parsed.state) == "queued"

    # The worker's part (training, tested with real workers in tests/platform): the run ends succeeded
    # with its checkpoint, as the worker leaves it.
    run = Run.objects.get(pk=created.parsed.id)
    folder = tmp_path / "runs" / str(run.pk) / f"epoch-{DIGITS_EPOCHS:04d}"
    shutil.copytree(trained_digits, folder)
    Checkpoint.objects.create(run=run, epoch=DIGITS_EPOCHS, step=1, path=str(folder))
    Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED, epochs_completed=DIGITS_EPOCHS)

    published = publish.sync_detailed(run.pk, client=owner, body=models.RunPublishRequest(endpoint="digits"))
    assert published.status_code == 201, published.content
    assert published.parsed.number == 1
    key = keys.sync_detailed("digits", client=owner, body=models.ApiKeyCreateRequest(name="generated client"))
    assert key.status_code == 201, key.content

    caller = generated.AuthenticatedClient(**app, token=key.parsed.key)  # Bearer, the endpoint's key
    from engine.data import load  # noqa: PLC0415

    rows = load("digits", seed=0).arrays["x"][:3].tolist()
    answer = predict.sync_detailed("digits", client=caller, body=models.PredictRequest(instances=rows))
    assert answer.status_code == 200, answer.content
    assert answer.parsed.endpoint == "digits" and answer.parsed.version == 1
    assert len(answer.parsed.predictions) == 3
    assert all(0 <= prediction.class_ <= 9 for prediction in answer.parsed.predictions)
