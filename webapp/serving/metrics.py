"""Serving metrics: counted in each process, summed in the database, exported for Prometheus.

Several processes may serve (more web processes behind a balancer, each serving REST and gRPC),
so per-process Prometheus registries would each see part of the traffic. Instead every process
counts in memory (``MetricsRecorder``: requests, errors and a latency histogram per endpoint,
version and protocol; batches and their sizes per endpoint and version, since one batcher serves
both protocols) and adds its counts to per-minute rows (``MetricBucket``) about once a second.
The batches go to the rows whose protocol is ``BATCHES`` (""), which count no request. The UI's
chart reads those rows; ``render_prometheus`` sums them into counters and a histogram in the
Prometheus text format (with prometheus_client), so one scrape sees every process, and the
counters only ever grow.
"""

from __future__ import annotations

import bisect
import datetime
import logging
import threading

from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)

# Upper bounds (seconds) of the latency histogram's buckets; one more bucket counts the rest (+Inf).
LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCHES = ""  # the protocol of the rows that count batches (shared by every protocol)


class _Counts:
    __slots__ = ("requests", "errors", "latency_sum", "latency_counts", "batches", "batched_instances")

    def __init__(self):
        self.requests = self.errors = self.batches = self.batched_instances = 0
        self.latency_sum = 0.0
        self.latency_counts = [0] * (len(LATENCY_BOUNDS) + 1)


class MetricsRecorder:
    """In-memory counts of one process; ``flush`` adds them to the database and starts over."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, int, str], _Counts] = {}

    def _counts(self, endpoint_id: int, version: int, protocol: str) -> _Counts:
        key = (endpoint_id, version, protocol)
        counts = self._pending.get(key)
        if counts is None:
            counts = self._pending[key] = _Counts()
        return counts

    def observe_request(self, endpoint_id: int, version: int, protocol: str, seconds: float, *, error: bool) -> None:
        with self._lock:
            counts = self._counts(endpoint_id, version, protocol)
            counts.requests += 1
            counts.errors += error
            counts.latency_sum += seconds
            counts.latency_counts[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1

    def observe_batch(self, endpoint_id: int, version: int, instances: int, requests: int) -> None:
        with self._lock:
            counts = self._counts(endpoint_id, version, BATCHES)
            counts.batches += 1
            counts.batched_instances += instances

    def flush(self) -> None:
        """Add the pending counts to this minute's rows (blocking: database writes)."""
        from webapp.endpoints.models import Endpoint, MetricBucket  # noqa: PLC0415

        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        minute = timezone.now().replace(second=0, microsecond=0)
        try:
            with transaction.atomic():
                existing = set(Endpoint.objects.filter(pk__in={key[0] for key in pending}).values_list("pk", flat=True))
                for (endpoint_id, version, protocol), counts in pending.items():
                    if endpoint_id not in existing:
                        continue  # deleted since
                    bucket, _ = MetricBucket.objects.select_for_update().get_or_create(
                        endpoint_id=endpoint_id, version=version, protocol=protocol, minute=minute,
                        defaults={"latency_counts": [0] * (len(LATENCY_BOUNDS) + 1)})
                    bucket.requests += counts.requests
                    bucket.errors += counts.errors
                    bucket.latency_sum += counts.latency_sum
                    missing = len(counts.latency_counts) - len(bucket.latency_counts)
                    stored = list(bucket.latency_counts) + [0] * missing
                    bucket.latency_counts = [a + b for a, b in zip(stored, counts.latency_counts)]
                    bucket.batches += counts.batches
                    bucket.batched_instances += counts.batched_instances
                    bucket.save()
        except Exception:  # metrics never break serving; the counts go back for the next try
            log.exception("could not store serving metrics; keeping them for the next flush")
            with self._lock:
                for key, counts in pending.items():
                    mine = self._counts(*key)
                    mine.requests += counts.requests
                    mine.errors += counts.errors
                    mine.latency_sum += counts.latency_sum
                    mine.latency_counts = [a + b for a, b in zip(mine.latency_counts, counts.latency_counts)]
                    mine.batches += counts.batches
                    mine.batched_instances += counts.batched_instances


def series(endpoint, *, minutes: int = 60) -> dict:
    """The endpoint's last ``minutes`` minutes, one point a minute, every process and protocol
    summed: requests, errors, mean latency, p50/p99 estimates, average batch size; and totals
    per version."""
    from webapp.endpoints.models import MetricBucket  # noqa: PLC0415

    now = timezone.now().replace(second=0, microsecond=0)
    start = now - datetime.timedelta(minutes=minutes - 1)
    by_minute: dict = {}
    for bucket in MetricBucket.objects.filter(endpoint=endpoint, minute__gte=start):
        entry = by_minute.setdefault(bucket.minute, _Counts())
        _add(entry, bucket)
    points = []
    for index in range(minutes):
        minute = start + datetime.timedelta(minutes=index)
        counts = by_minute.get(minute, _Counts())
        points.append({
            "minute": minute.isoformat(), "requests": counts.requests, "errors": counts.errors,
            "mean_latency_ms": 1000 * counts.latency_sum / counts.requests if counts.requests else None,
            "p50_latency_ms": _quantile_ms(counts.latency_counts, 0.5),
            "p99_latency_ms": _quantile_ms(counts.latency_counts, 0.99),
            "average_batch_size": counts.batched_instances / counts.batches if counts.batches else None,
        })
    return {"minutes": points, "versions": totals(endpoint)}


