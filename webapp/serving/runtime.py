"""The serving runtime of one process: which endpoints exist, which keys open them, which version
answers by default, the model cache with its dynamic batchers, and the metrics, behind one
``serve`` call that the REST views and the gRPC servicer share. The web process serves both
protocols on one event loop (``webapp.endpoints.asgi`` starts the gRPC server), so a REST request
and a gRPC request that arrive together are run in the same batch.

Routing comes from the database (``webapp.endpoints``) as an immutable snapshot, read again at
most every ``SERVING_REFRESH_SECONDS`` (by a background thread, requests keep going meanwhile),
at once after this process changed an endpoint (``invalidate``), and when a request names an
endpoint, version or key that the snapshot does not know (at most a few times a second). A
revoked key therefore stops working within about a second in every serving process.

The default version moves in each process only once the new version is loaded and warmed up in
that process: until then requests keep going to the previous one, so a publish under load loses
no request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from engine.errors import EngineError
from webapp.serving.batcher import BatcherClosed, QueueFull
from webapp.serving.cache import LoadedVersion, ModelCache
from webapp.serving.inputs import InputError
from webapp.serving.metrics import MetricsRecorder, version_counts

log = logging.getLogger(__name__)

MISS_REFRESH_INTERVAL = 0.2  # seconds between refreshes caused by unknown names or keys


class ServingError(Exception):
    """An answer other than a prediction: an HTTP status, a gRPC status name, a code, a message."""

    status = 500
    grpc_status = "INTERNAL"
    code = "server_error"

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFound(ServingError):
    status, grpc_status, code = 404, "NOT_FOUND", "not_found"


class Unauthenticated(ServingError):
    status, grpc_status, code = 401, "UNAUTHENTICATED", "unauthenticated"


class BadInput(ServingError):
    status, grpc_status, code = 400, "INVALID_ARGUMENT", "invalid_input"


class TooLarge(ServingError):
    status, grpc_status, code = 413, "RESOURCE_EXHAUSTED", "too_large"


class Overloaded(ServingError):
    status, grpc_status, code = 429, "RESOURCE_EXHAUSTED", "overloaded"


class Unavailable(ServingError):
    status, grpc_status, code = 503, "UNAVAILABLE", "unavailable"


_settings_memo: dict = {}


def setting(name: str, default):
    """A serving setting: Django's ``name`` if set, else the ``NETFORGE_<name>`` environment
    variable, else ``default``. (SERVING_REFRESH_SECONDS, SERVING_MAX_REQUEST_BYTES,
    SERVING_MAX_INSTANCES, SERVING_CACHE_SIZE, SERVING_INLINE_FORWARD_MS.) Remembered, since
    requests ask on every call; forgotten when Django says a setting changed (tests)."""
    try:
        return _settings_memo[name]
    except KeyError:
        pass
    value = getattr(settings, name, None)
    if value is None:
        raw = os.environ.get(f"NETFORGE_{name}")
        value = type(default)(raw) if raw else default
    _settings_memo[name] = value
    return value


@receiver(setting_changed)
def _forget_settings(**_kwargs) -> None:
    _settings_memo.clear()


def check_finite_result(result: dict, specs) -> None:
    """``BadInput`` when a prediction is not finite: inputs of huge magnitude (1e308) overflow the
    model's arithmetic, and an answer of NaN or null would look like a prediction."""
    arrays = [result.get(key) for key in ("probabilities", "values")] + list(result.get("outputs", {}).values())
    for array in arrays:
        if array is not None and getattr(array, "dtype", None) is not None and array.dtype.kind == "f" \
                and not numpy.isfinite(array).all():
            names = ", ".join(repr(spec.name) for spec in specs)
            raise BadInput(f"inputs: the model's outputs overflowed (not finite numbers) for these inputs: the "
                           f"values of {names} are too large in magnitude for it", details={"field": "inputs"})


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class VersionRoute:
    number: int
    path: str
    state: str
    error: str


@dataclasses.dataclass(frozen=True)
class EndpointRoute:
    id: int
    name: str
    default: int | None
    versions: dict
    key_hashes: frozenset
    max_batch_size: int
    max_queue_delay: float  # seconds
    max_queue_size: int


