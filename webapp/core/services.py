"""Writes of accounts: signing up, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from webapp.core.exceptions import InvalidInput
from webapp.core.models import ApiToken


@transaction.atomic
def user_register(*, username: str, password: str, email: str = "") -> AbstractBaseUser:
    """A new active user; ``InvalidInput`` naming the field for a taken or malformed username or a
    password the validators refuse."""
    user_model = get_user_model()
    username = user_model.normalize_username(username.strip())
    candidate = user_model(username=username, email=email)
    errors: dict[str, list[str]] = {}
    try:
        user_model.username_validator(username)
    except DjangoValidationError as error:
        errors["username"] = list(error.messages)
    if "username" not in errors and user_model.objects.filter(username__iexact=username).exists():
        errors["username"] = [f"the username '{username}' is already taken"]
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as error:
        errors["password"] = list(error.messages)
    if errors:
        field = next(iter(errors))
        raise InvalidInput(f"{field}: {errors[field][0]}", details=errors)
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError:  # registered by a concurrent request between the check and the insert
        raise InvalidInput(f"username: the username '{username}' is already taken",
                           details={"username": [f"the username '{username}' is already taken"]}) from None
    return candidate


# -- API tokens ---------------------------------------------------------------------------------------

def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user, name: str = "", lifetime_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user`` and its key, which is returned this once and never stored: the
    database keeps its SHA-256. It expires after ``lifetime_days`` (default
    ``API_TOKEN_LIFETIME_DAYS``, at most ``API_TOKEN_MAX_LIFETIME_DAYS``)."""
    longest = int(settings.API_TOKEN_MAX_LIFETIME_DAYS)
    days = min(int(settings.API_TOKEN_LIFETIME_DAYS), longest) if lifetime_days is None else lifetime_days
    if not 1 <= days <= longest:
        raise InvalidInput(f"expires_in_days: a token lives from 1 to {longest} days, got {days}",
                           details={"expires_in_days": [f"from 1 to {longest}"]})
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=key[:8], key_sha256=hash_token(key),
                                    expires_at=timezone.now() + timedelta(days=days))
    return token, key


def api_token_revoke(*, user, token_id: int) -> None:
    """Delete one of ``user``'s tokens (another user's is not found)."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise Http404


def api_token_user(key: str) -> tuple[Any, ApiToken] | None:
    """(user, token) for a key that is known, unexpired and whose user is active; else None. Notes
    when the token was last used (at most once a minute, so a busy script writes little)."""
    token = ApiToken.objects.select_related("user").filter(key_sha256=hash_token(key)).first()
    if token is None or token.expired or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token
