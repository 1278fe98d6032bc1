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

from django.conf import settings

from engine.data.limits import describe_bytes
from webapp.core.body_guard import BodyPolicy, guard_body

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
        policy = BodyPolicy(limit=upload_body_limit(), stall_seconds=float(settings.UPLOAD_READ_TIMEOUT_SECONDS),
                            total_seconds=None, too_large=_too_large_message, timed_out=_timed_out_message)
        return await guard_body(self.application, scope, receive, send, policy)


def _too_large_message(size: int, limit: int, *, partial: bool = False) -> str:
    amount = f"more than {describe_bytes(size)}" if partial else describe_bytes(size)
    return (f"the upload is {amount}, over the upload limit of {describe_bytes(limit - MULTIPART_OVERHEAD_BYTES)} "
            "(the server's NETFORGE_MAX_UPLOAD_MB setting)")


def _timed_out_message(wait: float, whole_body: bool) -> str:
    return (f"the upload sent nothing for {wait:g} s (the server's NETFORGE_UPLOAD_READ_TIMEOUT_SECONDS setting); "
            "send it again")
