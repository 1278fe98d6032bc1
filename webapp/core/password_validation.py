"""A password validator beside Django's (common, numeric, similarity, length)."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class VarietyValidator:
    """Refuses passwords of only whitespace or of fewer than ``min_distinct`` different characters
    (eight spaces, ``aaaaaaaa``): they pass a length check and are guessed first."""

    def __init__(self, min_distinct: int = 4):
        self.min_distinct = min_distinct

    def validate(self, password: str, user=None) -> None:
        if not password.strip():
            raise ValidationError("This password is only spaces.", code="password_blank")
        if len(set(password)) < self.min_distinct:
            raise ValidationError(f"This password has fewer than {self.min_distinct} different characters.",
                                  code="password_too_uniform")

    def get_help_text(self) -> str:
        return f"Your password must use at least {self.min_distinct} different characters, not only spaces."
