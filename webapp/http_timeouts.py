"""uvicorn's HTTP protocol (httptools) with a deadline for the request line and headers, and a cap
on their size: ``uvicorn --http webapp.http_timeouts:HeaderTimeoutHttpToolsProtocol``.

uvicorn times out idle keep-alive connections (``--timeout-keep-alive``) but waits for a request's
headers for ever, and keeps every header line it is sent: a client that opens connections and
sends a header byte now and then (slowloris) holds them, and their memory, as long as it likes.
Here each request's headers must be complete within ``NETFORGE_HEADER_TIMEOUT_SECONDS`` (default
10) of its first byte (or of the connection's opening), else the connection is closed; headers
over ``NETFORGE_MAX_HEADER_BYTES`` (default 64 KiB) are a 431 and the connection is closed. The
body's pace is the ASGI guard's business (``webapp.core.body_guard``). Environment variables, not
Django settings: uvicorn creates protocols before, and apart from, the application.
"""

from __future__ import annotations

import logging
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

HEADER_TIMEOUT_SECONDS = float(os.environ.get("NETFORGE_HEADER_TIMEOUT_SECONDS", "10"))
MAX_HEADER_BYTES = int(os.environ.get("NETFORGE_MAX_HEADER_BYTES", str(64 * 1024)))


class HeaderTimeoutHttpToolsProtocol(HttpToolsProtocol):
    """See the module's docstring."""

    header_timer = None
    header_bytes = 0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_bytes = 0
        self._start_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _count_header_bytes(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
            log.info("request headers over %s bytes from %s; connection closed", MAX_HEADER_BYTES, self.client)
            self._stop_header_timer()
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
                                 b"connection: close\r\n\r\n")
            self.transport.close()

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self.header_timer = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_too_slow(self) -> None:
        self.header_timer = None
        if self.transport.is_closing():
            return
        log.info("request headers from %s not complete after %s s; connection closed", self.client,
                 HEADER_TIMEOUT_SECONDS)
        self.transport.close()


# What every uvicorn of the web process runs with (make run, the Docker image, the tests' servers):
# this protocol, and idle keep-alive connections closed after 5 s (uvicorn's default, made explicit).
UVICORN_HARDENING_OPTIONS = ("--http", f"{__name__}:{HeaderTimeoutHttpToolsProtocol.__name__}",
                             "--timeout-keep-alive", "5")
