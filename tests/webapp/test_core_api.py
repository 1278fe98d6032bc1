"""Authentication, the error format, ownership, and no 500 for bad input anywhere."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from engine.errors import DataError, EngineError, GraphError
from tests.webapp.helpers import error_of
from webapp.core.exceptions import exception_handler
from webapp.core.permissions import is_owner

pytestmark = pytest.mark.django_db


def test_session_login_me_and_logout(user):
    browser = APIClient(enforce_csrf_checks=True)
    assert browser.get("/api/auth/me/").status_code == 401  # and sets the csrftoken cookie
    # A browser with cookies logs in with the CSRF token, like any unsafe request (login CSRF).
    credentials = {"username": "alice", "password": "alice-password"}
    assert browser.post("/api/auth/login/", credentials, format="json").status_code == 403
    response = browser.post("/api/auth/login/", credentials, format="json",
                            HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert response.status_code == 200 and response.json()["username"] == "alice"
    assert "sessionid" in response.cookies and "csrftoken" in response.cookies
    assert browser.get("/api/auth/me/").json()["username"] == "alice"
    # Unsafe requests of a logged-in browser need the CSRF token.
    refused = browser.post("/api/projects", {"name": "p"}, format="json")
    assert refused.status_code == 403 and "CSRF" in error_of(refused)["message"]
    token = browser.cookies["csrftoken"].value
    assert browser.post("/api/projects", {"name": "p"}, format="json", HTTP_X_CSRFTOKEN=token).status_code == 201
    assert browser.post("/api/auth/logout/", HTTP_X_CSRFTOKEN=token).status_code == 204
    assert browser.get("/api/auth/me/").status_code == 401


def test_wrong_credentials_are_a_400(user):
    response = APIClient().post("/api/auth/login/", {"username": "alice", "password": "guess"}, format="json")
    assert response.status_code == 400
    assert error_of(response) == {"code": "invalid_credentials", "message": "wrong username or password", "details": {}}
    assert APIClient().post("/api/auth/login/", {"username": "alice"}, format="json").status_code == 400


def test_scripts_use_a_token(user):
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "alice-password"}, format="json")
    assert response.status_code == 200
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert script.post("/api/projects", {"name": "from a script"}, format="json").status_code == 201
    assert script.delete("/api/auth/token/").status_code == 204
    revoked = script.get("/api/projects")
    assert revoked.status_code == 401 and error_of(revoked)["code"] == "authentication_failed"


def test_the_api_root_is_open_and_lists_the_endpoints(anonymous_client):
    body = anonymous_client.get("/api/").json()
    assert body["projects"].endswith("/api/projects") and body["schema"].endswith("/api/schema/")


def test_every_other_path_is_the_browser_app(settings, tmp_path):
    settings.FRONTEND_DIST = tmp_path
    (tmp_path / "index.html").write_text('<div id="root"></div>')
    for path in ("/", "/projects/3", "/runs/7?compare=1,2"):
        response = Client().get(path)
        assert response.status_code == 200 and b'<div id="root">' in response.content
        assert "no-cache" in response["Cache-Control"] and "csrftoken" in response.cookies  # the app's POSTs need it
    assert Client().get("/api/nothing-here").status_code == 404  # the API keeps its JSON 404


def test_an_unbuilt_browser_app_says_how_to_build_it(settings, tmp_path):
    settings.FRONTEND_DIST = tmp_path
    response = Client().get("/projects")
    assert response.status_code == 503 and b"npm run build" in response.content


def test_unknown_paths_get_a_json_404():
    response = Client().get("/api/nothing-here")
    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "no such path: /api/nothing-here", "details": {}}


@pytest.mark.parametrize(("error", "status", "code"), [
    (GraphError([{"node": "fc", "field": "params.units", "code": "bad_param", "message": "units must be >= 1"}]),
     400, "invalid_graph"),
    (DataError("data.csv line 3, column 'b': 'x' is not a number"), 400, "invalid_data"),
    (EngineError("epochs must be a positive integer"), 400, "invalid"),
])
def test_engine_errors_are_400s_with_their_message(error, status, code):
    response = exception_handler(error, {})
    assert response.status_code == status
    assert response.data["error"]["code"] == code and str(error) == response.data["error"]["message"]
    if isinstance(error, GraphError):
        assert response.data["error"]["details"]["errors"] == error.errors


def test_unexpected_errors_are_a_plain_500_without_internals(caplog):
    response = exception_handler(RuntimeError("secret internals"), {})
    assert response.status_code == 500
    assert "secret" not in str(response.data) and response.data["error"]["code"] == "server_error"
    assert "secret internals" in caplog.text


def test_ownership(user, other_user, project):
    assert is_owner(user, project) and not is_owner(other_user, project)


GARBAGE = [[], "text", 42, None, {"unexpected": {"deeply": [1, {"x": None}]}}, {"name": ["a list"]}]


@pytest.mark.parametrize("body", GARBAGE)
def test_no_500_for_any_bad_body(client, project, graph_version, digits, enqueued, body):
    run = client.post(f"/api/projects/{project.pk}/runs",
                      {"graph_version": graph_version.pk, "dataset": digits.pk}, format="json").json()
    endpoints = [
        ("post", "/api/projects"), ("put", f"/api/projects/{project.pk}"), ("patch", f"/api/projects/{project.pk}"),
        ("post", f"/api/projects/{project.pk}/versions"), ("post", f"/api/projects/{project.pk}/runs"),
        ("post", "/api/graphs/validate"), ("post", "/api/datasets"), ("patch", f"/api/datasets/{digits.pk}"),
        ("post", "/api/datasets/upload"), ("patch", f"/api/runs/{run['id']}"), ("post", "/api/auth/login/"),
        ("post", "/api/auth/token/"),
    ]
    for method, path in endpoints:
        response = getattr(client, method)(path, body, format="json")
        assert response.status_code < 500, (method, path, body, response.content[:300])
        if response.status_code >= 400:
            error_of(response)


@pytest.mark.parametrize("raw", ["{", "[1,", '{"name": }', "\x00\x01", "nul"])
def test_no_500_for_malformed_json(client, project, raw):
    for path in ["/api/projects", f"/api/projects/{project.pk}/versions", "/api/graphs/validate", "/api/datasets"]:
        response = client.post(path, raw, content_type="application/json")
        assert response.status_code == 400, (path, raw)
        assert error_of(response)["code"] == "parse_error"


def test_no_500_for_json_nested_too_deeply(client):
    response = client.post("/api/graphs/validate", "[" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in error_of(response)["message"]
