"""Writes of runs: create (and queue), resume (and queue), rename/tag, delete.

A run is queued with ``transaction.on_commit``, so the worker never looks for a run that is not
committed yet; its message is sent by task name (``webapp.runs.dispatch``). Every change of a
run's state is ``webapp.runs.lifecycle``'s: these services only call it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from engine import metrics as engine_metrics
from engine.errors import EngineError
from engine.graph import analyze
from engine.optimizers import make_optimizer
from engine.trainer import TrainConfig, bind_inputs
from webapp.core.exceptions import Conflict, InvalidInput
from webapp.datasets.models import Dataset
from webapp.datasets.selectors import dataset_array_stand_ins
from webapp.projects.models import GraphVersion, Project
from webapp.runs import dispatch, lifecycle
from webapp.runs.models import Run

log = logging.getLogger(__name__)

DEVICES = ("cpu", "gpu")
MAX_WORKERS = 64
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_NOTES_LENGTH = 20_000
# TrainConfig fields the platform sets itself: the device comes from the run's own field and
# checkpoints go to the artifact store.
PLATFORM_OPTIONS = {
    "device": "set the run's 'device' field instead",
    "checkpoint_dir": "checkpoints are written by the platform, every epoch",
}
EARLY_STOPPING_OPTIONS = ("monitor", "patience", "min_delta", "mode", "restore_best")
# Distributed training (workers.distributed): how the run's workers combine their gradients.
STRATEGIES = ("allreduce", "ps")
ACTIVE_STATES = (Run.State.QUEUED, Run.State.RUNNING)


# -- checks ---------------------------------------------------------------------------------------------

def validate_hyperparameters(hyperparameters) -> dict:
    """The training options as the worker will use them (``TrainConfig`` fields with their
    defaults filled in, less the platform's own), or ``InvalidInput`` naming each bad field."""
    if not isinstance(hyperparameters, dict):
        raise InvalidInput("hyperparameters must be an object of training options",
                           details={"hyperparameters": ["not an object"]})
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    errors: dict[str, str] = {}
    hyperparameters = dict(hyperparameters)
    strategy = hyperparameters.pop("strategy", None)
    if strategy is not None and strategy not in STRATEGIES:
        errors["strategy"] = f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
    staleness = hyperparameters.pop("staleness", None)
    if staleness is not None:
        if isinstance(staleness, bool) or not isinstance(staleness, int) or staleness < 0:
            errors["staleness"] = f"staleness must be an integer >= 0 (steps), got {staleness!r}"
        elif strategy != "ps":
            errors["staleness"] = "a staleness bound makes the parameter server asynchronous: it needs strategy 'ps'"
    hyperparameters.pop("workers", None)  # the run's own field (run_create)
    for key, value in hyperparameters.items():
        if key in PLATFORM_OPTIONS:
            errors[key] = f"'{key}' is not a training option here: {PLATFORM_OPTIONS[key]}"
        elif key not in fields:
            known = ", ".join(sorted(set(fields) - set(PLATFORM_OPTIONS) | {"strategy", "staleness", "workers"}))
            errors[key] = f"unknown training option '{key}'; the options are {known}"
        else:
            problem = _option_problem(key, value, fields[key])
            if problem:
                errors[key] = problem
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"hyperparameters.{first}: {errors[first]}",
                           details={f"hyperparameters.{key}": [message] for key, message in errors.items()})
    config = TrainConfig.from_dict(dict(hyperparameters))
    cleaned = {key: value for key, value in config.to_dict().items() if key not in PLATFORM_OPTIONS}
    if strategy is not None:
        cleaned["strategy"] = strategy
    if staleness is not None:
        cleaned["staleness"] = staleness
    return cleaned


