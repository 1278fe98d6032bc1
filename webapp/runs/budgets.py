"""A run's budgets, checked at the door (design contract 7): what one user may ask of the shared
workers and disks, each limit a setting (``webapp/settings/base.py``) named in the refusal.

``check_run_budget`` estimates the training of a run as it will really run, at its real batch size
(the batch a worker computes: the global batch, capped by the dataset's rows, shared among its
workers), with the engine's own estimate (``engine.graph.validate``): trainable parameters,
training memory and the forward FLOPs of a step. ``check_epochs`` bounds the epochs,
``check_early_stopping_monitor`` names the values this run will report, ``check_user_runs`` the
user's queued runs (a 429) and ``check_storage_quota`` the user's artifacts. Each refusal is an
``InvalidInput`` (400) naming the field, with the estimate and the limit in its ``details``.
"""

from __future__ import annotations

import math
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Sum

from engine.graph import validate
from engine.training_options import DEFAULT_METRICS
from webapp.core.exceptions import InvalidInput, TooManyRequests
from webapp.datasets.models import Dataset
from webapp.endpoints.models import ModelVersion
from webapp.projects.imported_weights import imports_folder
from webapp.projects.models import Project
from webapp.runs.layer_stats import layer_stats_file
from webapp.runs.models import Checkpoint, Run

# Integers beyond this lose precision in JSON readers (JavaScript's numbers) and in databases'
# JSON functions; no training option needs one.
LARGEST_OPTION_INTEGER = 2**53 - 1
# Bytes per value of each float type (the engine's estimate counts 4).
DTYPE_BYTES = {"float16": 2, "float32": 4, "float64": 8}
# Metrics whose value is not one number cannot be monitored.
UNMONITORABLE_METRICS = ("confusion_matrix",)


def describe_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{int(count)} bytes" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def describe_flops(count: float) -> str:
    for unit in ("FLOPs", "kFLOPs", "MFLOPs", "GFLOPs", "TFLOPs", "PFLOPs"):
        if count < 1000 or unit == "PFLOPs":
            return f"{count:,.0f} {unit}" if unit == "FLOPs" else f"{count:,.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _refuse(field: str, message: str, *, budget: str, estimate: float, limit: float, setting: str):
    raise InvalidInput(f"{field}: {message}", code="over_budget",
                       details={field: [message],
                                "budget": {"name": budget, "estimate": estimate, "limit": limit, "setting": setting}})


# -- the options ------------------------------------------------------------------------------------

def check_option_numbers(value, path: str = "hyperparameters") -> None:
    """Every integer of the options within JSON's exact range (``LARGEST_OPTION_INTEGER``)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            check_option_numbers(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            check_option_numbers(inner, f"{path}[{index}]")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > LARGEST_OPTION_INTEGER:
        raise InvalidInput(f"{path}: {value:.3g} is out of range; integers here are at most {LARGEST_OPTION_INTEGER:,}",
                           details={path: ["integer out of range"]})


def check_epochs(config: dict) -> None:
    epochs, limit = config["epochs"], settings.RUN_MAX_EPOCHS
    if epochs > limit:
        shown = f"{epochs:,}" if epochs < 10**15 else f"{epochs:.3g}"
        _refuse("hyperparameters.epochs", f"at most {limit:,} epochs per run (NETFORGE_RUN_MAX_EPOCHS), got {shown}",
                budget="epochs", estimate=epochs, limit=limit, setting="NETFORGE_RUN_MAX_EPOCHS")


def reported_values(*, config: dict, dataset: Dataset) -> list[str]:
    """The names of the values every epoch of this run reports, which early stopping can monitor:
    the loss, the training metrics (unless ``train_metrics`` is off), and with a validation split
    ``val_loss`` and each metric's ``val_`` value. The metrics are the options' own, else the
    default ones of the dataset's task, named as the trainer names them."""
    task = (dataset.schema or {}).get("task")
    specs = config.get("metrics") if config.get("metrics") is not None else DEFAULT_METRICS.get(task, [])
    metrics = [metric_name(spec) for spec in specs]
    metrics = [name for name in metrics if not name.startswith(UNMONITORABLE_METRICS)]
    names = ["loss", *(metrics if config.get("train_metrics", True) else [])]
    if config.get("validation_fraction", 0) > 0:
        names += ["val_loss", *(f"val_{name}" for name in metrics)]
    return names


