"""``Authorization: Token <key>`` against hashed, expiring API tokens (``webapp.core.models.ApiToken``)."""

from __future__ import annotations

from rest_framework import authentication, exceptions


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """DRF authentication: the request's token, looked up by its SHA-256. ``request.auth`` is the
    ``ApiToken``. An unknown, revoked or expired token is a 401 (with ``WWW-Authenticate: Token``).
    (A subclass of DRF's token authentication for its header format and OpenAPI description only:
    DRF's plain-text token table is not read.)"""

    keyword = "Token"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header must be 'Token <key>'")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("the token holds characters a token never has") from None
        from webapp.core.services import api_token_user  # noqa: PLC0415  (DRF imports this class from its settings)

        found = api_token_user(key)
        if found is None:
            raise exceptions.AuthenticationFailed("the token is unknown, revoked or expired; make a new one on "
                                                  "your account page or with POST /api/auth/token/")
        return found

    def authenticate_header(self, request):
        return self.keyword
