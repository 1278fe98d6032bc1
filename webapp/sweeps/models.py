"""Sweeps: a search space over training options and node parameters, tried as ordinary runs.

A sweep's whole state is in these two tables (and its trials' runs), so any process can advance it
(``webapp.sweeps.services.sweep_advance``) and nothing is lost when a worker or the web server restarts.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Sweep(models.Model):
    class State(models.TextChoices):
        RUNNING = "running"  # trials are queued, running, or still to be started
        FINISHED = "finished"  # every trial of the budget (or of the grid) has finished
        CANCELLED = "cancelled"

    class Sampler(models.TextChoices):
        GRID = "grid"
        RANDOM = "random"
        TPE = "tpe"  # Optuna's tree-structured Parzen estimator, asked with the finished trials

    class Pruner(models.TextChoices):
        NONE = "none"
        MEDIAN = "median"
        SUCCESSIVE_HALVING = "successive_halving"

    class Direction(models.TextChoices):
        MINIMIZE = "minimize"
        MAXIMIZE = "maximize"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="sweeps")
    # Deleted with its graph version or dataset (its trials' runs protect those while they exist): a
    # sweep must never be what stops a project from being deleted.
    graph_version = models.ForeignKey("projects.GraphVersion", on_delete=models.CASCADE, related_name="sweeps")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.CASCADE, related_name="sweeps")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    name = models.CharField(max_length=200, blank=True, default="")
    hyperparameters = models.JSONField(default=dict)  # the training options every trial starts from
    device = models.CharField(max_length=8, default="cpu")
    # [{"name": "optimizer.lr" | "node:<node id>.<param>", "type": "float" | "int" | "choice", ...}]
    parameters = models.JSONField(default=list)
    sampler = models.CharField(max_length=16, choices=Sampler.choices, default=Sampler.RANDOM)
    trial_budget = models.PositiveIntegerField()
    parallelism = models.PositiveSmallIntegerField(default=1)
    metric = models.CharField(max_length=100)  # the monitored metric: loss, val_loss, val_accuracy, ...
    direction = models.CharField(max_length=8, choices=Direction.choices)
    pruner = models.CharField(max_length=24, choices=Pruner.choices, default=Pruner.NONE)
    pruner_options = models.JSONField(default=dict)
    seed = models.IntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING, db_index=True)
    # Why no trial is starting just now (the user's queue is full, no worker serves the device): shown, retried.
    waiting_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"sweep {self.pk} ({self.state})"


class Trial(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active"  # its run is queued or running
        COMPLETED = "completed"  # its run succeeded; ``value`` is the metric at its last epoch
        PRUNED = "pruned"  # stopped early by the pruner (its run cancelled); ``value`` at ``pruned_at_epoch``
        FAILED = "failed"  # its run failed or timed out, or could not be created (``error`` says why)
        CANCELLED = "cancelled"  # its run was cancelled by the user, or the sweep was

    FINISHED_STATES = (State.COMPLETED, State.PRUNED, State.FAILED, State.CANCELLED)

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="trials")
    number = models.PositiveIntegerField()  # 0, 1, 2, ... in the order trials were started
    run = models.OneToOneField("runs.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="trial")
    params = models.JSONField(default=dict)  # parameter name -> the value tried
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    value = models.FloatField(null=True, blank=True)
    pruned_at_epoch = models.PositiveIntegerField(null=True, blank=True)
    # Successive halving looks at a trial once per rung: the highest rung it was looked at.
    last_rung_checked = models.IntegerField(default=-1)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["sweep", "number"]
        # Two processes advancing one sweep at once cannot both start trial n: the loser's insert fails.
        constraints = [models.UniqueConstraint(fields=["sweep", "number"], name="unique_trial_number")]

    def __str__(self) -> str:
        return f"sweep {self.sweep_id} trial {self.number} ({self.state})"
