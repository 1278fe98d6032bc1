"""The ASGI application: Django for HTTP, Channels for WebSockets, and (on the lifespan's startup)
the gRPC prediction server on the same event loop (``uvicorn webapp.asgi:application``).

WebSockets pass three doors: the Origin check (a browser page from another site may not open a
socket with the user's cookies), the session (browsers), and ``?token=<API token>`` (scripts).
"""

from __future__ import annotations

import gc
import os
from urllib.parse import parse_qs

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")
django_application = get_asgi_application()  # sets Django up before anything imports models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.db import database_sync_to_async  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from webapp.core.body_guard import RequestBodyGuard  # noqa: E402
from webapp.datasets.upload_guard import UPLOAD_PATHS, UploadGuard  # noqa: E402
from webapp.endpoints.asgi import ServingFastPath, ServingLifespan  # noqa: E402
from webapp.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Refuses a socket whose Origin is not one of ALLOWED_HOSTS. A missing Origin is allowed:
    browsers always send one, so its absence means a script, which cannot ride a user's cookies."""

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or self.validate_origin(parsed_origin)


class TokenAuthMiddleware:
    """``?token=<key>`` (a DRF API token) authenticates the socket as the token's user."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        keys = parse_qs(scope.get("query_string", b"").decode("latin1")).get("token")
        if keys:
            user = await _token_user(keys[-1])
            if user is not None:
                scope = {**scope, "user": user}
        return await self.application(scope, receive, send)


@database_sync_to_async
def _token_user(key: str):
    from webapp.core.services import api_token_user  # noqa: PLC0415

    found = api_token_user(key)  # hashed, unexpired, of an active user
    return found[0] if found is not None else None


# Django and everything imported so far live as long as the process: out of the collector's full
# passes, which otherwise stall every request in flight (predictions too) for tens of milliseconds
gc.freeze()

# The lifespan starts the gRPC prediction server on this event loop, over the same serving runtime
# as the REST routes (webapp.endpoints.asgi).
application = ServingLifespan(ProtocolTypeRouter({
    # static files and the browser app come through WhiteNoise; prediction POSTs skip Django (see
    # webapp.endpoints.asgi)
    # dataset uploads: the body's size and pace are checked before Django reads it (webapp.datasets.upload_guard);
    # every other body likewise, under the general cap and timeouts (webapp.core.body_guard)
    "http": RequestBodyGuard(UploadGuard(ServingFastPath(django_application)), exempt_paths=UPLOAD_PATHS),
    "websocket": BrowserOriginValidator(
        AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))),
        settings.ALLOWED_HOSTS,
    ),
}))
