"""Rendezvous and liveness of a distributed run's processes, through Redis.

A group (one attempt of one run; its name is unique per attempt) has ``world_size`` workers of
ranks ``0 .. world_size - 1`` and, for the parameter-server strategy, one server (rank -1). Keys,
all under ``netforge:distributed:<group>:`` and expiring a day after the group's start:

- ``created``: when the first member joined (Redis time); every member's deadline counts from it,
  so a member that started late does not wait longer than the others;
- ``members``: hash rank -> JSON {address, host, pid} (the rank registry);
- ``alive:<rank>``: a key each member refreshes every ``HEARTBEAT_SECONDS`` with a time to live of
  ``LIVENESS_SECONDS``: a member killed (``kill -9``) or stopped (``SIGSTOP``) loses its key;
- ``left:<rank>``: set by a member that finished normally (it is not a failure that its key goes);
- ``aborted``: the first reason any member gave for stopping the group; every member sees it.

``join`` returns the registry once every member is there, or raises ``RendezvousError`` naming
the missing ranks after the timeout (default ``RENDEZVOUS_SECONDS``): all start or none trains.
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

from workers.distributed.errors import PeerFailure, RendezvousError

log = logging.getLogger(__name__)

RENDEZVOUS_SECONDS = float(os.environ.get("NETFORGE_DISTRIBUTED_RENDEZVOUS_SECONDS", "60"))
HEARTBEAT_SECONDS = 0.5
LIVENESS_SECONDS = 3.0
KEY_LIFETIME_SECONDS = 24 * 3600
SERVER_RANK = -1


def member_name(rank: int) -> str:
    return "parameter server" if rank == SERVER_RANK else f"worker rank {rank}"


class Rendezvous:
    """One member's view of its group; see the module docstring."""

    def __init__(self, redis_url: str, group: str, *, rank: int, world_size: int, with_server: bool = False,
                 timeout: float | None = None):
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.group, self.rank, self.world_size, self.with_server = group, rank, world_size, with_server
        self.timeout = RENDEZVOUS_SECONDS if timeout is None else timeout
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
        return ([SERVER_RANK] if self.with_server else []) + list(range(self.world_size))

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- joining ------------------------------------------------------------------------------
    def join(self, address: str) -> dict[int, dict]:
        """Register this member's address, wait for all, and start the monitor; returns
        ``{rank: {"address", "host", "pid"}}``."""
        now = self._redis_time()
        pipe = self.client.pipeline()
        pipe.set(self.key("created"), now, nx=True, ex=KEY_LIFETIME_SECONDS)
        pipe.hset(self.key("members"), str(self.rank),
                  json.dumps({"address": address, "host": socket.gethostname(), "pid": os.getpid()}))
        pipe.expire(self.key("members"), KEY_LIFETIME_SECONDS)
        pipe.set(self.key(f"alive:{self.rank}"), 1, px=int(LIVENESS_SECONDS * 1000))
        pipe.execute()
        created = float(self.client.get(self.key("created")) or now)
        deadline = created + self.timeout
        while True:
            registry = {int(rank): json.loads(value)
                        for rank, value in self.client.hgetall(self.key("members")).items()}
            self.client.set(self.key(f"alive:{self.rank}"), 1, px=int(LIVENESS_SECONDS * 1000))
            aborted = self.client.get(self.key("aborted"))
            if aborted:
                raise RendezvousError(f"the group was stopped before it started: {aborted.decode()}")
            missing = [rank for rank in self.ranks if rank not in registry]
            if not missing:
                break
            if self._redis_time() > deadline:
                reason = (f"only {len(self.ranks) - len(missing)} of {len(self.ranks)} processes joined within "
                          f"{self.timeout:.0f} s (missing: {', '.join(member_name(r) for r in missing)}); "
                          "are enough Celery worker slots (--concurrency) free on the run's queue?")
                self.abort(reason)
                raise RendezvousError(reason)
            time.sleep(0.05)
        self.members = registry
        self._monitor = threading.Thread(target=self._watch, name=f"rendezvous-{self.group}-{self.rank}", daemon=True)
        self._monitor.start()
        log.info("%s of group %s: all %d processes joined", member_name(self.rank), self.group, len(self.ranks))
        return registry

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
            except Exception:  # noqa: BLE001  (one callback must not keep the others from running)
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

    def leave(self) -> None:
        """Finished normally: stop beating, without this looking like a failure to the others."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        try:
            pipe = self.client.pipeline()
            pipe.set(self.key(f"left:{self.rank}"), 1, ex=KEY_LIFETIME_SECONDS)
            pipe.delete(self.key(f"alive:{self.rank}"))
            pipe.execute()
        except redis.RedisError as error:
            log.warning("group %s: could not record that %s left (%s)", self.group, member_name(self.rank), error)
        finally:
            self.client.close()

    def _watch(self) -> None:
        others = [rank for rank in self.ranks if rank != self.rank]
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                pipe = self.client.pipeline()
                pipe.set(self.key(f"alive:{self.rank}"), 1, px=int(LIVENESS_SECONDS * 1000))
                pipe.get(self.key("aborted"))
                for rank in others:
                    pipe.exists(self.key(f"alive:{rank}"))
                    pipe.exists(self.key(f"left:{rank}"))
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
            for index, rank in enumerate(others):
                alive, left = states[2 * index], states[2 * index + 1]
                if not alive and not left:
                    member = self.members.get(rank, {})
                    reason = (f"{member_name(rank)} ({member.get('host', '?')}:{member.get('pid', '?')}) stopped "
                              f"answering: no heartbeat for {LIVENESS_SECONDS:.0f} s")
                    log.warning("group %s: %s", self.group, reason)
                    self._fail(reason, rank)
                    self.abort(reason)
                    break
