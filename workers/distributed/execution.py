"""A distributed run on the platform: the services behind the Celery tasks ``train_run_rank`` and
``serve_run_parameters`` (``workers.tasks``).

A run with ``workers`` N > 1 is queued as N rank tasks (and a parameter-server task for the "ps"
strategy) under one group name, the run's ``task_id`` (``webapp.runs.dispatch.send_training``). Each task:

1. joins the group's rendezvous in Redis (``REDIS_URL``) with its gRPC address; if the group is not
   complete within ``NETFORGE_DISTRIBUTED_RENDEZVOUS_SECONDS`` (60 s), the queued run fails with
   the reason (which ranks are missing) and every task that came returns, except when the run
   resumes (its attempt after the first): then it trains with the workers that came, at least one,
   ranked in slot order (the global batch, and so the result, is the same for any count);
2. rank 0 claims the run (queued -> running, one more attempt) exactly as a single-worker run does,
   picks the checkpoint to resume from, and tells the others (``start``); it alone records points
   and checkpoints through the run's ``RunRecorder``, whose heartbeat keeps the watchdog away;
3. every rank trains its shard of each global batch (``engine.Trainer(shard=...)``) and all-reduces
   the fused gradient buffer each step; each publishes its own step, throughput, bytes sent and
   state to the run's live stream (``run.worker`` messages, ``webapp.runs.live``);
4. cancel (or the recorder losing the run) reaches rank 0, which raises the stop flag of the next
   all-reduce: all ranks stop after the same step.

Faults: a rank or the server that dies or stops answering is seen by the others within
``LIVENESS_SECONDS + HEARTBEAT_SECONDS`` (``workers.distributed.rendezvous``); every collective
then fails at once, each task returns, and rank 0 (or, if rank 0 is the one gone, whichever rank
acts first) calls ``workers.watchdog.resume_or_fail``: the run is queued again as a fresh group of
N tasks that resumes from the last checkpoint (Celery's prefork pool replaces a killed process),
or it fails with the reason when there is no checkpoint or no attempt left. Should every rank die
at once, the watchdog sees rank 0's heartbeat stop and does the same.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from django.conf import settings

from engine import parallel
from engine.errors import EngineError
from webapp.datasets.selectors import load_engine_dataset
from webapp.runs import lifecycle, live
from webapp.runs.models import Run
from workers import training
from workers.distributed.errors import DistributedError, LateForRendezvous, RendezvousError
from workers.distributed.rendezvous import RENDEZVOUS_SECONDS, SERVER_RANK
from workers.distributed.worker import DataParallelWorker, serve_parameters
from workers.evaluation import record_run_evaluation
from workers.recording import open_recorder
from workers.watchdog import resume_or_fail

log = logging.getLogger(__name__)

STATUS_INTERVAL_SECONDS = 0.5
FIRST_STEP_POLL_SECONDS = 0.02


def advertised_host() -> str:
    """The address other machines reach this worker's gRPC server at (``NETFORGE_DISTRIBUTED_HOST``;
    the loopback by default, so one machine works out of the box)."""
    return os.environ.get("NETFORGE_DISTRIBUTED_HOST", "127.0.0.1")


def collective_timeout() -> float:
    return float(os.environ.get("NETFORGE_COLLECTIVE_TIMEOUT_SECONDS", "60"))


def threads_of_rank(worker: DataParallelWorker) -> int | None:
    """The engine threads of one rank: the cores this process may use, split evenly between the
    group's workers on this machine (the lower ranks take what does not divide), so that ranks
    sharing a machine do not each run on every core; None, the engine's own default, when
    ``NETFORGE_THREADS`` says how many threads every process uses."""
    if os.environ.get(parallel.ENVIRONMENT_VARIABLE, "").strip():
        return None
    host = socket.gethostname()
    local = sorted(rank for rank, member in worker.rendezvous.members.items()
                   if rank != SERVER_RANK and member.get("host") == host)
    if len(local) <= 1 or worker.rank not in local:
        return None
    share, extra = divmod(parallel.default_threads(), len(local))
    return max(1, share + (local.index(worker.rank) < extra))


class StatusPublisher:
    """A thread that publishes one process's ``run.worker`` message every ``STATUS_INTERVAL_SECONDS``,
    and one as soon as its first step is done (a run shorter than the interval is still seen training)."""

    def __init__(self, run_id: int, *, rank: int, world_size: int, strategy: str, read):
        self.run_id, self.rank, self.world_size, self.strategy, self.read = run_id, rank, world_size, strategy, read
        self.state = "starting"
        self.error = ""
        self._stop = threading.Event()
        self._last = (time.monotonic(), 0)
        self._thread = threading.Thread(target=self._loop, name=f"run-{run_id}-rank-{rank}-status", daemon=True)

    def start(self) -> StatusPublisher:
        self._thread.start()
        return self

    def _message(self) -> dict:
        step, rows, bytes_sent = self.read()
        now = time.monotonic()
        then, rows_then = self._last
        self._last = (now, rows)
        return live.worker_message(run_id=self.run_id, rank=self.rank, world_size=self.world_size,
                                   strategy=self.strategy, host=f"{socket.gethostname()}:{os.getpid()}",
                                   state=self.state, step=step, bytes_sent=bytes_sent, error=self.error,
                                   samples_per_second=(rows - rows_then) / (now - then) if now > then else 0.0)

    def _loop(self) -> None:
        began_at_step = None
        while not self._stop.wait(FIRST_STEP_POLL_SECONDS):
            if self.state != "running":
                continue
            step = self.read()[0]
            if began_at_step is None:
                began_at_step = step
            elif step > began_at_step:
                live.send_to_run(self.run_id, self._message())
                break
        while not self._stop.wait(STATUS_INTERVAL_SECONDS):
            live.send_to_run(self.run_id, self._message())

    def stop(self, state: str, error: str = "") -> None:
        self.state, self.error = state, error
        self._stop.set()
        self._thread.join(timeout=5)
        live.send_to_run(self.run_id, self._message())


def rank_execute(run_id: int, *, group: str, rank: int) -> str:
    """One rank of a distributed run; returns the run's final state (rank 0), "done", "skipped",
    or "failed"."""
    run = Run.objects.select_related("graph_version", "dataset").get(pk=run_id)
    if run.task_id != group or run.state not in (Run.State.QUEUED, Run.State.RUNNING):
        log.info("run %s: rank %s task of group %s is not current; skipped", run_id, rank, group)
        return "skipped"
    hyperparameters = run.hyperparameters or {}
    strategy, world_size = hyperparameters.get("strategy", "allreduce"), run.workers
    worker = DataParallelWorker(settings.REDIS_URL, group, rank=rank, world_size=world_size, strategy=strategy,
                                dtype=hyperparameters.get("dtype", "float32"), host=advertised_host(),
                                timeout=collective_timeout(), min_world_size=_min_world_size(run),
                                staleness=hyperparameters.get("staleness"))
    status = StatusPublisher(run_id, rank=rank, world_size=world_size, strategy=strategy,
                             read=lambda: _progress(worker))
    try:
        worker.join()
    except LateForRendezvous as error:
        worker.collective.close()
        log.info("run %s: %s; skipped", run_id, error)
        return "skipped"
    except RendezvousError as error:
        worker.collective.close()
        _fail_start(run_id, group, f"the distributed run could not start: {error}")
        return "failed"
    except DistributedError as error:  # a member failed while the group connected its collective
        worker.abort(str(error))
        _fail_start(run_id, group, f"the distributed run could not start: {error}")
        return "failed"
    status.rank, status.world_size = worker.rank, worker.world_size  # the group's, as it started
    status.start()
    try:
        if worker.rank == 0:
            return _execute_rank_zero(run_id, group, worker, status)
        return _execute_other_rank(run_id, group, worker, status)
    finally:
        worker.collective.close()


def _min_world_size(run: Run) -> int | None:
    """A run's first execution starts with all its workers or not at all; a resumed one (a restart
    after a fault, or the user's resume) trains with the workers it can gather within the timeout."""
    return 1 if run.attempt else None


