"""Executing a run on a worker: the service behind ``workers.tasks.train_run``.

``run_execute`` claims the queued run for its task, builds an ``engine.Trainer`` from the run's
graph version, dataset and hyperparameters (or resumes it from the run's last checkpoint), trains
it while a ``RunRecorder`` writes and publishes every point, beats the heartbeat and watches for
cancel, saves a checkpoint every epoch, and records the outcome: succeeded with the final metrics,
cancelled, or failed with a message a user can act on.

Limits of one execution (design contract 7): a run whose user already has
``RUN_MAX_RUNNING_PER_USER`` runs training is left queued and taken up again
``RUN_DEFER_SECONDS`` later; the training may allocate at most ``RUN_MEMORY_LIMIT_BYTES`` more
in this process (``RLIMIT_DATA``: its heap and private writable maps, set for the run and restored
after it: beyond it the run fails with the limit in its error, and the worker lives on; the
dataset's memory-mapped store is read-only file pages it does not count, so a dataset larger than
the limit trains, a batch at a time); and after ``RUN_MAX_SECONDS`` the
run stops after the batch in progress, ``timed_out``, with the checkpoints it has.

Points of a run: every batch gives ``loss`` (``epoch`` fractional: 1.5 is half-way through the
second epoch); every epoch gives ``epoch_loss`` (the mean training loss), each training metric
(``accuracy``, ...), ``val_loss`` and ``val_<metric>`` where there is a validation split, and
``samples_per_second``, all at the epoch's last step.

Every change of the run's state goes through ``webapp.runs.lifecycle`` (claim, finish). The steps
a distributed run's ranks share (``build_trainer``, ``points_stored_after``, ``record_training``,
``outcome_of``) are public for ``workers.distributed.execution``.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import logging
import math
import os
import resource
import shutil
import socket
import threading
import time
from pathlib import Path

from django.conf import settings

import engine
from engine.errors import ArtifactError, EngineError
from engine.layer_stats import LayerStatsOptions
from webapp.datasets.selectors import load_engine_dataset
from webapp.projects.imported_weights import imported_weights_path
from webapp.runs import dispatch, lifecycle, live
from webapp.runs.budgets import describe_bytes
from webapp.runs.models import Checkpoint, MetricPoint, Run
from workers.evaluation import record_run_evaluation
from workers.recording import RunRecorder, open_recorder

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def checkpoint_folder(run_id: int, epoch: int) -> Path:
    return Path(settings.ARTIFACT_ROOT) / "runs" / str(run_id) / "checkpoints" / f"epoch-{epoch:04d}"


def run_execute(run_id: int, *, task_id: str | None = None) -> str:
    """Train the run if it is queued under ``task_id`` (any queued run when None); returns the
    final state, or "skipped" when the run was not this task's to execute (finished, cancelled,
    or queued again under another task), or "superseded" when another execution took it over."""
    if task_id is not None and defer_for_running_limit(run_id, task_id=task_id):
        return "deferred"
    run = lifecycle.run_claim(run_id=run_id, worker=worker_name(), task_id=task_id)
    if run is None:
        log.info("run %s: not queued under task %s; skipped", run_id, task_id)
        return "skipped"
    log.info("run %s: attempt %s on %s", run.pk, run.attempt, run.worker)
    publisher = live.RunPublisher(run.pk)
    publisher.publish_state(run, attempts=1)
    # The recorder beats the heartbeat and watches for cancel while the data loads, too.
    recorder = open_recorder(run.pk, attempt=run.attempt, first_sequence=run.last_sequence + 1, publisher=publisher)
    recorder.start()
    time_limit = TimeLimit(run.pk, float(settings.RUN_MAX_SECONDS))
    try:
        with memory_limit(run), time_limit:
            dataset = load_engine_dataset(run.dataset)
            trainer, checkpoint = build_trainer(run, dataset, list(run.checkpoints.order_by("-epoch")))
            recorder.skip(points_stored_after(run, checkpoint))
            record_training(trainer, recorder, run.pk)
            recorder.watch(trainer)
            time_limit.watch(trainer)
            if recorder.cancel_requested or run.cancel_requested:
                outcome = {"state": Run.State.CANCELLED, "epochs_completed": trainer.epoch}
            else:
                cpu_start, thread_start, wall_start = time.process_time(), time.thread_time(), time.perf_counter()
                result = trainer.run()
                outcome = outcome_of(result)
                # What the threads beside the training loop (recording, publishing) cost this process.
                log.info("run %s: trained %.2f s; training thread CPU %.2f s, other threads %.2f s, %d points "
                         "recorded", run.pk, time.perf_counter() - wall_start, time.thread_time() - thread_start,
                         (time.process_time() - cpu_start) - (time.thread_time() - thread_start),
                         recorder.points_recorded)
                if outcome["state"] == Run.State.CANCELLED and time_limit.expired and not recorder.cancel_requested:
                    outcome = time_limit.outcome(result)
                if outcome["state"] == Run.State.SUCCEEDED:  # the trained model on held-out data; never fails the run
                    record_run_evaluation(run.pk, trainer, dataset)
    except RunOutOfMemory as error:
        log.warning("run %s failed: %s", run.pk, error)
        outcome = {"state": Run.State.FAILED, "error": str(error)}
    except EngineError as error:
        log.info("run %s failed: %s", run.pk, error)
        outcome = {"state": Run.State.FAILED, "error": str(error)}
    except Exception as error:  # a run must end in a state, whatever happened
        log.exception("run %s: unexpected error", run.pk)
        outcome = {"state": Run.State.FAILED,
                   "error": f"internal error while training: {type(error).__name__}: {error}"}
    finally:
        trainer = dataset = None  # the run's arrays go before the next run measures its own memory
        recorder.close()
    if recorder.superseded:
        return "superseded"
    finished = lifecycle.run_finish(run_id=run.pk, attempt=run.attempt, **outcome)
    if finished is None:
        log.warning("run %s: attempt %s no longer owns the run; outcome %s not recorded", run.pk, run.attempt, outcome)
        return "superseded"
    publisher.publish_state(finished)
    log.info("run %s: %s", run.pk, finished.state)
    return finished.state


# -- limits of one execution ---------------------------------------------------------------------

def defer_for_running_limit(run_id: int, *, task_id: str) -> bool:
    """Leave a queued run queued, its message sent again ``RUN_DEFER_SECONDS`` later, while its
    user already has ``RUN_MAX_RUNNING_PER_USER`` runs training; True when it was deferred. (Two
    workers taking up one user's runs at the same instant may both pass: the limit is a share of
    the workers, not a lock.)"""
    queued = (Run.objects.filter(pk=run_id, state=Run.State.QUEUED, task_id=task_id, workers=1)
              .values_list("project__owner_id", "device").first())
    if queued is None:
        return False  # not this task's to defer: the claim decides
    owner_id, device = queued
    running = Run.objects.filter(project__owner_id=owner_id, state=Run.State.RUNNING).count()
    if running < settings.RUN_MAX_RUNNING_PER_USER:
        return False
    try:
        dispatch.send_training(run_id, device=device, task_id=task_id, countdown=settings.RUN_DEFER_SECONDS)
    except Exception as error:  # noqa: BLE001  (the broker is away: train it now rather than lose its message)
        log.warning("run %s: could not defer it for its user's running limit (%s); training it now", run_id, error)
        return False
    log.info("run %s: its user has %s runs training, the limit (NETFORGE_RUN_MAX_RUNNING_PER_USER); "
             "taken up again in %s s", run_id, running, settings.RUN_DEFER_SECONDS)
    return True


class RunOutOfMemory(EngineError):
    """The run's training needed more than the per-run memory limit."""


