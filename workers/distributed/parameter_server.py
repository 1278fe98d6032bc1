"""Parameter server over gRPC: synchronous, or asynchronous with a staleness bound.

Synchronous (``staleness=None``), the choice stated in the README: the server sums, the workers
apply. Every worker pushes its share-weighted gradient buffer of a step (``PushGradient``); once
all ``world_size`` pushes of that step are in, the server adds them in rank order (one fixed order,
so the sum is the same whatever order they arrived in) and every worker pulls the same bytes
(``PullSum``) and applies the same optimizer update, so all workers hold identical weights, and the
optimizer state lives with the workers (rank 0 checkpoints it as in a single-worker run). Each
worker sends one buffer and receives one per step; the server sends ``world_size`` buffers.

Asynchronous (``staleness=s``, an integer >= 0): the server holds the weights (one flat buffer,
set by rank 0 before its first step) and the optimizer (``engine.optimizers``, applied to the flat
buffer: every optimizer there is element-wise, and clipping's norm is global anyway), and applies
each worker's gradient (the mean over its own share of its step's batch) as it comes, answering with
the weights after it. A worker's step k is held back until every other worker still training has
completed step k - 1 - s (stale synchronous parallel): no gradient is computed on weights more than
s updates of any one worker behind. Workers' weights then differ between steps, by design; the
optimizer state lives on the server (a checkpoint holds rank 0's weights, and a resume starts the
optimizer state afresh). ``max_lead`` records the largest lead the server let through.

Nothing waits forever: a pull waits at most the collective timeout, and both sides check the
group's liveness while they wait (``Rendezvous.check``).
"""

from __future__ import annotations

import logging
import threading
import time

import grpc
import numpy

from workers.distributed import transport
from workers.distributed.errors import CollectiveTimeout, DistributedError, PeerFailure
from workers.distributed.protos.netforge.distributed.v1 import collectives_pb2, collectives_pb2_grpc
from workers.distributed.rendezvous import SERVER_RANK, Rendezvous

log = logging.getLogger(__name__)


class _Step:
    """The pushes of one collective and, once complete, their sum."""

    def __init__(self):
        self.contributions: dict[int, numpy.ndarray] = {}
        self.total: numpy.ndarray | None = None
        self.pulled: set[int] = set()


class ParameterServerServicer(collectives_pb2_grpc.ParameterServerServicer):
    def __init__(self, server: ParameterServer):
        self.server = server

    def PushGradient(self, request_iterator, context):  # the generated names
        received, rank, collective, parts = 0, None, None, []
        for piece in request_iterator:
            if piece.group != self.server.group:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"this server belongs to group {self.server.group}, not {piece.group}")
            rank, collective = piece.sender_rank, piece.collective
            parts.append((piece.offset, piece.data))
            received += len(piece.data)
        if rank is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a push needs at least one piece")
        try:
            self.server.accept(rank, collective, parts)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return collectives_pb2.PushGradientResponse(received_bytes=received)

    def SetWeights(self, request_iterator, context):
        parts = [(piece.offset, piece.data) for piece in self._pieces_of_group(request_iterator, context)]
        try:
            self.server.set_weights(parts)
        except ValueError as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        return collectives_pb2.SetWeightsResponse(received_bytes=sum(len(data) for _, data in parts))

    def ApplyGradient(self, request_iterator, context):
        pieces = list(self._pieces_of_group(request_iterator, context))
        if not pieces:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a gradient needs at least one piece")
        first = pieces[0]
        try:
            weights, stopping = self.server.apply_gradient(
                first.sender_rank, first.collective, [(piece.offset, piece.data) for piece in pieces],
                stop=any(piece.stop for piece in pieces))
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except DistributedError as error:
            context.abort(grpc.StatusCode.ABORTED, str(error))
        yield from transport.pieces(weights, 0, len(weights), counter=self.server.counter, group=self.server.group,
                                    sender_rank=SERVER_RANK, collective=first.collective, stop=stopping)

    def _pieces_of_group(self, request_iterator, context):
        for piece in request_iterator:
            if piece.group != self.server.group:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"this server belongs to group {self.server.group}, not {piece.group}")
            yield piece

    def PullSum(self, request, context):
        if request.group != self.server.group:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"this server belongs to group {self.server.group}, not {request.group}")
        try:
            total = self.server.wait_for_sum(request.rank, request.collective)
        except DistributedError as error:
            context.abort(grpc.StatusCode.ABORTED, str(error))
        yield from transport.pieces(total, 0, len(total), counter=self.server.counter, group=self.server.group,
                                    sender_rank=SERVER_RANK, collective=request.collective)