def _progress(worker: DataParallelWorker) -> tuple[int, int, int]:
    reducer = worker.reducer
    start = getattr(worker, "start_step", 0)
    return (start + reducer.steps, reducer.rows, worker.bytes_sent) if reducer else (start, 0, worker.bytes_sent)


def _execute_rank_zero(run_id: int, group: str, worker: DataParallelWorker, status: StatusPublisher) -> str:
    # queued -> running: only the group's rank 0 does this
    run = lifecycle.run_claim(run_id=run_id, worker=training.worker_name(), task_id=group)
    if run is None:
        reason = f"run {run_id} is no longer queued under {group} (cancelled or taken over)"
        worker.abort(reason)
        status.stop("stopped", reason)
        return "skipped"
    log.info("run %s: attempt %s, rank 0 of %s (of %s planned, %s) on %s", run.pk, run.attempt, worker.world_size,
             run.workers, worker.strategy, run.worker)
    publisher = live.RunPublisher(run.pk)
    publisher.publish_state(run, attempts=1)
    recorder = open_recorder(run.pk, attempt=run.attempt, first_sequence=run.last_sequence + 1, publisher=publisher)
    recorder.start()
    failure = None
    time_limit = training.TimeLimit(run.pk, float(settings.RUN_MAX_SECONDS))
    try:
        with training.memory_limit(run), time_limit:
            dataset = load_engine_dataset(run.dataset)
            trainer, checkpoint = training.build_trainer(run, dataset, list(run.checkpoints.order_by("-epoch")),
                                                         shard=(0, worker.world_size))
            worker.start_step = trainer.step
            trainer.threads = threads_of_rank(worker)
            worker.rendezvous.publish("start", {"attempt": run.attempt,
                                                "checkpoint": checkpoint.path if checkpoint else None})
            trainer.reduce_gradients = worker.make_reducer(trainer.model.params, on_stop=trainer.cancel,
                                                           order=trainer.model.gradient_order())
            recorder.skip(training.points_stored_after(run, checkpoint))
            training.record_training(trainer, recorder, run.pk)
            # A cancel, or the time limit, goes through the next all-reduce, to every rank.
            recorder.watch(worker.reducer)
            time_limit.watch(worker.reducer)
            status.state = "running"
            result = trainer.run()
            outcome = training.outcome_of(result)
            if outcome["state"] == Run.State.CANCELLED and time_limit.expired and not recorder.cancel_requested:
                outcome = time_limit.outcome(result)
            if outcome["state"] == Run.State.SUCCEEDED:
                record_run_evaluation(run.pk, trainer, dataset)
    except training.RunOutOfMemory as error:
        log.warning("run %s failed: %s", run.pk, error)
        outcome = {"state": Run.State.FAILED, "error": str(error)}
        worker.abort(f"worker rank 0 failed: {error}")
    except DistributedError as error:
        log.warning("run %s: the group failed: %s", run.pk, error)
        failure = str(error)
        worker.abort(failure)
    except EngineError as error:
        log.info("run %s failed: %s", run.pk, error)
        outcome = {"state": Run.State.FAILED, "error": str(error)}
        worker.abort(f"worker rank 0 failed: {error}")
    except Exception as error:  # a run must end in a state, whatever happened
        log.exception("run %s: unexpected error", run.pk)
        outcome = {"state": Run.State.FAILED,
                   "error": f"internal error while training: {type(error).__name__}: {error}"}
        worker.abort(f"worker rank 0 failed: {type(error).__name__}")
    finally:
        recorder.close()
    if failure is not None:
        status.stop("failed", failure)
        return _resume_or_fail(run.pk, run.attempt, group, failure) or "failed"
    if outcome["state"] != Run.State.FAILED:
        worker.finish(str(outcome["state"]))  # the parameter server reports it as its own
    status.stop(outcome["state"], outcome.get("error", ""))
    if recorder.superseded:
        return "superseded"
    finished = lifecycle.run_finish(run_id=run.pk, attempt=run.attempt, **outcome)
    if finished is None:
        log.warning("run %s: attempt %s no longer owns the run; outcome %s not recorded", run.pk, run.attempt, outcome)
        return "superseded"
    publisher.publish_state(finished)
    log.info("run %s: %s", run.pk, finished.state)
    return finished.state


