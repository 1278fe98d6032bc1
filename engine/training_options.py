"""Training options, declared once: what a run takes besides the graph and the data.

The top-level options (epochs, batch size, validation split, seed, device, ...), each optimizer's
options (``engine.optimizers``, declared on the optimizer classes), each learning-rate schedule's
(``engine.schedules``), early stopping and the distributed run's (workers, strategy, staleness) use
the op catalog's parameter schema (``engine.option_schema.Option``, a ``Param``). ``schema()`` is
that declaration as JSON (what ``GET /api/training-options`` serves and the train panel is
generated from); ``validate_training_options`` is the one validator the trainer, the command line
and the web app use.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from engine import metrics as metrics_module
from engine.errors import EngineError
from engine.finetune import check_text_options
from engine.optimizers import OPTIMIZERS, check_optimizer_config
from engine.option_schema import Option, TrainingOptionsError, check_object, find_option, show
from engine.registry import FLOAT_DTYPES
from engine.schedules import SCHEDULES, check_schedule_config

FORMAT = "netforge.training_options/1"
DEFAULT_OPTIMIZER = {"name": "adam", "lr": 1e-3}
# The metrics a run reports when its options name none, by the dataset's task.
DEFAULT_METRICS = {
    "classification": ["accuracy"],
    "binary": ["accuracy", "roc_auc"],
    "regression": ["mse", "mae", "r2"],
}

EARLY_STOPPING: tuple[Option, ...] = (
    # monitor and mode default to None, "chosen by the trainer", but may not be set to null.
    Option("monitor", "str", default=None, label="Monitor",
           doc="the loss or metric watched, e.g. 'val_loss', 'val_accuracy'; by default val_loss when there "
               "is a validation split, else loss"),
    Option("patience", "int", default=5, minimum=1, label="Patience (epochs)",
           doc="epochs without improvement before training stops"),
    Option("min_delta", "float", default=0.0, minimum=0, label="Minimum change",
           doc="a smaller change does not count as an improvement"),
    Option("mode", "choice", default=None, choices=("min", "max"), label="Mode",
           doc="whether lower or higher is better; by default chosen from the monitor's name"),
    Option("restore_best", "bool", default=True, label="Keep the best epoch's weights",
           doc="when training stops early, end with the best epoch's weights"),
)

# In the order a form shows them within each group.
OPTIONS: tuple[Option, ...] = (
    Option("epochs", "int", default=10, minimum=1, label="Epochs", group="data", doc="passes over the training split"),
    Option("batch_size", "int", default=32, minimum=1, label="Batch size", group="data",
           doc="rows per gradient step (the global batch of a distributed run)"),
    Option("validation_fraction", "float", default=0.2, minimum=0, maximum=1, exclusive_maximum=True,
           label="Validation split", group="data",
           doc="fraction of the rows held out for validation when no validation set is given"),
    Option("seed", "int", default=0, minimum=0, label="Seed", group="data",
           doc="seeds the split, the shuffling, the initial weights and dropout"),
    Option("optimizer", "optimizer", default=DEFAULT_OPTIMIZER, label="Optimizer", group="optimizer",
           doc="an optimizer name, or an object with 'name' and its options (see optimizers)"),
    Option("early_stopping", "early_stopping", default=None, nullable=True, label="Early stopping",
           group="early_stopping", doc="stop when the monitored value stops improving (see early_stopping); "
                                       "null: train every epoch"),
    Option("metrics", "metrics", default=None, nullable=True, label="Metrics",
           doc="metric names or objects with 'name' and options; null: chosen by the dataset's task"),
    Option("standardize", "bool", default=True, label="Standardize inputs", group="advanced",
           doc="scale float inputs to zero mean and unit variance, fitted on the training split"),
    Option("standardize_target", "bool", default=True, label="Standardize regression targets", group="advanced",
           doc="predictions are mapped back to the targets' scale"),
    Option("dtype", "choice", default="float32", choices=FLOAT_DTYPES, label="Float type", group="advanced",
           doc="the precision of weights and activations"),
    Option("drop_last", "bool", default=False, label="Drop the last, smaller batch", group="advanced",
           doc="skip an epoch's last batch when it is smaller than batch_size"),
    Option("train_metrics", "bool", default=True, label="Metrics on training batches", group="advanced",
           doc="streaming metrics over each epoch's training batches"),
    Option("random_crop_padding", "int", default=0, minimum=0, maximum=64, label="Random crop padding (pixels)",
           group="augmentation",
           doc="image inputs: pad each training image by this many zeros (of the standardized values) on every side "
               "and crop it back at a random offset, moving it by up to this many pixels; 0: off"),
    Option("horizontal_flip", "bool", default=False, label="Random horizontal flip", group="augmentation",
           doc="image inputs: mirror half of the training images left to right, drawn anew every step"),
    Option("normalize", "choice", default="none", choices=("none", "per_channel"), label="Normalize images",
           group="augmentation",
           doc="image inputs: per_channel scales each channel to zero mean and unit variance by statistics measured "
               "when the dataset was converted (instead of standardize's per-pixel statistics); "
               "none: as standardize says"),
    Option("device", "choice", default="cpu", choices=("cpu", "gpu"), label="Device", group="where",
           doc="where the arrays live: NumPy on the CPU or CuPy on a GPU"),
    Option("checkpoint_dir", "str", default=None, nullable=True, label="Checkpoint folder",
           doc="write a checkpoint here after every epoch; null: none"),
    # Fine-tuning (engine.finetune). init_from is a path, set by the web app from the two run options.
    Option("init_from", "str", default=None, nullable=True, label="Starting weights",
           doc="a checkpoint or saved-model folder, or a .npz of weights keyed node/weight, that starts the run: "
               "nodes matched by id (or init_map), shapes checked, the others freshly initialized; null: fresh "
               "weights"),
    Option("init_from_run", "int", default=None, nullable=True, minimum=1, label="Start from run (id)",
           group="fine_tuning", scope="run",
           doc="one of your runs of this project: its newest checkpoint's weights start this run, which records it "
               "as its parent; empty: fresh weights"),
    Option("init_from_import", "bool", default=False, label="Start from the imported weights", group="fine_tuning",
           scope="run", doc="a graph imported from ONNX: start from the weights it was imported with"),
    Option("init_map", "str", default="", label="Map nodes to the source's", group="fine_tuning",
           doc="'node=source_node' pairs, comma-separated, for nodes whose id differs from the source's; "
               "'node=' starts that node fresh"),
    Option("freeze", "str", default="", label="Frozen nodes", group="fine_tuning",
           doc="node ids or patterns (res2_*), comma-separated, whose parameters the optimizer leaves as they start"),
    Option("lr_multipliers", "str", default="", label="Learning-rate multipliers", group="fine_tuning",
           doc="'node=factor' pairs (patterns allowed: 'conv*=0.1'), comma-separated: those nodes learn at the "
               "learning rate times the factor"),
    Option("workers", "int", default=1, minimum=1, maximum=64, label="Workers", group="where", scope="run",
           doc="data-parallel workers, each computing the gradient of its share of every batch"),
    Option("strategy", "choice", default="allreduce", choices=("allreduce", "ps"), label="Strategy",
           group="where", scope="run",
           doc="how the workers combine gradients: a ring all-reduce, or a parameter server"),
    Option("staleness", "int", default=None, nullable=True, minimum=0, label="Staleness bound", group="where",
           scope="run", doc="parameter server only: null for synchronous steps, n to let a worker run at most "
                            "n steps ahead of the slowest (asynchronous)"),
)

_NESTED = {"schedule": check_schedule_config, "optimizer": check_optimizer_config}


def option(name: str) -> Option:
    """The top-level option of that name."""
    return find_option(OPTIONS, name)


def trainer_defaults() -> dict[str, Any]:
    """Each ``TrainConfig`` field's default, from the schema."""
    return {entry.name: entry.default for entry in OPTIONS if entry.scope == "trainer"}


