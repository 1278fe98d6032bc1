"""The next trial's parameters, and the parameters' importance, from a sweep's stored trials.

Optuna serves two purposes here, through its ask-and-tell interface only: the TPE sampler and the
importance evaluator. Its study is rebuilt in memory from the sweep's trials each time it is asked
(finished trials with their values, pruned ones with their per-epoch values, running ones so the
sampler does not ask for the same point twice), rather than kept in an Optuna storage of its own:
the sweep's tables stay the one record, any process can ask, and a restart loses nothing. The
rebuild costs a few milliseconds for the sizes a sweep has (a few hundred trials at most).

Grid and random points need no model: the n-th grid point, or a draw seeded by the sweep's seed and
the trial's number, so asking again after a restart gives the same point.
"""

from __future__ import annotations

import logging
import math

from webapp.sweeps import space

log = logging.getLogger(__name__)

# TPE's first trials are random; a small sweep should still get some model-based ones.
TPE_MAX_STARTUP_TRIALS = 10
IMPORTANCE_MIN_TRIALS = 3


def _optuna():
    import optuna  # noqa: PLC0415 - a second or so to import; only TPE sweeps and the sweep page need it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(parameters: list[dict]) -> dict:
    optuna = _optuna()
    result = {}
    for parameter in parameters:
        if parameter["type"] == "choice":
            result[parameter["name"]] = optuna.distributions.CategoricalDistribution(parameter["choices"])
        elif parameter["type"] == "int":
            result[parameter["name"]] = optuna.distributions.IntDistribution(parameter["low"], parameter["high"],
                                                                             log=parameter["log"])
        else:
            result[parameter["name"]] = optuna.distributions.FloatDistribution(parameter["low"], parameter["high"],
                                                                               log=parameter["log"])
    return result


def tpe_startup_trials(trial_budget: int) -> int:
    return max(2, min(TPE_MAX_STARTUP_TRIALS, trial_budget // 3))


def _study(*, parameters: list[dict], direction: str, trials: list[dict], sampler=None):
    """An in-memory study holding ``trials``: dicts with state (completed, pruned, active, failed,
    cancelled), params, value and history ({epoch: value})."""
    optuna = _optuna()
    states = {"completed": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED,
              "active": optuna.trial.TrialState.RUNNING}
    study = optuna.create_study(direction=direction, sampler=sampler)
    known = distributions(parameters)
    for trial in trials:
        state = states.get(trial["state"])
        if state is None or set(trial["params"]) != set(known):
            continue  # failed and cancelled trials tell the model nothing
        value = trial.get("value")
        if state == optuna.trial.TrialState.COMPLETE and (value is None or not math.isfinite(value)):
            continue
        if state == optuna.trial.TrialState.RUNNING:
            value = None
        elif state == optuna.trial.TrialState.PRUNED:
            value = None
        history = {int(epoch): float(number) for epoch, number in (trial.get("history") or {}).items()
                   if math.isfinite(number)}
        try:
            study.add_trial(optuna.trial.create_trial(state=state, params=trial["params"], distributions=known,
                                                      value=value, intermediate_values=history))
        except ValueError as error:  # a value outside the space (never, unless the space was edited)
            log.warning("trial left out of the study: %s", error)
    return study


def next_point(*, sampler: str, parameters: list[dict], direction: str, seed: int, number: int, trial_budget: int,
               trials: list[dict]) -> dict | None:
    """The parameters of trial ``number``, or None when the grid has none left."""
    if sampler == "grid":
        return space.grid_point(parameters, number)
    if sampler == "random":
        return space.random_point(parameters, seed=seed, number=number)
    optuna = _optuna()
    tpe = optuna.samplers.TPESampler(seed=seed * 100_003 + number, n_startup_trials=tpe_startup_trials(trial_budget),
                                     constant_liar=True)
    study = _study(parameters=parameters, direction=direction, trials=trials, sampler=tpe)
    asked = study.ask(distributions(parameters))
    return {name: asked.params[name] for name in (parameter["name"] for parameter in parameters)}


def importance(*, parameters: list[dict], direction: str, trials: list[dict]) -> dict[str, float]:
    """Each parameter's share of the variation of the completed trials' values (fANOVA, Optuna's
    default evaluator; on scikit-learn, already a dependency), summing to 1; empty until
    ``IMPORTANCE_MIN_TRIALS`` trials completed with different values."""
    completed = [trial for trial in trials if trial["state"] == "completed" and trial.get("value") is not None]
    if len(completed) < IMPORTANCE_MIN_TRIALS or len({trial["value"] for trial in completed}) < 2:
        return {}
    optuna = _optuna()
    study = _study(parameters=parameters, direction=direction, trials=completed)
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as error:  # e.g. every parameter had a single value
        log.info("no parameter importance: %s", error)
        return {}
    result = {parameter["name"]: 0.0 for parameter in parameters}
    result.update({name: float(value) for name, value in found.items()})
    return result