def _execute_other_rank(run_id: int, group: str, worker: DataParallelWorker, status: StatusPublisher) -> str:
    rank = worker.rank
    try:
        start = worker.rendezvous.wait_for("start", timeout=RENDEZVOUS_SECONDS)
        run = Run.objects.select_related("graph_version", "dataset").get(pk=run_id)
        with training.memory_limit(run):
            dataset = load_engine_dataset(run.dataset)
            checkpoint = run.checkpoints.filter(path=start["checkpoint"]).first() if start["checkpoint"] else None
            trainer, _ = training.build_trainer(run, dataset, [checkpoint] if checkpoint else [],
                                                shard=(rank, worker.world_size))
            worker.start_step = trainer.step
            trainer.threads = threads_of_rank(worker)
            trainer.reduce_gradients = worker.make_reducer(trainer.model.params, on_stop=trainer.cancel,
                                                           order=trainer.model.gradient_order())
            status.state = "running"
            result = trainer.run()
    except DistributedError as error:
        log.warning("run %s: rank %s: the group failed: %s", run_id, rank, error)
        worker.abort(str(error))
        status.stop("failed", str(error))
        # Rank 0 decides what becomes of the run, unless rank 0 is the one that failed.
        if getattr(error, "rank", None) == 0:
            _resume_or_fail(run_id, start_attempt(worker), group, str(error))
        return "failed"
    except Exception as error:  # the group must hear of it, or it waits for this rank
        log.exception("run %s: rank %s failed", run_id, rank)
        reason = f"worker rank {rank} failed: {type(error).__name__}: {error}"
        worker.abort(reason)
        status.stop("failed", reason)
        return "failed"
    state = result.status if result.status != "stopped_early" else "succeeded"
    worker.finish(state)
    status.stop(state)
    return "done"


