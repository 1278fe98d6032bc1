"""What the ring and the parameter server share: gRPC servers and channels for large messages,
pieces of a few MB cut from one flat buffer, a mailbox that a collective waits on without ever
waiting forever, and byte counters."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import numpy

from workers.distributed.errors import CollectiveTimeout
from workers.distributed.protos.netforge.distributed.v1 import collectives_pb2

DEFAULT_TIMEOUT_SECONDS = 60.0
PIECE_BYTES = 4 * 1024 * 1024  # a message of a few MB; the limit below leaves room for the header
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
WAIT_SLICE_SECONDS = 0.1  # how often a waiting collective looks at its peers' liveness


@dataclasses.dataclass
class ByteCounter:
    """Bytes this process sent: ``payload`` counts tensor bytes, ``wire`` whole serialized messages."""

    payload: int = 0
    wire: int = 0
    messages: int = 0

    def count(self, piece: collectives_pb2.Piece) -> None:
        self.payload += len(piece.data)
        self.wire += piece.ByteSize()
        self.messages += 1


def pieces(buffer: numpy.ndarray, begin: int, end: int, *, counter: ByteCounter, **header) -> Iterator:
    """Elements ``begin:end`` of a flat buffer as ``Piece`` messages of at most ``PIECE_BYTES``
    (one empty piece for an empty range); ``header`` are the other ``Piece`` fields."""
    elements = max(1, PIECE_BYTES // buffer.itemsize)
    offset = begin
    while True:
        piece_end = min(end, offset + elements)
        piece = collectives_pb2.Piece(offset=offset, data=buffer[offset:piece_end].tobytes(), **header)
        counter.count(piece)
        yield piece
        offset = piece_end
        if offset >= end:
            return


def make_server(register: Callable[[grpc.Server], None], *, host: str = "127.0.0.1") -> tuple[grpc.Server, str]:
    """A started gRPC server on a free port of ``host``; returns it and its ``host:port``."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="collective"),
                         options=CHANNEL_OPTIONS)
    register(server)
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    return server, f"{host}:{port}"


def make_channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


class Mailbox:
    """Messages that arrived for a key (collective, step), kept until the collective takes them."""

    def __init__(self):
        self._condition = threading.Condition()
        self._items: dict[tuple, object] = {}
        self.closed: str | None = None

    def put(self, key: tuple, item) -> None:
        with self._condition:
            self._items[key] = item
            self._condition.notify_all()

    def close(self, reason: str) -> None:
        with self._condition:
            self.closed = reason
            self._condition.notify_all()

    def take(self, key: tuple, *, timeout: float, check: Callable[[], None], what: str):
        """The item for ``key``; calls ``check`` (which raises when a peer failed) every
        ``WAIT_SLICE_SECONDS`` and raises ``CollectiveTimeout`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while key not in self._items:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CollectiveTimeout(f"{what} did not arrive within {timeout:.0f} s")
                self._condition.wait(min(WAIT_SLICE_SECONDS, remaining))
                if key not in self._items:
                    if self.closed:
                        raise CollectiveTimeout(f"{what}: {self.closed}")
                    check()
            return self._items.pop(key)
