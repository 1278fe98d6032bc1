"""All-reduce through shared memory, for a group whose workers all run on one machine.

Each worker maps one file of its own under ``/dev/shm`` (a control word and a slot of
``SLOT_BYTES``) and every other worker's. A buffer longer than a slot goes through in pieces; for
each piece, with chunks cut as the ring cuts them (``numpy.array_split`` bounds), worker ``r``:

1. copies the other chunks of its piece (those the others sum) into its slot, then waits at a
   barrier;
2. adds chunk ``r`` of every other slot to chunk ``r`` of its own buffer and writes that sum into
   chunk ``r`` of every other slot, then waits at a barrier;
3. copies the other chunks, which their owners have summed into its slot, into its buffer.

As in the ring, each chunk is summed once, by its owner, and copied byte for byte to the others,
so every worker ends with the identical buffer; what a worker writes for the others to read is
``2 (N - 1) / N`` times the buffer (its contribution to their chunks, and its sum to their slots).
Two barriers a piece keep every slot's readers and writers apart: after step 2's barrier a worker's
slot is its own again. Nothing crosses the machine's network.

The barrier is a counter per worker in its control word, set after the piece's data was written
and read by the others until every counter reached the barrier's number; x86-64 keeps stores in
program order, so a worker that sees the counter sees the data (``usable`` says no elsewhere, and
the group then exchanges over gRPC). A waiting worker spins briefly (a barrier usually opens within
microseconds; not when the workers outnumber the cores), then sleeps in growing slices; every
``transport.WAIT_SLICE_SECONDS`` it looks at the group's liveness and at its peers' processes (a
killed peer is seen at once), and gives up after the collective timeout, as the gRPC collectives do.

Files are removed as soon as every worker has mapped every file (the mappings stay valid), so a
worker killed later leaves nothing in ``/dev/shm``; a worker that fails before that removes every
file of its group it can (``close``).
"""

from __future__ import annotations

import dataclasses
import logging
import mmap
import os
import platform
import re
import socket
import time
from pathlib import Path

import numpy

from workers.distributed import transport
from workers.distributed.errors import CollectiveTimeout, DistributedError, PeerFailure
from workers.distributed.rendezvous import Rendezvous, member_name

log = logging.getLogger(__name__)

SHARED_MEMORY_DIRECTORY = Path("/dev/shm")
SLOT_BYTES = 4 * 1024 * 1024  # a piece of the buffer; N of them per group must fit /dev/shm
CONTROL_BYTES = 64  # the barrier counter, alone on its cache line
SPIN_SECONDS = 0.002  # a barrier usually opens within microseconds; past this, sleep
LONGEST_SLEEP_SECONDS = 0.0005
# Stores are seen in program order here (total store order); elsewhere a counter could be seen
# before the data it announces, so those machines exchange over gRPC.
ORDERED_STORE_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686"})


def usable() -> bool:
    """Whether this machine can exchange through shared memory (see the module docstring)."""
    return platform.machine().lower() in ORDERED_STORE_MACHINES and memory_identity() is not None


def memory_identity() -> str | None:
    """Equal for two processes exactly when they see the same ``/dev/shm``: the kernel's boot id
    (another machine has another) and the device of the mount (two containers on one machine, even
    with the host's name and network, have a ``/dev/shm`` each). None where there is none."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        device = os.stat(SHARED_MEMORY_DIRECTORY).st_dev
    except OSError:
        return None
    return f"{boot}/{device}"


def segment_path(group: str, slot: int) -> Path:
    """The file of the worker started as ``slot`` in ``group`` (a group name is unique per attempt)."""
    return SHARED_MEMORY_DIRECTORY / f"netforge-{re.sub(r'[^A-Za-z0-9_.-]', '_', group)}-{slot}"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def process_is_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs on this machine (exited, or killed and not yet reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    except OSError:  # no /proc: only the heartbeat tells
        return False
    return state in ("Z", "X")


@dataclasses.dataclass
class _Segment:
    """One worker's mapped file: its barrier counter and its slot."""

    memory: mmap.mmap
    counter: memoryview  # one signed 64-bit integer
    slot: numpy.ndarray  # SLOT_BYTES, viewed in the group's dtype


