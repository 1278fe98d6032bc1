"""Production: SECRET_KEY must be set; HTTPS-only cookies, HSTS and a Content-Security-Policy;
DEBUG stays off unless set. Behind a TLS-terminating proxy, set SECURE_PROXY_SSL_HEADER=1 (the
proxy sends X-Forwarded-Proto) so that Django knows a request came over HTTPS."""

import os

from django.core.exceptions import ImproperlyConfigured

from webapp.settings.base import *  # noqa: F403
from webapp.settings.base import MIDDLEWARE, SECRET_KEY, env_bool

if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in the environment for production")
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"  # the browser app reads it (X-CSRFToken), so it is not HttpOnly
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# HSTS: browsers that saw the site over HTTPS keep to HTTPS for a year (0 turns it off).
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)  # usually the proxy's job
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The browser app is same-origin scripts and styles (its bundle sets styles from script, and the
# graph canvas adds style attributes, hence 'unsafe-inline' for styles only); live metrics come over
# a WebSocket to the same host; nothing may frame it.
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'",
)
MIDDLEWARE = [*MIDDLEWARE[:1], "webapp.core.middleware.ContentSecurityPolicyMiddleware", *MIDDLEWARE[1:]]
