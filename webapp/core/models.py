"""API tokens for scripts: only a SHA-256 of each token is stored, and every token expires."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """One script's token (``Authorization: Token <key>``). The key is shown once, when it is made;
    the database holds its SHA-256 (a leaked table gives no usable token) and its first characters,
    to tell tokens apart in the account page."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=16)
    key_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def expired(self) -> bool:
        return self.expires_at <= timezone.now()
