"""Writes of sweeps: create, advance, cancel. The only module that writes a sweep's or a trial's state.

A sweep is advanced by ``sweep_advance``, one short transaction that any process may run at any
time, as often as it likes: it settles the trials whose runs finished, prunes the poor ones still
training, starts new trials up to the parallelism limit and the budget, and finishes the sweep when
nothing is left to run. Nothing lives in a long-lived process. It is called

- when a sweep is created (its first trials start at once);
- when a trial's run finishes, by the worker that ran it (``workers.sweeps``, on Celery's
  ``task_postrun``), so the next trial starts within a fraction of a second;
- on a periodic tick in every worker (``workers.sweeps``, every ``SWEEP_TICK_SECONDS``), which
  prunes on the epochs recorded since the last tick and makes up for any missed event (a worker
  killed mid-run: the watchdog resumes the run, and the tick sees it finish).

Concurrency: the sweep's row is locked for the transaction (``select_for_update``; SQLite takes its
write lock at BEGIN), and a trial's number is unique within its sweep, so two processes advancing one
sweep at once start each trial once: the loser's insert fails and it stands down.

Trials are ordinary runs (``webapp.runs.services.run_create``: the same validation, queueing and
record), tagged ``sweep-<id>``; a pruned trial's run is cancelled through ``webapp.runs.lifecycle``
and tagged ``pruned``. Node parameters are applied to the sweep's graph version's editor document and
saved as a graph version of their own (``<graph>-sweep-<id>``), validated like any other, because a
run trains exactly the version it points at.
"""

from __future__ import annotations

import json
import logging
import math

from django.db import IntegrityError, transaction
from django.utils import timezone

from webapp.core.exceptions import ApiError, InvalidInput
from webapp.datasets.models import Dataset
from webapp.projects.models import GraphVersion, Project
from webapp.projects.services import graph_version_create
from webapp.runs import budgets, lifecycle
from webapp.runs import services as run_services
from webapp.runs.models import MetricPoint, Run
from webapp.sweeps import pruning, sampling, space
from webapp.sweeps.models import Sweep, Trial

log = logging.getLogger(__name__)

ACTIVE_RUN_STATES = (Run.State.QUEUED, Run.State.RUNNING)


def sweep_tag(sweep_id: int) -> str:
    return f"sweep-{sweep_id}"


PRUNED_TAG = "pruned"


def metric_series(metric: str) -> str:
    """The metric points' series of a monitored metric: the epoch's training loss is ``epoch_loss``
    (``loss`` points are the batches')."""
    return "epoch_loss" if metric == "loss" else metric


# -- create -----------------------------------------------------------------------------------------

def _clean_settings(*, sampler: str, trial_budget, parallelism, direction: str | None, pruner: str,
                    parameters: list[dict], settings_module) -> None:
    if sampler not in Sweep.Sampler.values:
        raise InvalidInput(f"sampler must be one of {', '.join(Sweep.Sampler.values)}, got {sampler!r}",
                           details={"sampler": ["unknown"]})
    if pruner not in Sweep.Pruner.values:
        raise InvalidInput(f"pruner must be one of {', '.join(Sweep.Pruner.values)}, got {pruner!r}",
                           details={"pruner": ["unknown"]})
    if direction is not None and direction not in Sweep.Direction.values:
        raise InvalidInput(f"direction must be minimize or maximize, got {direction!r}",
                           details={"direction": ["unknown"]})
    most = settings_module.SWEEP_MAX_TRIALS
    if isinstance(trial_budget, bool) or not isinstance(trial_budget, int) or not 1 <= trial_budget <= most:
        raise InvalidInput(f"trial_budget must be a whole number from 1 to {most} (NETFORGE_SWEEP_MAX_TRIALS), "
                           f"got {trial_budget!r}", details={"trial_budget": ["out of range"]})
    widest = settings_module.SWEEP_MAX_PARALLELISM
    if isinstance(parallelism, bool) or not isinstance(parallelism, int) or not 1 <= parallelism <= widest:
        raise InvalidInput(f"parallelism must be a whole number from 1 to {widest}, got {parallelism!r}",
                           details={"parallelism": ["out of range"]})
    if sampler == "grid" and space.grid_size(parameters) < 1:
        raise InvalidInput("the grid is empty", details={"parameters": ["empty grid"]})


