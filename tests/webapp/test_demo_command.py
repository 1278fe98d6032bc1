"""``manage.py netforge_demo``: the demo user, project, graph and dataset, idempotently."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from engine import zoo
from webapp.datasets.models import Dataset
from webapp.projects.models import GraphVersion, Project

pytestmark = pytest.mark.django_db


def test_the_demo_is_created_once(monkeypatch):
    monkeypatch.delenv("NETFORGE_DEMO_PASSWORD", raising=False)
    for _ in range(2):
        call_command("netforge_demo", stdout=io.StringIO())
    project = Project.objects.get(owner__username="demo", name="Digits")
    version = GraphVersion.objects.get(project=project)
    assert version.number == 1 and version.spec == zoo.load("mlp")
    assert Dataset.objects.get(owner__username="demo").builtin_name == "digits"
    browser = APIClient()
    login = browser.post("/api/auth/login/", {"username": "demo", "password": "netforge-demo"}, format="json")
    assert login.status_code == 200
    assert browser.get("/api/projects").json()["results"][0]["name"] == "Digits"


def test_the_demo_password_follows_the_environment(monkeypatch):
    monkeypatch.setenv("NETFORGE_DEMO_PASSWORD", "first-password")
    call_command("netforge_demo", stdout=io.StringIO())
    monkeypatch.setenv("NETFORGE_DEMO_PASSWORD", "second-password")
    call_command("netforge_demo", stdout=io.StringIO())
    login = APIClient().post("/api/auth/login/", {"username": "demo", "password": "second-password"}, format="json")
    assert login.status_code == 200
