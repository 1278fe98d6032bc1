"""What Prometheus scrapes besides the serving counters: this process's HTTP requests by route and
status code, the process and Python collectors, runs by state; the scrape credential; the exposition.

The HTTP counters are the answering process's own (Prometheus' usual model: one target per web
process, which is one per container in docker/compose.yaml); the serving counters and runs come from
the database and are whole-service totals whichever process answers.

A scraper proves itself apart from users' tokens: ``Authorization: Bearer <NETFORGE_METRICS_TOKEN>``,
or an address inside ``NETFORGE_METRICS_ALLOWED_NETWORKS``. It sees every endpoint and the operator's
metrics; a user's token still sees that user's endpoints only.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from rest_framework import permissions, renderers
from rest_framework.negotiation import BaseContentNegotiation

# In the default registry, which also holds prometheus_client's process, platform and GC collectors.
HTTP_REQUESTS = Counter("netforge_http_requests", "HTTP requests answered by this process, by route and status code.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("netforge_http_request_duration_seconds",
                         "Time to answer an HTTP request in this process (up to the response's start).",
                         ["method", "route"])
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _observe(request, response, started: float) -> None:
    match = getattr(request, "resolver_match", None)
    # The route's name, never its path: paths carry ids and names, which would make a series per object.
    route = (match.url_name or match.route or "unnamed") if match else "unmatched"
    method = request.method if request.method in _METHODS else "other"
    HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
    HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


class HttpMetricsMiddleware:
    """Counts every request Django routes (WhiteNoise's static files answer before it); async-capable,
    so the async prediction views run without a thread hop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        started = time.perf_counter()
        response = self.get_response(request)
        _observe(request, response, started)
        return response

    async def __acall__(self, request):
        started = time.perf_counter()
        response = await self.get_response(request)
        _observe(request, response, started)
        return response


def is_scraper(request) -> bool:
    """Whether the request carries the metrics token or comes from an allow-listed network."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), token.encode()):
            return True
    networks = settings.METRICS_ALLOWED_NETWORKS
    if networks:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(address in network for network in networks)
    return False


class ScraperOrUser(permissions.BasePermission):
    message = ("send a user's API token (Authorization: Token <key>) or the metrics token "
               "(Authorization: Bearer <NETFORGE_METRICS_TOKEN>)")

    def has_permission(self, request, view):
        return is_scraper(request) or bool(request.user and request.user.is_authenticated)


class ExpositionRenderer(renderers.BaseRenderer):
    """The body the view made already (the exposition); an error's JSON otherwise."""

    media_type = "text/plain"
    format = "prometheus"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes | str):
            return data
        return json.dumps(data).encode()


class ExpositionNegotiation(BaseContentNegotiation):
    """Always the exposition: the format (text 0.0.4 or OpenMetrics) is picked from Accept by
    prometheus_client in the view, so Prometheus' protobuf-first header or ``text/plain`` never gets 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class RunsCollector:
    """Runs by state, counted in the database (every worker's runs)."""

    def collect(self):
        from django.db.models import Count  # noqa: PLC0415

        from webapp.runs.models import Run  # noqa: PLC0415

        runs = GaugeMetricFamily("netforge_runs", "Training runs by state.", labels=["state"])
        counted = {row["state"]: row["count"] for row in Run.objects.values("state").annotate(count=Count("id"))}
        for state in Run.State.values:
            runs.add_metric([state], counted.get(state, 0))
        yield runs


class _DefaultRegistry:
    """prometheus_client's default registry (process, platform and GC collectors, the HTTP counters)."""

    def collect(self):
        yield from REGISTRY.collect()


def exposition(collectors, *, accept: str, operator: bool) -> tuple[bytes, str]:
    """The body and content type for ``accept``: OpenMetrics when it is asked for, else text 0.0.4.
    ``operator`` adds this process's metrics and the runs to ``collectors``."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    if operator:
        registry.register(_DefaultRegistry())
        registry.register(RunsCollector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