def _check_point(*, project: Project, graph_version: GraphVersion, dataset: Dataset, hyperparameters: dict,
                 parameters: list[dict]) -> None:
    """Every option value the space can take is one the engine accepts (each range's ends, each
    choice), and the graph accepts the first grid point's node parameters: a 400 naming the
    parameter now, rather than trials failing one by one."""
    for index, parameter in enumerate(parameters):
        if space.is_node_parameter(parameter["name"]):
            continue
        values = parameter["choices"] if parameter["type"] == "choice" else [parameter["low"], parameter["high"]]
        for value in values:
            try:
                run_services.validate_hyperparameters(
                    space.apply_to_hyperparameters(hyperparameters, {parameter["name"]: value}))
            except InvalidInput as error:
                raise InvalidInput(f"parameters[{index}] ({parameter['name']} = {value!r}): {error.message}",
                                   details={f"parameters[{index}]": [error.message]}) from None
    first = space.node_values(space.grid_point(parameters, 0) or {})
    if first:
        from webapp.projects.converter import validate_editor_document  # noqa: PLC0415

        report = validate_editor_document(space.apply_to_editor_document(graph_version.editor_document, first))
        if not report["ok"]:
            problem = (report["errors"] or [error for entry in report["nodes"].values() for error in entry["errors"]]
                       or [{"message": "invalid graph"}])[0]
            raise InvalidInput(f"the node parameters {first} make the graph invalid: {problem.get('message')}",
                               details={"parameters": [str(problem.get("message"))]})


@transaction.atomic
def sweep_create(*, project: Project, graph_version: GraphVersion, dataset: Dataset, created_by, parameters,
                 trial_budget: int, parallelism: int = 1, sampler: str = "random", metric: str | None = None,
                 direction: str | None = None, pruner: str = "none", pruner_options: dict | None = None,
                 hyperparameters: dict | None = None, device: str = "cpu", name: str = "", seed: int = 0) -> Sweep:
    """Save a sweep over ``parameters`` and start its first trials (as runs, queued once this
    commits). A bad space, option or setting is a 400 naming the field; so is what ``run_create``
    refuses of the base options (the first trial's refusal is the sweep's)."""
    from django.conf import settings  # noqa: PLC0415

    if graph_version.project_id != project.pk:
        raise InvalidInput(f"graph version {graph_version.pk} is not a version of project '{project.name}'",
                           details={"graph_version": ["not in this project"]})
    if dataset.owner_id != project.owner_id:
        raise InvalidInput(f"unknown dataset {dataset.pk}", details={"dataset": ["no such dataset"]})
    node_ids = {node.get("id") for node in (graph_version.editor_document or {}).get("nodes", [])}
    parameters = space.clean_parameters(parameters, node_ids=node_ids)
    _clean_settings(sampler=sampler, trial_budget=trial_budget, parallelism=parallelism, direction=direction,
                    pruner=pruner, parameters=parameters, settings_module=settings)
    pruner_options = pruning.clean_options(pruner, pruner_options)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInput(f"seed must be a whole number, got {seed!r}", details={"seed": ["not an integer"]})
    config = run_services.validate_hyperparameters(hyperparameters or {})
    default_series, default_mode = run_services.checkpoint_monitor(config)
    if metric is None:
        metric = "loss" if default_series == "epoch_loss" else default_series
    if not isinstance(metric, str) or not metric.replace("_", "").isalnum():
        raise InvalidInput(f"metric must be a metric's name such as val_loss or val_accuracy, got {metric!r}",
                           details={"metric": ["not a metric name"]})
    reported = budgets.reported_values(config=config, dataset=dataset)
    if metric not in reported:
        message = f"the trials do not report {metric!r} on dataset '{dataset.name}'; they report {', '.join(reported)}"
        raise InvalidInput(f"metric: {message}", details={"metric": [message], "valid": reported})
    if direction is None:
        direction = "minimize" if ("loss" in metric or metric in ("mse", "mae")) else "maximize"
    if sampler == "grid":
        trial_budget = min(trial_budget, space.grid_size(parameters))
    _check_point(project=project, graph_version=graph_version, dataset=dataset, hyperparameters=config,
                 parameters=parameters)
    sweep = Sweep.objects.create(
        project=project, graph_version=graph_version, dataset=dataset, created_by=created_by, name=name,
        hyperparameters=config, device=device, parameters=parameters, sampler=sampler, trial_budget=trial_budget,
        parallelism=parallelism, metric=metric, direction=direction, pruner=pruner, pruner_options=pruner_options,
        seed=seed)
    _advance(sweep, first=True)
    return sweep


