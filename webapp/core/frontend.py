"""The browser app: every path that is not the API, the admin or a static file gets the built
``index.html`` of ``frontend/`` (client-side routing takes it from there). Its hashed assets are
served by WhiteNoise from the same folder (``WHITENOISE_ROOT``)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

NOT_BUILT = """<!doctype html><html><head><title>NetForge</title></head>\
<body style="font-family:sans-serif;margin:3rem">
<h1>NetForge</h1><p>The browser app has not been built. <code>make run</code> builds it; by hand:
<code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>, then reload.</p>
<p>The REST API works without it: <a href="/api/">/api/</a>, reference at <a href="/api/docs/">/api/docs/</a>.</p>
</body></html>"""


@never_cache  # index.html names the current hashed bundles, so it must never be stale
@ensure_csrf_cookie
def index(request, path: str = "") -> HttpResponse:
    index_file = settings.FRONTEND_DIST / "index.html"
    try:
        return HttpResponse(index_file.read_bytes(), content_type="text/html; charset=utf-8")
    except FileNotFoundError:
        return HttpResponse(NOT_BUILT, content_type="text/html; charset=utf-8", status=503)
