"""Sign-up and the CSRF cookie of the browser app: a new user is logged in with a session at once,
and the single-page app gets the csrftoken cookie before it has a session."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.webapp.helpers import error_of

pytestmark = pytest.mark.django_db


def test_signing_up_creates_the_user_and_logs_them_in():
    browser = APIClient(enforce_csrf_checks=True)
    response = browser.post("/api/auth/register/", {"username": "bob", "password": "a long passphrase",
                                                    "email": "bob@example.com"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {key: body[key] for key in ("username", "email", "is_staff")} == {
        "username": "bob", "email": "bob@example.com", "is_staff": False}
    assert "sessionid" in response.cookies and "csrftoken" in response.cookies
    me = browser.get("/api/auth/me/").json()
    assert {key: me[key] for key in body} == body, "the answer is what /api/auth/me/ says"
    # The session works for unsafe requests with the CSRF token, as after a login.
    token = browser.cookies["csrftoken"].value
    assert browser.post("/api/projects", {"name": "mine"}, format="json", HTTP_X_CSRFTOKEN=token).status_code == 201
    assert browser.post("/api/projects", {"name": "again"}, format="json").status_code == 403
    # And the password is the one to log in with later.
    assert APIClient().post("/api/auth/login/", {"username": "bob", "password": "a long passphrase"},
                            format="json").status_code == 200


def test_the_email_is_optional():
    response = APIClient().post("/api/auth/register/", {"username": "carol", "password": "another passphrase"},
                                format="json")
    assert response.status_code == 201 and response.json()["email"] == ""


def test_a_taken_username_is_a_400_naming_the_field(user):
    for taken in ("alice", "ALICE"):
        response = APIClient().post("/api/auth/register/", {"username": taken, "password": "a long passphrase"},
                                    format="json")
        assert response.status_code == 400
        error = error_of(response)
        assert list(error["details"]) == ["username"] and "already taken" in error["message"], error
    assert get_user_model().objects.count() == 1


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"username": "dave", "password": "short"}, "password", "too short"),
    ({"username": "dave"}, "password", "required"),
    ({"password": "a long passphrase"}, "username", "required"),
    ({"username": "dave smith", "password": "a long passphrase"}, "username", "valid username"),
    ({"username": "dave", "password": "a long passphrase", "email": "not-an-email"}, "email", "valid email"),
    ({"username": "x" * 151, "password": "a long passphrase"}, "username", "150 characters"),
])
def test_bad_sign_ups_are_a_400_naming_the_field(body, field, words):
    response = APIClient().post("/api/auth/register/", body, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert field in error["details"] and words in error["message"], error
    assert not get_user_model().objects.exists()


def test_signing_up_from_a_browser_with_cookies_needs_the_csrf_token(user):
    # A browser that has cookies is checked like any unsafe request (no sign-up posted by another site).
    browser = APIClient(enforce_csrf_checks=True)
    browser.post("/api/auth/login/", {"username": "alice", "password": "alice-password"}, format="json")
    body = {"username": "erin", "password": "a long passphrase"}
    assert browser.post("/api/auth/register/", body, format="json").status_code == 403
    response = browser.post("/api/auth/register/", body, format="json",
                            HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert response.status_code == 201
    assert browser.get("/api/auth/me/").json()["username"] == "erin"


def test_the_single_page_app_gets_the_csrf_cookie_before_logging_in():
    browser = APIClient(enforce_csrf_checks=True)
    response = browser.get("/api/auth/csrf/")
    assert response.status_code == 200
    assert response.json()["csrf_token"] and "csrftoken" in response.cookies
    # /api/auth/me/ sets it too, even when it answers 401 (the app asks it first, to know who is there).
    anonymous = APIClient(enforce_csrf_checks=True)
    me = anonymous.get("/api/auth/me/")
    assert me.status_code == 401 and "csrftoken" in me.cookies


def test_the_api_root_links_sign_up(anonymous_client):
    body = anonymous_client.get("/api/").json()
    assert body["register"].endswith("/api/auth/register/") and body["csrf"].endswith("/api/auth/csrf/")
