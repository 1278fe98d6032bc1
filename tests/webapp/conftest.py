"""In-process fixtures for the REST tests: users with API clients, a project with the zoo MLP as
a graph version, the digits dataset, and a stand-in for the Celery queue.

The training queue is faked here on purpose: these tests check what the REST layer does (a run
is saved as queued and handed to ``webapp.runs.dispatch.enqueue_training`` once the transaction commits),
not training. The real worker, broker and WebSocket run in tests/platform/.
"""

from __future__ import annotations

from unittest import mock

import pytest
from rest_framework.test import APIClient

from engine import zoo
from webapp.datasets.services import dataset_create_builtin
from webapp.projects.converter import spec_to_editor_document
from webapp.projects.services import graph_version_create, project_create


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path):
    """Uploads and artifacts in a folder of their own; live updates to an in-memory channel layer."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="alice-password")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="mallory", password="mallory-password")


@pytest.fixture
def anonymous_client():
    return APIClient()


@pytest.fixture
def client(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def other_client(other_user):
    api = APIClient()
    api.force_authenticate(other_user)
    return api


@pytest.fixture
def mlp_document():
    return spec_to_editor_document(zoo.load("mlp"))


@pytest.fixture
def project(user):
    return project_create(owner=user, name="Digits")


@pytest.fixture
def graph_version(project, user, mlp_document):
    return graph_version_create(project=project, editor_document=mlp_document, created_by=user)


@pytest.fixture
def digits(user):
    return dataset_create_builtin(owner=user, builtin="digits")


@pytest.fixture
def enqueued():
    """``webapp.runs.dispatch.enqueue_training`` replaced by a mock that returns a task id."""
    with mock.patch("webapp.runs.dispatch.enqueue_training", return_value="task-1") as enqueue:
        yield enqueue