def early_stopping_option(options: Mapping, name: str) -> Any:
    """An early-stopping setting as given, or its declared default."""
    return options.get(name, find_option(EARLY_STOPPING, name).default)


# Options of the data pipeline that apply only to image inputs (samples of shape [C, H, W]), with
# the value that leaves the data as it is.
IMAGE_PIPELINE_OPTIONS = {"random_crop_padding": 0, "horizontal_flip": False, "normalize": "none"}


def check_pipeline_fits(options: Mapping, sample_shapes: Mapping[str, Any], *, dataset_name: str = "") -> None:
    """Refuse image augmentation or normalization for a graph whose feature inputs take no images:
    ``sample_shapes`` maps each float (feature) input to the per-sample shape the dataset gives it.
    Raises ``TrainingOptionsError`` naming each image option that is set."""
    used = [name for name, off in IMAGE_PIPELINE_OPTIONS.items() if options.get(name, off) != off]
    if not used or any(len(shape) == 3 for shape in sample_shapes.values()):
        return
    fed = ", ".join(f"'{name}' {list(shape)}" for name, shape in sample_shapes.items()) or "no float inputs"
    where = f"dataset '{dataset_name}'" if dataset_name else "the dataset"
    raise TrainingOptionsError({
        name: f"{name} applies to image inputs (samples of shape [channels, height, width]), but {where} gives the "
              f"graph's inputs {fed}; give the dataset an image view or turn {name} off"
        for name in used
    })