def metric_name(spec) -> str:
    """A metric's name in a run's records, as the trainer names it (``engine.trainer.Trainer``):
    its name, then its options' values in the order of their names (``top_k_accuracy_5``)."""
    if isinstance(spec, str):
        return spec
    options = "_".join(f"{value}" for key, value in sorted(spec.items()) if key != "name")
    return f"{spec['name']}_{options}" if options else spec["name"]


def check_early_stopping_monitor(*, config: dict, dataset: Dataset) -> None:
    """An early-stopping monitor the run will report, or a 400 listing those it will."""
    monitor = (config.get("early_stopping") or {}).get("monitor")
    if monitor is None:
        return  # the trainer's choice: val_loss with a validation split, else loss
    names = reported_values(config=config, dataset=dataset)
    if monitor not in names:
        field = "hyperparameters.early_stopping.monitor"
        message = (f"this run does not report {monitor!r} on dataset '{dataset.name}'; it can monitor "
                   f"{', '.join(names)}")
        raise InvalidInput(f"{field}: {message}", details={field: [message], "valid": names})


# -- the training's size ----------------------------------------------------------------------------

def worker_batch_size(*, config: dict, dataset: Dataset, workers: int) -> int:
    """The rows one worker computes in a step: the batch size, capped by the dataset's rows (no
    batch holds more), shared among the run's workers."""
    batch = min(config["batch_size"], max(dataset.rows, 1))
    return math.ceil(batch / workers)


def check_run_budget(*, spec: dict, config: dict, dataset: Dataset, workers: int) -> dict:
    """The training's size at its real batch size against the limits: trainable parameters
    (``RUN_MAX_PARAMETERS``), training memory (``RUN_MAX_MEMORY_BYTES``) and forward FLOPs per step
    (``RUN_MAX_FLOPS_PER_STEP``). Returns the figures, or raises a 400 naming the field."""
    batch = worker_batch_size(config=config, dataset=dataset, workers=workers)
    # The limits are checked here, with the figures and the settings in the message.
    report = validate(spec, batch_size=batch, max_parameters=math.inf, max_memory_bytes=math.inf)
    memory = report.memory_bytes * DTYPE_BYTES.get(config.get("dtype", "float32"), 4) // 4
    flops = report.total_flops * batch
    asked = config["batch_size"]
    at_batch = f"at batch size {batch:,}" + (
        f" (batch_size {asked:,}, capped by the dataset's {dataset.rows:,} rows)" if asked > dataset.rows else "") + (
        f" per worker of {workers}" if workers > 1 else "")
    if report.total_parameters > settings.RUN_MAX_PARAMETERS:
        _refuse("graph_version", f"the graph has {report.total_parameters:,} trainable parameters, over the limit of "
                                 f"{settings.RUN_MAX_PARAMETERS:,} per run (NETFORGE_RUN_MAX_PARAMETERS)",
                budget="parameters", estimate=report.total_parameters, limit=settings.RUN_MAX_PARAMETERS,
                setting="NETFORGE_RUN_MAX_PARAMETERS")
    if memory > settings.RUN_MAX_MEMORY_BYTES:
        _refuse("hyperparameters.batch_size",
                f"training would need about {describe_bytes(memory)} {at_batch}, over the limit of "
                f"{describe_bytes(settings.RUN_MAX_MEMORY_BYTES)} per run (NETFORGE_RUN_MAX_MEMORY_MB); "
                "lower the batch size or make the model smaller",
                budget="memory", estimate=memory, limit=settings.RUN_MAX_MEMORY_BYTES,
                setting="NETFORGE_RUN_MAX_MEMORY_MB")
    if flops > settings.RUN_MAX_FLOPS_PER_STEP:
        _refuse("hyperparameters.batch_size",
                f"a training step would compute about {describe_flops(flops)} (forward) {at_batch}, over the limit "
                f"of {describe_flops(settings.RUN_MAX_FLOPS_PER_STEP)} per step (NETFORGE_RUN_MAX_GFLOPS_PER_STEP); "
                "lower the batch size or make the model smaller",
                budget="flops_per_step", estimate=flops, limit=settings.RUN_MAX_FLOPS_PER_STEP,
                setting="NETFORGE_RUN_MAX_GFLOPS_PER_STEP")
    return {"batch_size": batch, "parameters": report.total_parameters, "memory_bytes": memory,
            "flops_per_step": flops}


