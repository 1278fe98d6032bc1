"""One process of a data-parallel group, for any caller (a Celery task, a test, the benchmark):
``DataParallelWorker`` joins the group and gives the trainer its reducer; ``serve_parameters``
is the parameter-server process's whole life."""

from __future__ import annotations

import logging
import os

from workers.distributed import shared_memory, transport
from workers.distributed.parameter_server import AsyncParameterServerClient, ParameterServer, ParameterServerClient
from workers.distributed.reducer import AsyncGradientReducer, GradientReducer
from workers.distributed.rendezvous import SERVER_RANK, Rendezvous
from workers.distributed.ring import RingAllReduce

log = logging.getLogger(__name__)

STRATEGIES = ("allreduce", "ps")
# "auto": the all-reduce goes through shared memory when every worker of the group is on this
# machine (and the machine allows it), by the gRPC ring otherwise; "grpc": always the gRPC ring.
TRANSPORTS = ("auto", "grpc")
TRANSPORT_VARIABLE = "NETFORGE_DISTRIBUTED_TRANSPORT"


def default_transport() -> str:
    """``NETFORGE_DISTRIBUTED_TRANSPORT``, "auto" when unset."""
    value = os.environ.get(TRANSPORT_VARIABLE, "auto").strip().lower() or "auto"
    if value not in TRANSPORTS:
        raise ValueError(f"{TRANSPORT_VARIABLE} must be one of {', '.join(TRANSPORTS)}, got {value!r}")
    return value


def shares_memory(members: dict[int, dict]) -> bool:
    """Whether a group with these members all-reduces through shared memory: every worker sees the
    same ``/dev/shm`` and accepts it (each says so in the rendezvous, so all of them decide alike)."""
    workers = [member for rank, member in members.items() if rank != SERVER_RANK]
    identities = {member.get("shared_memory") for member in workers}
    return (len(workers) > 1 and all(member.get("transport") == "auto" for member in workers)
            and len(identities) == 1 and None not in identities)


class DataParallelWorker:
    """Rank ``rank`` of ``world_size``; ``join()`` returns once every process of the group is there."""

    def __init__(self, redis_url: str, group: str, *, rank: int, world_size: int, strategy: str, dtype: str,
                 host: str = "127.0.0.1", timeout: float = transport.DEFAULT_TIMEOUT_SECONDS,
                 rendezvous_timeout: float | None = None, min_world_size: int | None = None,
                 staleness: int | None = None, transport_name: str | None = None):
        """``staleness``: None for the synchronous strategies; an integer >= 0 makes "ps" the
        asynchronous parameter server with that staleness bound. ``transport_name``: one of
        ``TRANSPORTS`` (default ``NETFORGE_DISTRIBUTED_TRANSPORT``, else "auto")."""
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        self.rank, self.world_size, self.strategy = rank, world_size, strategy
        self.rendezvous = Rendezvous(redis_url, group, rank=rank, world_size=world_size,
                                     with_server=strategy == "ps", timeout=rendezvous_timeout,
                                     min_world_size=min_world_size, in_step=staleness is None)
        if staleness is not None and strategy != "ps":
            raise ValueError(f"a staleness bound needs the parameter-server strategy ('ps'), not {strategy!r}")
        self.staleness = staleness
        self.transport = default_transport() if transport_name is None else transport_name
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {self.transport!r}")
        self.group, self.dtype, self.timeout = group, dtype, timeout
        if strategy == "allreduce":
            self.collective = RingAllReduce(group, rank=rank, world_size=world_size, dtype=dtype, host=host,
                                            timeout=timeout)
            self.address = self.collective.address
        else:
            client = ParameterServerClient if staleness is None else AsyncParameterServerClient
            self.collective = client(group, rank=rank, world_size=world_size, dtype=dtype, timeout=timeout)
            self.address = ""
        self.reducer: GradientReducer | AsyncGradientReducer | None = None

    def join(self) -> dict[int, dict]:
        """Returns ``{rank: member}``; ``rank`` and ``world_size`` are then the group's as it started
        (fewer workers than planned when the group accepts that)."""
        identity = shared_memory.memory_identity() if shared_memory.usable() else None
        members = self.rendezvous.join(self.address, transport=self.transport, shared_memory=identity)
        self.rank = self.collective.rank = self.rendezvous.rank
        self.world_size = self.collective.world_size = self.rendezvous.world_size
        if self.strategy == "allreduce" and shares_memory(members):
            ring, self.collective = self.collective, shared_memory.SharedMemoryAllReduce(
                self.group, rank=self.rank, world_size=self.world_size, dtype=self.dtype, timeout=self.timeout)
            ring.close()  # no peer will call its server
        self.collective.connect(self.rendezvous)
        return members


    def make_reducer(self, params: dict, *, on_stop, order: list[str] | None = None,
                     **options) -> GradientReducer | AsyncGradientReducer:
        """The trainer's ``reduce_gradients``; ``order``: the model's ``gradient_order()`` (the
        all-reduce then sends the gradients of each bucket while backward goes on; the synchronous
        parameter server takes one buffer a step); ``options``: ``GradientReducer``'s (``overlap``,
        ``bucket_bytes``)."""
        if self.staleness is None:
            if self.strategy == "ps":  # the server counts one push a step (its status, its staleness)
                options = {**options, "bucket_bytes": None}
            self.reducer = GradientReducer(self.collective, params, on_stop=on_stop, order=order, **options)
        else:
            self.reducer = AsyncGradientReducer(self.collective, params, on_stop=on_stop, rank=self.rank)
        return self.reducer

    @property
    def bytes_sent(self) -> int:
        return self.collective.counter.payload

    def finish(self, state: str = "done") -> None:
        """Leave normally (``state``: how this worker finished) and release the port and channels."""
        try:
            self.rendezvous.leave(state)
        finally:
            self._close()

    def abort(self, reason: str) -> None:
        """Stop the whole group with ``reason`` and release everything."""
        try:
            self.rendezvous.abort(reason)
            self.rendezvous.leave()
        finally:
            self._close()

    def _close(self) -> None:
        if isinstance(self.reducer, GradientReducer):
            self.reducer.close()
        self.collective.close()


def serve_parameters(redis_url: str, group: str, *, world_size: int, dtype: str, host: str = "127.0.0.1",
                     timeout: float = transport.DEFAULT_TIMEOUT_SECONDS,
                     rendezvous_timeout: float | None = None, min_world_size: int | None = None,
                     staleness: int | None = None, optimizer: dict | str | None = None,
                     on_serving=None) -> ParameterServer:
    """Run the group's parameter server until every worker left (returns the server, closed, with
    ``final_state``: the state worker rank 0 left in) or the group failed (raises
    ``DistributedError``); ``on_serving(server)`` is called once the group is complete."""
    server = ParameterServer(group, world_size=world_size, dtype=dtype, host=host, timeout=timeout,
                             staleness=staleness, optimizer=optimizer)
    rendezvous = Rendezvous(redis_url, group, rank=SERVER_RANK, world_size=world_size, with_server=True,
                            timeout=rendezvous_timeout, min_world_size=min_world_size)
    try:
        rendezvous.join(server.address)
        server.world_size = rendezvous.world_size
        server.connect(rendezvous)
        if on_serving is not None:
            on_serving(server)
        server.serve_until_done()
        server.final_state = rendezvous.final_state(rendezvous.worker_slots[0])
        log.info("parameter server of group %s: every worker left after %d steps", group,
                 server.collectives_completed)
    finally:
        # A failed server is not "left": leave() marks it so, but the group is aborted by then.
        rendezvous.leave()
        server.close()
    return server
