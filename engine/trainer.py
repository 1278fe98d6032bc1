"""Training: the ``Trainer`` loop with events, evaluation, early stopping, cancel, checkpoints
and exact resume, and ``fit`` as the one-call entry point.

Exact resume: every source of randomness (the shuffling generator, the graph's dropout generator)
and every piece of state (weights, optimizer slots, step counters, early-stopping bookkeeping,
standardization) goes into the checkpoint, and image augmentation draws from a generator seeded by
(seed, epoch, step), so a run stopped after epoch k and resumed ends with the same weights as one
that never stopped (bit for bit on NumPy).

Data too large for memory: the validation split selects rows lazily, standardization is fitted in
one streaming pass, and the arrays of a memory-mapped store are standardized and converted a batch
at a time (in-memory arrays once, up front), so training reads only each batch's rows from disk.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy
import scipy.special

from engine import backend, finetune, parallel, serialization
from engine import metrics as metrics_module
from engine.data import Dataset, Standardizer
from engine.data.augment import augment_images, batch_generator, draw_augmentation
from engine.data.dataset import RowSelection
from engine.data.store import is_mapped, resident_share
from engine.errors import ArtifactError, EngineError
from engine.layer_stats import LayerStatsOptions, LayerStatsSampler
from engine.model import Model
from engine.optimizers import make_optimizer
from engine.registry import FLOAT_DTYPES
from engine.training_options import (
    DEFAULT_METRICS,
    check_pipeline_fits,
    early_stopping_option,
    trainer_defaults,
    validate_training_options,
)

log = logging.getLogger(__name__)

# A store whose arrays have at least this share of their pages in the page cache is read in line.
RESIDENT_SHARE = 0.9

EVENTS = ("train_begin", "batch_end", "epoch_end", "checkpoint", "train_end", "layer_stats")
PROBABILITY_OF_LOSS = {"softmax_cross_entropy": "softmax", "sigmoid_cross_entropy": "sigmoid", "hinge": "sign",
                       "perceptron": "sign"}


def link_scores(scores: numpy.ndarray, link: str) -> numpy.ndarray:
    """A classifier's scores as probabilities, by the link its loss implies (PROBABILITY_OF_LOSS):
    softmax over the last axis, the logistic function, or 0/1 for margin (sign) classifiers;
    other scores are returned as they are."""
    if link == "softmax":
        return scipy.special.softmax(scores, axis=-1)
    if link == "sigmoid":
        return scipy.special.expit(scores)
    if link == "sign":
        return (scores > 0).astype(numpy.float64)
    return scores


_DEFAULTS = trainer_defaults()


@dataclasses.dataclass
class TrainConfig:
    """Everything that decides a training run besides the graph and the data: the trainer's
    options of ``engine.training_options``, where each is declared with its type, bounds, default
    and doc (the defaults here are read from there)."""

    epochs: int = _DEFAULTS["epochs"]
    batch_size: int = _DEFAULTS["batch_size"]
    optimizer: dict | str = dataclasses.field(default_factory=lambda: dict(_DEFAULTS["optimizer"]))
    metrics: list | None = _DEFAULTS["metrics"]  # None: chosen by the task
    validation_fraction: float = _DEFAULTS["validation_fraction"]  # used when no validation set is given
    standardize: bool = _DEFAULTS["standardize"]  # float feature inputs, fitted on the training split
    standardize_target: bool = _DEFAULTS["standardize_target"]  # regression targets; predictions are mapped back
    seed: int = _DEFAULTS["seed"]
    device: str = _DEFAULTS["device"]
    dtype: str = _DEFAULTS["dtype"]
    early_stopping: dict | None = _DEFAULTS["early_stopping"]  # see training_options.EARLY_STOPPING
    checkpoint_dir: str | None = _DEFAULTS["checkpoint_dir"]
    drop_last: bool = _DEFAULTS["drop_last"]
    train_metrics: bool = _DEFAULTS["train_metrics"]  # streaming metrics on the training batches
    random_crop_padding: int = _DEFAULTS["random_crop_padding"]  # image inputs' training batches
    horizontal_flip: bool = _DEFAULTS["horizontal_flip"]
    normalize: str = _DEFAULTS["normalize"]  # "per_channel": image inputs by their channels' statistics
    init_from: str | None = _DEFAULTS["init_from"]  # fine-tuning (engine.finetune): the starting weights
    init_map: str = _DEFAULTS["init_map"]
    freeze: str = _DEFAULTS["freeze"]
    lr_multipliers: str = _DEFAULTS["lr_multipliers"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """A config from training options, checked by ``validate_training_options`` (which raises
        ``TrainingOptionsError`` naming each bad field)."""
        return cls(**validate_training_options(data, trainer_only=True))

    def check(self) -> None:
        validate_training_options(self.to_dict(), trainer_only=True)


@dataclasses.dataclass
class TrainResult:
    status: str  # "succeeded" | "cancelled" | "stopped_early"
    epochs_completed: int
    steps: int
    history: list[dict]
    final: dict  # last epoch's losses and metrics
    best: dict | None  # best epoch under early stopping
    checkpoint: str | None


def bind_inputs(input_types: dict, arrays: dict, feeds: dict | None = None, *,
                dataset_name: str = "") -> dict[str, str]:
    """Map each graph input to a dataset array: ``feeds`` first, then the same name; a graph
    with one float input besides the labels takes the dataset's ``x``.

    ``input_types`` maps input names to ``TensorType``; ``arrays`` maps array names to anything
    with a ``shape`` whose first axis is the rows (arrays, or zero-row stand-ins when only the
    schema is known, as the web app does before a run starts). Raises ``EngineError`` naming the
    input and the dataset when an input cannot be fed.
    """
    feeds = feeds or {}
    binding = {}
    float_inputs = [n for n, t in input_types.items() if t.dtype in FLOAT_DTYPES]
    for name in input_types:
        source = feeds.get(name, name)
        if source not in arrays and name not in feeds and name in float_inputs and len(float_inputs) == 1:
            source = "x"
        if source not in arrays:
            raise EngineError(
                f"graph input '{name}' has no matching array in dataset '{dataset_name}' "
                f"(arrays: {sorted(arrays)}); name the input after one or pass feeds={{'{name}': ...}}"
            )
        declared = input_types[name]
        actual = arrays[source].shape[1:]
        if len(actual) != len(declared.shape) - 1 or any(
            d is not None and d != a for d, a in zip(declared.shape[1:], actual)
        ):
            raise EngineError(
                f"graph input '{name}' expects per-sample shape {list(declared.shape[1:])}, "
                f"but dataset array '{source}' has {list(actual)}"
            )
        binding[name] = source
    return binding


class Trainer:
    """Trains a compiled graph on a dataset; subscribe to events with ``on(event, callback)``.

    Events and their payload (plain JSON-ready dicts):

    - ``train_begin``: epochs, steps_per_epoch, parameters, resumed_from_epoch;
    - ``batch_end``: epoch, batch, batches, step, loss, samples_per_second, lr;
    - ``epoch_end``: epoch, step, loss, metrics, val_loss, val_metrics, samples_per_second, seconds;
    - ``checkpoint``: epoch, path;  ``train_end``: status, epochs_completed;
    - ``layer_stats``: a sample of per-layer statistics (``engine.layer_stats``), after
      ``watch_layers``: step, epoch, wall_time, nodes, nan.

    Data-parallel training (one ``Trainer`` per worker, all built alike): ``shard=(rank, world_size)``
    makes this trainer compute each step's gradient on its own contiguous share of the step's global
    batch of ``batch_size`` rows (shares differ by at most one row; a share may be empty), and
    ``reduce_gradients(grads, loss, rows, batch_rows)`` is called between the backward pass and the
    optimizer step with this worker's gradients and loss (means over its ``rows`` rows, zeros for an
    empty share) and the global batch's row count; it returns the global batch's gradients and loss
    (the sums over all workers weighted by ``rows / batch_rows``, e.g. by an all-reduce), which every
    worker then applies alike; or ``None`` for the gradients when it has updated the parameters in
    place itself (an asynchronous parameter server holds the optimizer), and the trainer's own
    optimizer then takes no step. Every worker takes the same number of steps, whatever its shares.
    A reducer with ``gradient_ready(key, gradient, *, rows, batch_rows)`` is also handed each gradient
    as soon as backward has finished it (``Model.loss_and_grads(on_gradient=...)``), to send it while
    backward goes on; ``reduce_gradients`` is called after backward all the same.
    """

    def __init__(self, spec: dict, train: Dataset, validation: Dataset | None = None, *,
                 config: TrainConfig | dict | None = None, feeds: dict[str, str] | None = None,
                 shard: tuple[int, int] | None = None,
                 reduce_gradients: Callable[[dict, float, int, int], tuple[dict, float]] | None = None,
                 threads: int | None = None, standardizers: dict[str, Standardizer] | None = None):
        self.config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
        self.config.check()
        self.spec = spec
        if validation is None and self.config.validation_fraction > 0:
            train, validation = train.split(self.config.validation_fraction, seed=self.config.seed)
        self.train_data, self.validation_data = train, validation
        self.model = Model(spec, device=self.config.device, dtype=self.config.dtype, seed=self.config.seed)
        self.optimizer = make_optimizer(self.config.optimizer)
        self.warm_start = self._warm_start()
        self.frozen_nodes = self._set_parameter_groups()
        self.feeds = self._bind_inputs(feeds or {})
        self._find_loss_roles()
        self.image_inputs = self._find_image_inputs()
        # Given (a resumed run's, from its checkpoint): no pass over the data to fit them again.
        self.standardizers = dict(standardizers) if standardizers is not None else self._fit_standardizers()
        self.metric_specs = (self.config.metrics if self.config.metrics is not None
                             else DEFAULT_METRICS.get(train.task, []))
        self._listeners: dict[str, list[Callable]] = {event: [] for event in EVENTS}
        self._cancel = threading.Event()
        self.shuffle_rng = numpy.random.default_rng(self.config.seed + 2)
        self.epoch = 0
        self.step = 0
        self.history: list[dict] = []
        self.early = {"best": None, "best_epoch": None, "wait": 0, "best_weights": None}
        self._device_data = None
        if shard is not None:
            rank, world_size = shard
            if not (isinstance(world_size, int) and isinstance(rank, int) and 0 <= rank < world_size):
                raise EngineError(f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard!r}")
        self.shard = shard
        self.reduce_gradients = reduce_gradients
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise EngineError(f"threads must be a positive integer (or None for NETFORGE_THREADS or the usable cores), "
                              f"got {threads!r}")
        self.threads = threads
        self.layer_stats = None  # a LayerStatsSampler once watch_layers is called

    def watch_layers(self, options: LayerStatsOptions | None = None) -> LayerStatsSampler:
        """Sample per-layer statistics while training, as ``layer_stats`` events."""
        self.layer_stats = LayerStatsSampler(self.model, options)
        return self.layer_stats

    # -- fine-tuning (engine.finetune) -----------------------------------------------------------
    def _warm_start(self) -> finetune.WarmStart | None:
        """The starting weights of ``init_from`` copied in, matched by node id or ``init_map``."""
        if not self.config.init_from:
            return None
        source = finetune.read_weights(self.config.init_from)
        return finetune.warm_start(self.model, source, init_map=finetune.parse_init_map(self.config.init_map),
                                   source=f"init_from {Path(self.config.init_from).name}")

    def _set_parameter_groups(self) -> list[str]:
        """Hand the optimizer the frozen parameters and the learning-rate factors; the frozen nodes."""
        keys = list(self.model.params)
        frozen = set().union(*finetune.select_parameters(keys, finetune.parse_freeze(self.config.freeze),
                                                         "freeze").values())
        factors = {}
        pairs = finetune.parse_lr_multipliers(self.config.lr_multipliers)
        chosen = finetune.select_parameters(keys, [pattern for pattern, _ in pairs], "lr_multipliers")
        for pattern, factor in pairs:  # a later pattern wins
            factors.update(dict.fromkeys(chosen[pattern], factor))
        self.optimizer.set_parameter_groups(frozen=frozen, lr_multipliers=factors)
        nodes = sorted({finetune.node_of(key) for key in frozen})
        # A frozen node's buffers (a batch norm's running statistics) stay as they start too.
        self._frozen_buffers = {key: array.copy() for key, array in self.model.buffers.items()
                                if finetune.node_of(key) in nodes}
        return nodes

    # -- wiring -------------------------------------------------------------------------------
    def _bind_inputs(self, feeds: dict) -> dict[str, str]:
        return bind_inputs(self.model.input_types, self.train_data.arrays, feeds, dataset_name=self.train_data.name)

    def _find_loss_roles(self) -> None:
        """Which value the loss judges (for metrics) and which graph input holds the labels."""
        analysis = self.model.analysis
        loss_node = analysis.nodes[analysis.producers[analysis.loss]]
        ports = [port.name for port in loss_node.op.inputs]
        self.prediction_key = loss_node.inputs.get(ports[0])
        label_key = loss_node.inputs.get(ports[1]) if len(ports) > 1 else None
        self.label_input = label_key if label_key in analysis.inputs else None
        self.link = PROBABILITY_OF_LOSS.get(loss_node.op.name, "identity")

    def _feature_inputs(self) -> list[str]:
        return [name for name in self.feeds
                if name != self.label_input and self.model.input_types[name].dtype in FLOAT_DTYPES]

    def _find_image_inputs(self) -> set[str]:
        """The feature inputs fed images (N, C, H, W): what augmentation and per-channel
        normalization apply to; setting either for a graph with none is refused naming the option."""
        shapes = {name: self.train_data.arrays[self.feeds[name]].shape[1:] for name in self._feature_inputs()}
        check_pipeline_fits(self.config.to_dict(), shapes, dataset_name=self.train_data.name)
        return {name for name, shape in shapes.items() if len(shape) == 3}

    def _fit_standardizers(self) -> dict[str, Standardizer]:
        standardizers = {}
        for name in self._feature_inputs():
            source = self.feeds[name]
            if self.config.normalize == "per_channel" and name in self.image_inputs:
                standardizers[name] = self._channel_standardizer(source)
            elif self.config.standardize:
                standardizers[name] = Standardizer().fit(self.train_data.arrays[source])
        if (self.config.standardize_target and self.train_data.task == "regression" and self.label_input
                and self.link == "identity"):
            standardizers[self.label_input] = Standardizer().fit(self.train_data.arrays[self.feeds[self.label_input]])
        return standardizers

    def _channel_standardizer(self, source: str) -> Standardizer:
        """Per-channel statistics of the image array ``source``: those measured at conversion (or
        when a built-in was loaded) where the dataset has them for its channels, else measured on
        the training split in one streaming pass."""
        array = self.train_data.arrays[source]
        channels = array.shape[1]
        measured = self.train_data.channel_statistics.get(source) or {}
        if len(measured.get("mean") or []) == channels and len(measured.get("std") or []) == channels:
            mean = numpy.asarray(measured["mean"], dtype=numpy.float64).reshape(channels, 1, 1)
            std = numpy.asarray(measured["std"], dtype=numpy.float64).reshape(channels, 1, 1)
            return Standardizer(mean=mean, std=numpy.where(std > 0, std, 1.0))
        log.info("dataset '%s' has no per-channel statistics of '%s' for %s channels; measuring them on the "
                 "training split", self.train_data.name, source, channels)
        return Standardizer().fit(array, axes=(0, 2, 3))

    def _prepared(self, dataset: Dataset) -> dict:
        """Each graph input's rows: in-memory arrays standardized and on the model's device, once;
        a memory-mapped store's arrays as they are, prepared a batch at a time (``_prepare_rows``)
        so they are never read whole."""
        return {name: (dataset.arrays[source] if _streamed(dataset.arrays[source])
                       else self._prepare_rows(name, _whole(dataset.arrays[source])))
                for name, source in self.feeds.items()}

    def _prepare_rows(self, name: str, array, *, fresh: bool = False):
        """Rows of input ``name`` standardized and converted to its dtype on the model's device;
        ``fresh`` rows (a batch gathered from a store: a copy nobody else holds) are standardized
        in place."""
        standardizer = self.standardizers.get(name)
        if standardizer is not None:
            array = (standardizer.transform_float32(array, in_place=fresh and array.flags.writeable)
                     if self._in_float32(name, array) else standardizer.transform(array))
        return self.model.xp.asarray(array, dtype=self._input_dtype(name))

    def _input_dtype(self, name: str) -> str:
        """The dtype input ``name`` is fed in: the model's float type for a float input."""
        declared = self.model.input_types[name].dtype
        return self.model.dtype if declared in FLOAT_DTYPES else declared

    def _in_float32(self, name: str, array) -> bool:
        """Whether ``array``'s rows for input ``name`` are standardized in float32 all the way
        (float32 rows, fed as float32): a store's batches pay the preparation every step."""
        return array.dtype == numpy.float32 and self._input_dtype(name) == "float32"

    def _finish_batch(self, prepared: dict, batch: dict) -> dict:
        """A batch taken from ``_prepared`` arrays with the streamed inputs' rows prepared."""
        for name, rows in batch.items():
            if _streamed(prepared[name]):
                batch[name] = self._prepare_rows(name, rows)
        return batch

    def _augmented(self, batch: dict, share: slice, global_size: int) -> dict:
        """The training batch's images cropped and flipped as the run's options say, drawn for the
        global batch from (seed, epoch, step), so a resumed run and any worker count draw alike."""
        config = self.config
        if not self.image_inputs or not (config.random_crop_padding or config.horizontal_flip):
            return batch
        rng = batch_generator(seed=config.seed, epoch=self.epoch, step=self.step)
        draws = draw_augmentation(rng, rows=global_size, padding=config.random_crop_padding,
                                  flip=config.horizontal_flip).share(share.start, share.stop)
        for name in self.image_inputs:
            batch[name] = augment_images(batch[name], draws)
        return batch

    # -- events and control ---------------------------------------------------------------------
    def on(self, event: str, callback: Callable[[dict], None]) -> Trainer:
        if event not in self._listeners:
            raise EngineError(f"unknown event '{event}'; events are {', '.join(EVENTS)}")
        self._listeners[event].append(callback)
        return self

    def _emit(self, event: str, payload: dict) -> None:
        for callback in self._listeners[event]:
            callback(payload)

    def cancel(self) -> None:
        """Ask the loop to stop; it does so after the batch in progress."""
        self._cancel.set()

    # -- the loop -------------------------------------------------------------------------------
    def _probabilities(self, values):
        """Model scores turned into what metrics expect (probabilities for classifiers)."""
        scores = backend.to_numpy(values).astype(numpy.float64)
        if self.link == "identity":
            return self._unstandardize_target(scores)
        return link_scores(scores, self.link)

    def _unstandardize_target(self, values):
        standardizer = self.standardizers.get(self.label_input) if self.label_input else None
        return values if standardizer is None else standardizer.inverse_transform(values)

    def _new_metrics(self) -> dict:
        return {self._metric_name(spec): metrics_module.get(spec) for spec in self.metric_specs}

    @staticmethod
    def _metric_name(spec) -> str:
        if isinstance(spec, str):
            return spec
        name = spec["name"]
        options = "_".join(f"{v}" for k, v in sorted(spec.items()) if k != "name")
        return f"{name}_{options}" if options else name

    def run(self) -> TrainResult:
        """Train until the configured epoch count, early stop or cancel; returns the result. With
        ``threads`` the engine computes on that many threads meanwhile (``engine.parallel``)."""
        if self.threads is None:
            return self._run()
        with parallel.threads(self.threads):
            return self._run()

    def _run(self) -> TrainResult:
        config = self.config
        train = self._prepared(self.train_data)
        raw_labels = self.train_data.arrays[self.feeds[self.label_input]] if self.label_input else None
        validation = (self._prepared(self.validation_data)
                      if self.validation_data is not None and len(self.validation_data) else None)
        n = len(self.train_data)
        batches = n // config.batch_size if config.drop_last else math.ceil(n / config.batch_size)
        self._emit("train_begin", {"epochs": config.epochs, "steps_per_epoch": batches,
                                   "parameters": self.model.parameter_count(), "resumed_from_epoch": self.epoch})
        status = "succeeded"
        checkpoint_path = None
        params = self.model.params
        want_scores = bool(self.metric_specs) and config.train_metrics and self.prediction_key is not None
        targets = (self.prediction_key,) if want_scores else ()
        while self.epoch < config.epochs:
            epoch_start = time.perf_counter()
            order = self.shuffle_rng.permutation(n)
            running = self._new_metrics() if want_scores else {}
            loss_sum, seen = 0.0, 0
            for index, (batch, rows, global_size, share) in enumerate(self._ready_batches(train, order)):
                size = len(rows)
                observer = None  # a sampled step's layer statistics watch its forward pass
                if size:
                    batch = self._augmented(batch, share, global_size)
                    observer = self.layer_stats.begin_step(self.step + 1) if self.layer_stats else None
                    ready = getattr(self.reduce_gradients, "gradient_ready", None)  # see the class docstring
                    loss, values, grads = self.model.loss_and_grads(
                        batch, value_keys=targets, observer=observer,
                        on_gradient=ready and functools.partial(ready, rows=size, batch_rows=global_size))
                else:  # an empty share of a small last batch: it adds nothing to the sum
                    loss, values, grads = 0.0, {}, {key: self.model.xp.zeros_like(p) for key, p in params.items()}
                if self.reduce_gradients is not None:
                    grads, loss = self.reduce_gradients(grads, loss, size, global_size)
                if not math.isfinite(loss):
                    if self.layer_stats is not None and size:  # which node produced the first NaN or Inf
                        self._emit("layer_stats", self.layer_stats.non_finite_loss(
                            batch, step=self.step + 1, epoch=self.epoch + (index + 1) / batches, loss=loss))
                    raise EngineError(
                        f"the loss became {loss} at epoch {self.epoch + 1}, batch {index + 1}: lower the learning rate "
                        "or check the data for extreme values"
                    )
                if observer is not None:
                    self.layer_stats.after_backward(grads)
                if grads is not None:  # None: the reducer applied the update itself (e.g. a parameter server)
                    self.optimizer.step(params, grads)
                for key, saved in self._frozen_buffers.items():
                    self.model.buffers[key][...] = saved
                self.step += 1
                if observer is not None:
                    self._emit("layer_stats", self.layer_stats.after_update(epoch=self.epoch + (index + 1) / batches))
                loss_sum += loss * global_size
                seen += global_size
                if want_scores and size:
                    labels = raw_labels[rows]
                    probabilities = self._probabilities(values[self.prediction_key])
                    for metric in running.values():
                        metric.update(labels, probabilities)
                elapsed = time.perf_counter() - epoch_start
                self._emit("batch_end", {
                    "epoch": self.epoch + 1, "batch": index + 1, "batches": batches, "step": self.step,
                    "loss": loss, "samples_per_second": seen / elapsed if elapsed > 0 else 0.0, "lr": self.optimizer.lr,
                })
                if self._cancel.is_set():
                    break
            if self._cancel.is_set():
                status = "cancelled"
                break
            self.epoch += 1
            seconds = time.perf_counter() - epoch_start
            record = {
                "epoch": self.epoch, "step": self.step, "loss": loss_sum / max(seen, 1),
                "metrics": _results(running),
                "samples_per_second": seen / seconds if seconds > 0 else 0.0, "seconds": seconds,
                "lr": self.optimizer.lr,
            }
            if validation is not None:
                val_loss, val_metrics = self._evaluate_prepared(validation, self.validation_data)
                record["val_loss"], record["val_metrics"] = val_loss, val_metrics
            self.history.append(record)
            stop = self._update_early_stopping(record)
            self._emit("epoch_end", record)
            if config.checkpoint_dir:
                checkpoint_path = str(self.save_checkpoint(config.checkpoint_dir))
                self._emit("checkpoint", {"epoch": self.epoch, "path": checkpoint_path})
            if stop:
                status = "stopped_early"
                break
        if (status == "stopped_early" and self.early["best_weights"] is not None
                and early_stopping_option(config.early_stopping or {}, "restore_best")):
            self.model.load_state_arrays(self.early["best_weights"], source="best epoch")
        self._emit("train_end", {"status": status, "epochs_completed": self.epoch})
        best = None
        if self.early["best_epoch"] is not None:
            best = next((r for r in self.history if r["epoch"] == self.early["best_epoch"]), None)
        return TrainResult(status, self.epoch, self.step, self.history, self.history[-1] if self.history else {},
                           best, checkpoint_path)

    def _ready_batches(self, train: dict, order: numpy.ndarray):
        """``_batches``; where a store's rows are not all in the page cache, its next batch is read
        and prepared on a thread while the model computes the current one (then reading waits on
        the disk). Rows in the cache are read in line: a second thread would only take a core from
        the model's threads (4-10% of an MLP's steps, measured)."""
        batches = self._batches(train, order)
        waits = any(_streamed(array) and _waits_on_disk(array) for array in train.values())
        return _read_ahead(batches) if waits else batches

    def _batches(self, train: dict, order: numpy.ndarray):
        """Each step's (batch of this worker's rows, their row indices, the global batch's size,
        the slice of the global batch they are); a store's rows are gathered and prepared
        (``_gather_rows``), in-memory arrays were prepared whole."""
        config = self.config
        rank, world_size = self.shard or (0, 1)
        xp = self.model.xp
        n = len(order)
        batches = n // config.batch_size if config.drop_last else math.ceil(n / config.batch_size)
        for index in range(batches):
            global_rows = order[index * config.batch_size:(index + 1) * config.batch_size]
            base, extra = divmod(len(global_rows), world_size)
            start = rank * base + min(rank, extra)
            rows = global_rows[start:start + base + (rank < extra)]
            device_rows = xp.asarray(rows)
            yield ({key: self._gather_rows(key, array, rows) if _streamed(array) else array[device_rows]
                    for key, array in train.items()}, rows, len(global_rows), slice(start, start + len(rows)))

    def _gather_rows(self, name: str, array, rows: numpy.ndarray):
        """Rows ``rows`` of a store's array for input ``name``, prepared: standardized float32 rows
        in one pass over them where that is all the preparation (``Standardizer.gather_float32``)."""
        standardizer = self.standardizers.get(name)
        if standardizer is not None and self._in_float32(name, array):
            return self.model.xp.asarray(standardizer.gather_float32(array, rows))
        return self._prepare_rows(name, array[rows], fresh=True)

    def _update_early_stopping(self, record: dict) -> bool:
        options = self.config.early_stopping
        if not options:
            return False
        monitor = early_stopping_option(options, "monitor") or ("val_loss" if "val_loss" in record else "loss")
        value = record.get(monitor)
        if value is None:
            if monitor.startswith("val_"):
                value = record.get("val_metrics", {}).get(monitor.removeprefix("val_"))
            else:
                value = record["metrics"].get(monitor)
        if value is None:
            raise EngineError(f"early stopping monitors '{monitor}', which this run does not report")
        mode = early_stopping_option(options, "mode") or (
            "min" if "loss" in monitor or monitor in ("mse", "mae") else "max")
        delta = float(early_stopping_option(options, "min_delta"))
        best = self.early["best"]
        improved = best is None or (value < best - delta if mode == "min" else value > best + delta)
        if improved:
            self.early.update(best=value, best_epoch=self.epoch, wait=0)
            if early_stopping_option(options, "restore_best"):
                self.early["best_weights"] = {k: v.copy() for k, v in self.model.state_arrays().items()}
            return False
        self.early["wait"] += 1
        return self.early["wait"] >= int(early_stopping_option(options, "patience"))

    # -- evaluation and prediction -------------------------------------------------------------
    def _evaluate_prepared(self, prepared: dict, dataset: Dataset) -> tuple[float, dict]:
        model = self.model
        loss_key = model.loss_key
        keys = (loss_key, self.prediction_key) if self.prediction_key else (loss_key,)
        metrics = self._new_metrics()
        total, seen = 0.0, 0
        n = len(dataset)
        labels_all = dataset.arrays[self.feeds[self.label_input]] if self.label_input else None
        for start in range(0, n, 1024):
            chunk = self._finish_batch(prepared, {k: v[start:start + 1024] for k, v in prepared.items()})
            values, _ = model.run(chunk, keys, training=False)
            size = len(next(iter(chunk.values())))
            total += float(values[loss_key]) * size
            seen += size
            if metrics and labels_all is not None:
                probabilities = self._probabilities(values[self.prediction_key])
                for metric in metrics.values():
                    metric.update(labels_all[start:start + size], probabilities)
        return total / max(seen, 1), _results(metrics)

    def evaluate(self, dataset: Dataset) -> dict:
        """Loss and metrics on a dataset, in eval mode."""
        loss, metrics = self._evaluate_prepared(self._prepared(dataset), dataset)
        return {"loss": loss, **metrics}

    # -- saving ---------------------------------------------------------------------------------
    def input_schema(self) -> dict:
        data = self.train_data
        return {
            "inputs": {
                name: {
                    **self.model.input_types[name].to_json(),
                    "source": source,
                    "standardization": self.standardizers[name].to_dict() if name in self.standardizers else None,
                }
                for name, source in self.feeds.items()
            },
            "label_input": self.label_input,
            "prediction": self.prediction_key,
            "link": self.link,
            "task": data.task,
            "num_classes": data.num_classes,
            "label_names": data.label_names,
            "feature_names": data.feature_names,
            "dataset": data.name,
        }

    def _trainer_state(self, optimizer_meta: dict) -> dict:
        return {
            "format": "netforge.trainer/1",
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "shuffle_rng": self.shuffle_rng.bit_generator.state,
            "model_rng": self.model.rng_state(),
            "optimizer": optimizer_meta,
            "history": self.history,
            "early_stopping": {k: v for k, v in self.early.items() if k != "best_weights"},
            "feeds": self.feeds,
        }

    def save_checkpoint(self, folder: str | Path) -> Path:
        """Everything needed to resume exactly, written atomically to ``folder``."""
        optimizer_arrays, optimizer_meta = self.optimizer.state_dict()
        extra_arrays = {f"best/{k}": v for k, v in (self.early["best_weights"] or {}).items()}
        return serialization.write_artifact(
            folder, spec=self.spec, weights=self.model.state_arrays(), input_schema=self.input_schema(),
            optimizer_arrays={**{k: backend.to_numpy(v) for k, v in optimizer_arrays.items()}, **extra_arrays},
            trainer_state=self._trainer_state(optimizer_meta),
        )

    def save_model(self, folder: str | Path) -> Path:
        """The trained model alone (graph, weights, manifest with the input schema)."""
        return serialization.write_artifact(
            folder, spec=self.spec, weights=self.model.state_arrays(), input_schema=self.input_schema(),
            extra={"metrics": self.history[-1] if self.history else {}},
        )

    @classmethod
    def resume(cls, checkpoint: str | Path, train: Dataset, validation: Dataset | None = None, *,
               epochs: int | None = None, feeds: dict | None = None, shard: tuple[int, int] | None = None,
               reduce_gradients: Callable | None = None) -> Trainer:
        """A trainer restored from a checkpoint, ready to ``run()`` the remaining epochs (``shard``
        and ``reduce_gradients`` as in the constructor: a checkpoint resumes on any worker count)."""
        artifact = serialization.read_artifact(checkpoint)
        state = artifact.trainer_state
        if state is None or artifact.optimizer_arrays is None:
            raise ArtifactError(f"{checkpoint}: a saved model, not a checkpoint (no trainer state); "
                                "it cannot be resumed")
        config = dict(state["config"])
        config["init_from"] = None  # the checkpoint holds the weights (the source may be gone)
        if epochs is not None:
            config["epochs"] = epochs
        standardizers = {name: Standardizer.from_dict(schema["standardization"])
                         for name, schema in artifact.manifest["input_schema"]["inputs"].items()
                         if schema.get("standardization") is not None}
        trainer = cls(artifact.spec, train, validation, config=config, feeds=feeds or state.get("feeds"),
                      shard=shard, reduce_gradients=reduce_gradients, standardizers=standardizers)
        trainer.model.load_state_arrays(artifact.weights, source=str(Path(checkpoint) / serialization.WEIGHTS_FILE))
        best = {k[5:]: v for k, v in artifact.optimizer_arrays.items() if k.startswith("best/")}
        optimizer_arrays = {k: v for k, v in artifact.optimizer_arrays.items() if not k.startswith("best/")}
        xp = trainer.model.xp
        trainer.optimizer.load_state_dict({k: xp.asarray(v) for k, v in optimizer_arrays.items()}, state["optimizer"])
        trainer.epoch, trainer.step = state["epoch"], state["step"]
        trainer.shuffle_rng.bit_generator.state = state["shuffle_rng"]
        trainer.model.set_rng_state(state.get("model_rng"))
        trainer.history = list(state["history"])
        trainer.early.update(state["early_stopping"])
        trainer.early["best_weights"] = best or None
        return trainer