# -- advance ------------------------------------------------------------------------------------------

def _histories(sweep: Sweep, trials: list[Trial]) -> dict[int, dict[int, float]]:
    """Each trial's run's monitored metric by epoch (one query)."""
    run_ids = [trial.run_id for trial in trials if trial.run_id]
    histories: dict[int, dict[int, float]] = {run_id: {} for run_id in run_ids}
    points = (MetricPoint.objects.filter(run_id__in=run_ids, name=metric_series(sweep.metric))
              .order_by("sequence").values_list("run_id", "epoch", "value"))
    for run_id, epoch, value in points:
        if math.isfinite(value):
            histories[run_id][round(epoch)] = value
    return histories


def _final_value(sweep: Sweep, run: Run, history: dict[int, float]) -> float | None:
    value = (run.final_metrics or {}).get(sweep.metric)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return history[max(history)] if history else None


def _settle(sweep: Sweep, trials: list[Trial], histories: dict[int, dict[int, float]]) -> None:
    """Trials whose runs finished (or were deleted) take their outcome."""
    now = timezone.now()
    for trial in trials:
        if trial.state != Trial.State.ACTIVE:
            continue
        run = trial.run
        if run is None:
            trial.state, trial.error = Trial.State.CANCELLED, "its run was deleted"
        elif not run.is_finished:
            continue
        elif run.state == Run.State.SUCCEEDED:
            trial.state = Trial.State.COMPLETED
            trial.value = _final_value(sweep, run, histories.get(run.pk, {}))
        elif run.state == Run.State.CANCELLED:
            trial.state, trial.error = Trial.State.CANCELLED, "its run was cancelled"
        else:
            trial.state = Trial.State.FAILED
            trial.error = run.error or f"its run {run.state.replace('_', ' ')}"
        trial.finished_at = now
        trial.save(update_fields=["state", "value", "error", "finished_at"])


def _prune(sweep: Sweep, trials: list[Trial], histories: dict[int, dict[int, float]]) -> None:
    if sweep.pruner == Sweep.Pruner.NONE:
        return
    minimize = sweep.direction == Sweep.Direction.MINIMIZE
    completed = [histories.get(trial.run_id, {}) for trial in trials if trial.state == Trial.State.COMPLETED]
    everyone = [histories.get(trial.run_id, {}) for trial in trials if trial.run_id]
    options = sweep.pruner_options
    for trial in trials:
        if trial.state != Trial.State.ACTIVE or trial.run is None or trial.run.state != Run.State.RUNNING:
            continue
        history = histories.get(trial.run_id, {})
        if sweep.pruner == Sweep.Pruner.MEDIAN:
            epoch = pruning.median_should_prune(history, completed, minimize=minimize, **options)
            reason = "worse than the median of the completed trials at that epoch"
        else:
            rung, epoch = pruning.successive_halving_decision(history, everyone, minimize=minimize,
                                                              last_rung_checked=trial.last_rung_checked, **options)
            reason = f"not among the best 1/{options['reduction_factor']} of the trials at that rung"
            if rung != trial.last_rung_checked:
                trial.last_rung_checked = rung
                trial.save(update_fields=["last_rung_checked"])
        if epoch is None:
            continue
        try:
            lifecycle.run_cancel(run=trial.run)
        except lifecycle.InvalidTransition:  # it finished meanwhile: settled at the next advance
            continue
        run_services.run_update(run=trial.run, tags=[*trial.run.tags, PRUNED_TAG])
        trial.state, trial.value, trial.pruned_at_epoch = Trial.State.PRUNED, history[epoch], epoch
        trial.error = f"pruned at epoch {epoch}: {sweep.metric} {history[epoch]:.4g} {reason}"
        trial.finished_at = timezone.now()
        trial.save(update_fields=["state", "value", "pruned_at_epoch", "error", "finished_at"])
        log.info("sweep %s: trial %s %s", sweep.pk, trial.number, trial.error)


