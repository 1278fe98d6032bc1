"""Fixtures of the serving package's tests: the endpoint tests' trained digits model, runs,
settings and users, and a serving runtime that starts empty for every test (``webapp.serving``
answers for the endpoints that ``webapp.endpoints`` records, so its tests publish through it)."""

from __future__ import annotations

from tests.endpoints.conftest import (  # noqa: F401 - the same fixtures as the endpoint tests
    client,
    fresh_runtime,
    make_run,
    other_client,
    other_user,
    serving_settings,
    trained_digits,
    user,
)
