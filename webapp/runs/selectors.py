"""Reads of runs: lists with filters, one run, its checkpoints, and its metric history (which the
WebSocket consumer also sends on connect)."""

from __future__ import annotations

import json
import math
import re

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DurationField, ExpressionWrapper, F, Max, QuerySet, TextField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404
from django.utils import timezone

from webapp.core.downsample import downsample
from webapp.core.exceptions import InvalidInput
from webapp.datasets.selectors import archived_filtered, dataset_find
from webapp.projects.selectors import graph_version_get_for_user
from webapp.runs import budgets, layer_stats
from webapp.runs.models import Checkpoint, MetricPoint, Run

ORDERINGS = ("created_at", "started_at", "finished_at", "name", "state", "id", "duration")
# Orderings by one value of a JSON field: final_metrics__val_accuracy, hyperparameters__batch_size.
JSON_ORDERING = re.compile(r"(final_metrics|hyperparameters)__([A-Za-z0-9_.-]{1,100})")


def run_list(*, user, project_id: int | None = None, states: list[str] | None = None, tag: str | None = None,
             graph_version_id: int | None = None, dataset_id: int | None = None,
             ordering: str = "-created_at", archived: str = "all") -> QuerySet[Run]:
    """The user's runs, filtered; ``ordering`` is one of ``ORDERINGS``, ``-`` first for descending;
    ``archived`` is one of ``ARCHIVED_CHOICES`` (the lists pass "false": archived runs hidden)."""
    runs = Run.objects.filter(project__owner=user).select_related("graph_version", "dataset", "created_by")
    runs = archived_filtered(runs, archived)
    if project_id is not None:
        runs = runs.filter(project_id=project_id)
    if states:
        unknown = sorted(set(states) - set(Run.State.values))
        if unknown:
            raise InvalidInput(f"unknown state(s) {', '.join(unknown)}; states are {', '.join(Run.State.values)}",
                               details={"state": ["unknown state"]})
        runs = runs.filter(state__in=states)
    if tag:
        if connection.vendor == "postgresql":
            runs = runs.filter(tags__contains=[tag])
        else:  # SQLite has no JSON containment: match the quoted tag in the stored JSON text
            runs = runs.annotate(tags_text=Cast("tags", TextField())).filter(tags_text__contains=json.dumps(tag))
    if graph_version_id is not None:
        runs = runs.filter(graph_version_id=graph_version_id)
    if dataset_id is not None:
        runs = runs.filter(dataset_id=dataset_id)
    return _ordered(runs, ordering)


def _ordered(runs: QuerySet[Run], ordering: str) -> QuerySet[Run]:
    """``ordering``: a field of ``ORDERINGS``, ``duration`` (finished minus started), or one key of
    final_metrics or hyperparameters (``final_metrics__val_accuracy``); ``-`` first for descending.
    Runs without the value come last either way."""
    descending = ordering.startswith("-")
    key = ordering.removeprefix("-")
    json_key = JSON_ORDERING.fullmatch(key)
    if json_key:
        value = KeyTransform(json_key.group(2), json_key.group(1))
    elif key == "duration":
        duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        runs = runs.annotate(duration=duration)
        value = F("duration")
    elif key in ORDERINGS:
        return runs.order_by(ordering, "-id")
    else:
        raise InvalidInput(f"cannot order by '{ordering}'; use one of {', '.join(ORDERINGS)}, or "
                           "final_metrics__<metric> or hyperparameters__<option> (prefix - for descending)",
                           details={"ordering": ["unknown ordering"]})
    order = value.desc(nulls_last=True) if descending else value.asc(nulls_last=True)
    return runs.order_by(order, "-id")


def run_get(*, user, run_id: int) -> Run:
    """The user's run, or 404 (also when it belongs to someone else)."""
    return get_object_or_404(run_list(user=user), pk=run_id)


def checkpoint_list(*, run: Run) -> QuerySet[Checkpoint]:
    return run.checkpoints.order_by("epoch")


def run_metric_history(run: Run, *, names: list[str] | None = None, max_points: int | None = None,
                       after_sequence: int = 0, through_sequence: int | None = None) -> dict:
    """The run's stored metric points after ``after_sequence`` (and up to ``through_sequence``),
    per series (``names``: only these), each downsampled to at most ``max_points`` by
    min/max-preserving buckets (``None``: all).

    Returns ``{"run", "state", "last_sequence", "series": {name: {"steps", "epochs", "values",
    "wall_times", "sequences", "total"}}}``: ``last_sequence`` is the newest stored point's (of any
    series) at the time of the read, so a client that follows with live points from
    ``last_sequence + 1`` misses none; ``total`` counts the series' points before downsampling.
    Non-finite values come as null.
    """
    with transaction.atomic():
        points = MetricPoint.objects.filter(run=run, sequence__gt=after_sequence)
        if through_sequence is not None:
            points = points.filter(sequence__lte=through_sequence)
        newest = points.aggregate(newest=Max("sequence"))["newest"]
        if newest is not None:
            points = points.filter(sequence__lte=newest)
        if names:
            points = points.filter(name__in=names)
        rows = list(points.order_by("sequence").values_list("name", "sequence", "step", "epoch", "value", "wall_time"))
    columns: dict[str, dict[str, list]] = {name: _empty_columns() for name in names or []}
    for name, sequence, step, epoch, value, wall_time in rows:
        series = columns.get(name)
        if series is None:
            series = columns[name] = _empty_columns()
        series["sequences"].append(sequence)
        series["steps"].append(step)
        series["epochs"].append(epoch)
        series["values"].append(value if math.isfinite(value) else None)
        series["wall_times"].append(wall_time)
    result = {}
    for name, series in columns.items():
        total = len(series["sequences"])
        result[name] = {**downsample(series, by="values", max_points=max_points), "total": total}
    return {
        "run": run.pk,
        "state": run.state,
        "last_sequence": max(newest or 0, after_sequence),
        "series": result,
    }