def _trial_summaries(trials: list[Trial], histories: dict[int, dict[int, float]]) -> list[dict]:
    return [{"state": trial.state, "params": trial.params, "value": trial.value,
             "history": histories.get(trial.run_id, {})} for trial in trials]


def _graph_version_for(sweep: Sweep, point: dict, trials: list[Trial]) -> GraphVersion:
    """The sweep's graph version, or one with the point's node parameters (reused when an earlier
    trial had the same ones)."""
    nodes = space.node_values(point)
    if not nodes:
        return sweep.graph_version
    key = json.dumps(nodes, sort_keys=True)
    for trial in trials:
        if trial.run is not None and json.dumps(space.node_values(trial.params), sort_keys=True) == key:
            return trial.run.graph_version
    base = sweep.graph_version
    summary = ", ".join(f"{name.removeprefix(space.NODE_PREFIX)}={value}" for name, value in nodes.items())
    return graph_version_create(project=sweep.project, created_by=sweep.created_by,
                                editor_document=space.apply_to_editor_document(base.editor_document, point),
                                name=f"{base.name}-sweep-{sweep.pk}",
                                message=f"sweep {sweep.pk} (from {base.name} v{base.number}): {summary}"[:500])


def _start_trial(sweep: Sweep, number: int, point: dict, trials: list[Trial]) -> Trial:
    graph_version = _graph_version_for(sweep, point, trials)
    run = run_services.run_create(
        project=sweep.project, graph_version=graph_version, dataset=sweep.dataset, created_by=sweep.created_by,
        hyperparameters=space.apply_to_hyperparameters(sweep.hyperparameters, point), device=sweep.device,
        name=f"{sweep.name or f'sweep {sweep.pk}'} · trial {number}", tags=[sweep_tag(sweep.pk)])
    return Trial.objects.create(sweep=sweep, number=number, run=run, params=point)


def _launch(sweep: Sweep, trials: list[Trial], histories: dict[int, dict[int, float]], *, first: bool) -> bool:
    """Start trials up to the parallelism and the budget; False when the grid or budget is spent."""
    active = sum(1 for trial in trials if trial.run is not None and trial.run.state in ACTIVE_RUN_STATES)
    waiting_reason = ""
    while True:
        number = len(trials)
        if number >= sweep.trial_budget:
            break
        if active >= sweep.parallelism:
            break
        point = sampling.next_point(sampler=sweep.sampler, parameters=sweep.parameters, direction=sweep.direction,
                                    seed=sweep.seed, number=number, trial_budget=sweep.trial_budget,
                                    trials=_trial_summaries(trials, histories))
        if point is None:
            return False
        try:
            with transaction.atomic():
                trial = _start_trial(sweep, number, point, trials)
        except IntegrityError:  # another process started this trial a moment ago
            log.info("sweep %s: trial %s was started elsewhere", sweep.pk, number)
            raise
        except InvalidInput as error:
            if first and number == 0:
                raise  # the base settings are refused: the sweep's own 400
            trial = Trial.objects.create(sweep=sweep, number=number, params=point, state=Trial.State.FAILED,
                                         error=error.message, finished_at=timezone.now())
            log.info("sweep %s: trial %s could not start: %s", sweep.pk, number, error.message)
        except ApiError as error:  # queue full (429), no worker (503), storage: wait for the next advance
            if first and number == 0:
                raise
            waiting_reason = error.message
            break
        else:
            active += 1
        trials.append(trial)
    if sweep.waiting_reason != waiting_reason:
        sweep.waiting_reason = waiting_reason
        sweep.save(update_fields=["waiting_reason"])
    return len(trials) < sweep.trial_budget