def load_routes() -> dict[str, EndpointRoute]:
    """Every endpoint as the database has it now (three queries)."""
    from webapp.endpoints.models import ApiKey, Endpoint, ModelVersion  # noqa: PLC0415

    versions: dict[int, dict] = {}
    numbers: dict[int, int] = {}
    for pk, endpoint_id, number, path, state, error in ModelVersion.objects.values_list(
            "pk", "endpoint_id", "number", "path", "state", "error"):
        versions.setdefault(endpoint_id, {})[number] = VersionRoute(number, path, state, error)
        numbers[pk] = number
    keys: dict[int, set] = {}
    for endpoint_id, digest in ApiKey.objects.filter(revoked_at__isnull=True).values_list("endpoint_id", "key_sha256"):
        keys.setdefault(endpoint_id, set()).add(digest)
    routes = {}
    for pk, name, default_id, batch, delay_ms, queue in Endpoint.objects.values_list(
            "pk", "name", "default_version_id", "max_batch_size", "max_queue_delay_ms", "max_queue_size"):
        routes[name] = EndpointRoute(pk, name, numbers.get(default_id), versions.get(pk, {}),
                                     frozenset(keys.get(pk, ())), batch, delay_ms / 1000.0, queue)
    return routes


class ServingRuntime:
    def __init__(self):
        self.metrics = MetricsRecorder()
        self.cache = ModelCache(capacity=setting("SERVING_CACHE_SIZE", 16), on_batch=self.metrics.observe_batch,
                                inline_seconds=setting("SERVING_INLINE_FORWARD_MS", 2.0) / 1000.0)
        self.routes: dict[str, EndpointRoute] = {}
        self.active: dict[str, int] = {}  # the default version this process answers with, per endpoint
        self._fetched_at = float("-inf")
        self._forced = True
        self._last_miss_refresh = float("-inf")
        self._miss_refresh = None  # (event loop, task) of the refresh a miss started
        self._refresh_lock = threading.Lock()
        self._background = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="serving-refresh")

    # -- routing -------------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Read the routes again before the next request (this process changed an endpoint)."""
        self._forced = True

    def refresh(self) -> None:
        """Read the routes, load and warm up new default versions, store the metrics (blocking)."""
        with self._refresh_lock:
            self._forced = False
            routes = load_routes()
            active = dict(self.active)
            for name, route in routes.items():
                wanted = route.default
                if wanted is None:
                    active.pop(name, None)
                    continue
                if active.get(name) == wanted:
                    continue
                target = route.versions.get(wanted)
                if target is None or target.state != "ready":
                    continue
                try:
                    self._load(route, target)
                except Exception:  # keep answering with the version that works
                    log.exception("%s v%s could not be loaded; the default stays v%s", name, wanted, active.get(name))
                    continue
                active[name] = wanted
            self.routes, self.active = routes, {name: number for name, number in active.items() if name in routes}
            self._fetched_at = time.monotonic()
        self.metrics.flush()

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception:
            log.exception("could not refresh the serving routes; keeping the previous ones")
        finally:
            from django.db import connection  # noqa: PLC0415

            connection.close_if_unusable_or_obsolete()

    def refresh_in_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = self._executor.submit(self._refresh_quietly)

    def _load(self, route: EndpointRoute, target: VersionRoute) -> LoadedVersion:
        return self.cache.load(endpoint_id=route.id, endpoint=route.name, number=target.number, path=target.path,
                               max_batch_size=route.max_batch_size, max_queue_delay=route.max_queue_delay,
                               max_queue_size=route.max_queue_size)

    async def _refresh_now(self) -> None:
        await sync_to_async(self.refresh, thread_sensitive=True)()

    async def refresh_if_invalidated(self) -> None:
        """Read the routes now if none have been read yet or this process changed an endpoint
        since the last read (``invalidate``); what the database raises goes to the caller (the
        Open Inference readiness probe answers "not ready" with it)."""
        if self._forced:
            await self._refresh_now()

    async def _refresh_on_miss(self) -> None:
        """Read the routes again because a request named something unknown (an endpoint, key or
        version created a moment ago, or a wrong one), and return once a read that started after
        the miss has finished. Misses share reads: a request that misses while one runs
        waits for it (and for the next, if that one started before the miss), and reads start at
        most every ``MISS_REFRESH_INTERVAL``, so a flood of bad keys costs a few reads a second and
        waits, while a request for something just created is never refused for want of a read."""
        loop = asyncio.get_running_loop()
        missed_at = time.monotonic()
        while True:
            pending = self._miss_refresh
            if pending is not None and pending[0] is loop and not pending[1].done():
                started_after_miss = self._last_miss_refresh >= missed_at
                await asyncio.shield(pending[1])
                if started_after_miss:
                    return
                continue
            if self._last_miss_refresh >= missed_at:
                return  # a read that started after the miss has finished
            wait = self._last_miss_refresh + MISS_REFRESH_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._last_miss_refresh = time.monotonic()
            task = loop.create_task(self._refresh_now())
            self._miss_refresh = (loop, task)
            await asyncio.shield(task)
            return

    async def route(self, name: str) -> EndpointRoute:
        if self._forced:
            await self._refresh_now()
        elif time.monotonic() - self._fetched_at > setting("SERVING_REFRESH_SECONDS", 1.0):
            self.refresh_in_background()
        route = self.routes.get(name)
        if route is None:
            await self._refresh_on_miss()
            route = self.routes.get(name)
        if route is None:
            raise NotFound(f"no endpoint named {name!r}", details={"endpoint": name})
        return route

    async def authorized_route(self, name: str, api_key: str | None) -> EndpointRoute:
        """The endpoint for a caller with one of its keys; ``Unauthenticated`` otherwise, with the
        same message whether or not the endpoint exists (an anonymous caller learns nothing)."""
        refusal = Unauthenticated(f"send one of the endpoint's API keys ('Authorization: Bearer <key>') to ask "
                                  f"about {name!r}")
        try:
            route = await self.route(name)
        except NotFound:
            raise refusal from None
        if not api_key:
            raise refusal
        digest = hash_key(api_key)
        if digest not in route.key_hashes:
            await self._refresh_on_miss()
            route = self.routes.get(name, route)
            if digest not in route.key_hashes:
                raise refusal
        return route

    async def resolve(self, name: str, version: int | None, api_key: str | None) -> tuple[EndpointRoute, LoadedVersion]:
        """The endpoint and the loaded version a request goes to, after checking its key."""
        route = await self.route(name)
        if not api_key:
            raise Unauthenticated(f"endpoint {name!r} needs an API key: send 'Authorization: Bearer <key>'")
        digest = hash_key(api_key)
        if digest not in route.key_hashes:
            await self._refresh_on_miss()
            route = self.routes.get(name, route)
            if digest not in route.key_hashes:
                raise Unauthenticated(f"the API key is not valid for endpoint {name!r} (unknown or revoked)")
        number = version if version is not None else self.active.get(name, route.default)
        if number is None:  # a version published since the last read?
            await self._refresh_on_miss()
            route = self.routes.get(name, route)
            number = self.active.get(name, route.default)
        if number is None:
            raise Unavailable(f"endpoint {name!r} has no ready version yet; publish a run to it")
        target = route.versions.get(number)
        if target is None and version is not None:
            await self._refresh_on_miss()
            route = self.routes.get(name, route)
            target = route.versions.get(number)
        if target is None:
            raise NotFound(f"endpoint {name!r} has no version {number}; its versions are {sorted(route.versions)}",
                           details={"version": number})
        if target.state != "ready":
            reason = f": {target.error}" if target.error else ""
            raise Unavailable(f"{name} v{number} is {target.state}{reason}")
        loaded = self.cache.peek(route.id, number, target.path)
        if loaded is None:
            try:
                loaded = await asyncio.get_running_loop().run_in_executor(None, self._load, route, target)
            except Exception as error:
                log.exception("%s v%s could not be loaded", name, number)
                raise Unavailable(f"{name} v{number} could not be loaded: {error}") from None
        return route, loaded

    # -- answering --------------------------------------------------------------------------------------
    async def serve(self, *, name: str, version: int | None, api_key: str | None, decode,
                    protocol: str) -> tuple[LoadedVersion, dict]:
        """Resolve, decode the inputs (``decode(specs) -> (arrays, rows)``), batch, predict; counts
        the request in the metrics under ``protocol`` ("rest" or "grpc"). Raises ``ServingError``."""
        started = time.perf_counter()
        route, number = None, version or 0
        try:
            route, loaded = await self.resolve(name, version, api_key)
            number = loaded.number
            try:
                arrays, rows = decode(loaded.specs)
            except InputError as error:
                raise BadInput(str(error), details={"field": error.field, **error.expected}) from None
            limit = setting("SERVING_MAX_INSTANCES", 1024)
            if rows > limit:
                raise TooLarge(f"{rows} instances in one request; at most {limit}", details={"limit": limit})
            result = await self._predict(route, loaded, arrays, rows)
            check_finite_result(result, loaded.specs)
        except ServingError:
            if route is not None:
                self.metrics.observe_request(route.id, number, protocol, time.perf_counter() - started, error=True)
            raise
        self.metrics.observe_request(route.id, number, protocol, time.perf_counter() - started, error=False)
        return loaded, result

    async def _predict(self, route: EndpointRoute, loaded: LoadedVersion, arrays: dict, rows: int) -> dict:
        try:
            try:
                return await loaded.batcher.predict(arrays, rows)
            except BatcherClosed:  # unloaded between resolve and predict: load it again, once
                target = route.versions[loaded.number]
                loaded = await asyncio.get_running_loop().run_in_executor(None, self._load, route, target)
                return await loaded.batcher.predict(arrays, rows)
        except QueueFull as error:
            raise Overloaded(str(error), details={"max_queue_size": loaded.batcher.max_queue_size}) from None
        except BatcherClosed:
            raise Unavailable(f"{route.name} v{loaded.number} was unloaded; retry") from None
        except EngineError as error:
            raise BadInput(str(error)) from None
        except Exception as error:  # noqa: BLE001
            raise ServingError(f"{route.name} v{loaded.number} failed on this batch: {type(error).__name__}") from None

    async def version_counts(self, route: EndpointRoute) -> dict:
        """The endpoint's all-time counts per version (``metrics.version_counts``), this process's
        pending counts stored first; other processes' may be up to a flush (about a second) behind."""
        def read() -> dict:
            self.metrics.flush()
            return version_counts(route.id)

        return await sync_to_async(read, thread_sensitive=True)()

    def metadata(self, route: EndpointRoute, loaded: LoadedVersion) -> dict:
        return version_metadata(route.name, loaded)

    def shutdown(self) -> None:
        try:
            self.metrics.flush()
        except Exception:
            log.exception("could not store the last serving metrics")
        self.cache.clear()
        self._executor.shutdown(wait=False)