def run_layer_stats(run: Run, *, node: str | None = None, max_samples: int | None = None) -> dict:
    """The run's per-layer statistics (``webapp.runs.layer_stats``), thinned to ``max_samples``
    evenly spread samples (the first, the last and the first NaN's kept).

    Returns ``{"run", "state", "histogram_edges", "nodes", "nan", "total", "samples"}``: ``nodes``
    lists every node that has statistics, ``nan`` the first NaN or Inf (step, node, where), and each
    sample is ``{"step", "epoch", "wall_time", "nodes": {id: statistics without the histogram}}``;
    with ``node`` each sample is ``{"step", "epoch", "wall_time", "stats": that node's statistics
    with its histogram}`` (the samples that have it). Raises ``InvalidInput`` for an unknown node.
    """
    from engine.layer_stats import HISTOGRAM_EDGES  # noqa: PLC0415 - the engine's bins, read when asked

    samples = layer_stats.read_samples(run.pk)
    nodes: dict[str, None] = {}
    for sample in samples:
        nodes.update(dict.fromkeys(sample["nodes"]))
    nan = next((sample["nan"] for sample in samples if sample.get("nan")), None)
    if node is not None:
        if node not in nodes:
            raise InvalidInput(f"run {run.pk} has no layer statistics of node '{node[:100]}'"
                               + (f"; its nodes are {', '.join(list(nodes)[:20])}" if nodes else ""),
                               details={"node": ["no statistics of this node"]})
        samples = [sample for sample in samples if node in sample["nodes"]]
    total = len(samples)
    if max_samples is not None:
        samples = layer_stats.thin(samples, max_samples)
    if node is not None:
        rows = [{"step": s["step"], "epoch": s["epoch"], "wall_time": s["wall_time"], "stats": s["nodes"][node]}
                for s in samples]
    else:
        rows = [{"step": s["step"], "epoch": s["epoch"], "wall_time": s["wall_time"],
                 "nodes": {key: {k: v for k, v in stats.items() if k != "histogram"}
                           for key, stats in s["nodes"].items()}}
                for s in samples]
    return {"run": run.pk, "state": run.state, "histogram_edges": list(HISTOGRAM_EDGES[1:-1]), "nodes": list(nodes),
            "nan": nan, "total": total, "samples": rows}


def _empty_columns() -> dict[str, list]:
    return {"steps": [], "epochs": [], "values": [], "wall_times": [], "sequences": []}


def run_duration_seconds(run: Run) -> float | None:
    """Seconds from the run's start to its finish (to now while it has not finished), or None
    before it starts."""
    if run.started_at is None:
        return None
    end = run.finished_at or timezone.now()
    return max((end - run.started_at).total_seconds(), 0.0)


def run_evaluation(run: Run) -> dict:
    """The run's evaluation (``workers.evaluation``) with a ``state`` that is always there:
    ``pending`` while the run is queued or running, ``ready`` with the results, ``failed`` with
    the ``error`` when computing it failed, ``unavailable`` with a ``reason`` otherwise (the run
    did not succeed, or its data has no labels). ``run_state`` is the run's state."""
    if not run.is_finished:
        return {"state": "pending", "run_state": run.state,
                "reason": f"the run is {run.state}; its model is evaluated when it succeeds"}
    if run.state != Run.State.SUCCEEDED:
        return {"state": "unavailable", "run_state": run.state,
                "reason": f"the run {run.state}; only a run that succeeds has its model evaluated"}
    if not run.evaluation:
        return {"state": "unavailable", "run_state": run.state, "reason": "this run has no stored evaluation"}
    return {**run.evaluation, "run_state": run.state}


def user_usage(user) -> dict:
    """What the user has going and stored, against the limits (``GET /api/auth/me/``'s ``usage``)."""
    counts, storage = budgets.user_run_counts(user), budgets.user_storage(user)
    return {
        "runs_queued": counts["queued"], "runs_queued_limit": settings.RUN_MAX_QUEUED_PER_USER,
        "runs_running": counts["running"], "runs_running_limit": settings.RUN_MAX_RUNNING_PER_USER,
        "storage_bytes": storage["total"], "storage_quota_bytes": settings.STORAGE_QUOTA_BYTES,
        "storage": {key: value for key, value in storage.items() if key != "total"},
    }


def training_inputs_get(*, user, values: dict, data) -> tuple:
    """The graph version and dataset a run or sweep request names (popped from its validated
    ``values``), each a 400 naming the field when the user has no such one."""
    graph_version = graph_version_get_for_user(user=user, version_id=values.pop("graph_version"))
    if graph_version is None:
        raise InvalidInput(f"unknown graph version {data.get('graph_version')}",
                           details={"graph_version": ["no such graph version"]})
    dataset = dataset_find(user=user, dataset_id=values.pop("dataset"))
    if dataset is None:
        raise InvalidInput(f"unknown dataset {data.get('dataset')}", details={"dataset": ["no such dataset"]})
    return graph_version, dataset
