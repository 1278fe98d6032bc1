"""A run's record says where it is published (the endpoints' model versions made from it), so the
runs table and a reloaded run page can mark it, in one query for a whole page of runs."""

from __future__ import annotations

import pytest

from webapp.endpoints.models import Endpoint, ModelVersion
from webapp.runs.models import Run

pytestmark = pytest.mark.django_db


def make_run(project, graph_version, dataset, **fields) -> Run:
    return Run.objects.create(project=project, graph_version=graph_version, dataset=dataset,
                              state=Run.State.SUCCEEDED, **fields)


def publish(user, run: Run, endpoint: str, number: int) -> ModelVersion:
    owner, _ = Endpoint.objects.get_or_create(name=endpoint, defaults={"owner": user})
    return ModelVersion.objects.create(endpoint=owner, number=number, run=run, path=f"/models/{endpoint}-{number}",
                                       state=ModelVersion.State.READY)


def test_a_run_lists_the_endpoint_versions_published_from_it(client, user, project, graph_version, digits,
                                                              django_assert_max_num_queries):
    published, plain = make_run(project, graph_version, digits), make_run(project, graph_version, digits)
    publish(user, published, "digits", 1)
    publish(user, published, "digits-small", 1)
    publish(user, plain, "digits", 2).delete()  # removed: no longer published

    assert client.get(f"/api/runs/{published.pk}").json()["published"] == [
        {"endpoint": "digits-small", "number": 1}, {"endpoint": "digits", "number": 1}]
    assert client.get(f"/api/runs/{plain.pk}").json()["published"] == []

    for _ in range(5):
        make_run(project, graph_version, digits)
    with django_assert_max_num_queries(8):  # one query for the page's versions, not one per run
        listed = client.get(f"/api/projects/{project.pk}/runs").json()["results"]
    marks = {run["id"]: run["published"] for run in listed}
    assert marks[published.pk] == [{"endpoint": "digits-small", "number": 1}, {"endpoint": "digits", "number": 1}]
    assert marks[plain.pk] == [] and len(marks) == 7
    everywhere = {run["id"]: run["published"] for run in client.get("/api/runs").json()["results"]}
    assert everywhere == marks