def totals(endpoint) -> list[dict]:
    """All-time counts per version and protocol; the average batch size is the version's (its
    batches served every protocol)."""
    from webapp.endpoints.models import MetricBucket  # noqa: PLC0415

    grouped: dict = {}
    batches: dict = {}
    for bucket in MetricBucket.objects.filter(endpoint=endpoint):
        if bucket.protocol == BATCHES:
            _add(batches.setdefault(bucket.version, _Counts()), bucket)
        else:
            _add(grouped.setdefault((bucket.version, bucket.protocol), _Counts()), bucket)
    rows = []
    for (version, protocol), counts in sorted(grouped.items()):
        shared = batches.get(version)
        rows.append({
            "version": version, "protocol": protocol, "requests": counts.requests, "errors": counts.errors,
            "mean_latency_ms": 1000 * counts.latency_sum / counts.requests if counts.requests else None,
            "p99_latency_ms": _quantile_ms(counts.latency_counts, 0.99),
            "average_batch_size": shared.batched_instances / shared.batches if shared and shared.batches else None,
        })
    return rows


def version_counts(endpoint_id: int) -> dict[int, _Counts]:
    """All-time counts per version, every process and protocol summed (requests, errors, their
    latency sum; batches and their instances), for Triton's ModelStatistics RPC. Requests refused
    before a version was chosen (counted under version 0) belong to no version and are left out."""
    from webapp.endpoints.models import MetricBucket  # noqa: PLC0415

    counts: dict[int, _Counts] = {}
    for bucket in MetricBucket.objects.filter(endpoint_id=endpoint_id, version__gt=0):
        _add(counts.setdefault(bucket.version, _Counts()), bucket)
    return counts


def _add(into: _Counts, bucket) -> None:
    into.requests += bucket.requests
    into.errors += bucket.errors
    into.latency_sum += bucket.latency_sum
    for index, count in enumerate(bucket.latency_counts[:len(into.latency_counts)]):
        into.latency_counts[index] += count
    into.batches += bucket.batches
    into.batched_instances += bucket.batched_instances


def _quantile_ms(counts: list[int], quantile: float) -> float | None:
    """The upper bound of the bucket holding the quantile (ms); None without requests."""
    total = sum(counts)
    if not total:
        return None
    running = 0
    for index, count in enumerate(counts):
        running += count
        if running >= quantile * total:
            return 1000 * LATENCY_BOUNDS[index] if index < len(LATENCY_BOUNDS) else None
    return None


def render_prometheus(endpoints) -> bytes:
    """The Prometheus text exposition of ``endpoints``' counters, summed over all processes."""
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(endpoint_collector(endpoints))
    return generate_latest(registry)


def endpoint_collector(endpoints):
    """A prometheus_client collector of ``endpoints``' counters, summed over all processes (read now)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily  # noqa: PLC0415

    from webapp.endpoints.models import MetricBucket  # noqa: PLC0415

    grouped: dict = {}
    batches: dict = {}
    for bucket in MetricBucket.objects.filter(endpoint__in=endpoints).select_related("endpoint"):
        if bucket.protocol == BATCHES:
            _add(batches.setdefault((bucket.endpoint.name, str(bucket.version)), _Counts()), bucket)
        else:
            _add(grouped.setdefault((bucket.endpoint.name, str(bucket.version), bucket.protocol), _Counts()), bucket)
    labels = ["endpoint", "version", "protocol"]
    batch_labels = ["endpoint", "version"]  # one batcher serves every protocol

    class Collector:
        def collect(self):
            requests = CounterMetricFamily("netforge_endpoint_requests", "Prediction requests answered.", labels=labels)
            errors = CounterMetricFamily("netforge_endpoint_errors", "Requests answered with an error.", labels=labels)
            latency = HistogramMetricFamily("netforge_endpoint_request_latency_seconds",
                                            "Time from request to answer, in the server.", labels=labels)
            batch_count = CounterMetricFamily("netforge_endpoint_batches",
                                              "Forward passes run by the batcher (for every protocol).",
                                              labels=batch_labels)
            instances = CounterMetricFamily("netforge_endpoint_batched_instances",
                                            "Instances in those forward passes.", labels=batch_labels)
            average = GaugeMetricFamily("netforge_endpoint_average_batch_size",
                                        "Instances per forward pass since the start.", labels=batch_labels)
            for key, counts in sorted(grouped.items()):
                values = list(key)
                requests.add_metric(values, counts.requests)
                errors.add_metric(values, counts.errors)
                cumulative, running = [], 0
                for bound, count in zip((*map(str, LATENCY_BOUNDS), "+Inf"), counts.latency_counts):
                    running += count
                    cumulative.append((bound, running))
                latency.add_metric(values, cumulative, counts.latency_sum)
            for key, counts in sorted(batches.items()):
                values = list(key)
                batch_count.add_metric(values, counts.batches)
                instances.add_metric(values, counts.batched_instances)
                average.add_metric(values, counts.batched_instances / counts.batches if counts.batches else 0.0)
            yield from (requests, errors, latency, batch_count, instances, average)

    return Collector()
