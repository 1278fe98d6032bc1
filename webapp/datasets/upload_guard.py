"""An ASGI guard in front of Django for dataset uploads: the body's size and pace are checked
before Django sees any of it.

Django's ASGI handler reads a whole request body (spooling it to disk) before a view runs, so a
413 from the view comes after a 1 GiB body has been received and written. This guard answers 413
from the Content-Length header before reading anything, counts the bytes of a body without one
(chunked) as they arrive and answers 413 as soon as they pass the cap, and answers 408 when the
client stalls for ``UPLOAD_READ_TIMEOUT_SECONDS`` between chunks. Either way Django is told the
client went away (``http.disconnect``), so it stops reading and answers nothing itself.

The cap is ``MAX_UPLOAD_BYTES`` plus the multipart framing (boundaries, part headers and the
small form fields), for the whole request: the data file and a labels file together.
"""

from __future__ import annotations

import asyncio
import json
import logging

from django.conf import settings

log = logging.getLogger(__name__)

UPLOAD_PATHS = ("/api/datasets/upload", "/api/datasets/upload/")
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


def upload_body_limit() -> int:
    return int(settings.MAX_UPLOAD_BYTES) + MULTIPART_OVERHEAD_BYTES


class UploadGuard:
    """ASGI middleware: limits the request body of ``UPLOAD_PATHS``; other requests pass untouched."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") not in UPLOAD_PATHS:
            return await self.application(scope, receive, send)
        limit = upload_body_limit()
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # Refused from the header: not one byte of the body is read.
            return await _refuse(send, 413, "too_large", _too_large_message(declared, limit),
                                 {"size": declared, "limit": limit})
        timeout = float(settings.UPLOAD_READ_TIMEOUT_SECONDS)
        received = 0
        refused = False
        body_done = False

        async def guarded_receive():
            nonlocal received, refused, body_done
            if refused:
                return {"type": "http.disconnect"}
            if body_done:  # Django listening for a disconnect while the view runs: no read timeout
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                refused = True
                await _refuse(send, 408, "timeout",
                              f"the upload sent nothing for {timeout:g} s (the server's "
                              "NETFORGE_UPLOAD_READ_TIMEOUT_SECONDS setting); send it again", {"timeout": timeout})
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await _refuse(send, 413, "too_large", _too_large_message(received, limit, partial=True),
                                  {"size": received, "limit": limit})
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not refused:  # once the guard has answered, a late reply from Django is dropped
                await send(message)

        return await self.application(scope, guarded_receive, guarded_send)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large_message(size: int, limit: int, *, partial: bool = False) -> str:
    from webapp.datasets.services import describe_size  # noqa: PLC0415

    amount = f"more than {describe_size(size)}" if partial else describe_size(size)
    return (f"the upload is {amount}, over the upload limit of {describe_size(limit - MULTIPART_OVERHEAD_BYTES)} "
            "(the server's NETFORGE_MAX_UPLOAD_MB setting)")


async def _refuse(send, status: int, code: str, message: str, details: dict) -> None:
    log.info("upload refused with %s: %s", status, message)
    body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
