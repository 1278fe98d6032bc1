"""Writes of accounts: signing up."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from webapp.core.exceptions import InvalidInput


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
