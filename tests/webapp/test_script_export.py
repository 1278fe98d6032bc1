"""A graph version exported as a standalone training script: it runs on its own and trains the
same model the web app would."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

import engine
from engine import zoo
from tests.webapp.helpers import error_of
from tests.webapp.test_datasets_api import upload
from webapp.datasets.selectors import load_engine_dataset
from webapp.datasets.services import dataset_create_builtin
from webapp.projects.converter import spec_to_editor_document
from webapp.projects.script_export import ScriptDataset, training_script
from webapp.projects.services import graph_version_create, project_create
from webapp.runs.models import Run
from webapp.runs.services import validate_hyperparameters
from workers.training import DISTRIBUTED_OPTIONS, build_trainer, final_metrics_of

pytestmark = pytest.mark.django_db

REPOSITORY = Path(__file__).resolve().parents[2]


def script_url(project, version, **query) -> str:
    return f"/api/projects/{project.pk}/versions/{version.pk}/script?" + "&".join(f"{k}={v}" for k, v in query.items())


def run_script(source: str, folder: Path, *arguments: str,
               environment: dict | None = None) -> subprocess.CompletedProcess:
    path = folder / "train.py"
    path.write_text(source)
    environment = {**os.environ, **(environment or {}), "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run([sys.executable, str(path), *arguments], cwd=folder, env=environment, capture_output=True,
                          text=True, timeout=120)


def namespace_of(source: str) -> dict:
    """The script's module-level names, without running main()."""
    namespace = {"__name__": "exported"}
    exec(compile(source, "train.py", "exec"), namespace)  # our own generated code
    return namespace


def test_the_script_trains_the_mlp_on_digits(client, project, graph_version, digits, tmp_path):
    response = client.get(script_url(project, graph_version, dataset=digits.pk, epochs=1, batch_size=64))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/x-python")
    assert response["Content-Disposition"] == 'attachment; filename="digits-main-v1.py"'
    source = response.content.decode()
    assert "data.load_builtin('digits')" in source and '"format": "netforge.graph/1",' in source

    finished = run_script(source, tmp_path, "--out", "trained")
    assert finished.returncode == 0, finished.stderr
    output = finished.stdout
    assert "digits: training on 1438 rows, validating on 359" in output, output
    assert "epoch 1/1" in output and "val_accuracy" in output
    final = dict(line.removeprefix("final ").split(": ") for line in output.splitlines() if line.startswith("final "))
    assert float(final["val_accuracy"]) > 0.5 and float(final["loss"]) > 0
    predictor = engine.load_model(tmp_path / "trained")
    assert predictor.schema["label_names"][:2] == ["0", "1"] and predictor.schema["dataset"] == "digits"


def test_the_hyperparameters_are_a_runs_with_those_given(client, project, graph_version, digits):
    defaults = namespace_of(client.get(script_url(project, graph_version, dataset=digits.pk)).content.decode())
    assert defaults["TRAINING"]["epochs"] == 10 and defaults["TRAINING"]["batch_size"] == 32
    assert defaults["TRAINING"]["optimizer"] == {"name": "adam", "lr": 0.001}
    assert "device" not in defaults["TRAINING"] and "checkpoint_dir" not in defaults["TRAINING"]
    assert defaults["GRAPH"] == graph_version.spec

    chosen = namespace_of(client.get(script_url(project, graph_version, dataset=digits.pk, epochs=3, batch_size=16,
                                                optimizer="sgd", learning_rate=0.05, seed=7)).content.decode())
    assert {key: chosen["TRAINING"][key] for key in ("epochs", "batch_size", "optimizer", "seed")} == {
        "epochs": 3, "batch_size": 16, "optimizer": {"name": "sgd", "lr": 0.05}, "seed": 7}
    rate_only = namespace_of(client.get(script_url(project, graph_version, dataset=digits.pk,
                                                   learning_rate=0.01)).content.decode())
    assert rate_only["TRAINING"]["optimizer"] == {"name": "adam", "lr": 0.01}