class SharedMemoryAllReduce:
    """One worker's side; ``connect`` maps the group's files once the rendezvous has every member
    (all on this machine); ``all_reduce(buffer)`` sums the buffers of all workers in place."""

    def __init__(self, group: str, *, rank: int, world_size: int, dtype,
                 timeout: float = transport.DEFAULT_TIMEOUT_SECONDS, slot_bytes: int = SLOT_BYTES):
        self.group, self.rank, self.world_size = group, rank, world_size
        self.dtype = numpy.dtype(dtype)
        self.timeout = timeout
        self.slot_elements = max(1, slot_bytes // self.dtype.itemsize)
        self.counter = transport.ByteCounter()  # what this worker wrote for the others to read
        self.collectives = 0
        self._barriers = 0
        self._rendezvous: Rendezvous | None = None
        self._segments: list[_Segment] = []
        self._paths: list[Path] = []
        self._peers: list[tuple[int, int]] = []  # (rank, pid) of the other workers
        self._last_check = 0.0
        self._spin_seconds = SPIN_SECONDS

    # -- joining --------------------------------------------------------------------------------
    def connect(self, rendezvous: Rendezvous) -> None:
        """Create this worker's file, map every worker's, and remove the files once all mapped."""
        self._rendezvous = rendezvous
        self.rank, self.world_size = rendezvous.rank, rendezvous.world_size
        self._paths = [segment_path(self.group, slot) for slot in rendezvous.worker_slots]
        self._peers = [(rank, int(member.get("pid", 0))) for rank, member in rendezvous.members.items()
                       if rank != self.rank and rank >= 0]
        # More workers than cores: a spinning worker would hold the core its peer needs to arrive.
        self._spin_seconds = SPIN_SECONDS if self.world_size <= _usable_cores() else 0.0
        size = CONTROL_BYTES + self.slot_elements * self.dtype.itemsize
        own = self._paths[self.rank]
        self._create(own, size)
        deadline = time.monotonic() + self.timeout
        for rank, path in enumerate(self._paths):
            self._segments.append(self._map(rank, path, size, deadline))
        self._barrier("mapping the group's shared memory")
        own.unlink(missing_ok=True)
        log.info("worker rank %d of group %s: all-reduce through shared memory (%d workers on %s)",
                 self.rank, self.group, self.world_size, socket.gethostname())

    def _create(self, path: Path, size: int) -> None:
        path.unlink(missing_ok=True)  # a file of the same attempt is a leftover of this very worker
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            try:
                os.posix_fallocate(descriptor, 0, size)  # no space is an error here, not a SIGBUS later
            except OSError as error:
                path.unlink(missing_ok=True)
                raise DistributedError(
                    f"worker rank {self.rank} could not reserve {size * self.world_size / 1e6:.0f} MB of shared memory "
                    f"in {SHARED_MEMORY_DIRECTORY} ({error.strerror}); give the machine or container more "
                    "(docker --shm-size) or set NETFORGE_DISTRIBUTED_TRANSPORT=grpc") from None
        finally:
            os.close(descriptor)

    def _map(self, rank: int, path: Path, size: int, deadline: float) -> _Segment:
        while True:
            try:
                descriptor = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                descriptor = None
            if descriptor is not None:
                try:
                    if os.fstat(descriptor).st_size >= size:
                        memory = mmap.mmap(descriptor, size)
                        break
                finally:
                    os.close(descriptor)
            self._look_at_peers(f"shared memory of worker rank {rank}", deadline)
            time.sleep(0.001)
        counter = memoryview(memory)[:8].cast("q")
        slot = numpy.frombuffer(memory, dtype=self.dtype, count=self.slot_elements, offset=CONTROL_BYTES)
        return _Segment(memory, counter, slot)

    # -- the collective ---------------------------------------------------------------------------
    def all_reduce(self, buffer: numpy.ndarray) -> numpy.ndarray:
        """Replace ``buffer`` (flat, this group's dtype) by the element-wise sum over all workers."""
        if buffer.dtype != self.dtype or buffer.ndim != 1:
            raise ValueError(f"all_reduce takes a flat {self.dtype} buffer, got {buffer.dtype} of shape {buffer.shape}")
        self.collectives += 1
        if self.world_size == 1:
            return buffer
        for begin in range(0, max(len(buffer), 1), self.slot_elements):
            self._reduce_piece(buffer[begin:begin + self.slot_elements])
        return buffer

    def _reduce_piece(self, piece: numpy.ndarray) -> None:
        n, r, length = self.world_size, self.rank, len(piece)
        slots = [segment.slot[:length] for segment in self._segments]
        base, extra = divmod(length, n)
        bounds = [chunk * base + min(chunk, extra) for chunk in range(n + 1)]
        begin, end = bounds[r], bounds[r + 1]
        own = slice(begin, end)
        # Only the chunks that others sum go through the slot; this worker reads its own from the piece.
        slots[r][:begin] = piece[:begin]
        slots[r][end:] = piece[end:]
        self._barrier(f"the contributions to all-reduce {self.collectives}")
        for step in range(1, n):  # in ring order from this worker: the same order for every piece
            numpy.add(piece[own], slots[(r + step) % n][own], out=piece[own])
        for other in range(n):
            if other != r:
                slots[other][own] = piece[own]
        self._barrier(f"the sums of all-reduce {self.collectives}")
        piece[:begin] = slots[r][:begin]
        piece[end:] = slots[r][end:]
        owned = end - begin
        self.counter.payload += ((length - owned) + (n - 1) * owned) * self.dtype.itemsize
        self.counter.messages += 1

    def _barrier(self, what: str) -> None:
        """Until every worker has come this far (see the module docstring)."""
        self._barriers += 1
        number = self._barriers
        self._segments[self.rank].counter[0] = number
        others = [segment.counter for rank, segment in enumerate(self._segments) if rank != self.rank]
        began = time.monotonic()
        deadline = began + self.timeout
        sleep = 0.00002
        while True:
            if all(counter[0] >= number for counter in others):
                return
            now = time.monotonic()
            if now - began < self._spin_seconds:
                os.sched_yield()  # a worker sharing this core gets it meanwhile
                continue
            self._look_at_peers(what, deadline, now=now)
            time.sleep(sleep)
            sleep = min(sleep * 2, LONGEST_SLEEP_SECONDS)

    def _look_at_peers(self, what: str, deadline: float, *, now: float | None = None) -> None:
        """Raise when the group failed, a peer's process is gone, or ``deadline`` passed (looked
        at every ``transport.WAIT_SLICE_SECONDS``)."""
        now = time.monotonic() if now is None else now
        if now - self._last_check < transport.WAIT_SLICE_SECONDS and now <= deadline:
            return
        self._last_check = now
        if self._rendezvous is not None:
            self._rendezvous.check()
            for rank, pid in self._peers:
                if pid and process_is_gone(pid):
                    member = self._rendezvous.members.get(rank, {})
                    reason = (f"{member_name(rank)} ({member.get('host', '?')}:{pid}) stopped answering: its "
                              "process is gone")
                    self._rendezvous.report_failed(rank, reason)
                    raise PeerFailure(reason, rank=rank)
        if now > deadline:
            waiting = [rank for rank, segment in enumerate(self._segments)
                       if rank != self.rank and segment.counter[0] < self._barriers]
            who = ", ".join(member_name(rank) for rank in waiting) or "the other workers"
            raise CollectiveTimeout(f"{what} from {who} did not arrive within {self.timeout:.0f} s")

    def close(self) -> None:
        """Unmap, and remove what is left of the group's files (only there when it failed early)."""
        for path in self._paths:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                log.warning("group %s: could not remove %s (%s)", self.group, path, error)
        segments, self._segments = self._segments, []
        for segment in segments:
            segment.counter.release()
            segment.slot = None
            try:
                segment.memory.close()
            except BufferError:  # a caller still holds a view of it; the mapping goes with the process
                pass