def version_metadata(endpoint: str, loaded: LoadedVersion) -> dict:
    """What callers need to know about a version: its inputs, outputs and where it came from."""
    schema = loaded.schema
    link = schema.get("link", "identity")
    classifier = link in ("softmax", "sigmoid", "sign")
    outputs = []
    if classifier:
        classes = schema.get("num_classes") or (2 if link != "softmax" else None)
        outputs += [{"name": "probabilities", "shape": [None, classes], "dtype": "float64"},
                    {"name": "classes", "shape": [None], "dtype": "int64"}]
    elif schema.get("prediction"):
        outputs.append({"name": "values", "shape": None, "dtype": "float64"})
    inputs = schema.get("inputs", {})
    return {
        "endpoint": endpoint,
        "version": loaded.number,
        "task": schema.get("task"),
        "inputs": [{**spec.describe(), "standardized": bool((inputs.get(spec.name) or {}).get("standardization")),
                    "feature_names": schema.get("feature_names")} for spec in loaded.specs],
        "outputs": outputs,
        "label_names": schema.get("label_names"),
        "source": loaded.manifest.get("source", {}),
        "engine_version": loaded.manifest.get("engine_version"),
    }


_runtime: ServingRuntime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> ServingRuntime:
    """This process's runtime (created on first use): REST and gRPC share it."""
    global _runtime
    runtime = _runtime
    if runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = ServingRuntime()
            runtime = _runtime
    return runtime


def current_runtime() -> ServingRuntime | None:
    """The runtime if this process has one (nothing is created)."""
    return _runtime


def invalidate_routes() -> None:
    """The runtime reads the routes again before its next request."""
    if _runtime is not None:
        _runtime.invalidate()


def flush_metrics() -> None:
    """Store the runtime's pending metrics now (before reading them)."""
    if _runtime is not None:
        _runtime.metrics.flush()


def reset_runtime() -> None:
    """Forget the runtime (tests: a fresh database)."""
    global _runtime
    with _runtime_lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.cache.clear()
        runtime._executor.shutdown(wait=False)
