"""The browser tests: NetForge started the way ``make run`` starts it (``python -m webapp.run``:
its own Redis, migrations, the demo, uvicorn serving the built frontend, a Celery worker), driven
by Debian's chromium through Playwright. Screenshots of every step go to
``test-results/browser/<test>/`` (kept after the run: look at them)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-results" / "browser"
START_TIMEOUT = 120.0


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")


class NetForge:
    """``python -m webapp.run`` in a fresh NETFORGE_HOME on a free port; its output in a log."""

    def __init__(self, home: Path):
        self.home = home
        self.log_path = home / "make-run.log"
        self.url = ""
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if not (ROOT / "frontend" / "dist" / "index.html").exists():
            pytest.fail("the frontend is not built: `make test` builds it (cd frontend && npm ci && npm run build)")
        env = {key: value for key, value in os.environ.items()
               if key not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
        # Any free port for gRPC too: 50051 lies in the ephemeral range, and the other tests' servers
        # and clients on port 0 can hold it between make run's probe and the gRPC server's bind.
        # And Redis too: each test process starts its own NetForge, and the two must not share a broker.
        env.update(NETFORGE_HOME=str(self.home), NETFORGE_GRPC_PORT="0", NETFORGE_REDIS_PORT="0",
                   PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1",
                   # The suite signs up a user per test, all from 127.0.0.1 within minutes: past the
                   # default sign-up rate (10/hour). The throttles are tested in tests/security.
                   NETFORGE_REGISTER_RATE="10000/hour", NETFORGE_LOGIN_RATE="10000/min",
                   NETFORGE_TOKEN_RATE="10000/min")
        log = open(self.log_path, "w")  # the child writes it until stop()
        self.process = subprocess.Popen([sys.executable, "-m", "webapp.run", "--port", "0"], cwd=ROOT, env=env,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = re.search(r"NetForge is running at (http://\S+?)/?\s", self.log_text())
            if match:
                self.url = match.group(1)
                self._wait_for_worker(deadline)
                return
            if self.process.poll() is not None:
                pytest.fail(f"make run exited with {self.process.returncode}:\n{self.log_text()[-4000:]}")
            time.sleep(0.2)
        pytest.fail(f"make run did not print its URL within {START_TIMEOUT:.0f} s:\n{self.log_text()[-4000:]}")

    def _wait_for_worker(self, deadline: float) -> None:
        while " ready." not in self.log_text():
            if time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not become ready:\n{self.log_text()[-4000:]}")
            time.sleep(0.2)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Like Ctrl-C: SIGINT to make run, which stops every process it started."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture(scope="session")
def netforge():
    home = Path(tempfile.mkdtemp(prefix="netforge-browser-"))
    server = NetForge(home)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: Playwright's sync API keeps an event loop running in this thread,
    # and Django refuses ORM calls from a thread with a running loop, so tests that run later in
    # the same pytest worker need it gone.
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield instance
        instance.close()


class Steps:
    """Numbered screenshots of a test's steps, and the browser console's errors."""

    def __init__(self, page, folder: Path):
        self.page = page
        self.folder = folder
        self.count = 0
        self.console_errors: list[str] = []
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}.png"))


@pytest.fixture
def page(browser, netforge, request):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=netforge.url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    steps = Steps(tab, ARTIFACTS / request.node.name)
    tab.steps = steps
    yield tab
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        steps.shot("failure")
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    server = item.funcargs.get("netforge") if hasattr(item, "funcargs") else None
    if report.failed and server is not None:
        report.sections.append(("make run output", server.log_text()[-8000:]))