def validate_training_options(options: Any, *, trainer_only: bool = False,
                              reserved: Mapping[str, str] | None = None) -> dict:
    """The options checked against the schema, in canonical form: every trainer option (a
    ``TrainConfig`` field) with its default filled in, the run options (workers, strategy,
    staleness) only where given, and nested objects (optimizer, schedule, early stopping) as given.

    ``trainer_only`` refuses the run options (for ``TrainConfig``, which never sees them);
    ``reserved`` maps options the caller sets itself to the reason (the web app sets the device
    and the checkpoint folder). Raises ``TrainingOptionsError`` mapping each bad field's dotted
    path (``optimizer.lr``) to a message that names it."""
    if not isinstance(options, Mapping):
        raise TrainingOptionsError({"": f"training options must be an object, got {show(options)}"})
    reserved = reserved or {}
    offered = [entry for entry in OPTIONS if not (trainer_only and entry.scope == "run")]
    known = {entry.name for entry in offered}
    errors: dict[str, str] = {}
    for key in options:
        if key in reserved:
            errors[key] = f"'{key}' is not a training option here: {reserved[key]}"
        elif key not in known:
            names = ", ".join(sorted(known - set(reserved)))
            errors[key] = f"unknown training option {show(key)}; the options are {names}"
    cleaned: dict[str, Any] = {}
    for entry in offered:
        if entry.name in reserved and entry.name in options:
            continue
        if entry.name not in options:
            if entry.scope == "trainer":
                cleaned[entry.name] = copy.deepcopy(entry.default)  # the caller may change its copy
            continue
        value = options[entry.name]
        if entry.type in ("optimizer", "early_stopping", "metrics"):
            cleaned[entry.name] = _check_structured(entry, value, errors)
            continue
        try:
            cleaned[entry.name] = entry.check(value)
        except ValueError as error:
            errors[entry.name] = f"{entry.name} {error}"
    errors.update({name: message for name, message in check_text_options(cleaned).items() if name not in errors})
    if cleaned.get("staleness") is not None:
        for name in ("freeze", "lr_multipliers"):
            if cleaned.get(name) and name not in errors:
                errors[name] = (f"{name} needs the workers' own optimizer: an asynchronous parameter server "
                                "(staleness) updates every parameter alike")
    if cleaned.get("init_from_run") is not None and cleaned.get("init_from_import"):
        errors["init_from_import"] = ("init_from_run and init_from_import both choose the starting weights: "
                                      "give one of them")
    if cleaned.get("staleness") is not None and "staleness" not in errors and options.get("strategy") != "ps":
        errors["staleness"] = "a staleness bound makes the parameter server asynchronous: it needs strategy 'ps'"
    if errors:
        raise TrainingOptionsError(errors)
    return cleaned


def _check_structured(entry: Option, value: Any, errors: dict[str, str]) -> Any:
    if value is None and entry.nullable:
        return None
    if entry.type == "optimizer":
        return check_optimizer_config(value, "optimizer", errors)
    if entry.type == "early_stopping":
        if not isinstance(value, dict):
            errors["early_stopping"] = ("early_stopping must be an object like {\"monitor\": \"val_loss\", "
                                        f"\"patience\": 5}}, got {show(value)}")
            return None
        return check_object(EARLY_STOPPING, value, "early_stopping", errors, nested=_NESTED)
    return _check_metrics(value, errors)


def _check_metrics(value: Any, errors: dict[str, str]) -> list | None:
    if not isinstance(value, list):
        errors["metrics"] = f"metrics must be a list of metric names or objects with 'name', got {show(value)}"
        return None
    for index, spec in enumerate(value):
        name = spec.get("name") if isinstance(spec, dict) else spec
        if not isinstance(name, str):
            errors["metrics"] = f"metrics[{index}] must be a metric name or an object with 'name', got {show(spec)}"
            return None
        if name not in metrics_module.METRICS:
            errors["metrics"] = (f"metrics names an unknown metric {show(name)}; "
                                 f"valid names: {', '.join(metrics_module.METRICS)}")
            return None
        try:
            metrics_module.get(spec)  # a metric's own options are checked by its class
        except (EngineError, TypeError, ValueError) as error:
            errors["metrics"] = f"metrics[{index}]: {error}"
            return None
    return list(value)


def schema() -> dict:
    """The training options as JSON-ready data (what ``GET /api/training-options`` serves): the
    top-level options, each optimizer's and each schedule's, early stopping's, the metric names and
    the metrics reported by default for each task, each option with its type, default, bounds or
    choices, label, form group and doc."""
    from engine import __version__  # noqa: PLC0415

    def entries(registry: dict) -> list[dict]:
        return [{"name": name, "label": cls.label, "doc": _first_line(cls.__doc__),
                 "params": [entry.to_json() for entry in cls.params]} for name, cls in registry.items()]

    return {
        "format": FORMAT,
        "engine_version": __version__,
        "options": [entry.to_json() for entry in OPTIONS],
        "optimizers": entries(OPTIMIZERS),
        "schedules": entries(SCHEDULES),
        "early_stopping": [entry.to_json() for entry in EARLY_STOPPING],
        "metrics": list(metrics_module.METRICS),
        "default_metrics": DEFAULT_METRICS,
    }


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text else ""


__all__ = [
    "DEFAULT_METRICS",
    "EARLY_STOPPING",
    "FORMAT",
    "IMAGE_PIPELINE_OPTIONS",
    "OPTIONS",
    "TrainingOptionsError",
    "check_pipeline_fits",
    "early_stopping_option",
    "option",
    "schema",
    "trainer_defaults",
    "validate_training_options",
]