def _option_problem(key: str, value, field: dataclasses.Field) -> str | None:
    """What is wrong with one training option, checked alone, or None."""
    default = field.default if field.default is not dataclasses.MISSING else None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            return f"{key} must be true or false, got {value!r}"
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{key} must be an integer, got {value!r}"
        if key == "seed" and value < 0:
            return f"seed must be >= 0, got {value}"
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{key} must be a number, got {value!r}"
    elif isinstance(default, str) and not isinstance(value, str):
        return f"{key} must be a string, got {value!r}"
    try:
        TrainConfig.from_dict({key: value})
        if key == "optimizer":
            make_optimizer(value)
        elif key == "metrics" and value is not None:
            if not isinstance(value, list):
                return f"metrics must be a list of metric names or objects, got {value!r}"
            for metric in value:
                engine_metrics.get(metric)
        elif key == "early_stopping" and value is not None:
            return _early_stopping_problem(value)
    except (EngineError, TypeError, ValueError) as error:
        return str(error)
    return None


def _early_stopping_problem(value) -> str | None:
    if not isinstance(value, dict):
        return f"early_stopping must be an object like {{\"monitor\": \"val_loss\", \"patience\": 5}}, got {value!r}"
    unknown = sorted(set(value) - set(EARLY_STOPPING_OPTIONS))
    if unknown:
        return (f"early_stopping has unknown option(s) {', '.join(unknown)}; "
                f"options: {', '.join(EARLY_STOPPING_OPTIONS)}")
    patience = value.get("patience", 5)
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        return f"early_stopping.patience must be a positive integer, got {patience!r}"
    if value.get("mode", "min") not in ("min", "max"):
        return f"early_stopping.mode must be 'min' or 'max', got {value['mode']!r}"
    min_delta = value.get("min_delta", 0.0)
    if isinstance(min_delta, bool) or not isinstance(min_delta, int | float) or min_delta < 0:
        return f"early_stopping.min_delta must be a number >= 0, got {min_delta!r}"
    if not isinstance(value.get("monitor", "val_loss"), str):
        return f"early_stopping.monitor must be a metric name such as 'val_loss', got {value['monitor']!r}"
    if not isinstance(value.get("restore_best", True), bool):
        return f"early_stopping.restore_best must be true or false, got {value['restore_best']!r}"
    return None


def check_inputs_can_be_fed(*, graph_version: GraphVersion, dataset: Dataset) -> dict[str, str]:
    """Which dataset array feeds each graph input (the trainer's own binding rule, on the stored
    schema), or ``InvalidInput`` saying which input has no array or a different shape."""
    analysis = analyze(graph_version.spec)
    try:
        return bind_inputs(analysis.inputs, dataset_array_stand_ins(dataset), dataset_name=dataset.name)
    except EngineError as error:
        raise InvalidInput(f"graph version {graph_version.number} cannot train on dataset '{dataset.name}': {error}",
                           details={"dataset": [str(error)]}) from None


def clean_tags(tags) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidInput("tags must be a list of strings", details={"tags": ["not a list of strings"]})
    cleaned = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    if len(cleaned) > MAX_TAGS or any(len(tag) > MAX_TAG_LENGTH for tag in cleaned):
        raise InvalidInput(f"at most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} characters",
                           details={"tags": ["too many or too long"]})
    unprintable = next((tag for tag in cleaned if not tag.isprintable()), None)
    if unprintable is not None:
        raise InvalidInput(f"tag {unprintable!r} has a line break or another control character; tags are one line",
                           details={"tags": ["control character"]})
    return cleaned


# -- writes ---------------------------------------------------------------------------------------------

