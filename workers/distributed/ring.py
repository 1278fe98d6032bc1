"""Ring all-reduce over gRPC.

The fused buffer (one flat array of the same dtype on every worker) is cut into ``world_size``
element-wise chunks (``numpy.array_split`` bounds: sizes differ by at most one element). Worker
``r`` sends to ``r + 1`` and receives from ``r - 1`` (mod ``world_size``):

- reduce-scatter, steps ``s = 0 .. N-2``: send chunk ``(r - s) % N``, receive chunk
  ``(r - s - 1) % N`` and add it to the local one; after it worker ``r`` holds the complete sum
  of chunk ``(r + 1) % N``;
- all-gather, steps ``s = 0 .. N-2``: send chunk ``(r + 1 - s) % N``, receive chunk ``(r - s) % N``
  and replace the local one with it.

Each complete chunk sum is computed once, by its owner, and copied byte for byte to the others,
so every worker ends with the identical buffer. Each worker sends ``2 (N - 1) / N`` times the
buffer, the optimum. A step's send runs beside its receive (a thread), so the two directions of
each link overlap.
"""

from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc
import numpy

from workers.distributed import transport
from workers.distributed.errors import CollectiveTimeout, PeerFailure
from workers.distributed.protos.netforge.distributed.v1 import collectives_pb2, collectives_pb2_grpc
from workers.distributed.rendezvous import Rendezvous

log = logging.getLogger(__name__)


class RingServicer(collectives_pb2_grpc.RingServicer):
    """Takes the pieces the predecessor sends and leaves them in the mailbox (thin: no math here)."""

    def __init__(self, group: str, mailbox: transport.Mailbox):
        self.group, self.mailbox = group, mailbox

    def SendChunk(self, request_iterator, context):  # the generated name
        received, key, items = 0, None, []
        for piece in request_iterator:
            if piece.group != self.group:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"this worker belongs to group {self.group}, not {piece.group}")
            key = (piece.collective, piece.ring_step)
            items.append((piece.offset, piece.data))
            received += len(piece.data)
        if key is not None:
            self.mailbox.put(key, items)
        return collectives_pb2.SendChunkResponse(received_bytes=received)


class RingAllReduce:
    """One worker's side of the ring. ``start`` serves; ``connect`` joins the ring once the
    rendezvous has every address; ``all_reduce(buffer)`` sums the buffers of all workers in place."""

    def __init__(self, group: str, *, rank: int, world_size: int, dtype, host: str = "127.0.0.1",
                 timeout: float = transport.DEFAULT_TIMEOUT_SECONDS):
        self.group, self.rank, self.world_size = group, rank, world_size
        self.dtype = numpy.dtype(dtype)
        self.timeout = timeout
        self.counter = transport.ByteCounter()
        self.collectives = 0
        self.mailbox = transport.Mailbox()
        self.server, self.address = transport.make_server(
            lambda server: collectives_pb2_grpc.add_RingServicer_to_server(RingServicer(group, self.mailbox), server),
            host=host)
        self._rendezvous: Rendezvous | None = None
        self._channel = None
        self._next = None
        self._sender = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ring-send")

    def connect(self, rendezvous: Rendezvous) -> None:
        self._rendezvous = rendezvous
        if self.world_size > 1:
            successor = (self.rank + 1) % self.world_size
            self._next_rank = successor
            self._channel = transport.make_channel(rendezvous.members[successor]["address"])
            self._next = collectives_pb2_grpc.RingStub(self._channel)

    def _check(self) -> None:
        if self._rendezvous is not None:
            self._rendezvous.check()

    def all_reduce(self, buffer: numpy.ndarray) -> numpy.ndarray:
        """Replace ``buffer`` (flat, this ring's dtype) by the element-wise sum over all workers."""
        if buffer.dtype != self.dtype or buffer.ndim != 1:
            raise ValueError(f"all_reduce takes a flat {self.dtype} buffer, got {buffer.dtype} of shape {buffer.shape}")
        self.collectives += 1
        n = self.world_size
        if n == 1:
            return buffer
        base, extra = divmod(len(buffer), n)
        bounds = [chunk * base + min(chunk, extra) for chunk in range(n + 1)]
        r = self.rank
        for step in range(2 * (n - 1)):
            reducing = step < n - 1
            s = step if reducing else step - (n - 1)
            send_chunk = (r - s) % n if reducing else (r + 1 - s) % n
            receive_chunk = (r - s - 1) % n if reducing else (r - s) % n
            sending = self._sender.submit(self._send, buffer, step, bounds[send_chunk], bounds[send_chunk + 1])
            # On a failure the send is left to its own deadline (or to close(), which cancels it).
            items = self.mailbox.take(
                (self.collectives, step), timeout=self.timeout, check=self._check,
                what=f"chunk {receive_chunk} of all-reduce {self.collectives} (ring step {step}) from worker rank "
                     f"{(r - 1) % n}")
            self._wait_sent(sending, step)
            for offset, data in items:
                incoming = numpy.frombuffer(data, dtype=self.dtype)
                target = buffer[offset:offset + len(incoming)]
                if reducing:
                    numpy.add(target, incoming, out=target)
                else:
                    target[...] = incoming
        return buffer

    def _wait_sent(self, sending: futures.Future, step: int) -> None:
        """Until the successor took this step's chunk, looking at the group's liveness meanwhile
        (a frozen successor never answers; close() then cancels the send)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                sending.result(timeout=transport.WAIT_SLICE_SECONDS)
                return
            except futures.TimeoutError:
                self._check()
                if time.monotonic() > deadline:
                    raise CollectiveTimeout(
                        f"worker rank {self._next_rank} did not take chunk data of all-reduce {self.collectives} "
                        f"(ring step {step}) within {self.timeout:.0f} s") from None

    def _send(self, buffer: numpy.ndarray, step: int, start: int, stop: int) -> None:
        header = {"group": self.group, "sender_rank": self.rank, "collective": self.collectives, "ring_step": step}
        try:
            self._next.SendChunk(transport.pieces(buffer, start, stop, counter=self.counter, **header),
                                 timeout=self.timeout)
        except grpc.RpcError as error:
            member = self._rendezvous.members.get(self._next_rank, {}) if self._rendezvous else {}
            reason = (f"worker rank {self._next_rank} ({member.get('address', '?')}) did not take chunk data of "
                      f"all-reduce {self.collectives}: {error.code().name} {error.details()}")
            if self._rendezvous is not None:
                self._rendezvous.report_failed(self._next_rank, reason)
            raise PeerFailure(reason, rank=self._next_rank) from None

    def close(self) -> None:
        self.mailbox.close("the worker is shutting down")
        self._sender.shutdown(wait=False, cancel_futures=True)
        if self._channel is not None:
            self._channel.close()
        self.server.stop(grace=0.5)
