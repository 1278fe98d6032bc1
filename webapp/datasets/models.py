"""Datasets: a built-in one of ``engine.data`` or an uploaded file, with its detected schema.

An upload is ``processing`` until a worker has read and converted it (``ready``, its arrays in the
converted store, see ``engine.data.store``) or refused it (``failed``, with the reason in ``error``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Dataset(models.Model):
    class Kind(models.TextChoices):
        BUILTIN = "builtin"
        UPLOAD = "upload"

    class State(models.TextChoices):
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="datasets", null=True,
                                blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    builtin_name = models.CharField(max_length=100, blank=True, default="")  # engine.data.load_builtin name
    file = models.FileField(upload_to="datasets/%Y/%m/", blank=True)  # uploads (csv, npz, idx, zip of images)
    file_format = models.CharField(max_length=16, blank=True, default="")  # csv | npz | idx | zip
    original_name = models.CharField(max_length=200, blank=True, default="")  # the uploaded file's name
    options = models.JSONField(default=dict)  # loader options, e.g. {"target": "label"} for CSV
    schema = models.JSONField(default=dict)  # engine Dataset.schema(): shapes, dtypes, task, classes, rows
    preview = models.JSONField(default=dict)
    rows = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.READY)
    error = models.TextField(blank=True, default="")  # why a failed upload was refused
    content_hash = models.CharField(max_length=64, blank=True, default="")  # SHA-256 of the converted arrays
    size_bytes = models.BigIntegerField(default=0)  # disk used: the stored file and the converted store
    # How the features are shaped for a graph (engine.data.views): {} as stored, or flat, image
    # (C x H x W, with its layout) or sequence (T x F).
    view = models.JSONField(default=dict, blank=True)
    # Archived: hidden from dataset lists and pickers unless asked for; existing runs keep using it.
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name
