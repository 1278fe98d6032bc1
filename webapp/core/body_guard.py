"""An ASGI guard in front of Django for every request body: capped before it is spooled, and read
under timeouts, so a client cannot hold memory, disk or a connection for as long as it likes.

Django's ASGI handler reads a whole body (spooling it to disk past 2.5 MB) before any view or
setting like ``DATA_UPLOAD_MAX_MEMORY_SIZE`` sees it. This guard answers 413 from the
``Content-Length`` header before reading anything when it declares more than
``REQUEST_MAX_BODY_BYTES``, counts the bytes of a chunked body as they arrive, answers 408 when the
client sends nothing for ``REQUEST_READ_TIMEOUT_SECONDS`` or has not finished after
``REQUEST_BODY_TIMEOUT_SECONDS``, and answers 400 for a query string with a NUL (``%00``), which
no database column can hold. Its answers close the connection. Dataset uploads have a guard of
their own with the upload cap (``webapp.datasets.upload_guard``), so they pass through this one.

The request line and headers come before any ASGI application runs: the ASGI server drops a
client that is slow to send them (``webapp.http_timeouts``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable

from django.conf import settings

log = logging.getLogger(__name__)


class RequestBodyGuard:
    """ASGI middleware (see the module's docstring); ``exempt_paths`` have a guard of their own."""

    def __init__(self, application, *, exempt_paths: tuple[str, ...] = ()):
        self.application = application
        self.exempt_paths = exempt_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") in self.exempt_paths:
            return await self.application(scope, receive, send)
        if b"%00" in scope.get("query_string", b""):
            return await refuse(send, 400, "bad_request", "the query string holds a NUL character (%00)", {})
        policy = BodyPolicy(limit=int(settings.REQUEST_MAX_BODY_BYTES),
                            stall_seconds=float(settings.REQUEST_READ_TIMEOUT_SECONDS),
                            total_seconds=float(settings.REQUEST_BODY_TIMEOUT_SECONDS),
                            too_large=_too_large, timed_out=_timed_out)
        return await guard_body(self.application, scope, receive, send, policy)


@dataclasses.dataclass(frozen=True)
class BodyPolicy:
    """What one guard allows a request body: ``limit`` bytes, ``stall_seconds`` between two of its
    messages, ``total_seconds`` for all of it (None: no total); and the messages of its refusals."""

    limit: int
    stall_seconds: float
    total_seconds: float | None
    too_large: Callable[..., str]  # (size, limit, *, partial) -> message
    timed_out: Callable[[float, bool], str]  # (the wait that ran out, whether it was the total) -> message


async def guard_body(application, scope, receive, send, policy: BodyPolicy):
    """Run ``application`` with the body held to ``policy``: 413 from the Content-Length header
    before reading anything, 413 as soon as the bytes received pass the limit, 408 when a wait runs
    out. Once the guard has answered, the application is told the client went away
    (``http.disconnect``) and a late reply from it is dropped."""
    limit = policy.limit
    declared = content_length(scope)
    if declared is not None and declared > limit:
        # Refused from the header: not one byte of the body is read.
        return await refuse(send, 413, "too_large", policy.too_large(declared, limit),
                            {"size": declared, "limit": limit})
    deadline = None if policy.total_seconds is None else time.monotonic() + policy.total_seconds
    received = 0
    refused = False
    body_done = False

    async def guarded_receive():
        nonlocal received, refused, body_done
        if refused:
            return {"type": "http.disconnect"}
        if body_done:  # Django listening for a disconnect while the view runs: no timeout
            return await receive()
        wait = policy.stall_seconds if deadline is None else min(policy.stall_seconds, deadline - time.monotonic())
        try:
            async with asyncio.timeout(max(wait, 0.001)):  # no task per message, unlike wait_for
                message = await receive()
        except TimeoutError:
            refused = True
            await refuse(send, 408, "timeout", policy.timed_out(wait, wait < policy.stall_seconds), {"timeout": wait})
            return {"type": "http.disconnect"}
        if message["type"] == "http.request":
            body_done = not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > limit:
                refused = True
                await refuse(send, 413, "too_large", policy.too_large(received, limit, partial=True),
                             {"size": received, "limit": limit})
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(message):
        if not refused:
            await send(message)

    return await application(scope, guarded_receive, guarded_send)


def _timed_out(wait: float, whole_body: bool) -> str:
    return ((f"the request body was not complete after {settings.REQUEST_BODY_TIMEOUT_SECONDS:g} s" if whole_body
             else f"the request body stalled: nothing for {wait:g} s") + "; send it again")


def content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) < 19 else None
    return None


def _too_large(size: int, limit: int, *, partial: bool = False) -> str:
    amount = f"more than {size:,}" if partial else f"{size:,}"
    return (f"the request body is {amount} bytes, over the limit of {limit:,} "
            "(the server's NETFORGE_MAX_REQUEST_BODY_MB setting)")


async def refuse(send, status: int, code: str, message: str, details: dict) -> None:
    log.info("request refused with %s: %s", status, message)
    body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
