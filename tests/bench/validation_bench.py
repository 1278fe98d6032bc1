"""Graph validation through the API: ``POST /api/graphs/validate`` (JSON in, the input checks,
conversion, engine validation, JSON out) for dense chains of 1,250 and 5,000 nodes, the default
node limit. Targets: 5,000 nodes in <= 0.5 s, and growth linear in the nodes (four times the nodes
in at most 6.4 times the time, where quadratic would be 16).

Run alone: ``python -m tests.bench.validation_bench``."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

TARGET_SECONDS = 0.5
MAX_GROWTH = 4 * 1.6
SIZES = (1250, 5000)
ROUNDS = 5


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.test")
    import django  # noqa: PLC0415  (configured here, not at import)

    django.setup()
    from django.conf import settings  # noqa: PLC0415
    from django.contrib.auth import get_user_model  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415
    from rest_framework.test import APIClient  # noqa: PLC0415

    from tests.security.conftest import dense_chain  # noqa: PLC0415

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's host
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("bench", password="bench-password-1"))
    bodies = {nodes: json.dumps(dense_chain(nodes)) for nodes in SIZES}

    def validate(nodes: int) -> float:
        started = time.perf_counter()
        response = client.post("/api/graphs/validate", data=bodies[nodes], content_type="application/json")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200 and len(response.json()["nodes"]) == nodes, response.content[:300]
        return elapsed

    validate(SIZES[0])  # imports and caches warm
    timings = {nodes: [] for nodes in SIZES}
    for _ in range(ROUNDS):  # interleaved, so a busy moment weighs on both sizes alike
        for nodes in SIZES:
            timings[nodes].append(validate(nodes))
    small, large = (statistics.median(timings[nodes]) for nodes in SIZES)
    print(f"graph validation through POST /api/graphs/validate (median of {ROUNDS}, wall clock)")
    for nodes in SIZES:
        print(f"  {nodes:>6,} nodes: {statistics.median(timings[nodes]) * 1000:7.1f} ms "
              f"(range {min(timings[nodes]) * 1000:.1f}-{max(timings[nodes]) * 1000:.1f})")
    growth = large / small
    print(f"  growth for 4x the nodes: {growth:.2f}x (target <= {MAX_GROWTH:.1f}; quadratic would be 16)")
    missed = []
    if large > TARGET_SECONDS:
        missed.append(f"{SIZES[1]:,} nodes took {large:.2f} s, over the {TARGET_SECONDS} s target")
    if growth > MAX_GROWTH:
        missed.append(f"validation grew {growth:.2f}x for 4x the nodes")
    for line in missed:
        print(f"  MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
