"""Settings shared by every environment, driven by environment variables.

DATABASE_URL (default SQLite in NETFORGE_HOME), REDIS_URL (broker, channel layer and cache),
SECRET_KEY, DEBUG (off unless set), ALLOWED_HOSTS, NETFORGE_HOME (data folder: database,
uploads, checkpoints, published models).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
NETFORGE_HOME = Path(os.environ.get("NETFORGE_HOME", BASE_DIR / "var")).resolve()
NETFORGE_HOME.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files for /api/docs/, served from here (no CDN)
    "channels",
    "webapp.core",
    "webapp.projects",
    "webapp.datasets",
    "webapp.runs",
    "webapp.catalog",
    "webapp.endpoints",
    "webapp.sweeps",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The built browser app (frontend/dist) at the site root and Django's own static files,
    # straight from the ASGI server: no separate web server to run.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "webapp.core.prometheus.HttpMetricsMiddleware",  # requests by route and status code, for /api/v1/metrics
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webapp" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{NETFORGE_HOME / 'netforge.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web server write concurrently: WAL and a busy timeout avoid "database is locked",
    # and IMMEDIATE transactions take the write lock at BEGIN, so a transaction that read first never
    # fails to upgrade (SQLite answers that case at once, without waiting out the busy timeout).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
         "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def _channel_layer_host(url: str) -> dict:
    """The channel layer's Redis, with retries: after Redis restarts, every pooled connection is
    stale, and without a retry each one fails the command it is next used for once (a WebSocket
    that connects then is dropped, a live message is not sent). With it, a command reconnects and
    is sent again, over about 2.4 s of backoff (0.2, 0.4, 0.8, 1.0 s), which also rides out a
    short restart.

    The socket timeout must outlast the layer's blocking reads (BZPOPMIN of 5 s, channels_redis's
    ``brpop_timeout``): redis-py's default is also 5 s, so every wait on a quiet channel raced its
    own timeout, and a WebSocket with nothing to receive for about 27 s (a finished run left open,
    a run queued behind others) was dropped once the retries ran out."""
    from redis.asyncio.retry import Retry  # noqa: PLC0415
    from redis.backoff import ExponentialBackoff  # noqa: PLC0415
    from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: PLC0415
    from redis.exceptions import TimeoutError as RedisTimeoutError  # noqa: PLC0415

    return {"address": url, "retry": Retry(ExponentialBackoff(cap=1.0, base=0.1), 4),
            "retry_on_error": [RedisConnectionError, RedisTimeoutError],
            "socket_timeout": 20, "socket_connect_timeout": 5}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [_channel_layer_host(REDIS_URL)], "capacity": 1000, "expiry": 60},
    }
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None  # results live in the database, not in Redis
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False  # a lost run is resumed by the watchdog, not redelivered blindly
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Long trainings: the broker must not redeliver a task that is still running (see workers/).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 7 * 24 * 3600)),
}
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Refuse a run whose device's queue no live worker serves (webapp.runs.queues), asking the workers over
# the broker within WORKER_STATUS_TIMEOUT_SECONDS and keeping their answer WORKER_STATUS_CACHE_SECONDS.
CHECK_LIVE_WORKERS = env_bool("NETFORGE_CHECK_LIVE_WORKERS", True)
WORKER_STATUS_TIMEOUT_SECONDS = float(os.environ.get("NETFORGE_WORKER_STATUS_TIMEOUT_SECONDS", "1.0"))
WORKER_STATUS_CACHE_SECONDS = float(os.environ.get("NETFORGE_WORKER_STATUS_CACHE_SECONDS", "5.0"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "webapp.core.password_validation.VarietyValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = None  # WhiteNoise serves static files from the finders (WHITENOISE_USE_FINDERS); no collectstatic
FRONTEND_DIST = Path(os.environ.get("NETFORGE_FRONTEND_DIST", BASE_DIR / "frontend" / "dist"))
WHITENOISE_ROOT = FRONTEND_DIST if FRONTEND_DIST.is_dir() else None  # /assets/..., /favicon.svg
WHITENOISE_USE_FINDERS = True  # admin and API-docs assets without a collectstatic step
MEDIA_ROOT = NETFORGE_HOME / "media"
ARTIFACT_ROOT = NETFORGE_HOME / "artifacts"  # checkpoints and published models

# Uploads: datasets up to NETFORGE_MAX_UPLOAD_MB (default 200 MB) are streamed to disk.
MAX_UPLOAD_BYTES = int(os.environ.get("NETFORGE_MAX_UPLOAD_MB", "200")) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024  # JSON bodies
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Uploaded datasets are untrusted (design contract 7): the ASGI guard (webapp/datasets/upload_guard.py)
# refuses an upload body over MAX_UPLOAD_BYTES (plus the multipart framing) from its Content-Length or
# as its chunks arrive, and one that stalls for UPLOAD_READ_TIMEOUT_SECONDS between chunks. Decoding
# runs on the "datasets" queue in a child process whose address space may grow by at most
# DATASET_CONVERSION_MEMORY_MB, after these header checks.
UPLOAD_READ_TIMEOUT_SECONDS = float(os.environ.get("NETFORGE_UPLOAD_READ_TIMEOUT_SECONDS", "30"))
DATASET_CONVERSION_MEMORY_BYTES = int(os.environ.get("NETFORGE_DATASET_CONVERSION_MEMORY_MB", "2048")) * 1024 * 1024
DATASET_CONVERSION_TIMEOUT_SECONDS = float(os.environ.get("NETFORGE_DATASET_CONVERSION_TIMEOUT_SECONDS", "600"))
DATASET_MAX_PIXELS = int(os.environ.get("NETFORGE_DATASET_MAX_PIXELS", str(4096 * 4096)))  # per image
DATASET_MAX_ARRAY_MB = int(os.environ.get("NETFORGE_DATASET_MAX_ARRAY_MB", "1024"))  # one decoded array
DATASET_MAX_DECOMPRESSED_MB = int(os.environ.get("NETFORGE_DATASET_MAX_DECOMPRESSED_MB", "1024"))  # gzip/zip
DATASET_MAX_ARCHIVE_MEMBERS = int(os.environ.get("NETFORGE_DATASET_MAX_ARCHIVE_MEMBERS", "200000"))
DATASET_MAX_ROWS = int(os.environ.get("NETFORGE_DATASET_MAX_ROWS", "10000000"))
DATASET_MAX_COLUMNS = int(os.environ.get("NETFORGE_DATASET_MAX_COLUMNS", "20000"))
# Disk a user's datasets may hold (uploads and their converted stores).
DATASET_MAX_STORAGE_PER_USER_BYTES = (int(os.environ.get("NETFORGE_DATASET_MAX_STORAGE_PER_USER_MB", "20480"))
                                      * 1024 * 1024)
# Where uploads are converted: on the "datasets" queue's worker, or (tests without a worker) in the
# web process's own child, under the same limits.
DATASET_CONVERSION_INLINE = os.environ.get("NETFORGE_DATASET_CONVERSION_INLINE", "0") == "1"

# ONNX import (webapp/projects/imports.py): the .onnx file is untrusted; it is parsed in a child
# process whose address space may grow by at most ONNX_IMPORT_MEMORY_MB, stopped after
# ONNX_IMPORT_TIMEOUT_SECONDS. A file over ONNX_IMPORT_MAX_MB is refused (the request body limit,
# NETFORGE_MAX_REQUEST_BODY_MB, applies to the upload first).
ONNX_IMPORT_MAX_BYTES = int(float(os.environ.get("NETFORGE_ONNX_IMPORT_MAX_MB", "100")) * 1024 * 1024)
ONNX_IMPORT_MEMORY_BYTES = int(float(os.environ.get("NETFORGE_ONNX_IMPORT_MEMORY_MB", "2048")) * 1024 * 1024)
ONNX_IMPORT_TIMEOUT_SECONDS = float(os.environ.get("NETFORGE_ONNX_IMPORT_TIMEOUT_SECONDS", "120"))
# Imports at once in one web process (each child may take ONNX_IMPORT_MEMORY_MB), and per user.
ONNX_IMPORT_CONCURRENCY = int(os.environ.get("NETFORGE_ONNX_IMPORT_CONCURRENCY", "2"))

REST_FRAMEWORK = {
    # Token first: an unauthenticated request then gets 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "webapp.core.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "webapp.core.schema.AutoSchema",  # one request body type per operation
    "EXCEPTION_HANDLER": "webapp.core.exceptions.exception_handler",
    # JSON bodies are checked where they are parsed (webapp.core.json_input): no lone surrogates,
    # NUL, integers beyond 64 bits or non-finite numbers get past the door
    "DEFAULT_PARSER_CLASSES": [
        "webapp.core.parsers.JsonBodyParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "webapp.core.parsers.SafeJsonRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "webapp.core.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    # Proxies in front of the server whose X-Forwarded-For entries are trusted: the throttles count per
    # client address, and with 0 a client cannot pick its own address by sending that header.
    "NUM_PROXIES": int(os.environ.get("NETFORGE_NUM_PROXIES", "0")),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NetForge API",
    "DESCRIPTION": "Projects, graphs, datasets, training runs and live metrics.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies as their own components (ProjectRequest beside Project), without the read-only
    # fields, and file fields as binary: what client generators need to send a body the server takes.
    "COMPONENT_SPLIT_REQUEST": True,
    # the prediction routes are async Django views, added to the document by webapp.endpoints.schema;
    # webapp.core.schema adds the other served routes no DRF view declares (GET /v2)
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "webapp.endpoints.schema.add_prediction_routes",
                             "webapp.core.schema.add_served_routes"],
    # /api/docs/: Swagger UI from drf-spectacular-sidecar's static files, its script a file of its own
    # (the production Content-Security-Policy allows no inline script)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # the sweeps' choice sets by name ("state", "sampler", ... are other components' fields too)
    "ENUM_NAME_OVERRIDES": {
        "SweepStateEnum": "webapp.sweeps.models.Sweep.State", "SweepSamplerEnum": "webapp.sweeps.models.Sweep.Sampler",
        "SweepDirectionEnum": "webapp.sweeps.models.Sweep.Direction",
        "SweepPrunerEnum": "webapp.sweeps.models.Sweep.Pruner", "TrialStateEnum": "webapp.sweeps.models.Trial.State",
        "SweepParameterTypeEnum": "webapp.sweeps.space.TYPES",
    },
}

# Prometheus' scrape credential, apart from users' tokens (webapp.core.prometheus): a bearer token, and/or
# networks (comma-separated CIDRs) whose addresses may scrape /api/v1/metrics without one.
METRICS_TOKEN = os.environ.get("NETFORGE_METRICS_TOKEN", "")


def _networks(name: str) -> list:
    import ipaddress  # noqa: PLC0415

    try:
        return [ipaddress.ip_network(part.strip(), strict=False)
                for part in os.environ.get(name, "").split(",") if part.strip()]
    except ValueError as error:
        raise ValueError(f"{name}: {error} (expected comma-separated networks such as 10.0.0.0/8)") from None


METRICS_ALLOWED_NETWORKS = _networks("NETFORGE_METRICS_ALLOWED_NETWORKS")

# A run whose worker has not sent a heartbeat for this long is resumed from its last checkpoint
# or marked failed (see workers/watchdog.py).
RUN_HEARTBEAT_SECONDS = float(os.environ.get("NETFORGE_HEARTBEAT_SECONDS", "2"))
RUN_STALE_AFTER_SECONDS = float(os.environ.get("NETFORGE_STALE_AFTER_SECONDS", "20"))
# Where the web process serves gRPC predictions beside REST (webapp.endpoints.asgi); port 0 serves
# none. make run picks a free port and sets it; the endpoints' grpcurl examples show it.
NETFORGE_GRPC_HOST = os.environ.get("NETFORGE_GRPC_HOST", "127.0.0.1")
NETFORGE_GRPC_PORT = int(os.environ.get("NETFORGE_GRPC_PORT", "50051"))
# Several processes of one server (uvicorn --workers N) listen on the gRPC port together.
NETFORGE_GRPC_REUSE_PORT = os.environ.get("NETFORGE_GRPC_REUSE_PORT", "0") == "1"
RUN_MAX_ATTEMPTS = int(os.environ.get("NETFORGE_MAX_ATTEMPTS", "3"))
# A Celery pool process records its runs from a process of its own (workers/recording.py), so
# that recording never holds the training loop's GIL; "0" records in threads of the pool process.
RUN_RECORDING_PROCESS = os.environ.get("NETFORGE_RECORDING_PROCESS", "1") != "0"
# Budgets of a run (design contract 7), checked when a run is created (webapp/runs/budgets.py) or
# enforced by its worker; exceeding one is a 400 or 429 naming the limit, or a run that ends
# failed or timed_out with the limit in its error.
# The memory a worker lets one run's training allocate (RLIMIT_DATA, CPU runs; a dataset's
# read-only memory-mapped store does not count): beyond it the run fails and the worker lives on.
RUN_MEMORY_LIMIT_BYTES = int(os.environ.get("NETFORGE_RUN_MEMORY_LIMIT_MB", "4096")) * 1024 * 1024
# The engine's estimate of a run's training memory at its real batch size (capped by the dataset's
# rows) may not exceed this; by default the workers' own limit, so a run that passes the door fits.
RUN_MAX_MEMORY_BYTES = int(os.environ.get("NETFORGE_RUN_MAX_MEMORY_MB",
                                          str(RUN_MEMORY_LIMIT_BYTES // 1024 // 1024))) * 1024 * 1024
RUN_MAX_PARAMETERS = int(os.environ.get("NETFORGE_RUN_MAX_PARAMETERS", "500000000"))
# Forward FLOPs of one training step (FLOPs per sample times the batch a worker computes).
RUN_MAX_FLOPS_PER_STEP = int(float(os.environ.get("NETFORGE_RUN_MAX_GFLOPS_PER_STEP", "2000")) * 1e9)
RUN_MAX_EPOCHS = int(os.environ.get("NETFORGE_RUN_MAX_EPOCHS", "10000"))
# Wall-clock time of one execution of a run; it then stops after the batch in progress, timed_out.
RUN_MAX_SECONDS = float(os.environ.get("NETFORGE_RUN_MAX_SECONDS", str(24 * 3600)))
# Per user: runs waiting in the queue (more is a 429 at creation) and runs training at once (a
# worker leaves a further run queued and takes it up again when one of them has finished).
RUN_MAX_QUEUED_PER_USER = int(os.environ.get("NETFORGE_RUN_MAX_QUEUED_PER_USER", "20"))
RUN_MAX_RUNNING_PER_USER = int(os.environ.get("NETFORGE_RUN_MAX_RUNNING_PER_USER", "4"))
# How long a worker waits before taking up again a run it left queued for its user's running limit.
RUN_DEFER_SECONDS = float(os.environ.get("NETFORGE_RUN_DEFER_SECONDS", "10"))
# Checkpoints kept per run: the newest K and the best by the monitored metric; the others' files go.
RUN_CHECKPOINTS_KEPT = max(1, int(os.environ.get("NETFORGE_RUN_CHECKPOINTS_KEPT", "3")))
# Sweeps (webapp.sweeps): the most trials one sweep may ask for and run at once, and how often each
# worker advances the running sweeps (prunes on the newest epochs, makes up for a missed run-finish event).
SWEEP_MAX_TRIALS = int(os.environ.get("NETFORGE_SWEEP_MAX_TRIALS", "200"))
SWEEP_MAX_PARALLELISM = int(os.environ.get("NETFORGE_SWEEP_MAX_PARALLELISM", "8"))
SWEEP_TICK_SECONDS = float(os.environ.get("NETFORGE_SWEEP_TICK_SECONDS", "2"))
# A user's artifacts (checkpoints, published model versions, datasets' stored files); over it, new
# runs are refused with the figures.
STORAGE_QUOTA_BYTES = int(os.environ.get("NETFORGE_STORAGE_QUOTA_MB", "10240")) * 1024 * 1024
# At most this many live messages a second per run (each carries every point since the last).
LIVE_MAX_MESSAGES_PER_SECOND = float(os.environ.get("NETFORGE_LIVE_MESSAGES_PER_SECOND", "10"))
# A reconnecting WebSocket client gets what it missed in messages of at most this many points
# (5,000 points are about 450 kB of JSON, under the 1 MiB frame limit most clients default to).
LIVE_CATCH_UP_CHUNK_POINTS = int(os.environ.get("NETFORGE_LIVE_CATCH_UP_CHUNK_POINTS", "5000"))
# Each run WebSocket checks itself against the record this often (webapp.runs.consumers): what
# Redis lost (a restart forgets group memberships and queued messages) arrives this late at most.
LIVE_RESYNC_SECONDS = float(os.environ.get("NETFORGE_LIVE_RESYNC_SECONDS", "5"))
# Per-layer statistics of training runs (engine.layer_stats): a sample at least this many steps and
# seconds after the last (0 steps: none), and never more than 2% of the training time; the record
# keeps at most this many samples of a run, spread evenly over its steps (webapp.runs.layer_stats).
LAYER_STATS_EVERY_STEPS = int(os.environ.get("NETFORGE_LAYER_STATS_EVERY_STEPS", "20"))
LAYER_STATS_MIN_SECONDS = float(os.environ.get("NETFORGE_LAYER_STATS_MIN_SECONDS", "1"))
LAYER_STATS_KEPT_SAMPLES = int(os.environ.get("NETFORGE_LAYER_STATS_KEPT_SAMPLES", "400"))
# A 1,000-node graph's sample is about 250 KB: the file is thinned further past this size.
LAYER_STATS_MAX_BYTES = int(float(os.environ.get("NETFORGE_LAYER_STATS_MAX_MB", "16")) * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# -- Requests no one can take the service down with (webapp.core.body_guard, webapp.http_timeouts) ------
# Every request body but a dataset upload (which has MAX_UPLOAD_BYTES) is refused past this size
# before it is read, and dropped when it stalls or takes too long to arrive.
REQUEST_MAX_BODY_BYTES = int(float(os.environ.get("NETFORGE_MAX_REQUEST_BODY_MB", "10")) * 1024 * 1024)
REQUEST_READ_TIMEOUT_SECONDS = float(os.environ.get("NETFORGE_REQUEST_READ_TIMEOUT_SECONDS", "30"))
REQUEST_BODY_TIMEOUT_SECONDS = float(os.environ.get("NETFORGE_REQUEST_BODY_TIMEOUT_SECONDS", "120"))
# Graphs: more nodes (or edges) than this in a document is a 400 naming the field, before any work.
GRAPH_MAX_NODES = int(os.environ.get("NETFORGE_GRAPH_MAX_NODES", "5000"))
GRAPH_MAX_EDGES = int(os.environ.get("NETFORGE_GRAPH_MAX_EDGES", str(4 * GRAPH_MAX_NODES)))

# -- Accounts (webapp.core.throttles, webapp.core.models.ApiToken) -------------------------------------
# Throttles count in the cache, which is Redis so that every web process counts together.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                      "LOCATION": os.environ.get("CACHE_URL", REDIS_URL), "KEY_PREFIX": "netforge",
                      "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}}
# Requests per client address to each account route.
AUTH_THROTTLE_RATES = {
    "login": os.environ.get("NETFORGE_LOGIN_RATE", "20/min"),
    "token": os.environ.get("NETFORGE_TOKEN_RATE", "20/min"),
    "register": os.environ.get("NETFORGE_REGISTER_RATE", "10/hour"),
}
# After this many wrong passwords for one username within LOGIN_LOCKOUT_SECONDS, the account takes
# no password until LOGIN_LOCKOUT_SECONDS after the last one.
LOGIN_MAX_FAILURES = int(os.environ.get("NETFORGE_LOGIN_MAX_FAILURES", "10"))
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("NETFORGE_LOGIN_LOCKOUT_SECONDS", "900"))
API_TOKEN_LIFETIME_DAYS = int(os.environ.get("NETFORGE_API_TOKEN_LIFETIME_DAYS", "90"))
API_TOKEN_MAX_LIFETIME_DAYS = int(os.environ.get("NETFORGE_API_TOKEN_MAX_LIFETIME_DAYS", "365"))