# -- the user's share -----------------------------------------------------------------------------

def user_run_counts(user) -> dict[str, int]:
    counts = dict.fromkeys((Run.State.QUEUED, Run.State.RUNNING), 0)
    rows = (Run.objects.filter(project__owner=user, state__in=list(counts)).order_by().values_list("state")
            .annotate(count=Count("pk")))
    counts.update(dict(rows))
    return {"queued": counts[Run.State.QUEUED], "running": counts[Run.State.RUNNING]}


def check_user_runs(user) -> None:
    """A 429 when the user already has ``RUN_MAX_QUEUED_PER_USER`` runs waiting to start."""
    queued, limit = user_run_counts(user)["queued"], settings.RUN_MAX_QUEUED_PER_USER
    if queued >= limit:
        raise TooManyRequests(
            f"you have {queued} runs queued, the most a user may have waiting (NETFORGE_RUN_MAX_QUEUED_PER_USER="
            f"{limit}); wait until some of them start, or cancel some",
            details={"runs": ["too many queued runs"], "queued": queued, "limit": limit})


def folder_size(path: str | Path) -> int:
    """Bytes of the files in a folder (0 when it is gone)."""
    folder = Path(path)
    if not folder.is_dir():
        return 0
    return sum(entry.stat().st_size for entry in folder.rglob("*") if entry.is_file() and not entry.is_symlink())


def user_storage(user) -> dict[str, int]:
    """The bytes of the user's artifacts: checkpoints (their recorded sizes), published model
    versions (their folders), datasets (stored files and converted stores) and runs' per-layer
    statistics (``layer_stats``) and the weights of imported ONNX models (``imported_weights``)."""
    checkpoints = Checkpoint.objects.filter(run__project__owner=user).aggregate(total=Sum("size_bytes"))["total"]
    datasets = Dataset.objects.filter(owner=user).aggregate(total=Sum("size_bytes"))["total"]
    versions = sum(folder_size(path) for path in
                   ModelVersion.objects.filter(endpoint__owner=user).values_list("path", flat=True))
    layer_stats = sum(_file_size(layer_stats_file(run_id)) for run_id in
                      Run.objects.filter(project__owner=user).values_list("pk", flat=True))
    imported = sum(folder_size(imports_folder(project_id)) for project_id in
                   Project.objects.filter(owner=user).values_list("pk", flat=True))
    checkpoints, datasets = checkpoints or 0, datasets or 0
    return {"checkpoints": checkpoints, "model_versions": versions, "datasets": datasets, "layer_stats": layer_stats,
            "imported_weights": imported, "total": checkpoints + versions + datasets + layer_stats + imported}


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def check_storage_quota(user) -> None:
    """A 400 when the user's artifacts already fill ``STORAGE_QUOTA_BYTES``."""
    storage, quota = user_storage(user), settings.STORAGE_QUOTA_BYTES
    if storage["total"] >= quota:
        message = (f"your artifacts use {describe_bytes(storage['total'])} (checkpoints "
                   f"{describe_bytes(storage['checkpoints'])}, "
                   f"published models {describe_bytes(storage['model_versions'])}, "
                   f"datasets {describe_bytes(storage['datasets'])}, "
                   f"per-layer statistics {describe_bytes(storage['layer_stats'])}, "
                   f"imported weights {describe_bytes(storage['imported_weights'])}), at or over the storage quota of "
                   f"{describe_bytes(quota)} per user (NETFORGE_STORAGE_QUOTA_MB); delete runs, model versions or "
                   "datasets first")
        raise InvalidInput(message, code="storage_quota",
                           details={"storage": [message], "budget": {"name": "storage", "estimate": storage["total"],
                                                                      "limit": quota,
                                                                      "setting": "NETFORGE_STORAGE_QUOTA_MB"}})