def _read_ahead(items):
    """The items of an iterator, the next one taken on a thread while the caller uses this one
    (NumPy's gathers release the GIL, and so does a page fault's wait); same items, same order."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netforge-read-ahead") as pool:
        iterator = iter(items)
        pending = pool.submit(next, iterator, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, iterator, None)
            yield item


def _waits_on_disk(array) -> bool:
    """Whether reading a store's array may wait on the disk: under ``RESIDENT_SHARE`` of its pages
    are in the page cache, or that cannot be told."""
    share = resident_share(array)
    return share is None or share < RESIDENT_SHARE


def _whole(array):
    """An in-memory array as it is (NumPy or CuPy), a lazy selection of its rows read into one."""
    return numpy.asarray(array) if isinstance(array, RowSelection) else array


def _streamed(array) -> bool:
    """Whether an input's array is read a batch at a time: a memory-mapped store's (or rows of
    one), which may be larger than memory; in-memory arrays are prepared whole, once."""
    return is_mapped(array)


def _results(metrics: dict) -> dict:
    """Each metric's value, or None where the data cannot define it (one class seen for ROC-AUC)."""
    values = {}
    for name, metric in metrics.items():
        try:
            values[name] = metric.result()
        except EngineError as error:
            log.info("metric %s undefined on this data: %s", name, error)
            values[name] = None
    return values


def fit(spec: dict, dataset: Dataset | str, validation: Dataset | None = None, *,
        callbacks: dict[str, Callable] | None = None, feeds: dict | None = None, save_to: str | None = None,
        threads: int | None = None, **options) -> tuple[Trainer, TrainResult]:
    """Train a graph on a dataset (or a built-in dataset's name) in one call.

    ``options`` are ``TrainConfig`` fields (epochs, batch_size, optimizer, metrics, seed, ...);
    ``threads`` is the engine's thread count while training (default: ``NETFORGE_THREADS`` or the
    usable cores). Returns the trainer (its ``model`` is trained) and the result.
    """
    from engine.data import load  # noqa: PLC0415

    if isinstance(dataset, str):
        dataset = load(dataset, seed=options.get("seed", 0))
    trainer = Trainer(copy.deepcopy(spec), dataset, validation, config=TrainConfig.from_dict(options), feeds=feeds,
                      threads=threads)
    for event, callback in (callbacks or {}).items():
        trainer.on(event, callback)
    result = trainer.run()
    if save_to:
        trainer.save_model(save_to)
    return trainer, result
