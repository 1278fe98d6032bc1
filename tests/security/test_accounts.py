"""Accounts as a careful service does them: login and sign-up only from the site's own pages,
throttles per address and a lockout per account, Django's password validators, API tokens hashed
at rest with expiry, listing and revocation, and production's security headers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.webapp.helpers import error_of
from webapp.core.models import ApiToken

pytestmark = pytest.mark.django_db

ALICE = {"username": "alice", "password": "alice-password"}


# -- login CSRF ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/auth/login/", "/api/auth/register/"])
def test_a_page_of_another_site_cannot_log_a_browser_in_or_sign_it_up(user, path):
    browser = Client(enforce_csrf_checks=True)  # a cross-site form post: an Origin, no CSRF token
    body = ALICE if "login" in path else {"username": "planted", "password": "a long passphrase"}
    response = browser.post(path, body, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403 and "CSRF" in error_of(response)["message"]
    assert "sessionid" not in response.cookies
    assert not get_user_model().objects.filter(username="planted").exists()


def test_the_browser_app_logs_in_with_its_csrf_token_and_scripts_without_cookies_need_none(user):
    browser = APIClient(enforce_csrf_checks=True)
    browser.get("/api/auth/csrf/")
    token = browser.cookies["csrftoken"].value
    assert browser.post("/api/auth/login/", ALICE, format="json", HTTP_ORIGIN="http://testserver",
                        HTTP_X_CSRFTOKEN=token).status_code == 200
    # httpx, curl: no cookies, no Origin; nothing of a browser's to ride
    assert APIClient(enforce_csrf_checks=True).post("/api/auth/login/", ALICE, format="json").status_code == 200


# -- throttling and lockout ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "scope"), [("/api/auth/login/", "login"), ("/api/auth/token/", "token"),
                                              ("/api/auth/register/", "register")])
def test_each_account_route_is_throttled_per_address(settings, user, path, scope):
    settings.AUTH_THROTTLE_RATES = {**settings.AUTH_THROTTLE_RATES, scope: "5/min"}
    answers = []
    for index in range(7):
        body = ALICE if scope != "register" else {"username": f"new{index}", "password": "a long passphrase"}
        answers.append(APIClient().post(path, body, format="json", REMOTE_ADDR="203.0.113.7"))
    assert [answer.status_code for answer in answers[:5]] == [200 if scope != "register" else 201] * 5
    refused = answers[5]
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert error_of(refused)["code"] == "throttled"
    # another address is not held back by this one
    body = ALICE if scope != "register" else {"username": "elsewhere", "password": "a long passphrase"}
    assert APIClient().post(path, body, format="json", REMOTE_ADDR="198.51.100.9").status_code in (200, 201)


def test_a_client_cannot_pick_its_own_address_with_x_forwarded_for(settings, user):
    settings.AUTH_THROTTLE_RATES = {**settings.AUTH_THROTTLE_RATES, "login": "3/min"}
    answers = [APIClient().post("/api/auth/login/", ALICE, format="json", REMOTE_ADDR="203.0.113.7",
                                HTTP_X_FORWARDED_FOR=f"10.0.0.{index}") for index in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]


def test_wrong_passwords_lock_the_account_even_against_the_right_one(settings, user):
    settings.LOGIN_MAX_FAILURES = 5
    wrong = {"username": "alice", "password": "guess"}
    for index in range(5):  # from five addresses: the lockout is per account, not per address
        response = APIClient().post("/api/auth/login/", wrong, format="json", REMOTE_ADDR=f"203.0.113.{index}")
        assert response.status_code == 400
    for path in ("/api/auth/login/", "/api/auth/token/"):
        locked = APIClient().post(path, ALICE, format="json", REMOTE_ADDR="198.51.100.1")
        assert locked.status_code == 429, (path, locked.content)
        message = error_of(locked)["message"]
        assert "too many wrong passwords for this account" in message and "locked for 15 minute(s)" in message
    # the username is matched as typed in any case; other accounts are not affected
    assert APIClient().post("/api/auth/login/", {**ALICE, "username": "ALICE"}, format="json").status_code == 429
    get_user_model().objects.create_user(username="bob", password="bob-password")
    assert APIClient().post("/api/auth/login/", {"username": "bob", "password": "bob-password"},
                            format="json").status_code == 200


def test_a_right_password_before_the_limit_clears_the_count(settings, user):
    settings.LOGIN_MAX_FAILURES = 3
    wrong = {"username": "alice", "password": "guess"}
    for _ in range(2):
        APIClient().post("/api/auth/login/", wrong, format="json")
    assert APIClient().post("/api/auth/login/", ALICE, format="json").status_code == 200
    for _ in range(2):
        APIClient().post("/api/auth/login/", wrong, format="json")
    assert APIClient().post("/api/auth/login/", ALICE, format="json").status_code == 200


# -- passwords ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("password", "says"), [
    ("12345678", "too common"),
    ("password", "too common"),
    ("        ", "only spaces"),
    ("aaaaaaaaaaaa", "different characters"),
    ("8364019275", "entirely numeric"),
    ("short", "too short"),
    ("frederick-smith", "too similar"),
])
def test_weak_passwords_are_refused_at_sign_up(password, says):
    response = APIClient().post("/api/auth/register/", {"username": "frederick-smith", "password": password,
                                                       "email": "frederick@example.com"}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert "password" in error["details"] and any(says in message for message in error["details"]["password"]), error
    assert not get_user_model().objects.exists()


# -- API tokens -----------------------------------------------------------------------------------------------

def test_tokens_are_hashed_at_rest_listed_without_their_keys_and_revocable(user, client):
    made = APIClient().post("/api/auth/token/", ALICE, format="json").json()
    key = made["token"]
    assert key not in json.dumps(list(ApiToken.objects.values()), default=str)  # only its SHA-256 is stored
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert script.get("/api/projects").status_code == 200
    named = client.post("/api/auth/tokens", {"name": "laptop", "expires_in_days": 7}, format="json")
    assert named.status_code == 201
    second = named.json()
    assert second["token"].startswith(second["prefix"]) and second["name"] == "laptop"
    expires = timezone.datetime.fromisoformat(second["expires_at"])
    assert timedelta(days=6, hours=23) < expires - timezone.now() <= timedelta(days=7)
    listed = client.get("/api/auth/tokens").json()
    assert {entry["id"] for entry in listed} == {made["id"], second["id"]}
    assert all("token" not in entry and not entry["expired"] for entry in listed)
    assert client.delete(f"/api/auth/tokens/{made['id']}").status_code == 204
    revoked = script.get("/api/projects")
    assert revoked.status_code == 401 and revoked["WWW-Authenticate"] == "Token"


def test_an_expired_token_is_refused(user):
    key = APIClient().post("/api/auth/token/", ALICE, format="json").json()["token"]
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = script.get("/api/projects")
    assert response.status_code == 401 and "expired" in error_of(response)["message"]


def test_a_token_lifetime_is_bounded_and_another_users_token_is_not_found(client, other_client, settings):
    settings.API_TOKEN_MAX_LIFETIME_DAYS = 30
    too_long = client.post("/api/auth/tokens", {"expires_in_days": 31}, format="json")
    assert too_long.status_code == 400 and "expires_in_days" in error_of(too_long)["details"]
    mine = client.post("/api/auth/tokens", {}, format="json").json()
    assert other_client.delete(f"/api/auth/tokens/{mine['id']}").status_code == 404
    assert ApiToken.objects.filter(pk=mine["id"]).exists()


def test_plain_tokens_from_before_are_carried_over_as_hashes():
    """The migration: DRF's plain-text tokens become hashed ones that still work, and are deleted."""
    from django.apps import apps  # noqa: PLC0415
    from rest_framework.authtoken.models import Token  # noqa: PLC0415

    from webapp.core.migrations import __name__ as package  # noqa: PLC0415

    user = get_user_model().objects.create_user(username="old-script", password="old-script-password")
    plain = Token.objects.create(user=user).key
    migration = __import__(f"{package}.0001_initial", fromlist=["carry_over_plain_tokens"])
    migration.carry_over_plain_tokens(apps, None)
    assert not Token.objects.exists()
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {plain}")
    assert script.get("/api/projects").status_code == 200


