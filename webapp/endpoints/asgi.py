"""Serving in the ASGI application: the lifespan that starts the gRPC server beside REST, and the
fast path of the prediction routes.

``ServingLifespan``: on the ASGI server's startup, the gRPC prediction server (NetForge's
``PredictionService`` and the Open Inference Protocol's ``inference.GRPCInferenceService``) starts
on the same event loop, over the same serving runtime as the REST routes (one model cache, one batcher per
version), on ``NETFORGE_GRPC_HOST:NETFORGE_GRPC_PORT`` unless the port is 0; and a task reads
the routes every ``SERVING_REFRESH_SECONDS`` (new default versions are loaded and warmed up
before they answer, revoked keys stop working, metrics reach the database) with or without
traffic. On shutdown, both stop and the last metrics are stored. A port that cannot be bound
fails the startup, with the port in the message. Each process has its own runtime: with
``uvicorn --workers N``, set ``NETFORGE_GRPC_REUSE_PORT=1`` and the N processes share the gRPC
port as they share the HTTP one.

``ServingFastPath``: ``POST /api/v1/endpoints/<name>[/versions/<n>]/predict`` and
``POST /v2/models/<name>[/versions/<n>]/infer`` go straight from the ASGI server to
``serving.answer_predict`` (the same code as the Django views), everything else to Django.

Why: Django runs the sync-only middleware of the stack (WhiteNoise) in its sync thread, so each
request through Django hops threads twice and waits for that one thread; under load that costs
milliseconds a request. Prediction requests need none of that middleware: they carry an API key
(no session, no CSRF) and never serve a file. Responses get the same security headers as the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

import orjson
from django.conf import settings

from webapp.endpoints import serving

log = logging.getLogger(__name__)

ROUTES = (
    (re.compile(r"^/api/v1/endpoints/(?P<name>[-a-zA-Z0-9_]+)/(?:versions/(?P<number>[0-9]+)/)?predict/?$"), False),
    (re.compile(r"^/v2/models/(?P<name>[-a-zA-Z0-9_]+)/(?:versions/(?P<number>[0-9]+)/)?infer/?$"), True),
)
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin")]


class ServingLifespan:
    """ASGI middleware: answers the ``lifespan`` scope (see the module's docstring), passes the rest on."""

    def __init__(self, application):
        self.application = application
        self._runtime = None
        self._grpc = None
        self._refresher: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.application(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start()
                except Exception as error:  # noqa: BLE001  (the server reports it and exits)
                    log.error("serving could not start: %s", error)
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        from webapp.serving.grpc_server import start_server  # noqa: PLC0415
        from webapp.serving.runtime import get_runtime  # noqa: PLC0415

        self._runtime = get_runtime()
        if settings.NETFORGE_GRPC_PORT:
            self._grpc = await start_server(self._runtime, settings.NETFORGE_GRPC_HOST, settings.NETFORGE_GRPC_PORT,
                                            reuse_port=settings.NETFORGE_GRPC_REUSE_PORT)
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        from webapp.serving.runtime import setting  # noqa: PLC0415

        while True:
            self._runtime.refresh_in_background()  # in the runtime's own thread; a read already running is not doubled
            await asyncio.sleep(setting("SERVING_REFRESH_SECONDS", 1.0))

    async def _stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._grpc is not None:
            await self._grpc.stop(grace=2)
            log.info("gRPC server stopped")
        await asyncio.get_running_loop().run_in_executor(None, self._runtime.shutdown)  # the last metrics


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
        # a version number of thousands of digits is not even an int() (Python refuses > 4300 digits)
        number = int(match["number"][:30]) if match["number"] else None
        if match["number"] and len(match["number"]) > 30:
            number = serving.MAX_VERSION_NUMBER + 1
        limit = serving.max_request_bytes()
        chunks, size, more = [], 0, True
        try:
            serving.check_request_size(serving.declared_request_size(headers))
            serving.check_version_number(number)
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    serving.check_request_size(size)
                chunks.append(chunk)
                more = message.get("more_body", False)
        except serving.ServingError as error:
            status, body, extra = serving.error_answer(error, v2=v2)
        else:
            status, body, extra = await serving.answer_predict(match["name"], number, headers, b"".join(chunks), v2=v2)
        # bytes: binary tensor data after a JSON header (v2's binary extension, see serving.answer_predict)
        content_type = b"application/octet-stream" if isinstance(body, bytes) else b"application/json"
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        response_headers = [(b"content-type", content_type), (b"content-length", str(len(content)).encode()),
                            *SECURITY_HEADERS,
                            *((name.lower().encode(), value.encode()) for name, value in extra.items())]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})
