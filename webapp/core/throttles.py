"""Throttling of the account routes (login, token, sign-up): per client address, and per account a
lockout after repeated wrong passwords.

Counters live in Django's cache, which is Redis in every deployment (``CACHES``), so every web
process counts together; the test settings use the local-memory cache. The rates are settings
(``AUTH_THROTTLE_RATES``, ``LOGIN_MAX_FAILURES``, ``LOGIN_LOCKOUT_SECONDS``), read on each request.
If the cache cannot be reached the request is let through and the failure logged: a Redis outage
should not lock every user out.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle

log = logging.getLogger(__name__)


class AddressThrottle(SimpleRateThrottle):
    """Requests per client address to one account route; ``scope`` names the route's rate in
    ``AUTH_THROTTLE_RATES`` (e.g. ``"login": "20/min"``)."""

    scope = ""

    def get_rate(self):
        return settings.AUTH_THROTTLE_RATES[self.scope]

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": f"auth-{self.scope}", "ident": self.get_ident(request)}

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache is down: see the module's docstring
            log.exception("the %s throttle could not reach the cache; request allowed", self.scope)
            return True


class LoginAddressThrottle(AddressThrottle):
    scope = "login"


class TokenAddressThrottle(AddressThrottle):
    scope = "token"


class RegisterAddressThrottle(AddressThrottle):
    scope = "register"


class AccountLockout:
    """Wrong passwords for one username: after ``LOGIN_MAX_FAILURES`` within
    ``LOGIN_LOCKOUT_SECONDS`` the account takes no password (not even the right one) until the
    lockout ends. ``check()`` raises ``Throttled`` with the lockout message."""

    def __init__(self, username: str):
        digest = hashlib.sha256(username.strip().lower().encode("utf-8", "backslashreplace")).hexdigest()[:32]
        self.failures_key = f"netforge:auth-failures:{digest}"
        self.locked_key = f"netforge:auth-locked:{digest}"
        self.username = username

    def check(self) -> None:
        try:
            until = cache.get(self.locked_key)
        except Exception:
            log.exception("the account lockout could not reach the cache; login allowed")
            return
        wait = (until - time.time()) if until else 0
        if wait > 0:
            minutes = math.ceil(int(settings.LOGIN_LOCKOUT_SECONDS) / 60)
            raise Throttled(wait=wait, detail=(
                f"too many wrong passwords for this account: it is locked for {minutes} minute(s) "
                f"from the last one; try again in {math.ceil(wait)} s"))

    def record_failure(self) -> None:
        window = int(settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.add(self.failures_key, 0, window)
            failures = cache.incr(self.failures_key)
            if failures >= int(settings.LOGIN_MAX_FAILURES):
                cache.set(self.locked_key, time.time() + window, window)
                cache.delete(self.failures_key)
                log.warning("account %r locked for %s s after %s wrong passwords", self.username, window, failures)
        except Exception:
            log.exception("the account lockout could not reach the cache")

    def clear(self) -> None:
        try:
            cache.delete(self.failures_key)
        except Exception:
            log.exception("the account lockout could not reach the cache")