def _data_bytes() -> int:
    """What ``RLIMIT_DATA`` counts of this process now (its heap and private writable maps)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


_memory_limited = threading.Lock()  # held by the execution whose limit the process has now


@contextlib.contextmanager
def memory_limit(run: Run):
    """Let the run's training allocate at most ``RUN_MEMORY_LIMIT_BYTES`` more in this process
    (``RLIMIT_DATA``, restored afterwards: the memory it allocates, not the address space of the
    dataset's read-only memory map), and turn running out of it into ``RunOutOfMemory`` naming
    the limit. The limit is the process's: a prefork pool process (Celery's default) trains
    one run at a time; a second run in the same process (a thread pool) trains without one. Not
    for GPU runs: CUDA reserves address space far beyond what it uses."""
    limit_bytes = int(settings.RUN_MEMORY_LIMIT_BYTES)
    if run.device != "cpu" or limit_bytes <= 0:
        yield
        return
    if not _memory_limited.acquire(blocking=False):
        log.warning("run %s: another run in this process holds the memory limit; training without one", run.pk)
        yield
        return
    previous = resource.getrlimit(resource.RLIMIT_DATA)
    soft, hard = previous
    limit = _data_bytes() + limit_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)
    message = (f"run {run.pk} used more than the {describe_bytes(limit_bytes)} per-run memory limit "
               "(NETFORGE_RUN_MEMORY_LIMIT_MB); lower the batch size or make the model smaller")
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        yield
    except MemoryError:
        raise RunOutOfMemory(message) from None
    except OSError as error:  # an allocation by mmap refused for the same reason
        if error.errno != errno.ENOMEM:
            raise
        raise RunOutOfMemory(message) from None
    except RuntimeError as error:  # a thread's stack refused for the same reason
        if "can't start new thread" not in str(error):
            raise
        raise RunOutOfMemory(message) from None
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, previous)
        _memory_limited.release()


class TimeLimit:
    """Stops the watched trainer (after the batch in progress) once the execution has run for
    ``seconds``; a context manager whose timer runs while it is entered."""

    def __init__(self, run_id: int, seconds: float):
        self.run_id = run_id
        self.seconds = seconds
        self.expired = False
        self._trainer = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> TimeLimit:
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()

    def watch(self, trainer) -> None:
        self._trainer = trainer
        if self.expired:
            trainer.cancel()

    def _expire(self) -> None:
        log.info("run %s: stopping it at the per-run time limit of %s s", self.run_id, self.seconds)
        self.expired = True
        if self._trainer is not None:
            self._trainer.cancel()

    def outcome(self, result) -> dict:
        """The timed-out outcome of a trainer stopped by this limit: its epochs and last values."""
        return {"state": Run.State.TIMED_OUT, "final_metrics": final_metrics_of(result),
                "epochs_completed": result.epochs_completed,
                "error": f"stopped after {self.seconds:g} s, the per-run time limit (NETFORGE_RUN_MAX_SECONDS), "
                         f"with {result.epochs_completed} epoch(s) completed; its checkpoints are kept: resume "
                         "it to train on"}


# -- steps of run_execute, shared with a distributed run's ranks ---------------------------------

# Hyperparameters of the platform's distributed training (workers.distributed), not of the engine.
DISTRIBUTED_OPTIONS = ("strategy", "staleness")
# Fine-tuning's platform options: they choose init_from (starting_weights), the engine never sees them.
STARTING_WEIGHTS_OPTIONS = ("init_from_run", "init_from_import")


def build_trainer(run: Run, dataset, checkpoints: list[Checkpoint], *, shard: tuple[int, int] | None = None):
    """A new trainer, or one resumed from the newest readable checkpoint; and that checkpoint.
    ``shard`` is ``(rank, world_size)`` for a worker of a distributed run."""
    hyperparameters = {key: value for key, value in (run.hyperparameters or {}).items()
                       if key not in DISTRIBUTED_OPTIONS}
    for checkpoint in checkpoints:
        try:
            trainer = engine.Trainer.resume(checkpoint.path, dataset, epochs=hyperparameters.get("epochs"), shard=shard)
        except ArtifactError as error:
            log.warning("run %s: checkpoint of epoch %s unusable, trying an older one: %s",
                        run.pk, checkpoint.epoch, error)
            continue
        log.info("run %s: resuming from the checkpoint of epoch %s", run.pk, checkpoint.epoch)
        run.checkpoints.filter(epoch__gt=checkpoint.epoch).delete()  # the unusable ones; those epochs run again
        return trainer, checkpoint
    # Checkpoints are saved per epoch by record_training, each in its own folder.
    config = {**hyperparameters, "device": run.device, "checkpoint_dir": None,
              "init_from": starting_weights(run, hyperparameters)}
    for option in STARTING_WEIGHTS_OPTIONS:
        config.pop(option, None)
    return engine.Trainer(copy.deepcopy(run.graph_version.spec), dataset, config=config, shard=shard), None


def starting_weights(run: Run, hyperparameters: dict) -> str | None:
    """The weights a fine-tuning run starts from: its parent's newest checkpoint
    (``init_from_run``), or those its graph version was imported with (``init_from_import``)."""
    if hyperparameters.get("init_from_import"):
        path = imported_weights_path(run.graph_version)
        if path is None:
            raise EngineError(f"graph version {run.graph_version.number}'s imported weights are gone; start the run "
                              "without init_from_import")
        return str(path)
    parent_id = hyperparameters.get("init_from_run")
    if parent_id is None:
        return None
    checkpoint = Checkpoint.objects.filter(run_id=run.parent_id).order_by("-epoch").first() if run.parent_id else None
    if checkpoint is None:
        raise EngineError(f"run {parent_id}, which this run starts from, has no checkpoint left (deleted or pruned)")
    log.info("run %s: starting from run %s's checkpoint of epoch %s", run.pk, parent_id, checkpoint.epoch)
    return checkpoint.path


def points_stored_after(run: Run, checkpoint: Checkpoint | None) -> frozenset[tuple[str, int]]:
    """Points an earlier attempt stored beyond the checkpoint: the resumed trainer replays them."""
    if not run.last_sequence:
        return frozenset()
    after_step = checkpoint.step if checkpoint is not None else -1
    return frozenset(MetricPoint.objects.filter(run=run, step__gt=after_step).values_list("name", "step"))


def record_training(trainer, recorder: RunRecorder, run_id: int) -> None:
    """Hand the trainer's points to ``recorder`` (every batch's loss, every epoch's values) and its
    per-layer statistics (``LAYER_STATS_*`` settings), and save a checkpoint at the end of every epoch."""
    def on_batch_end(event: dict) -> None:
        epoch = event["epoch"] - 1 + event["batch"] / event["batches"]
        recorder.add_point("loss", step=event["step"], epoch=epoch, value=event["loss"])

    def on_epoch_end(record: dict) -> None:
        step, epoch = record["step"], record["epoch"]
        for name, value in epoch_values(record).items():
            recorder.add_point(name, step=step, epoch=epoch, value=value)
        folder = checkpoint_folder(run_id, epoch)
        if folder.exists():  # left by an attempt that died after writing it, before recording it
            shutil.rmtree(folder)
        trainer.save_checkpoint(folder)
        recorder.add_checkpoint(epoch=epoch, step=step, path=str(folder))

    trainer.on("batch_end", on_batch_end).on("epoch_end", on_epoch_end)
    if settings.LAYER_STATS_EVERY_STEPS > 0:
        trainer.watch_layers(LayerStatsOptions(every_steps=int(settings.LAYER_STATS_EVERY_STEPS),
                                               min_seconds=float(settings.LAYER_STATS_MIN_SECONDS),
                                               nodes=marked_activations(trainer.spec)))
        trainer.on("layer_stats", recorder.add_layer_stats)


def marked_activations(spec: dict) -> tuple[str, ...] | None:
    """The node ids whose outputs the graph's author marked for layer statistics (the document's
    ``metadata.layer_stats.nodes``), or None for every layer's output."""
    metadata = spec.get("metadata")
    options = metadata.get("layer_stats") if isinstance(metadata, dict) else None
    marked = options.get("nodes") if isinstance(options, dict) else None
    if marked is None:
        return None
    if not isinstance(marked, list) or not all(isinstance(node, str) for node in marked):
        raise EngineError(f"metadata.layer_stats.nodes must be a list of node ids, got {str(marked)[:100]}")
    return tuple(marked)


