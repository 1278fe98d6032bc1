"""Real parts for the platform tests and benchmarks: a Redis server, a Celery worker process and the ASGI server
(uvicorn), all sharing one SQLite file in a temporary NETFORGE_HOME.

The processes start once per test session (``platform``), each in its own process group with its
output in ``<home>/logs/<name>.log`` (printed when a test fails), within bounded start timeouts, and
are killed with their whole group at the end, whatever happened; ``atexit`` is the last resort.

The test process reads and writes that same database file: ``platform_db`` (which ``make_user``
and ``workspace`` bring along) points Django's default connection at it for the duration of a
test, without pytest-django's test
database (an in-memory SQLite that other processes cannot see) and without its flushing between
tests (a worker may still be writing). Tests keep apart by creating their own users. Django
connections belong to a thread: the tests use the ORM from their own (main) thread only.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class HarnessError(AssertionError):
    """A service did not start or a wait timed out (a test failure, with the reason)."""


def _fail(message: str):
    raise HarnessError(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            _fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Service:
    """A child process in its own process group, its output in a log file."""

    _all: list[Service] = []

    def __init__(self, name: str, command: list[str], *, env: dict, log_dir: Path):
        self.name, self.command, self.env = name, command, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Service:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        Service._all.append(self)
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, *, timeout: float = START_TIMEOUT, since: int = 0) -> None:
        def seen():
            if not self.alive:
                _fail(f"{self.name} exited with code {self.process.returncode}:\n{self.log_text()[-4000:]}")
            return text in self.log_text()[since:]

        wait_until(seen, timeout=timeout, what=f"{self.name} to log {text!r}", interval=0.1)

    def kill(self) -> None:
        """SIGKILL to the whole process group (a Celery worker and its pool children)."""
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        if self.process is None or self.process.returncode is not None and not self._group_exists():
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)  # stragglers of the group too
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT)

    def _group_exists(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    @classmethod
    def stop_all(cls) -> None:
        for service in reversed(cls._all):
            service.stop()
        cls._all.clear()


atexit.register(Service.stop_all)


def postgres_binaries() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian keeps them off PATH), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    folders = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name))
    return folders[-1] if folders and (folders[-1] / "initdb").exists() else None


def start_postgres(home: Path, logs: Path) -> tuple[Service, str]:
    """A throwaway PostgreSQL cluster in ``home/postgres`` on a free port (as the ``postgres`` user when
    this runs as root, which PostgreSQL refuses to be); returns its service and a DATABASE_URL of
    an empty database ``netforge``."""
    import psycopg  # noqa: PLC0415

    binaries = postgres_binaries()
    if binaries is None:
        _fail("PostgreSQL's server is not installed: `make test` installs Debian's postgresql")
    folder = home / "postgres"
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir(parents=True)
    as_owner: list[str] = []
    if os.geteuid() == 0:
        as_owner = ["runuser", "-u", "postgres", "--"]
        home.chmod(home.stat().st_mode | 0o011)  # mkdtemp's 0700: the postgres user must pass through
        for path in (folder, sockets):
            shutil.chown(path, "postgres")
    result = subprocess.run([*as_owner, str(binaries / "initdb"), "-D", str(data), "-U", "netforge", "--auth=trust",
                             "--encoding=UTF8", "--no-instructions"], capture_output=True, text=True, timeout=120)
    if result.returncode:
        _fail(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    for attempt in range(3):  # a port another test process took meanwhile is replaced by another
        port = free_port()
        service = Service("postgres", [*as_owner, str(binaries / "postgres"), "-D", str(data), "-p", str(port),
                                       "-k", str(sockets), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                       "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                          env=dict(os.environ), log_dir=logs).start()

        def ready_or_exited(service=service, port=port):  # this attempt's server
            if not service.alive:
                return True
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user="netforge", dbname="postgres",
                                     connect_timeout=1):
                    return True
            except psycopg.OperationalError:
                return False

        wait_until(ready_or_exited, timeout=START_TIMEOUT, what="PostgreSQL to accept connections")
        if service.alive:
            break
        Service._all.remove(service)
        if attempt == 2 or "could not bind" not in service.log_text():
            _fail(f"postgres exited:\n{service.log_text()[-4000:]}")
    with psycopg.connect(host="127.0.0.1", port=port, user="netforge", dbname="postgres", autocommit=True) as admin:
        admin.execute("CREATE DATABASE netforge")
    return service, f"postgres://netforge@127.0.0.1:{port}/netforge"


class Platform:
    """The running system: ``base_url`` (REST), ``ws_url`` (WebSockets), ``database`` (the SQLite
    file) and the services, with the faults the tests inject (kill the worker, restart Redis)."""

    def __init__(self, home: Path):
        self.home = home
        self.logs = home / "logs"
        self.logs.mkdir(parents=True)
        self.database = home / "netforge.sqlite3"
        self.redis_port, self.http_port = free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.ws_url = f"ws://127.0.0.1:{self.http_port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
            "NETFORGE_HOME": str(home),
            "DATABASE_URL": f"sqlite:///{self.database}",
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "PYTHONUNBUFFERED": "1",
            "NETFORGE_DATASET_CONVERSION_INLINE": "0",  # the worker converts uploads, as in production
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        }
        self.postgres: Service | None = None
        self.redis: Service | None = None
        self.worker: Service | None = None
        self.web: Service | None = None
        self.grpc_port: int | None = None
        self._workers_started = 0

    # -- services ---------------------------------------------------------------------------------
    def start_database(self) -> None:
        """SQLite (nothing to start), or with NETFORGE_TEST_DATABASE=postgresql a throwaway
        PostgreSQL cluster: the platform suites run on either (``make test-postgres``)."""
        if os.environ.get("NETFORGE_TEST_DATABASE") == "postgresql":
            self.postgres, self.env["DATABASE_URL"] = start_postgres(self.home, self.logs)

    def start_redis(self) -> None:
        """redis-server on ``redis_port``; returns once it answers. Ports come from ``free_port``,
        which another test process may also be handed before either binds it: the server that
        answers must be this one (its pid), or, on the first start, another port is tried."""
        for attempt in range(3):
            self.redis = Service("redis", [str(BIN / "redis-server"), "--port", str(self.redis_port), "--bind",
                                           "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.home)],
                                 env=self.env, log_dir=self.logs).start()
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=0.5)

            def answers_or_exited(client=client):
                if not self.redis.alive:
                    return True  # could not bind its port, say
                try:
                    return client.ping()
                except redis.RedisError:
                    return False

            wait_until(answers_or_exited, timeout=START_TIMEOUT, what="redis-server to answer PING")
            try:
                ours = self.redis.alive and client.info("server")["process_id"] == self.redis.process.pid
            except redis.RedisError:
                ours = False
            client.close()
            if ours:
                return
            self.redis.stop()
            Service._all.remove(self.redis)
            if self.web is not None or self.worker is not None or attempt == 2:
                _fail(f"another Redis answers on port {self.redis_port}")
            self.redis_port = free_port()
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
            self.env.update(REDIS_URL=self.redis_url, CELERY_BROKER_URL=self.redis_url)

    def restart_redis(self, *, down_for: float) -> None:
        """Kill Redis (SIGKILL: its queues and channel groups are lost), and start it again on the
        same port ``down_for`` seconds later."""
        self.redis.kill()
        time.sleep(down_for)
        self.start_redis()

    def migrate(self) -> None:
        result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=120)
        if result.returncode:
            _fail(f"migrate failed:\n{result.stdout}\n{result.stderr}")

    def start_worker(self) -> Service:
        """A Celery worker for the cpu queue and the datasets queue (uploads are converted there);
        returns once it is ready to take tasks."""
        self._workers_started += 1
        name = f"worker-{self._workers_started}"
        self.worker = Service(name, [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                                     "-Q", "cpu,datasets",
                                     "--concurrency", "1", "--pool", "prefork", "--loglevel", "INFO",
                                     "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"],
                              env=self.env, log_dir=self.logs).start()
        self.worker.wait_for_log(" ready.")
        return self.worker

    def kill_worker(self) -> None:
        self.worker.kill()

    def start_web(self, *, grpc: bool = False) -> None:
        """uvicorn with the ASGI application; with ``grpc``, also serving gRPC predictions on a free
        port from the same process (``grpc_target``), and returns once both listen. A port that
        another test process took between ``free_port`` and the bind is replaced by another."""
        for attempt in range(3):
            self.grpc_port = free_port() if grpc else None
            env = {**self.env, "NETFORGE_GRPC_PORT": str(self.grpc_port or 0)}
            logged = len(self.web.log_text()) if self.web is not None else 0
            self.web = Service("web", [sys.executable, "-m", "uvicorn", "webapp.asgi:application", "--host",
                                       "127.0.0.1", "--port", str(self.http_port), "--lifespan", "on",
                                       "--no-access-log"], env=env, log_dir=self.logs).start()

            def started(logged=logged):
                text = self.web.log_text()[logged:]
                return "Uvicorn running on" in text or not self.web.alive

            wait_until(started, timeout=START_TIMEOUT, what="the web server to listen")
            if self.web.alive:
                return
            text = self.web.log_text()[logged:]
            Service._all.remove(self.web)
            if attempt == 2 or not ("address already in use" in text.lower() or "could not listen on" in text):
                _fail(f"the web server exited:\n{text[-4000:]}")
            self.http_port = free_port()
            self.base_url, self.ws_url = f"http://127.0.0.1:{self.http_port}", f"ws://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def logs_text(self) -> str:
        return "\n".join(f"===== {path.name} =====\n{path.read_text(errors='replace')[-6000:]}"
                         for path in sorted(self.logs.glob("*.log")))

    # -- the database of the platform, from the test process --------------------------------------
    @contextlib.contextmanager
    def database_connection(self):
        """Django's default connection pointed at the platform's database, for the block."""
        from django.db import connections  # noqa: PLC0415
        from django.db.utils import load_backend  # noqa: PLC0415

        previous = connections["default"]
        settings_dict = copy.deepcopy(previous.settings_dict)
        url = self.env["DATABASE_URL"]
        if url.startswith("sqlite"):
            settings_dict.update(NAME=str(self.database),
                                 TEST={**settings_dict.get("TEST", {}), "NAME": str(self.database)})
        else:  # the platform runs on PostgreSQL (NETFORGE_TEST_DATABASE=postgresql)
            import dj_database_url  # noqa: PLC0415

            parsed = dj_database_url.parse(url)
            settings_dict.update(parsed, OPTIONS=parsed.get("OPTIONS", {}),
                                 TEST={**settings_dict.get("TEST", {}), "NAME": parsed["NAME"]})
        wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, "default")
        connections["default"] = wrapper
        try:
            yield wrapper
        finally:
            wrapper.close()
            connections["default"] = previous


class User:
    """A user of the platform with an API token; ``api`` is an httpx client authenticated as them."""

    def __init__(self, platform: Platform, model, token: str):
        self.platform, self.model, self.token = platform, model, token
        self.api = httpx.Client(base_url=platform.base_url, headers={"Authorization": f"Token {token}"}, timeout=30)

    def socket_url(self, run_id: int, **query) -> str:
        query = {"token": self.token, **query}
        return f"{self.platform.ws_url}/ws/runs/{run_id}/?" + "&".join(f"{k}={v}" for k, v in query.items())


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)


# -- projects, runs and sockets -------------------------------------------------------------------

def mlp_spec(features: int, classes: int, hidden: int = 32, layers: int = 1) -> dict:
    import engine  # noqa: PLC0415

    graph = engine.GraphBuilder()
    x = graph.input("x", [None, features])
    y = graph.input("y", [None], dtype="int64")
    hidden_layer = x
    for layer in range(1, layers + 1):
        hidden_layer = graph.relu(graph.dense(hidden_layer, units=hidden, id=f"fc{layer}"), id=f"act{layer}")
    logits = graph.dense(hidden_layer, units=classes, id="logits")
    graph.loss(graph.softmax_cross_entropy(logits, y, id="loss"))
    graph.output("prediction", logits)
    return graph.to_spec()


DIGITS = {"builtin": "digits", "options": {}, "spec": lambda: mlp_spec(64, 10)}
# Two features, many rows: cheap batches, long epochs (moons of 20000 points at batch size 8 is
# 2000 batches an epoch), for runs that must still be running when a test acts.
MOONS = {"builtin": "moons", "options": {"n_samples": 20000}, "spec": lambda: mlp_spec(2, 2, hidden=16)}
# The same rows through two hidden layers of 1,024: about 6 ms a batch of 32 on one core, bound by
# the matrix products rather than by per-batch overheads, for runs that must outlast a fault.
MOONS_WIDE = {**MOONS, "spec": lambda: mlp_spec(2, 2, hidden=1024, layers=2)}


class Workspace:
    """A user's project with one graph version and one built-in dataset, ready to start runs."""

    def __init__(self, user: User, data: dict):
        from webapp.datasets.services import dataset_create_builtin  # noqa: PLC0415
        from webapp.projects.models import GraphVersion  # noqa: PLC0415
        from webapp.projects.services import project_create  # noqa: PLC0415

        self.user = user
        self.project = project_create(owner=user.model, name=f"project-{uuid.uuid4().hex[:8]}")
        self.version = GraphVersion.objects.create(project=self.project, number=1, editor_document={},
                                                   spec=data["spec"](), created_by=user.model)
        self.dataset = dataset_create_builtin(owner=user.model, builtin=data["builtin"], options=data["options"])

    def start_run(self, **hyperparameters) -> dict:
        """POST /api/projects/<id>/runs; returns the created run as the API shows it."""
        response = self.user.api.post(f"/api/projects/{self.project.pk}/runs", json={
            "graph_version": self.version.pk, "dataset": self.dataset.pk, "hyperparameters": hyperparameters,
        })
        assert response.status_code == 201, response.text
        return response.json()