def start_attempt(worker: DataParallelWorker) -> int | None:
    try:
        return worker.rendezvous.wait_for("start", timeout=0)["attempt"]
    except DistributedError:
        return None


def parameter_server_execute(run_id: int, *, group: str) -> str:
    """The parameter server of a distributed run with the "ps" strategy."""
    run = Run.objects.get(pk=run_id)
    if run.task_id != group or run.state not in (Run.State.QUEUED, Run.State.RUNNING):
        log.info("run %s: parameter server task of group %s is not current; skipped", run_id, group)
        return "skipped"
    hyperparameters = run.hyperparameters or {}
    serving = {}
    # The server's live status: steps summed so far, bytes sent (it has no rows of its own).
    status = StatusPublisher(run_id, rank=SERVER_RANK, world_size=run.workers, strategy="ps", read=lambda: (
        (serving["server"].collectives_completed, 0, serving["server"].counter.payload) if serving else (0, 0, 0)))

    def on_serving(server) -> None:
        serving["server"] = server
        status.world_size = server.world_size
        status.state = "running"
        status.start()

    try:
        server = serve_parameters(settings.REDIS_URL, group, world_size=run.workers,
                                  dtype=hyperparameters.get("dtype", "float32"), host=advertised_host(),
                                  timeout=collective_timeout(), min_world_size=_min_world_size(run),
                                  staleness=hyperparameters.get("staleness"),
                                  optimizer=hyperparameters.get("optimizer"), on_serving=on_serving)
    except RendezvousError as error:
        _fail_start(run_id, group, f"the distributed run could not start: {error}")
        return "failed"
    except DistributedError as error:
        log.warning("run %s: parameter server: the group failed: %s", run_id, error)
        if serving:
            status.stop("failed", str(error))
        return "failed"
    status.stop(server.final_state or "succeeded")  # as worker rank 0 left: "cancelled" for a cancelled run
    return "done"


def _fail_start(run_id: int, group: str, reason: str) -> None:
    if lifecycle.run_fail(run_id=run_id, error=reason, from_state=lifecycle.QUEUED, task_id=group) is not None:
        log.warning("run %s: %s", run_id, reason)


def _resume_or_fail(run_id: int, attempt: int | None, group: str, reason: str) -> str | None:
    run = Run.objects.filter(pk=run_id).first()
    if run is None or attempt is None:
        return None
    return resume_or_fail(run, stopped=f"the distributed run lost a process: {reason}", attempt=attempt, task_id=group)
