"""Pruning rules: whether a trial still training should stop, from every trial's per-epoch values.

Pure functions over ``{epoch: value}`` histories of the monitored metric (the points the workers
record at each epoch's end), so the sweep can decide again at any tick, from the database alone.
The rules are Optuna's, written for histories rather than a live study:

- median (Optuna's ``MedianPruner``): from epoch ``warmup_epochs`` on, once ``startup_trials``
  trials have completed, stop a trial whose best value so far is worse than the median of the
  completed trials' values at the same epoch;
- successive halving (Optuna's asynchronous ``SuccessiveHalvingPruner``): rung k is reached at
  epoch ``min_epochs * reduction_factor**k``; a trial reaching a rung goes on only if its value there
  is among the best ``1 / reduction_factor`` of all trials' values at that rung (the best one alone
  while fewer than ``reduction_factor`` trials have reached it). Each rung is judged once per trial.
"""

from __future__ import annotations

import statistics

from webapp.core.exceptions import InvalidInput

MEDIAN_DEFAULTS = {"startup_trials": 2, "warmup_epochs": 1}
SUCCESSIVE_HALVING_DEFAULTS = {"min_epochs": 1, "reduction_factor": 3}
DEFAULTS = {"none": {}, "median": MEDIAN_DEFAULTS, "successive_halving": SUCCESSIVE_HALVING_DEFAULTS}
MINIMUMS = {"startup_trials": 0, "warmup_epochs": 0, "min_epochs": 1, "reduction_factor": 2}


def clean_options(pruner: str, options) -> dict:
    """The pruner's options with their defaults, or ``InvalidInput`` naming the option."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidInput("pruner_options must be an object", details={"pruner_options": ["not an object"]})
    defaults = DEFAULTS[pruner]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        known = ", ".join(defaults) or "none"
        raise InvalidInput(f"pruner_options.{unknown[0]}: the {pruner} pruner has no such option (it takes {known})",
                           details={f"pruner_options.{unknown[0]}": ["unknown option"]})
    cleaned = {**defaults, **options}
    for name, value in cleaned.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < MINIMUMS[name]:
            raise InvalidInput(f"pruner_options.{name} must be a whole number of at least {MINIMUMS[name]}, "
                               f"got {value!r}", details={f"pruner_options.{name}": ["out of range"]})
    return cleaned


def _better(a: float, b: float, minimize: bool) -> bool:
    return a < b if minimize else a > b


def median_should_prune(history: dict[int, float], completed: list[dict[int, float]], *, minimize: bool,
                        startup_trials: int, warmup_epochs: int) -> int | None:
    """The epoch at which the trial with ``history`` is pruned by the median rule, or None."""
    if not history or len(completed) < max(startup_trials, 1):
        return None
    epoch = max(history)
    if epoch < max(warmup_epochs, 1):
        return None
    others = [values[epoch] for values in completed if epoch in values]
    if not others:
        return None
    so_far = [value for step, value in history.items() if step <= epoch]
    best = min(so_far) if minimize else max(so_far)
    return epoch if _better(statistics.median(others), best, minimize) else None


def rung_epochs(*, min_epochs: int, reduction_factor: int, up_to: int) -> list[int]:
    """The epochs of rungs 0, 1, 2, ... up to epoch ``up_to``."""
    epochs, epoch = [], min_epochs
    while epoch <= up_to:
        epochs.append(epoch)
        epoch *= reduction_factor
    return epochs


def successive_halving_decision(history: dict[int, float], everyone: list[dict[int, float]], *, minimize: bool,
                                last_rung_checked: int, min_epochs: int, reduction_factor: int
                                ) -> tuple[int, int | None]:
    """Judge the rungs the trial reached since ``last_rung_checked``: ``(the highest rung judged,
    the epoch it is pruned at or None)``. ``everyone`` is every trial's history, this one's included."""
    if not history:
        return last_rung_checked, None
    rungs = rung_epochs(min_epochs=min_epochs, reduction_factor=reduction_factor, up_to=max(history))
    for rung, epoch in enumerate(rungs):
        if rung <= last_rung_checked or epoch not in history:
            continue
        value = history[epoch]
        competing = sorted((values[epoch] for values in everyone if epoch in values), reverse=not minimize)
        promotable = max(len(competing) // reduction_factor - 1, 0)
        threshold = competing[promotable]
        if _better(threshold, value, minimize) and value != threshold:
            return rung, epoch
        last_rung_checked = rung
    return last_rung_checked, None