# -- production settings ----------------------------------------------------------------------------------------

def test_production_settings_send_csp_hsts_and_secure_cookies():
    script = ("import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({"
              "'hsts': s.SECURE_HSTS_SECONDS, 'session': s.SESSION_COOKIE_SECURE, 'csrf': s.CSRF_COOKIE_SECURE, "
              "'httponly': s.SESSION_COOKIE_HTTPONLY, 'csp': s.CONTENT_SECURITY_POLICY, 'middleware': s.MIDDLEWARE, "
              "'debug': s.DEBUG}))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.production", "SECRET_KEY": "x" * 60}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    production = json.loads(result.stdout.strip().splitlines()[-1])
    assert production["hsts"] >= 365 * 24 * 3600 and production["session"] and production["csrf"]
    assert production["httponly"] and not production["debug"]
    assert "default-src 'self'" in production["csp"] and "frame-ancestors 'none'" in production["csp"]
    assert "webapp.core.middleware.ContentSecurityPolicyMiddleware" in production["middleware"]


def test_the_csp_middleware_adds_the_policy(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "webapp.core.middleware.ContentSecurityPolicyMiddleware"]
    settings.CONTENT_SECURITY_POLICY = "default-src 'self'"
    assert Client().get("/api/")["Content-Security-Policy"] == "default-src 'self'"


def test_an_unreachable_cache_lets_logins_through_and_says_so(settings, user, caplog):
    """Fault: the throttles' Redis is down. Logging in still works (a Redis outage must not lock every
    user out), and each skipped check is logged."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    settings.AUTH_THROTTLE_RATES = {**settings.AUTH_THROTTLE_RATES, "login": "1/min"}
    for _ in range(3):
        assert APIClient().post("/api/auth/login/", ALICE, format="json").status_code == 200
    assert "could not reach the cache" in caplog.text
