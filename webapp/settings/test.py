"""Fast test settings: a temporary home, quick password hashing, short watchdog timings."""

import os
import tempfile

if "NETFORGE_HOME" not in os.environ:
    os.environ["NETFORGE_HOME"] = tempfile.mkdtemp(prefix="netforge-test-")

from webapp.settings.base import *  # noqa: F403

SECRET_KEY = "test-secret-key-not-for-production"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
RUN_HEARTBEAT_SECONDS = 0.5
RUN_STALE_AFTER_SECONDS = 5.0
SWEEP_TICK_SECONDS = 0.5
# Small, so that the platform tests' reconnects (Redis restart, ?after=) are sent in several chunks.
LIVE_CATCH_UP_CHUNK_POINTS = 500
# Uploaded datasets are converted in the test process's own child (under the same limits) unless the
# platform harness, which runs a worker for the "datasets" queue, says otherwise.
DATASET_CONVERSION_INLINE = os.environ.get("NETFORGE_DATASET_CONVERSION_INLINE", "1") == "1"
# Throttle counters in the process (the security tests lower the rates where they test them).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
AUTH_THROTTLE_RATES = {"login": "10000/min", "token": "10000/min", "register": "10000/min"}
# The in-process API tests have no worker: they skip the live-worker check of run creation (its own tests
# turn it on; tests/platform/test_supervisor.py runs it against real workers).
CHECK_LIVE_WORKERS = env_bool("NETFORGE_CHECK_LIVE_WORKERS", False)  # noqa: F405
