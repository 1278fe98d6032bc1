"""Reads of sweeps: the user's sweeps, one sweep with its trials, its best trial and the
parameters' importance."""

from __future__ import annotations

import hashlib
import json

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from webapp.sweeps import sampling
from webapp.sweeps.models import Sweep, Trial

IMPORTANCE_CACHE_SECONDS = 3600


def sweep_list(*, user, project_id: int | None = None) -> QuerySet[Sweep]:
    sweeps = (Sweep.objects.filter(project__owner=user).select_related("graph_version", "dataset")
              .annotate(trial_count=Count("trials"),
                        trials_finished=Count("trials", filter=Q(trials__state__in=Trial.FINISHED_STATES))))
    if project_id is not None:
        sweeps = sweeps.filter(project_id=project_id)
    return sweeps.order_by("-created_at", "-pk")


def sweep_get(*, user, sweep_id: int) -> Sweep:
    """The user's sweep, or 404 (also when it is someone else's)."""
    return get_object_or_404(sweep_list(user=user), pk=sweep_id)


def trial_list(*, sweep: Sweep) -> list[Trial]:
    return list(sweep.trials.select_related("run").order_by("number"))


def best_trial(*, sweep: Sweep, trials: list[Trial]) -> Trial | None:
    """The completed trial with the best value (the earliest of equals)."""
    scored = [trial for trial in trials if trial.state == Trial.State.COMPLETED and trial.value is not None]
    if not scored:
        return None
    sign = 1 if sweep.direction == Sweep.Direction.MINIMIZE else -1
    return min(scored, key=lambda trial: (sign * trial.value, trial.number))


def parameter_importance(*, sweep: Sweep, trials: list[Trial]) -> dict[str, float]:
    """``sampling.importance`` of the completed trials, cached until another trial completes (it
    fits a small random forest: tenths of a second, too much for every poll of the sweep page)."""
    summaries = [{"state": trial.state, "params": trial.params, "value": trial.value} for trial in trials
                 if trial.state == Trial.State.COMPLETED]
    digest = hashlib.sha256(json.dumps([sweep.parameters, summaries], sort_keys=True, default=str).encode()).hexdigest()
    key = f"sweep-importance:{sweep.pk}:{digest}"
    found = cache.get(key)
    if found is None:
        found = sampling.importance(parameters=sweep.parameters, direction=sweep.direction, trials=summaries)
        cache.set(key, found, IMPORTANCE_CACHE_SECONDS)
    return found
