"""The ASGI upload guard in front of Django: a body over the cap is refused from its
Content-Length before a byte is read, or as its chunks pass the cap; a stalled body gets a 408;
anything else reaches Django. (tests/platform/test_dataset_conversion.py does the same against a
real uvicorn server.)"""

from __future__ import annotations

import asyncio
import json

import pytest
from django.core.asgi import get_asgi_application

from webapp.datasets.upload_guard import MULTIPART_OVERHEAD_BYTES, UploadGuard

UPLOAD = "/api/datasets/upload"


def request_scope(path: str = UPLOAD, *, content_length: int | None = None) -> dict:
    headers = [(b"host", b"testserver"), (b"content-type", b"multipart/form-data; boundary=x")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 1), "server": ("testserver", 80)}


class Client:
    """Feeds body chunks to an ASGI app and records what it reads and answers."""

    def __init__(self, chunks: list[bytes], *, stall_after: int | None = None):
        self.chunks, self.stall_after = list(chunks), stall_after
        self.read = 0
        self.sent: list[dict] = []

    async def receive(self):
        if self.stall_after is not None and self.read >= self.stall_after:
            await asyncio.sleep(3600)
        if not self.chunks:
            await asyncio.sleep(3600)  # nothing more: a client that waits for the answer
        chunk = self.chunks.pop(0)
        self.read += 1
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message):
        self.sent.append(message)

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")

    @property
    def error(self) -> dict:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"))["error"]


def run(app, scope, client, timeout: float = 20):
    asyncio.run(asyncio.wait_for(app(scope, client.receive, client.send), timeout))


@pytest.fixture
def guard():
    return UploadGuard(get_asgi_application())


def test_a_declared_body_over_the_cap_is_refused_before_any_byte_is_read(guard, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    client = Client([b"x" * 100])
    run(guard, request_scope(content_length=1 << 30), client)
    assert client.status == 413 and client.read == 0
    assert client.error["code"] == "too_large" and "NETFORGE_MAX_UPLOAD_MB" in client.error["message"]
    assert client.error["details"]["size"] == 1 << 30


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_cap(guard, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    chunk = b"x" * (256 * 1024)
    client = Client([chunk] * 40)  # 10 MB, no Content-Length; the cap is 1000 bytes + 1 MB of framing
    run(guard, request_scope(), client)
    assert client.status == 413
    assert client.read == MULTIPART_OVERHEAD_BYTES // len(chunk) + 1  # stopped at the first chunk past the cap
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]  # Django said nothing


def test_a_stalled_body_gets_a_408(guard, settings):
    settings.UPLOAD_READ_TIMEOUT_SECONDS = 0.2
    client = Client([b"x" * 100, b"y" * 100], stall_after=1)
    run(guard, request_scope(content_length=200), client)
    assert client.status == 408 and "NETFORGE_UPLOAD_READ_TIMEOUT_SECONDS" in client.error["message"]


def test_a_body_within_the_cap_reaches_django(guard, settings):
    client = Client([b"--x--\r\n"])
    run(guard, request_scope(content_length=7), client)
    assert client.status == 401  # Django read it and asked for credentials


def test_other_paths_pass_untouched(guard, settings):
    settings.MAX_UPLOAD_BYTES = 10
    client = Client([b"{}"])
    run(guard, request_scope("/api/projects", content_length=1 << 30), client)
    assert client.status != 413
