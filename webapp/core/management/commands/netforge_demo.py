"""``manage.py netforge_demo``: the demo user, a "Digits" project with the zoo MLP as graph
version 1 and the digits built-in dataset. Idempotent: what exists is left as it is."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from engine import zoo
from webapp.datasets.models import Dataset
from webapp.datasets.services import dataset_create_builtin
from webapp.projects.converter import spec_to_editor_document
from webapp.projects.models import Project
from webapp.projects.services import graph_version_create, project_create

DEMO_USERNAME = "demo"
DEMO_PROJECT = "Digits"


class Command(BaseCommand):
    help = "Create the demo user, project, graph and dataset (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        password = os.environ.get("NETFORGE_DEMO_PASSWORD", "netforge-demo")
        user, created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        # `make run` prints this password as the login, so it must be the one that works: set it
        # for a new user, and again when NETFORGE_DEMO_PASSWORD names another one.
        if created or ("NETFORGE_DEMO_PASSWORD" in os.environ and not user.check_password(password)):
            user.set_password(password)
            user.save()
        project = Project.objects.filter(owner=user, name=DEMO_PROJECT).first()
        if project is None:
            project = project_create(owner=user, name=DEMO_PROJECT,
                                     description="Handwritten digits (8x8) with a two-layer perceptron.")
        if not project.graph_versions.exists():
            graph_version_create(project=project, editor_document=spec_to_editor_document(zoo.load("mlp")),
                                 created_by=user, message="the zoo MLP")
        if not Dataset.objects.filter(owner=user, kind=Dataset.Kind.BUILTIN, builtin_name="digits").exists():
            dataset_create_builtin(owner=user, builtin="digits", name="digits", project=project)
        self.stdout.write(f"demo ready: user '{DEMO_USERNAME}', project '{DEMO_PROJECT}' (id {project.pk})"
                          + (" (user created)" if created else ""))
