"""Rendezvous and liveness of a distributed run's processes, through Redis.

A group (one attempt of one run; its name is unique per attempt) has ``world_size`` workers of
ranks ``0 .. world_size - 1`` and, for the parameter-server strategy, one server (rank -1). Keys,
all under ``netforge:distributed:<group>:`` and expiring a day after the group's start:

- ``created``: when the first member joined (Redis time); every member's deadline counts from it,
  so a member that started late does not wait longer than the others;
- ``members``: hash rank -> JSON {address, host, pid, ...} (the rank registry; the caller adds what
  its collectives need to agree on, e.g. ``workers.distributed.worker``'s transport);
- ``alive:<rank>``: a key each member refreshes every ``HEARTBEAT_SECONDS`` with a time to live of
  ``LIVENESS_SECONDS``: a member killed (``kill -9``) or stopped (``SIGSTOP``) loses its key;
- ``left:<rank>``: set by a member that finished normally (it is not a failure that its key goes),
  to the state it finished in (``final_state``: a parameter server tells how its group's run ended);
- ``aborted``: the first reason any member gave for stopping the group; every member sees it.

``join`` returns the registry once every member is there, or raises ``RendezvousError`` naming
the missing ranks after the timeout (default ``RENDEZVOUS_SECONDS``): all start or none trains.
A group may instead accept fewer workers (``min_world_size``, for a run that restarts with the
workers it can gather): at the timeout, if at least that many workers (and the server) are there,
the first member to see it closes the group (``closed``: the slots it holds, in order); every
member then takes its rank among them and the world size is their count, and a worker that comes
later is turned away. Keys name a member by its *slot* (the rank it was started as); ``rank`` is
its place in the group as it started.
Then a monitor thread beats this member's key and checks every other member's every
``HEARTBEAT_SECONDS``; ``failure`` is the reason once one is gone (or the group was aborted), which
collectives check while they wait, so a dead peer is noticed within ``LIVENESS_SECONDS +
HEARTBEAT_SECONDS`` (3.5 s by default), far sooner than any collective timeout.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import redis

from workers.distributed.errors import LateForRendezvous, PeerFailure, RendezvousError

log = logging.getLogger(__name__)

RENDEZVOUS_SECONDS = float(os.environ.get("NETFORGE_DISTRIBUTED_RENDEZVOUS_SECONDS", "60"))
HEARTBEAT_SECONDS = 0.5
# A member whose key is this old is taken for dead or stopped (a busy machine may want more).
LIVENESS_SECONDS = float(os.environ.get("NETFORGE_DISTRIBUTED_LIVENESS_SECONDS", "3"))
KEY_LIFETIME_SECONDS = 24 * 3600
SERVER_RANK = -1


def member_name(rank: int) -> str:
    return "parameter server" if rank == SERVER_RANK else f"worker rank {rank}"


class Rendezvous:
    """One member's view of its group; see the module docstring."""

    def __init__(self, redis_url: str, group: str, *, rank: int, world_size: int, with_server: bool = False,
                 timeout: float | None = None, min_world_size: int | None = None, in_step: bool = False):
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.group, self.rank, self.world_size, self.with_server = group, rank, world_size, with_server
        self.slot, self.planned_world_size = rank, world_size
        self.min_world_size = world_size if min_world_size is None else max(1, min(min_world_size, world_size))
        self.worker_slots = list(range(world_size))  # the slots of the group's workers, by rank
        self.timeout = RENDEZVOUS_SECONDS if timeout is None else timeout
        # Workers of a synchronous group take the same steps: one that left before this one is done
        # can never send its part again, so waiting for it is a failure (of this member alone).
        self.in_step = in_step
        self.prefix = f"netforge:distributed:{group}:"
        self.members: dict[int, dict] = {}
        self.failure: str | None = None  # why the group cannot go on (set by the monitor)
        self.failed_rank: int | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._failure_callbacks: list = []
        self._failure_lock = threading.Lock()

    @property
    def ranks(self) -> list[int]:
        """The slots of every planned member."""
        return ([SERVER_RANK] if self.with_server else []) + list(range(self.planned_world_size))

    def _slots_of_group(self) -> list[int]:
        return ([SERVER_RANK] if self.with_server else []) + self.worker_slots

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- joining ------------------------------------------------------------------------------
    def join(self, address: str, **details) -> dict[int, dict]:
        """Register this member's address (and ``details``, e.g. the transports it accepts), wait for
        all, and start the monitor; returns ``{rank: {"address", "host", "pid", **details}}``."""
        now = self._redis_time()
        pipe = self.client.pipeline()
        pipe.set(self.key("created"), now, nx=True, ex=KEY_LIFETIME_SECONDS)
        pipe.hset(self.key("members"), str(self.slot),
                  json.dumps({"address": address, "host": socket.gethostname(), "pid": os.getpid(), **details}))
        pipe.expire(self.key("members"), KEY_LIFETIME_SECONDS)
        pipe.set(self.key(f"alive:{self.slot}"), 1, px=int(LIVENESS_SECONDS * 1000))
        pipe.execute()
        created = float(self.client.get(self.key("created")) or now)
        deadline = created + self.timeout
        while True:
            registry = {int(slot): json.loads(value)
                        for slot, value in self.client.hgetall(self.key("members")).items()}
            self.client.set(self.key(f"alive:{self.slot}"), 1, px=int(LIVENESS_SECONDS * 1000))
            aborted, closed = self.client.mget(self.key("aborted"), self.key("closed"))
            if aborted:  # another member gave up on the group: its reason, whichever member reports it
                raise RendezvousError(aborted.decode())
            if closed:
                return self._start(registry, json.loads(closed))
            missing = [slot for slot in self.ranks if slot not in registry]
            if not missing:
                return self._start(registry, list(range(self.planned_world_size)))
            if self._redis_time() > deadline:
                present = sorted(slot for slot in registry if slot >= 0)
                server_there = not self.with_server or SERVER_RANK in registry
                if server_there and len(present) >= self.min_world_size:
                    self.client.set(self.key("closed"), json.dumps(present), nx=True, ex=KEY_LIFETIME_SECONDS)
                    continue  # the first closer's list holds for everyone
                reason = (f"only {len(self.ranks) - len(missing)} of {len(self.ranks)} processes joined within "
                          f"{self.timeout:.0f} s (missing: {', '.join(member_name(r) for r in missing)}); "
                          "are enough Celery worker slots (--concurrency) free on the run's queue?")
                self.abort(reason)
                raise RendezvousError(reason)
            time.sleep(0.05)

    def _start(self, registry: dict[int, dict], worker_slots: list[int]) -> dict[int, dict]:
        """Take this member's rank in the group of ``worker_slots`` and start the monitor."""
        if self.slot != SERVER_RANK and self.slot not in worker_slots:
            raise LateForRendezvous(f"the group started without {member_name(self.slot)}: it joined after the "
                                  f"rendezvous closed with {len(worker_slots)} worker(s)")
        self.worker_slots = worker_slots
        self.world_size = len(worker_slots)
        self.rank = SERVER_RANK if self.slot == SERVER_RANK else worker_slots.index(self.slot)
        self.members = {rank: registry[slot] for rank, slot in enumerate(worker_slots)}
        if self.with_server:
            self.members[SERVER_RANK] = registry[SERVER_RANK]
        self._monitor = threading.Thread(target=self._watch, name=f"rendezvous-{self.group}-{self.slot}", daemon=True)
        self._monitor.start()
        if self.world_size == self.planned_world_size:
            log.info("%s of group %s: all %d processes joined", member_name(self.rank), self.group, len(self.ranks))
        else:
            log.warning("%s of group %s: %d of %d workers joined within %.0f s; training with %d",
                        member_name(self.rank), self.group, self.world_size, self.planned_world_size, self.timeout,
                        self.world_size)
        return self.members

    def _redis_time(self) -> float:
        seconds, microseconds = self.client.time()
        return seconds + microseconds / 1e6

    # -- shared values (rank 0 tells the others how to start) ---------------------------------
    def publish(self, name: str, value: dict) -> None:
        self.client.set(self.key(f"value:{name}"), json.dumps(value), ex=KEY_LIFETIME_SECONDS)

    def wait_for(self, name: str, *, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            raw = self.client.get(self.key(f"value:{name}"))
            if raw is not None:
                return json.loads(raw)
            self.check()
            if time.monotonic() > deadline:
                raise PeerFailure(f"worker rank 0 did not say how to start ('{name}') within {timeout:.0f} s", rank=0)
            time.sleep(0.05)

    # -- liveness -------------------------------------------------------------------------------
    def on_failure(self, callback) -> None:
        """Call ``callback()`` once the group fails (at once if it already has): a blocking call
        (a gRPC stream) registers its cancel here, so it returns as soon as a peer is seen failing."""
        with self._failure_lock:
            if self.failure is None:
                self._failure_callbacks.append(callback)
                return
        callback()

    def remove_failure_callback(self, callback) -> None:
        with self._failure_lock:
            if callback in self._failure_callbacks:
                self._failure_callbacks.remove(callback)

    def _fail(self, reason: str, rank: int | None = None) -> None:
        with self._failure_lock:
            if self.failure is not None:
                return
            self.failure, self.failed_rank = reason, rank
            callbacks, self._failure_callbacks = self._failure_callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one callback must not keep the others from running
                log.exception("group %s: a failure callback failed", self.group)

    def check(self) -> None:
        """Raise ``PeerFailure`` if the group cannot go on."""
        if self.failure is not None:
            raise PeerFailure(self.failure, rank=self.failed_rank)

    def abort(self, reason: str) -> None:
        """Stop the whole group (every member's next check raises); the first reason is kept."""
        try:
            self.client.set(self.key("aborted"), reason, nx=True, ex=KEY_LIFETIME_SECONDS)
        except redis.RedisError as error:
            log.warning("group %s: could not record the abort (%s)", self.group, error)
        self._fail(reason)

    def report_failed(self, rank: int, reason: str) -> None:
        """A peer seen failing by a collective (its channel broke): stop the group with the reason."""
        self._fail(reason, rank)
        self.abort(reason)

    def leave(self, state: str = "done") -> None:
        """Finished normally: stop beating, without this looking like a failure to the others;
        ``state`` says how it finished (e.g. "cancelled"), for ``final_state``."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        try:
            pipe = self.client.pipeline()
            pipe.set(self.key(f"left:{self.slot}"), state, ex=KEY_LIFETIME_SECONDS)
            pipe.delete(self.key(f"alive:{self.slot}"))
            pipe.execute()
        except redis.RedisError as error:
            log.warning("group %s: could not record that %s left (%s)", self.group, member_name(self.rank), error)
        finally:
            self.client.close()

    def has_left(self, slot: int) -> bool:
        return self.final_state(slot) is not None

    def final_state(self, slot: int) -> str | None:
        """The state the member of ``slot`` left in; None while it has not left."""
        state = self.client.get(self.key(f"left:{slot}"))
        return state.decode() if state is not None else None

    def _watch(self) -> None:
        slots = self._slots_of_group()
        others = [(slot, SERVER_RANK if slot == SERVER_RANK else self.worker_slots.index(slot))
                  for slot in slots if slot != self.slot]
        left_since: dict[int, float] = {}
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                pipe = self.client.pipeline()
                pipe.set(self.key(f"alive:{self.slot}"), 1, px=int(LIVENESS_SECONDS * 1000))
                pipe.get(self.key("aborted"))
                for slot, _ in others:
                    pipe.exists(self.key(f"alive:{slot}"))
                    pipe.exists(self.key(f"left:{slot}"))
                answers = pipe.execute()
            except redis.RedisError as error:
                log.warning("group %s: liveness check failed (%s); retrying", self.group, error)
                continue
            aborted, states = answers[1], answers[2:]
            if self.failure is not None:
                continue
            if aborted:
                self._fail(aborted.decode())
                continue
            for index, (_, rank) in enumerate(others):
                alive, left = states[2 * index], states[2 * index + 1]
                if left and self.in_step and rank != SERVER_RANK:
                    # Not at once: at the end of a run, a peer may leave a moment before this member
                    # takes the last chunk it already sent.
                    first_seen = left_since.setdefault(rank, time.monotonic())
                    if time.monotonic() - first_seen > LIVENESS_SECONDS:
                        self._fail(f"{member_name(rank)} finished {LIVENESS_SECONDS:.0f} s before this worker: the "
                                   "workers of a synchronous group must take the same number of steps", rank)
                        break
                if not alive and not left:
                    member = self.members.get(rank, {})
                    reason = (f"{member_name(rank)} ({member.get('host', '?')}:{member.get('pid', '?')}) stopped "
                              f"answering: no heartbeat for {LIVENESS_SECONDS:.0f} s")
                    log.warning("group %s: %s", self.group, reason)
                    self._fail(reason, rank)
                    self.abort(reason)
                    break