FINISHED = ("succeeded", "failed", "cancelled")


class RunSocket:
    """A WebSocket client of ``/ws/runs/<id>/`` (the ``websockets`` library, sync API) that keeps
    what it receives: the history, every point by sequence, the state messages, and when each
    ``run.points`` message arrived."""

    def __init__(self, url: str, *, open_timeout: float = 10):
        from websockets.sync.client import connect  # noqa: PLC0415

        self._exit_stack = contextlib.ExitStack()
        self.connection = self._exit_stack.enter_context(connect(url, open_timeout=open_timeout, close_timeout=2))
        self.history: dict | None = None
        self.points: list[dict] = []  # in arrival order
        self.states: list[dict] = []
        self.arrivals: list[float] = []

    def receive(self, timeout: float) -> dict:
        message = json.loads(self.connection.recv(timeout=timeout))
        if message["type"] == "run.history":
            self.history = message
            self.points.extend(history_points(message))
        elif message["type"] == "run.points":
            self.points.extend(message["points"])
            self.arrivals.append(time.monotonic())
        elif message["type"] == "run.state":
            self.states.append(message)
        return message

    def receive_until(self, predicate, *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _fail(f"timed out after {timeout:.0f} s waiting for {what} over the WebSocket")
            try:
                self.receive(timeout=remaining)
            except TimeoutError:
                continue

    @property
    def caught_up(self) -> bool:
        """The history and the catch-up after it have arrived: this client has every point the
        run had recorded when it connected."""
        if self.history is None:
            return False
        have = max((point["seq"] for point in self.points), default=0)
        return max(have, self.history["last_sequence"]) >= self.history["catch_up_to"]

    def receive_until_finished(self, *, timeout: float) -> str:
        def finished(socket_):
            if socket_.states and socket_.states[-1]["state"] in FINISHED:
                return True
            return socket_.caught_up and socket_.history["state"] in FINISHED and not socket_.states

        self.receive_until(finished, timeout=timeout, what="the run to finish")
        return self.states[-1]["state"] if self.states else self.history["state"]

    def close(self) -> None:
        self._exit_stack.close()

    def __enter__(self) -> RunSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def history_points(history: dict) -> list[dict]:
    """The ``run.history`` series as points like the live ones, in sequence order."""
    points = [
        {"seq": seq, "name": name, "step": step, "epoch": epoch, "value": value, "wall_time": wall_time}
        for name, columns in history["series"].items()
        for seq, step, epoch, value, wall_time in zip(columns["sequences"], columns["steps"], columns["epochs"],
                                                      columns["values"], columns["wall_times"])
    ]
    return sorted(points, key=lambda point: point["seq"])


def stored_points(run_id: int) -> list[dict]:
    from webapp.runs.models import MetricPoint  # noqa: PLC0415

    return [
        {"seq": p.sequence, "name": p.name, "step": p.step, "epoch": p.epoch, "value": p.value,
         "wall_time": p.wall_time}
        for p in MetricPoint.objects.filter(run_id=run_id).order_by("sequence")
    ]


def get_run(run_id: int):
    from webapp.runs.models import Run  # noqa: PLC0415

    return Run.objects.get(pk=run_id)


def wait_for_run(run_id: int, predicate, *, timeout: float, what: str):
    """Poll the stored run until ``predicate(run)``; returns the run."""
    def check():
        run = get_run(run_id)
        return run if predicate(run) else None

    return wait_until(check, timeout=timeout, what=what, interval=0.05)


def assert_checkpoints_kept(run, epochs: int) -> None:
    """A finished run of ``epochs`` epochs keeps the checkpoints retention promises: the newest
    ``RUN_CHECKPOINTS_KEPT`` epochs, plus at most one older one (the best by the monitored metric)."""
    from django.conf import settings  # noqa: PLC0415  (Django is set up by the test session)

    kept = sorted(run.checkpoints.values_list("epoch", flat=True))
    newest = list(range(max(1, epochs - settings.RUN_CHECKPOINTS_KEPT + 1), epochs + 1))
    assert kept[-len(newest):] == newest, f"checkpoints kept {kept}, expected the newest {newest}"
    assert len(kept) <= len(newest) + 1, f"checkpoints kept {kept}: more than the newest and the best"


def assert_record_complete(run_id: int) -> list[dict]:
    """The stored points are numbered 1..N without a gap, N is the run's last_sequence, no
    (series, step) is stored twice, and the loss has one point per step from 1 to the last."""
    points = stored_points(run_id)
    run = get_run(run_id)
    assert [p["seq"] for p in points] == list(range(1, len(points) + 1))
    assert run.last_sequence == len(points)
    keys = [(p["name"], p["step"]) for p in points]
    assert len(keys) == len(set(keys)), "a point was stored twice"
    loss_steps = [p["step"] for p in points if p["name"] == "loss"]
    assert loss_steps == list(range(1, len(loss_steps) + 1))
    return points
