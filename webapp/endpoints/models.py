"""Endpoints, model versions, API keys and serving metrics (contract 6).

An endpoint is a name that callers use; its versions are immutable copies of trained models in
the artifact store (``<ARTIFACT_ROOT>/endpoints/<endpoint id>/v<number>``, written once by
``services.version_publish``). The default version answers ``/predict``; it moves to a new version
when that version is loaded and warmed up, unless the endpoint is pinned.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


class Endpoint(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="endpoints")
    # Part of every prediction URL: lowercase letters, digits and dashes, unique on the server.
    name = models.CharField(max_length=64, unique=True, validators=[RegexValidator(
        NAME_PATTERN, "lowercase letters, digits and dashes, starting and ending with a letter or digit")])
    description = models.TextField(blank=True, default="")
    default_version = models.ForeignKey("ModelVersion", on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+")
    # Pinned: publishing a new version does not move the default (set by pin and rollback).
    pinned = models.BooleanField(default=False)
    max_batch_size = models.PositiveIntegerField(default=32, validators=[MinValueValidator(1), MaxValueValidator(1024)])
    max_queue_delay_ms = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1000.0)])
    max_queue_size = models.PositiveIntegerField(default=256, validators=[MinValueValidator(1),
                                                                           MaxValueValidator(100_000)])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"endpoint {self.name}"


class ModelVersion(models.Model):
    class State(models.TextChoices):
        LOADING = "loading"  # copied, being loaded and warmed up
        READY = "ready"
        FAILED = "failed"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    run = models.ForeignKey("runs.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    path = models.CharField(max_length=500)  # the model folder (engine.serialization)
    state = models.CharField(max_length=16, choices=State.choices, default=State.LOADING)
    error = models.TextField(blank=True, default="")
    weights_sha256 = models.CharField(max_length=64, blank=True, default="")
    input_schema = models.JSONField(default=dict)  # the manifest's input schema
    source = models.JSONField(default=dict)  # run, checkpoint epoch, final metrics of the run
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["endpoint", "-number"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "number"], name="unique_endpoint_version_number")]

    def __str__(self) -> str:
        return f"{self.endpoint.name} v{self.number} ({self.state})"


class ApiKey(models.Model):
    """A caller's key for one endpoint: only its SHA-256 is stored; the key is shown once."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=16)  # the first characters, to tell keys apart in lists
    key_sha256 = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["endpoint", "-created_at"]

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class MetricBucket(models.Model):
    """Serving counters of one endpoint version over one protocol during one minute, summed over
    every serving process (each adds its own counts; see ``webapp.serving.metrics``)."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="metric_buckets")
    version = models.PositiveIntegerField()
    protocol = models.CharField(max_length=8)  # rest | grpc | "" (the batches, which serve both)
    minute = models.DateTimeField()
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)  # answered with a 4xx/5xx or a gRPC error
    latency_sum = models.FloatField(default=0.0)  # seconds
    # Counts per bound of webapp.serving.metrics.LATENCY_BOUNDS (not cumulative), last one +Inf.
    latency_counts = models.JSONField(default=list)
    batches = models.PositiveBigIntegerField(default=0)
    batched_instances = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["endpoint", "minute"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "version", "protocol", "minute"],
                                               name="unique_metric_bucket")]
        indexes = [models.Index(fields=["endpoint", "minute"])]
