"""Every API error as JSON: ``{"error": {"code", "message", "details"}}``.

Bad input never becomes a 500 or a traceback: engine errors (graph, data, training options) are
400s with the engine's message, Django's validation and protected-delete errors are 400 and 409,
and services raise the ``ApiError`` subclasses below. Anything unexpected is logged and answered
with a plain 500 that shows no internals.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from engine.errors import DataError, EngineError, GraphError
from webapp.core.json_input import UnsafeJsonValue

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a service raises for the API to answer: a status, a code, a message, details."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, details: dict | list | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
        if code is not None:
            self.code = code


class InvalidInput(ApiError):
    """400: the request names something that does not exist or is not acceptable."""


class Conflict(ApiError):
    """409: the request is valid but the object's state does not allow it now."""

    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class PayloadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "too_large"


class TooManyRequests(ApiError):
    """429: the request is valid, but the user already has as much of it going as a user may."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "too_many_requests"


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER (settings.REST_FRAMEWORK)."""
    if isinstance(exc, GraphError):
        return _answer(400, "invalid_graph", str(exc), {"errors": exc.errors})
    if isinstance(exc, DataError):
        return _answer(400, "invalid_data", str(exc))
    if isinstance(exc, EngineError):
        return _answer(400, "invalid", str(exc))
    if isinstance(exc, ApiError):
        return _answer(exc.status_code, exc.code, exc.message, exc.details)
    if isinstance(exc, UnsafeJsonValue):
        return _answer(400, "invalid_value", str(exc), {exc.path: [exc.problem]})
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return _answer(400, "invalid", _first_message(details), details)
    if isinstance(exc, ProtectedError):
        return _answer(409, "conflict", f"cannot delete: still used by {len(exc.protected_objects)} other object(s)")
    if isinstance(exc, RequestDataTooBig):
        return _answer(413, "too_large", f"the request body is too large ({exc})")
    if isinstance(exc, SuspiciousOperation):
        return _answer(400, "bad_request", str(exc) or "bad request")
    if isinstance(exc, RecursionError) and "JSON" in str(exc):  # the parser gives up on very deep nesting
        return _answer(400, "parse_error", "JSON parse error - the document is nested too deeply")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        response = drf_exception_handler(exc, context)  # keeps WWW-Authenticate, Retry-After, rollback
        if isinstance(exc, exceptions.ValidationError):
            details = _plain(exc.detail)
            if not isinstance(details, dict):
                details = {"non_field_errors": details}
            response.data = error_body("invalid", _first_message(details), details)
        else:
            codes = exc.get_codes()
            response.data = error_body(codes if isinstance(codes, str) else "error", str(exc.detail))
        return response
    if settings.DEBUG:
        return None  # Django's debug page shows the traceback to the developer
    view = context.get("view")
    log.error("unexpected error in %s", type(view).__name__ if view is not None else "a view", exc_info=exc)
    set_rollback()
    return Response(error_body("server_error", "an unexpected error happened on the server; it has been logged"),
                    status=500)


def _answer(status_code: int, code: str, message: str, details=None) -> Response:
    set_rollback()
    return Response(error_body(code, message, details), status=status_code)


def _plain(detail):
    """ErrorDetail trees as plain lists, dicts and strings."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_plain(value) for value in detail]
    return str(detail)


def _first_message(details, path: str = "") -> str:
    """The first leaf message of an error tree, prefixed with where it is (``field.sub: message``)."""
    if isinstance(details, dict):
        for key, value in details.items():
            where = path if key == "non_field_errors" else (f"{path}.{key}" if path else str(key))
            return _first_message(value, where)
        return "invalid input"
    if isinstance(details, list):
        for index, value in enumerate(details):
            if isinstance(value, dict | list):
                return _first_message(value, f"{path}[{index}]")
            return _first_message(value, path)
        return "invalid input"
    return f"{path}: {details}" if path else str(details)


# -- Django's own error views, for URLs outside DRF (unknown paths, crashes) -------------------------------

def not_found(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body("not_found", f"no such path: {request.path}"), status=404)


def server_error(request) -> JsonResponse:
    return JsonResponse(error_body("server_error", "an unexpected error happened on the server; it has been logged"),
                        status=500)


def bad_request(request, exception=None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(error_body("too_large", f"the request body is too large ({exception})"), status=413)
    return JsonResponse(error_body("bad_request", str(exception) if exception else "bad request"), status=400)


def permission_denied(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body("permission_denied", str(exception) or "permission denied"), status=403)
