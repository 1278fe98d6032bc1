"""Clients that hold connections: the real uvicorn, started as make run starts it (the header-timeout
protocol, keep-alive timeout), with short timeouts, and real sockets that stop mid-body, send
headers a byte at a time, declare huge bodies or send nothing at all. Every one is released."""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.platform.harness import Platform, Service, wait_until
from webapp.http_timeouts import UVICORN_HARDENING_OPTIONS

pytestmark = pytest.mark.xdist_group("security-slow-clients")

READ_TIMEOUT = 2.0  # NETFORGE_REQUEST_READ_TIMEOUT_SECONDS: a body that stalls this long is dropped
HEADER_TIMEOUT = 2.0  # NETFORGE_HEADER_TIMEOUT_SECONDS: headers not complete after this long are dropped


@pytest.fixture(scope="module")
def server():
    home = Path(tempfile.mkdtemp(prefix="netforge-slow-clients-"))
    system = Platform(home)
    env = {**system.env, "NETFORGE_GRPC_PORT": "0", "NETFORGE_REQUEST_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
           "NETFORGE_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT), "NETFORGE_MAX_REQUEST_BODY_MB": "1"}
    web = None
    try:
        system.migrate()
        web = Service("web", [sys.executable, "-m", "uvicorn", "webapp.asgi:application", "--host", "127.0.0.1",
                              "--port", str(system.http_port), "--lifespan", "on", "--no-access-log",
                              *UVICORN_HARDENING_OPTIONS], env=env, log_dir=system.logs).start()
        web.wait_for_log("Uvicorn running on")
        yield system
    finally:
        if web is not None:
            web.stop()
            Service._all.remove(web)
        shutil.rmtree(home, ignore_errors=True)


def connect(system) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", system.http_port), timeout=10)
    client.setblocking(False)
    return client


def closed_by_server(client: socket.socket) -> bool:
    """True once the server has closed the connection (whatever it answered before)."""
    try:
        while True:
            data = client.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def wait_all_closed(clients: list[socket.socket], *, timeout: float, what: str) -> float:
    started = time.monotonic()
    pending = list(clients)

    def all_closed():
        pending[:] = [client for client in pending if not closed_by_server(client)]
        return not pending

    wait_until(all_closed, timeout=timeout, what=f"the server to close {len(pending)} {what}", interval=0.2)
    return time.monotonic() - started


def read_until_closed(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (its refusals close it)."""
    client.settimeout(10)
    answer = b""
    try:
        while chunk := client.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def still_answers(system) -> None:
    assert httpx.get(f"{system.base_url}/api/", timeout=10).status_code == 200


def test_200_connections_stopped_mid_body_are_released(server):
    head = (b"POST /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n")
    clients = []
    try:
        for _ in range(200):
            client = connect(server)
            client.sendall(head + b'{"name": "half a bo')
            clients.append(client)
        waited = wait_all_closed(clients, timeout=READ_TIMEOUT + 20, what="connections stopped mid-body")
        assert waited >= READ_TIMEOUT * 0.5, "closed before the read timeout: the test did not exercise it"
        still_answers(server)
    finally:
        for client in clients:
            client.close()


def test_headers_sent_too_slowly_and_silent_connections_are_dropped(server):
    clients = []
    try:
        for index in range(50):
            client = connect(server)
            if index % 2:
                client.sendall(b"GET /api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the end
            clients.append(client)  # the others send nothing at all
        wait_all_closed(clients, timeout=HEADER_TIMEOUT + 20, what="slow or silent connections")
        still_answers(server)
    finally:
        for client in clients:
            client.close()


def test_a_declared_huge_body_is_refused_before_it_is_read(server):
    client = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
    try:
        client.sendall(b"POST /api/graphs/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 1073741824\r\n\r\n")
        answer = read_until_closed(client)
        assert answer.startswith(b"HTTP/1.1 413") and b"NETFORGE_MAX_REQUEST_BODY_MB" in answer, answer[:300]
    finally:
        client.close()


def test_a_chunked_body_over_the_cap_is_cut_off(server):
    client = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
    try:
        client.sendall(b"POST /api/graphs/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(40):  # 2.5 MB, over the 1 MB cap
            try:
                client.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = read_until_closed(client)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    finally:
        client.close()


def test_headers_beyond_the_size_limit_are_refused(server):
    client = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
    try:
        client.sendall(b"GET /api/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for index in range(2000):  # 100 kB of headers, over the 64 KiB limit
                client.sendall(b"X-Filler-%d: %s\r\n" % (index, b"y" * 40))
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(client)
        assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer[:200]
    finally:
        client.close()
    still_answers(server)
