"""The ASGI fast path of the prediction routes: ``POST /api/v1/endpoints/<name>[/versions/<n>]/predict``
and ``POST /v2/models/<name>[/versions/<n>]/infer`` go straight from the ASGI server to
``serving.answer_predict`` (the same code as the Django views), everything else to Django.

Why: Django runs the sync-only middleware of the stack (WhiteNoise) in its sync thread, so each
request through Django hops threads twice and waits for that one thread; under load that costs
milliseconds a request. Prediction requests need none of that middleware: they carry an API key
(no session, no CSRF) and never serve a file. Responses get the same security headers as the rest.
"""

from __future__ import annotations

import re

import orjson

from webapp.endpoints import serving

ROUTES = (
    (re.compile(r"^/api/v1/endpoints/(?P<name>[-a-zA-Z0-9_]+)/(?:versions/(?P<number>[0-9]+)/)?predict/?$"), False),
    (re.compile(r"^/v2/models/(?P<name>[-a-zA-Z0-9_]+)/(?:versions/(?P<number>[0-9]+)/)?infer/?$"), True),
)
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin")]


class ServingFastPath:
    """ASGI middleware: prediction POSTs to the serving runtime, the rest to ``application``."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            for pattern, v2 in ROUTES:
                match = pattern.match(scope["path"])
                if match:
                    return await self._predict(match, v2, scope, receive, send)
        return await self.application(scope, receive, send)

    async def _predict(self, match, v2: bool, scope, receive, send) -> None:
        headers = {name.decode("latin1").lower(): value.decode("latin1") for name, value in scope["headers"]}
        number = int(match["number"]) if match["number"] else None
        limit = serving.max_request_bytes()
        chunks, size, more = [], 0, True
        try:
            serving._check_size(serving._declared_size(headers))
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    serving._check_size(size)
                chunks.append(chunk)
                more = message.get("more_body", False)
        except serving.ServingError as error:
            status, body, extra = serving._error_answer(error, v2=v2)
        else:
            status, body, extra = await serving.answer_predict(match["name"], number, headers, b"".join(chunks), v2=v2)
        content = orjson.dumps(body)
        response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
                            *SECURITY_HEADERS,
                            *((name.lower().encode(), value.encode()) for name, value in extra.items())]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})
