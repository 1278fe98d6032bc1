"""Writes of runs: create (and queue), resume (and queue), rename/tag, delete.

A run is queued with ``transaction.on_commit``, so the worker never looks for a run that is not
committed yet; its message is sent by task name (``webapp.runs.dispatch``). Every change of a
run's state is ``webapp.runs.lifecycle``'s: these services only call it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from engine import finetune
from engine.errors import EngineError
from engine.graph import analyze
from engine.registry import FLOAT_DTYPES
from engine.trainer import bind_inputs
from engine.training_options import TrainingOptionsError, check_pipeline_fits, validate_training_options
from webapp.core.exceptions import Conflict, InvalidInput
from webapp.datasets.models import Dataset
from webapp.datasets.selectors import dataset_array_stand_ins
from webapp.projects.imported_weights import imported_weights_path
from webapp.projects.models import GraphVersion, Project
from webapp.runs import budgets, dispatch, lifecycle, queues
from webapp.runs.models import Checkpoint, MetricPoint, Run

log = logging.getLogger(__name__)

DEVICES = ("cpu", "gpu")
MAX_WORKERS = 64
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_NOTES_LENGTH = 20_000
# Training options the platform sets itself: the device comes from the run's own field and
# checkpoints go to the artifact store.
PLATFORM_OPTIONS = {
    "device": "set the run's 'device' field instead",
    "checkpoint_dir": "checkpoints are written by the platform, every epoch",
    "init_from": "set from init_from_run or init_from_import: the platform finds the weights",
}
ACTIVE_STATES = (Run.State.QUEUED, Run.State.RUNNING)


# -- checks ---------------------------------------------------------------------------------------------

def validate_hyperparameters(hyperparameters) -> dict:
    """The training options as the worker will use them (the engine's validator: trainer options
    with their defaults filled in, less the platform's own; strategy and staleness where given), or
    ``InvalidInput`` naming each bad field (``hyperparameters.optimizer.lr``)."""
    if not isinstance(hyperparameters, dict):
        raise InvalidInput("hyperparameters must be an object of training options",
                           details={"hyperparameters": ["not an object"]})
    try:
        cleaned = validate_training_options(hyperparameters, reserved=PLATFORM_OPTIONS)
    except TrainingOptionsError as error:
        first = next(iter(error.errors))
        raise InvalidInput(f"hyperparameters.{first}: {error.errors[first]}",
                           details={f"hyperparameters.{key}": [message] for key, message in error.errors.items()}
                           ) from None
    budgets.check_epochs(cleaned)
    budgets.check_option_numbers(cleaned)
    cleaned.pop("workers", None)  # the run's own field (run_create)
    return {key: value for key, value in cleaned.items() if key not in PLATFORM_OPTIONS}


def check_inputs_can_be_fed(*, graph_version: GraphVersion, dataset: Dataset, config: dict | None = None
                            ) -> dict[str, str]:
    """Which dataset array feeds each graph input (the trainer's own binding rule, on the stored
    schema), or ``InvalidInput`` saying which input has no array or a different shape, or (given the
    run's ``config``) naming an image augmentation or normalization option the inputs cannot take."""
    analysis = analyze(graph_version.spec)
    stand_ins = dataset_array_stand_ins(dataset)
    try:
        binding = bind_inputs(analysis.inputs, stand_ins, dataset_name=dataset.name)
    except EngineError as error:
        raise InvalidInput(f"graph version {graph_version.number} cannot train on dataset '{dataset.name}': {error}",
                           details={"dataset": [str(error)]}) from None
    try:  # the float inputs: the features (and a regression's labels, never images)
        check_pipeline_fits(config or {}, {name: stand_ins[source].shape[1:] for name, source in binding.items()
                                           if analysis.inputs[name].dtype in FLOAT_DTYPES}, dataset_name=dataset.name)
    except TrainingOptionsError as error:
        first = next(iter(error.errors))
        raise InvalidInput(f"hyperparameters.{first}: {error.errors[first]}",
                           details={f"hyperparameters.{key}": [message] for key, message in error.errors.items()}
                           ) from None
    return binding


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
    if graph_version.draft:
        raise InvalidInput(f"graph version {graph_version.number} of '{graph_version.name}' is a draft (work in "
                           "progress) and cannot be trained; fix its errors and promote it, or save it as a version",
                           code="draft_graph_version", details={"graph_version": ["a draft"]})
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
    check_inputs_can_be_fed(graph_version=graph_version, dataset=dataset, config=config)
    parent = check_starting_weights(project=project, graph_version=graph_version, config=config)
    check_run_limits(config=config, dataset=dataset, spec=graph_version.spec, workers=workers, user=project.owner)
    queues.check_queue_served(device)  # after the 400s: 503 rather than a run that waits for no worker
    run = Run.objects.create(
        project=project, graph_version=graph_version, dataset=dataset, created_by=created_by, name=name,
        hyperparameters=config, device=device, workers=workers,  # born queued (lifecycle)
        tags=clean_tags(tags or []), notes=notes, parent=parent,
    )
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def check_starting_weights(*, project: Project, graph_version: GraphVersion, config: dict) -> Run | None:
    """Fine-tuning (``init_from_run``, ``init_from_import``): the parent run, after checking that it
    is a run of this project with a checkpoint whose graph's weights fit this one (every shape
    mismatch named: node, weight, both shapes), or that the graph version was imported with weights.
    A 400 naming the option otherwise."""
    def refuse(field: str, message: str):
        return InvalidInput(f"hyperparameters.{field}: {message}", details={f"hyperparameters.{field}": [message]})

    if config.get("init_from_import"):
        if imported_weights_path(graph_version) is None:
            raise refuse("init_from_import", f"graph version {graph_version.number} was not imported from ONNX (or "
                                             "its imported weights are gone): it has no weights to start from")
        return None
    parent_id = config.get("init_from_run")
    if parent_id is None:
        return None
    parent = Run.objects.filter(pk=parent_id, project=project).select_related("graph_version").first()
    if parent is None:
        raise refuse("init_from_run", f"run {parent_id} is not a run of project '{project.name}'")
    if not parent.checkpoints.exists():
        raise refuse("init_from_run", f"run {parent_id} has no checkpoint to start from (it has not finished an "
                                      "epoch)")
    try:
        finetune.match_weights(_weight_shapes(graph_version.spec), _weight_shapes(parent.graph_version.spec),
                               init_map=finetune.parse_init_map(config.get("init_map")), source=f"run {parent_id}")
    except TrainingOptionsError as error:
        field = next(iter(error.errors))
        raise refuse(field, error.errors[field]) from None
    except EngineError as error:
        raise refuse("init_from_run", str(error)) from None
    return parent


def _weight_shapes(spec: dict) -> dict[str, tuple]:
    analysis = analyze(spec)
    return {f"{node_id}/{weight.name}": weight.shape for node_id, node in analysis.nodes.items()
            for weight in node.weights}


def check_run_limits(*, config: dict, dataset: Dataset, spec: dict, workers: int, user) -> dict:
    """The door of a new run (``webapp.runs.budgets``): its early-stopping monitor,
    its size at its real batch size; then the user's queued runs (429) and storage. The figures
    of the run's size, or the refusal naming the field and the limit."""
    budgets.check_early_stopping_monitor(config=config, dataset=dataset)
    figures = budgets.check_run_budget(spec=spec, config=config, dataset=dataset, workers=workers)
    budgets.check_user_runs(user)
    budgets.check_storage_quota(user)
    return figures


def _enqueue(run_id: int) -> None:
    try:
        dispatch.enqueue_training(run_id)
    except Exception:  # enqueue_training marks the run failed for a broker it cannot reach; anything else:
        log.exception("run %s: could not be queued", run_id)
        lifecycle.run_fail(run_id=run_id, error="could not queue the run (see the server log); start it again")


@transaction.atomic
def run_resume(*, run: Run) -> Run:
    """Queue a failed, cancelled or timed-out run again (``lifecycle.run_resume``; other states are
    a 409) and send its message once the transaction commits. The user's queued runs and storage
    are checked as for a new run."""
    if not run.is_finished or run.state == Run.State.SUCCEEDED:
        return lifecycle.run_resume(run=run)  # refused with the state (409)
    budgets.check_user_runs(run.project.owner)
    budgets.check_storage_quota(run.project.owner)
    queues.check_queue_served(run.device)
    run = lifecycle.run_resume(run=run)
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


@transaction.atomic
def run_update(*, run: Run, name: str | None = None, tags: list[str] | None = None, notes: str | None = None,
               archived: bool | None = None) -> Run:
    """Rename, tag, annotate, and archive (hidden from the lists, kept whole) or unarchive a run;
    archiving again keeps the first date."""
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
    if archived is not None:
        run.archived_at = (run.archived_at or timezone.now()) if archived else None
        fields.append("archived_at")
    if fields:
        run.save(update_fields=fields)
    return run


@transaction.atomic
def run_evaluation_save(*, run_id: int, evaluation: dict) -> bool:
    """Store what the trained model does on held-out data (``workers.evaluation``) on a run that
    is still running, just before the worker records its outcome; True when it was stored."""
    return bool(Run.objects.filter(pk=run_id, state=Run.State.RUNNING).update(evaluation=evaluation))


def checkpoint_monitor(hyperparameters: dict) -> tuple[str, str]:
    """The metric point by which a run's checkpoints are ranked, and "min" or "max": the
    early-stopping monitor and mode where given, else as the trainer chooses them (val_loss with a
    validation split, else the epoch's training loss)."""
    early_stopping = hyperparameters.get("early_stopping") or {}
    monitor = early_stopping.get("monitor") or (
        "val_loss" if hyperparameters.get("validation_fraction", 0) > 0 else "loss")
    mode = early_stopping.get("mode") or ("min" if "loss" in monitor or monitor in ("mse", "mae") else "max")
    return ("epoch_loss" if monitor == "loss" else monitor), mode  # "loss" points are the batches'


@transaction.atomic
def run_checkpoints_prune(*, run_id: int, keep_last: int) -> list[int]:
    """Keep the run's newest ``keep_last`` checkpoints and its best by the monitored metric
    (``checkpoint_monitor``); delete the others' rows, and their folders once this commits.
    Returns the epochs deleted."""
    checkpoints = list(Checkpoint.objects.filter(run_id=run_id).order_by("-epoch").values_list("pk", "epoch", "step",
                                                                                               "path"))
    if len(checkpoints) <= keep_last:
        return []
    keep = {pk for pk, *_ in checkpoints[:keep_last]}
    hyperparameters = Run.objects.filter(pk=run_id).values_list("hyperparameters", flat=True).first() or {}
    name, mode = checkpoint_monitor(hyperparameters)
    values = dict(MetricPoint.objects.filter(run_id=run_id, name=name, step__in=[step for _, _, step, _ in checkpoints])
                  .order_by("sequence").values_list("step", "value"))
    ranked = [(values[step] if mode == "min" else -values[step], epoch, pk)
              for pk, epoch, step, _ in checkpoints if step in values]
    if ranked:  # the earliest of equals, as early stopping counts only a strict improvement
        keep.add(min(ranked)[2])
    doomed = [(pk, epoch, path) for pk, epoch, _, path in checkpoints if pk not in keep]
    Checkpoint.objects.filter(pk__in=[pk for pk, _, _ in doomed]).delete()
    folders = [Path(path) for _, _, path in doomed]
    transaction.on_commit(lambda: _remove_artifacts(folders))
    return sorted(epoch for _, epoch, _ in doomed)


@transaction.atomic
def run_delete(*, run: Run) -> None:
    """Delete a finished run with its points, checkpoints and their files. A queued or running
    run is a 409: cancel it first. A model version published from it keeps serving: publishing
    copied the checkpoint into the version's own folder, and the version keeps the run in its
    ``source`` (its ``run`` link becomes null)."""
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
