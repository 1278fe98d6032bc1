"""Training runs, their metric points and checkpoints (contract 4)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Run(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        TIMED_OUT = "timed_out"  # stopped by the per-run time limit (RUN_MAX_SECONDS); its checkpoints are kept

    FINISHED_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.TIMED_OUT)

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="runs")
    graph_version = models.ForeignKey("projects.GraphVersion", on_delete=models.PROTECT, related_name="runs")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    name = models.CharField(max_length=200, blank=True, default="")
    hyperparameters = models.JSONField(default=dict)  # engine TrainConfig fields (epochs, batch_size, optimizer, ...)
    device = models.CharField(max_length=8, default="cpu")  # cpu | gpu (the Celery queue)
    workers = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    attempt = models.PositiveSmallIntegerField(default=0)  # 1 for the first execution, +1 per resume
    task_id = models.CharField(max_length=64, blank=True, default="")  # the Celery task
    worker = models.CharField(max_length=200, blank=True, default="")  # hostname:pid executing it
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # the worker's last sign of life
    epochs_completed = models.PositiveIntegerField(default=0)
    steps_completed = models.PositiveIntegerField(default=0)
    last_sequence = models.PositiveBigIntegerField(default=0)  # of the newest stored metric point
    final_metrics = models.JSONField(default=dict)
    error = models.TextField(blank=True, default="")
    tags = models.JSONField(default=list)
    notes = models.TextField(blank=True, default="")
    # What the trained model does on the held-out split (workers.evaluation): confusion matrix,
    # per-class scores and sample predictions, or (true, predicted) pairs for regression.
    evaluation = models.JSONField(default=dict, blank=True)
    # Archived: hidden from run lists unless asked for, kept whole (unarchive brings it back).
    archived_at = models.DateTimeField(null=True, blank=True)
    # Fine-tuning: the run whose newest checkpoint gave this run its starting weights (lineage).
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED_STATES


class MetricPoint(models.Model):
    """One value of one series at one step: ``name`` is e.g. loss, val_loss, accuracy, val_accuracy,
    samples_per_second. ``sequence`` numbers every point of a run from 1 without gaps."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="points")
    sequence = models.PositiveBigIntegerField()
    name = models.CharField(max_length=100)
    step = models.PositiveIntegerField()
    epoch = models.FloatField()  # fractional within an epoch for batch points
    value = models.FloatField()
    wall_time = models.FloatField()  # seconds since the epoch (time.time()) when produced

    class Meta:
        ordering = ["run", "sequence"]
        constraints = [models.UniqueConstraint(fields=["run", "sequence"], name="unique_point_sequence")]
        indexes = [models.Index(fields=["run", "name", "step"])]


class Checkpoint(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="checkpoints")
    epoch = models.PositiveIntegerField()
    step = models.PositiveIntegerField()
    path = models.CharField(max_length=500)  # a folder written by engine.serialization
    size_bytes = models.BigIntegerField(default=0)  # its files, counted in its owner's storage
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "-epoch"]