def epoch_values(record: dict) -> dict[str, float]:
    """The named numbers of an ``epoch_end`` record that become points (finite ones only)."""
    values = {"epoch_loss": record.get("loss")}
    values.update(record.get("metrics") or {})
    if "val_loss" in record:
        values["val_loss"] = record["val_loss"]
        values.update({f"val_{name}": value for name, value in (record.get("val_metrics") or {}).items()})
    values["samples_per_second"] = record.get("samples_per_second")
    return {name: float(value) for name, value in values.items()
            if isinstance(value, int | float) and math.isfinite(value)}


def outcome_of(result) -> dict:
    """The run's outcome (``lifecycle.run_finish``'s arguments) for the trainer's result."""
    if result.status == "cancelled":
        return {"state": Run.State.CANCELLED, "epochs_completed": result.epochs_completed}
    return {"state": Run.State.SUCCEEDED, "final_metrics": final_metrics_of(result),
            "epochs_completed": result.epochs_completed}


def final_metrics_of(result) -> dict:
    """A run's ``final_metrics``: the last epoch's values, the epochs, steps and status, the best epoch."""
    final = epoch_values(result.final) if result.final else {}
    final.pop("samples_per_second", None)
    final = {("loss" if name == "epoch_loss" else name): value for name, value in final.items()}
    final.update(epochs=result.epochs_completed, steps=result.steps, status=result.status)
    if result.best is not None:
        final["best_epoch"] = result.best["epoch"]
    return final