@transaction.atomic
def run_create(*, project: Project, graph_version: GraphVersion, dataset: Dataset, created_by,
               hyperparameters: dict | None = None, device: str = "cpu", workers: int = 1, name: str = "",
               tags: list[str] | None = None, notes: str = "") -> Run:
    """Save a queued run of ``graph_version`` on ``dataset`` and queue its training once the
    transaction commits. Bad options, a graph version of another project, another user's dataset,
    or graph inputs the dataset cannot feed are a 400 naming the field."""
    if graph_version.project_id != project.pk:
        raise InvalidInput(f"graph version {graph_version.pk} is not a version of project '{project.name}'",
                           details={"graph_version": ["not in this project"]})
    if dataset.owner_id != project.owner_id:
        raise InvalidInput(f"unknown dataset {dataset.pk}", details={"dataset": ["no such dataset"]})
    if device not in DEVICES:
        raise InvalidInput(f"device must be one of {', '.join(DEVICES)}, got {device!r}",
                           details={"device": ["unknown"]})
    if isinstance(hyperparameters, dict) and "workers" in hyperparameters:  # also accepted among the options
        if workers not in (1, hyperparameters["workers"]):
            raise InvalidInput(f"workers is {workers} but hyperparameters.workers is {hyperparameters['workers']!r}",
                               details={"workers": ["differs from hyperparameters.workers"]})
        workers = hyperparameters["workers"]
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InvalidInput(f"workers must be an integer from 1 to {MAX_WORKERS}, got {workers!r}",
                           details={"workers": ["out of range"]})
    config = validate_hyperparameters(hyperparameters or {})
    monitor = (config.get("early_stopping") or {}).get("monitor", "val_loss")
    if workers > 1 and not (monitor.startswith("val_") or monitor == "loss"):
        # Training metrics are each worker's own shard's: the workers would stop at different epochs.
        raise InvalidInput(f"early stopping of a run with {workers} workers must monitor the loss or a validation "
                           f"metric (val_...), not the training metric '{monitor}'",
                           details={"hyperparameters.early_stopping": ["training metric in a distributed run"]})
    check_inputs_can_be_fed(graph_version=graph_version, dataset=dataset)
    run = Run.objects.create(
        project=project, graph_version=graph_version, dataset=dataset, created_by=created_by, name=name,
        hyperparameters=config, device=device, workers=workers,  # born queued (lifecycle)
        tags=clean_tags(tags or []), notes=notes,
    )
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    try:
        dispatch.enqueue_training(run_id)
    except Exception:  # enqueue_training marks the run failed for a broker it cannot reach; anything else:
        log.exception("run %s: could not be queued", run_id)
        lifecycle.run_fail(run_id=run_id, error="could not queue the run (see the server log); start it again")


@transaction.atomic
def run_resume(*, run: Run) -> Run:
    """Queue a failed or cancelled run again (``lifecycle.run_resume``; other states are a 409) and
    send its message once the transaction commits."""
    run = lifecycle.run_resume(run=run)
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


@transaction.atomic
def run_update(*, run: Run, name: str | None = None, tags: list[str] | None = None, notes: str | None = None) -> Run:
    fields = []
    if name is not None:
        run.name = name
        fields.append("name")
    if tags is not None:
        run.tags = clean_tags(tags)
        fields.append("tags")
    if notes is not None:
        run.notes = notes
        fields.append("notes")
    if fields:
        run.save(update_fields=fields)
    return run


@transaction.atomic
def run_evaluation_save(*, run_id: int, evaluation: dict) -> bool:
    """Store what the trained model does on held-out data (``workers.evaluation``) on a run that
    is still running, just before the worker records its outcome; True when it was stored."""
    return bool(Run.objects.filter(pk=run_id, state=Run.State.RUNNING).update(evaluation=evaluation))


@transaction.atomic
def run_delete(*, run: Run) -> None:
    """Delete a finished run with its points, checkpoints and their files. A queued or running
    run is a 409: cancel it first."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.state in ACTIVE_STATES:
        raise Conflict(f"run {run.pk} is {run.state}; cancel it before deleting it", details={"state": run.state})
    folders = [Path(path) for path in run.checkpoints.values_list("path", flat=True)]
    folders.append(Path(settings.ARTIFACT_ROOT) / "runs" / str(run.pk))
    run.delete()
    transaction.on_commit(lambda: _remove_artifacts(folders))


def _remove_artifacts(folders: list[Path]) -> None:
    root = Path(settings.ARTIFACT_ROOT).resolve()
    for folder in folders:
        folder = folder.resolve()
        if folder.is_relative_to(root) and folder != root and folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