def test_an_uploaded_dataset_is_read_from_a_file_named_as_uploaded(client, user, tmp_path):
    rows = ["width,length,kind"] + [f"{1 + i % 5}.0,{2 + (i * 7) % 3}.5,{'small' if i % 2 else 'large'}"
                                    for i in range(40)]
    content = ("\n".join(rows) + "\n").encode()
    dataset = upload(client, "Shapes Table.csv", content, target="kind").json()
    spec = zoo.load("softmax_regression")
    spec["inputs"]["x"]["shape"] = [None, 2]
    spec["nodes"][0]["params"]["units"] = 2
    project = project_create(owner=user, name="Tables & chairs")
    version = graph_version_create(project=project, editor_document=spec_to_editor_document(spec), created_by=user)

    response = client.get(script_url(project, version, dataset=dataset["id"], epochs=2))
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"] == 'attachment; filename="tables-chairs-main-v1.py"'
    source = response.content.decode()
    assert "DATA_FILE = 'Shapes_Table.csv'" in source and "data.load_csv(path, target='kind')" in source
    assert f"GET /api/datasets/{dataset['id']}/file" in source and "python tables-chairs-main-v1.py --data" in source

    (tmp_path / "Shapes_Table.csv").write_bytes(content)  # where the script looks by default
    finished = run_script(source, tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert "epoch 2/2" in finished.stdout and "final val_accuracy: " in finished.stdout
    assert (tmp_path / "tables-chairs-main-v1-model" / "manifest.json").exists()


def test_the_generator_keeps_any_graph_text_intact():
    spec = zoo.load("mlp")
    spec["metadata"] = {"title": "it's '''quoted''' \\ \"twice\"", "notes": "line\nbreak"}
    source = training_script(spec=spec, dataset=ScriptDataset(name='a "dataset" \\', builtin_name="digits",
                                                              options={"image": False}),
                             hyperparameters={"epochs": 1}, title='evil """ title \\')
    ast.parse(source)
    namespace = namespace_of(source)
    assert namespace["GRAPH"] == spec and namespace["TRAINING"] == {"epochs": 1}
    assert "data.load_builtin('digits', image=False)" in source


@pytest.mark.parametrize(("query", "field", "words"), [
    ({}, "dataset", "required"),
    ({"dataset": 987654}, "dataset", "unknown dataset 987654"),
    ({"dataset": "{digits}", "epochs": 0}, "epochs", "greater than or equal to 1"),
    ({"dataset": "{digits}", "optimizer": "adamw2"}, "optimizer", "not a valid choice"),
    ({"dataset": "{digits}", "learning_rate": "fast"}, "learning_rate", "valid number"),
    ({"dataset": "{iris}"}, "dataset", "expects per-sample shape [64]"),
])
def test_bad_queries_are_a_400_naming_the_field(client, user, project, graph_version, digits, query, field, words):
    iris = dataset_create_builtin(owner=user, builtin="iris")
    query = {key: str(value).format(digits=digits.pk, iris=iris.pk) for key, value in query.items()}
    response = client.get(script_url(project, graph_version, **query))
    assert response.status_code == 400
    error = error_of(response)
    assert field in error["details"] and words in error["message"], error


def test_another_users_graph_or_dataset_is_not_theirs(client, other_client, other_user, project, graph_version,
                                                      digits):
    assert other_client.get(script_url(project, graph_version, dataset=digits.pk)).status_code == 404
    theirs = dataset_create_builtin(owner=other_user, builtin="digits")
    response = client.get(script_url(project, graph_version, dataset=theirs.pk))
    assert response.status_code == 400 and error_of(response)["message"] == f"unknown dataset {theirs.pk}"


def test_a_runs_script_has_its_exact_settings_and_reproduces_its_final_metrics(client, user, project, graph_version,
                                                                               digits, tmp_path):
    """The run is trained by the worker's own steps (build_trainer, final_metrics_of) in this process,
    the exported script in a subprocess. The engine is deterministic on NumPy for a seed, but BLAS
    sums in an order that depends on its thread count, so both run on one thread; what is left is
    the script printing four decimals."""
    settings = {"epochs": 2, "batch_size": 48, "optimizer": {"name": "sgd", "lr": 0.05}, "seed": 11,
                "validation_fraction": 0.25}
    run = Run.objects.create(project=project, graph_version=graph_version, dataset=digits, created_by=user,
                             name="tuned", hyperparameters=validate_hyperparameters(settings))
    with threadpool_limits(limits=1):
        trainer, _ = build_trainer(run, load_engine_dataset(digits), [])
        final = final_metrics_of(trainer.run())
    Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED, final_metrics=final)

    response = client.get(f"/api/runs/{run.pk}/script")
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"] == f'attachment; filename="digits-main-v1-run-{run.pk}.py"'
    source = response.content.decode()
    assert f"training options of run {run.pk} (tuned) (seed 11)" in source
    training = namespace_of(source)["TRAINING"]
    assert training == {key: value for key, value in run.hyperparameters.items() if key not in DISTRIBUTED_OPTIONS}
    assert training["seed"] == 11 and training["optimizer"]["lr"] == 0.05 and training["batch_size"] == 48

    one_thread = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    finished = run_script(source, tmp_path, "--out", "trained", environment=one_thread)
    assert finished.returncode == 0, finished.stderr
    printed = {name: float(value) for name, value in (
        line.removeprefix("final ").split(": ") for line in finished.stdout.splitlines() if line.startswith("final "))}
    assert set(printed) >= {"loss", "accuracy", "val_loss", "val_accuracy"}, finished.stdout
    for name, value in printed.items():
        assert value == pytest.approx(final[name], abs=1e-4), (name, finished.stdout, final)
    assert f"after {final['epochs']} epoch(s)" in finished.stdout


def test_a_runs_script_is_its_owners(client, other_client, user, project, graph_version, digits):
    run = Run.objects.create(project=project, graph_version=graph_version, dataset=digits, created_by=user)
    assert other_client.get(f"/api/runs/{run.pk}/script").status_code == 404
    assert client.get("/api/runs/987654/script").status_code == 404
