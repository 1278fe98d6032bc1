"""A property-based fuzz of every operation of the OpenAPI document (schemathesis): requests drawn
from each operation's parameters and body schema (positive) and breaking them (negative), sent in
process to the Django application as a user with a project, a graph version, a dataset, a run and a
published endpoint; no answer may be a 5xx (but the readiness probe's "not ready yet", below).
Path ids are drawn at random, or are the user's real
objects, so the fuzz reaches past the 404s. Deleting operations go last, so they do not take the
user's objects from the others.

A fixed number of examples per operation and generation mode, from a fixed seed (the same requests
on every run): ``NETFORGE_FUZZ_EXAMPLES`` (default 4, which ``make test`` runs in well under a
minute; ``make fuzz`` runs many more) and ``NETFORGE_FUZZ_SEED``."""

from __future__ import annotations

import collections
import logging
import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

pytestmark = [pytest.mark.django_db, pytest.mark.xdist_group("security-fuzz")]
log = logging.getLogger(__name__)

EXAMPLES = int(os.environ.get("NETFORGE_FUZZ_EXAMPLES", "4"))
SEED = int(os.environ.get("NETFORGE_FUZZ_SEED", "16"))

# Loaded through the application itself (serving the document touches no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def world(client, user, make_run):
    """The fuzzing user's objects by path parameter name, and the headers of its requests (an API
    token for the REST API, an endpoint key for the prediction routes)."""
    from webapp.core.services import api_token_create  # noqa: PLC0415

    run = make_run()
    response = client.post(f"/api/runs/{run.pk}/publish", {"endpoint": "digits"}, format="json")
    assert response.status_code == 201, response.content
    key = client.post("/api/v1/endpoints/digits/keys", {"name": "fuzz"}, format="json").json()
    # loaded in this process, so that its readiness routes answer 200 rather than 503 "loading"
    assert client.get("/api/v1/endpoints/digits/metadata", HTTP_X_API_KEY=key["key"]).status_code == 200
    token, token_key = api_token_create(user=user, name="fuzz")
    ids = {"project_id": run.project_id, "version_id": run.graph_version_id, "run_id": run.pk,
           "dataset_id": run.dataset_id, "token_id": token.pk, "key_id": key["id"], "name": "digits",
           "number": 1, "version": 1}
    return {"ids": ids, "headers": {"Authorization": f"Token {token_key}", "X-API-Key": key["key"]}}


def cases(operation, ids: dict):
    """Positive and negative requests of ``operation``, with drawn ids or the user's own."""
    names = {parameter.name for parameter in operation.path_parameters}
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    if names:
        real = {name: ids[name] for name in names if name in ids}
        strategies += [operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real),
                       operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real)]
    return st.one_of(strategies)


def is_not_ready_yet(case, response) -> bool:
    """The one 503 by design: a readiness probe of a version this process is still loading (an
    endpoint the fuzz itself published a moment ago) says ``"ready": false`` with a 503, as load
    balancers and Kubernetes expect."""
    if response.status_code != 503 or not case.formatted_path.rstrip("/").endswith("/ready"):
        return False
    try:
        return response.json().get("ready") is False
    except ValueError:
        return False


@pytest.fixture
def quiet_client_errors():
    """Thousands of expected 4xx answers are not worth a log line each; 5xx are still logged."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def test_no_operation_answers_a_server_error(world, quiet_client_errors):
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda operation: (operation.method.upper() == "DELETE", operation.path, operation.method))
    statuses: collections.Counter = collections.Counter()
    server_errors: list[str] = []
    for operation in operations:
        @seed(SEED)
        @settings(max_examples=EXAMPLES * 4, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=cases(operation, world["ids"]))
        def send(case):
            response = case.call(headers=world["headers"])
            statuses[response.status_code] += 1
            if response.status_code >= 500 and not is_not_ready_yet(case, response):
                server_errors.append(f"{case.method} {case.formatted_path} answered {response.status_code}: "
                                     f"{response.text[:300]}\n  {case.as_curl_command(headers=world['headers'])}")

        send()
    log.info("fuzzed %d operations with %d requests (seed %d): answers %s", len(operations),
             sum(statuses.values()), SEED, dict(sorted(statuses.items())))
    assert len(operations) >= 70 and sum(statuses.values()) >= len(operations) * 4
    assert not server_errors, "\n".join(server_errors[:20])