def _advance(sweep: Sweep, *, first: bool = False) -> Sweep:
    trials = list(sweep.trials.select_related("run", "run__graph_version").order_by("number"))
    histories = _histories(sweep, trials)
    _settle(sweep, trials, histories)
    _prune(sweep, trials, histories)
    more_to_start = _launch(sweep, trials, histories, first=first)
    # A pruned trial's run stops after its batch in progress: the sweep finishes once it has.
    training = any(trial.state == Trial.State.ACTIVE
                   or (trial.run is not None and trial.run.state in ACTIVE_RUN_STATES) for trial in trials)
    if not more_to_start and not training:
        sweep.state, sweep.finished_at, sweep.waiting_reason = Sweep.State.FINISHED, timezone.now(), ""
        sweep.save(update_fields=["state", "finished_at", "waiting_reason"])
        log.info("sweep %s finished with %s trials", sweep.pk, len(trials))
    return sweep


def sweep_advance(*, sweep_id: int) -> Sweep | None:
    """Settle, prune, start and finish what the sweep's trials call for now (see the module
    docstring); idempotent. The sweep, or None when it is not running (finished, cancelled,
    deleted) or another process advanced it at the same moment."""
    try:
        with transaction.atomic():
            sweep = Sweep.objects.select_for_update().filter(pk=sweep_id, state=Sweep.State.RUNNING).first()
            if sweep is None:
                return None
            return _advance(sweep)
    except IntegrityError:  # another process started the same trial: its advance did the work
        return None


def sweep_advance_for_run(*, run_id: int) -> Sweep | None:
    """Advance the running sweep whose trial ``run_id`` is (the run finished), if any."""
    sweep_id = (Trial.objects.filter(run_id=run_id, sweep__state=Sweep.State.RUNNING)
                .values_list("sweep_id", flat=True).first())
    return sweep_advance(sweep_id=sweep_id) if sweep_id is not None else None


def sweeps_advance_running() -> int:
    """Advance every running sweep (the periodic tick); one sweep's error does not stop the others.
    Returns how many were advanced."""
    advanced = 0
    for sweep_id in Sweep.objects.filter(state=Sweep.State.RUNNING).values_list("pk", flat=True):
        try:
            advanced += sweep_advance(sweep_id=sweep_id) is not None
        except Exception:  # a background tick has nobody to raise to; the next tick tries again
            log.exception("sweep %s: could not be advanced", sweep_id)
    return advanced


# -- cancel ---------------------------------------------------------------------------------------------

@transaction.atomic
def sweep_cancel(*, sweep: Sweep) -> Sweep:
    """Stop the sweep: no new trials; its queued trials' runs are cancelled at once and its
    running ones stop after their current batch. A finished sweep is a 409."""
    from webapp.core.exceptions import Conflict  # noqa: PLC0415

    sweep = Sweep.objects.select_for_update().get(pk=sweep.pk)
    if sweep.state != Sweep.State.RUNNING:
        raise Conflict(f"sweep {sweep.pk} is already {sweep.state}; there is nothing to cancel",
                       details={"state": sweep.state})
    now = timezone.now()
    for trial in sweep.trials.select_related("run").filter(state=Trial.State.ACTIVE):
        if trial.run is not None and trial.run.state in ACTIVE_RUN_STATES:
            lifecycle.run_cancel(run=trial.run)
        trial.state, trial.error, trial.finished_at = Trial.State.CANCELLED, "the sweep was cancelled", now
        trial.save(update_fields=["state", "error", "finished_at"])
    sweep.state, sweep.finished_at, sweep.waiting_reason = Sweep.State.CANCELLED, now, ""
    sweep.save(update_fields=["state", "finished_at", "waiting_reason"])
    return sweep
