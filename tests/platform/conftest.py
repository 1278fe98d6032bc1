"""Fixtures over the real platform of ``tests/platform/harness.py``: the processes start once per
test session and every test reads and writes their database file (see the harness)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.platform.harness import DIGITS, Platform, Service, User, Workspace


@pytest.fixture(scope="session")
def platform():
    home = Path(tempfile.mkdtemp(prefix="netforge-platform-"))
    system = Platform(home)
    try:
        system.start_database()
        system.start_redis()
        system.migrate()
        system.start_web()
        system.start_worker()
        yield system
    finally:
        Service.stop_all()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def platform_db(platform, django_db_blocker):
    with django_db_blocker.unblock(), platform.database_connection():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the services' logs to the report."""
    outcome = yield
    report = outcome.get_result()
    system = item.funcargs.get("platform") if hasattr(item, "funcargs") else None
    if report.failed and system is not None:
        report.sections.append(("platform logs", system.logs_text()))


# -- users, data and clients ----------------------------------------------------------------------


@pytest.fixture
def make_user(platform, platform_db):
    from django.contrib.auth import get_user_model  # noqa: PLC0415

    from webapp.core.services import api_token_create  # noqa: PLC0415

    users = []

    def make(name: str = "user") -> User:
        model = get_user_model().objects.create_user(username=f"{name}-{uuid.uuid4().hex[:8]}", password="x" * 12)
        user = User(platform, model, api_token_create(user=model, name="tests")[1])
        users.append(user)
        return user

    yield make
    for user in users:
        user.api.close()


@pytest.fixture
def workspace(make_user):
    def make(data: dict = DIGITS, user: User | None = None) -> Workspace:
        return Workspace(user or make_user(), data)

    return make