class ParameterServer:
    """The server process's side: ``start`` serves; ``serve_until_done`` returns when every worker
    left, or raises when the group failed."""

    def __init__(self, group: str, *, world_size: int, dtype, host: str = "127.0.0.1",
                 timeout: float = transport.DEFAULT_TIMEOUT_SECONDS, staleness: int | None = None,
                 optimizer: dict | str | None = None):
        self.group, self.world_size, self.dtype, self.timeout = group, world_size, numpy.dtype(dtype), timeout
        self.staleness = staleness
        self.optimizer = None
        if staleness is not None:
            from engine.optimizers import make_optimizer  # noqa: PLC0415  (only the asynchronous server applies updates)

            self.optimizer = make_optimizer(optimizer or {"name": "adam", "lr": 1e-3})
        self.weights: numpy.ndarray | None = None
        self.completed: dict[int, int] = {}  # asynchronous: steps each worker has had applied
        self.updates_applied = 0
        self.max_lead = 0
        self.stopping = False
        self.counter = transport.ByteCounter()
        self.steps: dict[int, _Step] = {}
        self.collectives_completed = 0
        self.final_state: str | None = None  # how the group's worker rank 0 finished (serve_parameters)
        self._condition = threading.Condition()
        self._rendezvous: Rendezvous | None = None
        self.server, self.address = transport.make_server(
            lambda server: collectives_pb2_grpc.add_ParameterServerServicer_to_server(
                ParameterServerServicer(self), server), host=host)

    def connect(self, rendezvous: Rendezvous) -> None:
        self._rendezvous = rendezvous

    def accept(self, rank: int, collective: int, parts: list[tuple[int, bytes]]) -> None:
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank {rank} is not a worker of this group (world size {self.world_size})")
        size = sum(len(data) for _, data in parts) // self.dtype.itemsize
        buffer = numpy.empty(size, dtype=self.dtype)
        for offset, data in parts:
            incoming = numpy.frombuffer(data, dtype=self.dtype)
            buffer[offset:offset + len(incoming)] = incoming
        with self._condition:
            step = self.steps.setdefault(collective, _Step())
            step.contributions[rank] = buffer
            if len(step.contributions) == self.world_size:
                sizes = {len(c) for c in step.contributions.values()}
                if len(sizes) > 1:
                    raise ValueError(f"collective {collective}: workers pushed buffers of different sizes "
                                     f"{sorted(sizes)}")
                total = step.contributions[0].copy()
                for other in range(1, self.world_size):
                    total += step.contributions[other]
                step.total, step.contributions = total, {}
                self.collectives_completed += 1
                self._condition.notify_all()

    # -- asynchronous ---------------------------------------------------------------------------
    def _assemble(self, parts: list[tuple[int, bytes]]) -> numpy.ndarray:
        buffer = numpy.empty(sum(len(data) for _, data in parts) // self.dtype.itemsize, dtype=self.dtype)
        for offset, data in parts:
            incoming = numpy.frombuffer(data, dtype=self.dtype)
            buffer[offset:offset + len(incoming)] = incoming
        return buffer

    def set_weights(self, parts: list[tuple[int, bytes]]) -> None:
        if self.staleness is None:
            raise ValueError("this parameter server is synchronous: it holds no weights")
        weights = self._assemble(parts)
        with self._condition:
            if self.weights is None:  # a second call (a retry) changes nothing
                self.weights = weights
            self._condition.notify_all()

    def _still_training(self, rank: int) -> bool:
        rendezvous = self._rendezvous
        return rendezvous is None or not rendezvous.has_left(rendezvous.worker_slots[rank])

    def _lead_over_slowest(self, rank: int, step: int) -> int:
        """How many steps ``rank``'s step ``step`` would be ahead of the slowest other worker still training."""
        others = [self.completed.get(other, 0) for other in range(self.world_size)
                  if other != rank and self._still_training(other)]
        return step - 1 - min(others) if others else 0

    def apply_gradient(self, rank: int, step: int, parts: list[tuple[int, bytes]], *, stop: bool = False):
        """Apply one worker's gradient (no data: nothing to apply, e.g. an empty share) once the
        staleness bound allows; returns (the weights after it, whether the group is stopping)."""
        if self.staleness is None:
            raise ValueError("this parameter server is synchronous; push gradients with PushGradient")
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank {rank} is not a worker of this group (world size {self.world_size})")
        gradient = self._assemble(parts)
        deadline = time.monotonic() + self.timeout
        with self._condition:
            if stop and not self.stopping:
                self.stopping = True
                self._condition.notify_all()
            while self.weights is None or (not self.stopping and self._lead_over_slowest(rank, step) > self.staleness):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    what = "the initial weights" if self.weights is None else "the slowest worker to catch up"
                    raise CollectiveTimeout(f"step {step} of worker rank {rank} waited {self.timeout:.0f} s for {what}")
                self._condition.wait(min(transport.WAIT_SLICE_SECONDS, remaining))
                if self._rendezvous is not None:
                    self._rendezvous.check()
            self.max_lead = max(self.max_lead, self._lead_over_slowest(rank, step))
            if len(gradient):
                if len(gradient) != len(self.weights):
                    raise ValueError(f"a gradient of {len(gradient)} elements for {len(self.weights)} weights")
                self.optimizer.step({"weights": self.weights}, {"weights": gradient})
                self.updates_applied += 1
            self.completed[rank] = step
            self.collectives_completed += 1
            self._condition.notify_all()
            return self.weights.copy(), self.stopping

    # -- synchronous ----------------------------------------------------------------------------
    def wait_for_sum(self, rank: int, collective: int) -> numpy.ndarray:
        deadline = time.monotonic() + self.timeout
        with self._condition:
            while True:
                step = self.steps.get(collective)
                if step is not None and step.total is not None:
                    total = step.total
                    step.pulled.add(rank)
                    if len(step.pulled) == self.world_size:
                        del self.steps[collective]
                    return total
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CollectiveTimeout(f"the pushes of step {collective} did not all arrive within "
                                            f"{self.timeout:.0f} s")
                self._condition.wait(min(transport.WAIT_SLICE_SECONDS, remaining))
                if self._rendezvous is not None:
                    self._rendezvous.check()

    def serve_until_done(self, *, poll: float = 0.2) -> None:
        """Serve until every worker left the group normally; raises ``PeerFailure`` when one failed."""
        rendezvous = self._rendezvous
        while True:
            rendezvous.check()
            if all(rendezvous.has_left(slot) for slot in rendezvous.worker_slots):
                return
            with self._condition:  # a worker that left may be the one others wait for
                self._condition.notify_all()
            time.sleep(poll)

    def close(self) -> None:
        self.server.stop(grace=0.5)


class _ServerConnection:
    """What both clients of the parameter server hold: the group, this worker's rank, the channel
    to the server (rank ``SERVER_RANK`` of the rendezvous) and the bytes sent."""

    def __init__(self, group: str, *, rank: int, world_size: int, dtype,
                 timeout: float = transport.DEFAULT_TIMEOUT_SECONDS):
        self.group, self.rank, self.world_size = group, rank, world_size
        self.dtype, self.timeout = numpy.dtype(dtype), timeout
        self.counter = transport.ByteCounter()
        self.collectives = 0
        self._rendezvous: Rendezvous | None = None
        self._channel = None
        self._stub = None

    def connect(self, rendezvous: Rendezvous) -> None:
        self._rendezvous = rendezvous
        self._channel = transport.make_channel(rendezvous.members[SERVER_RANK]["address"])
        self._stub = collectives_pb2_grpc.ParameterServerStub(self._channel)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()


class ParameterServerClient(_ServerConnection):
    """A worker's side: ``all_reduce(buffer)`` pushes this worker's buffer and replaces it by the sum."""

    def all_reduce(self, buffer: numpy.ndarray) -> numpy.ndarray:
        if buffer.dtype != self.dtype or buffer.ndim != 1:
            raise ValueError(f"all_reduce takes a flat {self.dtype} buffer, got {buffer.dtype} of shape {buffer.shape}")
        self.collectives += 1
        header = {"group": self.group, "sender_rank": self.rank, "collective": self.collectives}
        calls = []

        def cancel() -> None:
            for call in calls:
                call.cancel()

        if self._rendezvous is not None:
            self._rendezvous.on_failure(cancel)
        try:
            push = self._stub.PushGradient.future(
                transport.pieces(buffer, 0, len(buffer), counter=self.counter, **header), timeout=self.timeout)
            calls.append(push)
            push.result()
            pull = self._stub.PullSum(collectives_pb2.PullSumRequest(
                group=self.group, rank=self.rank, collective=self.collectives), timeout=self.timeout)
            calls.append(pull)
            received = 0
            for piece in pull:
                incoming = numpy.frombuffer(piece.data, dtype=self.dtype)
                buffer[piece.offset:piece.offset + len(incoming)] = incoming
                received += len(incoming)
        except (grpc.RpcError, grpc.FutureCancelledError) as error:
            if self._rendezvous is not None:
                self._rendezvous.check()  # a peer's failure is the better reason, when there is one
            if not isinstance(error, grpc.RpcError):
                raise PeerFailure("the step with the parameter server was cancelled", rank=SERVER_RANK) from None
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise CollectiveTimeout(f"step {self.collectives} with the parameter server did not complete "
                                        f"within {self.timeout:.0f} s") from None
            reason = f"the parameter server failed step {self.collectives}: {error.code().name} {error.details()}"
            if self._rendezvous is not None and error.code() == grpc.StatusCode.UNAVAILABLE:
                self._rendezvous.report_failed(SERVER_RANK, reason)
            raise PeerFailure(reason, rank=SERVER_RANK) from None
        finally:
            if self._rendezvous is not None:
                self._rendezvous.remove_failure_callback(cancel)
        if received != len(buffer):
            raise PeerFailure(f"the parameter server sent {received} elements for a buffer of {len(buffer)}",
                              rank=SERVER_RANK)
        return buffer


class AsyncParameterServerClient(_ServerConnection):
    """A worker's side of the asynchronous server: ``set_weights`` (rank 0, once) and ``apply``."""

    def _call(self, what: str, function):
        calls = []

        def cancel() -> None:
            for call in calls:
                call.cancel()

        if self._rendezvous is not None:
            self._rendezvous.on_failure(cancel)
        try:
            return function(calls)
        except (grpc.RpcError, grpc.FutureCancelledError) as error:
            if self._rendezvous is not None:
                self._rendezvous.check()
            if not isinstance(error, grpc.RpcError):
                raise PeerFailure(f"{what} was cancelled", rank=SERVER_RANK) from None
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise CollectiveTimeout(f"{what} did not complete within {self.timeout:.0f} s") from None
            reason = f"the parameter server failed {what}: {error.code().name} {error.details()}"
            if self._rendezvous is not None and error.code() == grpc.StatusCode.UNAVAILABLE:
                self._rendezvous.report_failed(SERVER_RANK, reason)
            raise PeerFailure(reason, rank=SERVER_RANK) from None
        finally:
            if self._rendezvous is not None:
                self._rendezvous.remove_failure_callback(cancel)

    def set_weights(self, weights: numpy.ndarray) -> None:
        header = {"group": self.group, "sender_rank": self.rank, "collective": 0}

        def send(calls):
            call = self._stub.SetWeights.future(
                transport.pieces(weights, 0, len(weights), counter=self.counter, **header), timeout=self.timeout)
            calls.append(call)
            call.result()

        self._call("setting the initial weights", send)

    def apply(self, gradient: numpy.ndarray | None, weights: numpy.ndarray, *, stop: bool = False) -> bool:
        """Send this step's gradient (None: an empty share, nothing to apply) and put the weights
        after it into ``weights``; returns whether the group is stopping."""
        self.collectives += 1
        header = {"group": self.group, "sender_rank": self.rank, "collective": self.collectives, "stop": stop}
        empty = numpy.empty(0, dtype=self.dtype)
        outgoing = (transport.pieces(gradient, 0, len(gradient), counter=self.counter, **header)
                    if gradient is not None else transport.pieces(empty, 0, 0, counter=self.counter, **header))

        def exchange(calls):
            call = self._stub.ApplyGradient(outgoing, timeout=self.timeout)
            calls.append(call)
            stopping, received = False, 0
            for piece in call:
                incoming = numpy.frombuffer(piece.data, dtype=self.dtype)
                weights[piece.offset:piece.offset + len(incoming)] = incoming
                received += len(incoming)
                stopping = stopping or piece.stop
            if received != len(weights):
                raise PeerFailure(f"the parameter server sent {received} weights for {len(weights)}", rank=SERVER_RANK)
            return stopping

        return self._call(f"step {self.collectives} with the parameter server", exchange)
