"""GET /api/training-options, and a run's hyperparameters over REST held to the shared table of
training-option cases (tests/fixtures/training_option_cases.json) that the engine's validator and
the train panel's are held to: the same options accepted, the same fields named, the same words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webapp.runs.models import Run
from webapp.runs.services import PLATFORM_OPTIONS

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parents[1] / "fixtures"
CASES = json.loads((FIXTURES / "training_option_cases.json").read_text())
# What the train panel is generated from in the frontend's tests; regenerate it from the API when
# the schema changes (the test below prints the difference).
SCHEMA = json.loads((FIXTURES / "training_options_schema.json").read_text())


def test_the_schema_is_served_as_the_train_panels_tests_know_it(client):
    response = client.get("/api/training-options")
    assert response.status_code == 200
    assert response.json() == SCHEMA, "tests/fixtures/training_options_schema.json differs from the API's"
    assert SCHEMA["reserved"] == PLATFORM_OPTIONS == CASES["reserved"]


def test_the_schema_needs_a_login(anonymous_client):
    assert anonymous_client.get("/api/training-options").status_code == 401


@pytest.mark.parametrize("case", CASES["cases"], ids=[case["description"] for case in CASES["cases"]])
def test_a_run_is_accepted_or_refused_as_the_shared_table_says(client, project, graph_version, digits, enqueued,
                                                              django_capture_on_commit_callbacks, case):
    body = {"graph_version": graph_version.pk, "dataset": digits.pk, "hyperparameters": case["options"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/runs", body, format="json")
    if "cleaned" in case:
        assert response.status_code == 201, response.json()
        kept = {key: value for key, value in case["cleaned"].items() if key not in PLATFORM_OPTIONS}
        assert response.json()["hyperparameters"] == kept
        return
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["details"] == {f"hyperparameters.{field}": [message] for field, message in case["errors"].items()}
    first = next(iter(case["errors"]))
    assert error["message"] == f"hyperparameters.{first}: {case['errors'][first]}"
    assert not Run.objects.exists()
