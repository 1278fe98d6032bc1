"""A real Redis server for the distributed tests, and helpers that start real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import redis

from tests.platform.harness import BIN, ROOT, Service, free_port, wait_until


@pytest.fixture(scope="session")
def redis_url():
    home = Path(tempfile.mkdtemp(prefix="netforge-distributed-"))
    port = free_port()
    service = Service("redis-distributed", [str(BIN / "redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                                            "--save", "", "--appendonly", "no", "--dir", str(home)],
                      env={}, log_dir=home).start()
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)

    def answers():
        try:
            return client.ping()
        except redis.RedisError:
            return False

    wait_until(answers, timeout=30, what="redis-server to answer PING")
    client.close()
    yield url
    service.stop()


def new_group() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def start_process(config: dict, *, log_dir: Path) -> subprocess.Popen:
    """``tests.distributed.rank_process`` with ``config``, in its own session, output to a log file."""
    name = f"rank{config.get('rank', 'ps')}" if config.get("role") != "server" else "server"
    log = open(log_dir / f"{name}.log", "wb")  # closed with the process by the caller
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PATH": "/usr/bin:/bin"}
    return subprocess.Popen([sys.executable, "-m", "tests.distributed.rank_process", json.dumps(config)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def wait_all(processes: list[subprocess.Popen], *, timeout: float, log_dir: Path) -> list[int]:
    """Exit codes of all processes; kills them all and fails if any runs past ``timeout``."""
    codes = []
    try:
        for process in processes:
            codes.append(process.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        logs = "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(log_dir.glob("*.log")))
        pytest.fail(f"a process did not exit within {timeout} s:\n{logs}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    return codes


def logs_of(log_dir: Path) -> str:
    return "\n".join(f"== {p.name}\n{p.read_text()[-4000:]}" for p in sorted(log_dir.glob("*.log")))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure of a platform test, attach the services' logs to the report."""
    outcome = yield
    report = outcome.get_result()
    system = item.funcargs.get("platform") if hasattr(item, "funcargs") else None
    if report.failed and system is not None:
        report.sections.append(("platform logs", system.logs_text()))
