"""The collectives between real processes, through shared memory (workers on one machine) and over
real gRPC channels (forced, as between machines): all-reduce sums exactly what every worker gave,
leaves identical bytes everywhere and sends the optimal 2 (N - 1) / N of the buffer; the rendezvous
is all-or-nothing within its timeout; a peer that is killed or stops answering is noticed within
seconds, never waited on forever, and leaves nothing behind in shared memory."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy
import pytest

from tests.distributed.conftest import logs_of, new_group, start_process, wait_all
from tests.distributed.rank_process import contribution
from tests.platform.harness import wait_until
from workers.distributed.errors import RendezvousError
from workers.distributed.rendezvous import Rendezvous
from workers.distributed.shared_memory import SHARED_MEMORY_DIRECTORY, SLOT_BYTES

pytestmark = pytest.mark.xdist_group("distributed")

DETECTION_BOUND_SECONDS = 10.0
COLLECTIVES = {"auto": "SharedMemoryAllReduce", "grpc": "RingAllReduce"}


def chunk_sizes(size: int, world_size: int) -> list[int]:
    base, extra = divmod(size, world_size)
    return [base + (chunk < extra) for chunk in range(world_size)]


def ring_bytes(size: int, world_size: int, rank: int) -> int:
    """Reduce-scatter sends every chunk but (r + 1), all-gather every chunk but (r + 2)."""
    chunks = chunk_sizes(size, world_size)
    return 2 * size - chunks[(rank + 1) % world_size] - chunks[(rank + 2) % world_size]


def shared_memory_bytes(size: int, world_size: int, rank: int, dtype_size: int) -> int:
    """Per slot-sized piece: the other workers' chunks of this worker's contribution, then its
    own chunk's sum, written for each of the others."""
    piece_elements, total = SLOT_BYTES // dtype_size, 0
    for begin in range(0, size, piece_elements):
        length = min(piece_elements, size - begin)
        own = chunk_sizes(length, world_size)[rank]
        total += (length - own) + (world_size - 1) * own
    return total


@pytest.mark.parametrize("transport", ["auto", "grpc"])
def test_all_reduce_sums_every_worker_buffer_identically_with_optimal_bytes(redis_url, tmp_path, transport):
    # shorter than the group, uneven chunks, several gRPC messages, several shared-memory slots
    world_size, sizes = 3, [1, 2, 7, 1_000_003, 2_500_001]
    base = {"redis_url": redis_url, "group": new_group(), "world_size": world_size, "dtype": "float32",
            "out": str(tmp_path), "role": "allreduce", "sizes": sizes, "transport": transport}
    processes = [start_process({**base, "rank": rank}, log_dir=tmp_path) for rank in range(world_size)]
    assert wait_all(processes, timeout=120, log_dir=tmp_path) == [0] * world_size, logs_of(tmp_path)

    results = [dict(numpy.load(tmp_path / f"rank{rank}.npz")) for rank in range(world_size)]
    assert [str(result["collective"]) for result in results] == [COLLECTIVES[transport]] * world_size
    for index, size in enumerate(sizes):
        inputs = [contribution(rank, index, size, "float32") for rank in range(world_size)]
        expected = numpy.sum(numpy.stack(inputs).astype(numpy.float64), axis=0)
        for rank in range(world_size):
            reduced = results[rank][f"sum{index}"]
            assert reduced.dtype == numpy.float32
            numpy.testing.assert_allclose(reduced, expected, rtol=1e-5, atol=1e-5)
            assert reduced.tobytes() == results[0][f"sum{index}"].tobytes()
            sent = ring_bytes(size, world_size, rank) if transport == "grpc" else shared_memory_bytes(
                size, world_size, rank, 4)
            assert int(results[rank][f"bytes{index}"]) == sent * 4
        if size > 1000:
            optimum = 2 * (world_size - 1) / world_size * size * 4
            for rank in range(world_size):
                assert abs(int(results[rank][f"bytes{index}"]) / optimum - 1) < 0.01
    assert not list(SHARED_MEMORY_DIRECTORY.glob(f"netforge-{base['group']}-*"))


def test_a_group_whose_workers_disagree_on_the_transport_all_use_grpc(redis_url, tmp_path):
    """One worker forced to gRPC (its NETFORGE_DISTRIBUTED_TRANSPORT) takes the whole group there:
    every worker decides from what all of them said in the rendezvous."""
    base = {"redis_url": redis_url, "group": new_group(), "world_size": 2, "dtype": "float64",
            "out": str(tmp_path), "role": "allreduce", "sizes": [1001]}
    processes = [start_process({**base, "rank": 0, "transport": "grpc"}, log_dir=tmp_path),
                 start_process({**base, "rank": 1, "transport": "auto"}, log_dir=tmp_path)]
    assert wait_all(processes, timeout=60, log_dir=tmp_path) == [0, 0], logs_of(tmp_path)
    results = [numpy.load(tmp_path / f"rank{rank}.npz") for rank in range(2)]
    assert [str(result["collective"]) for result in results] == ["RingAllReduce"] * 2
    expected = contribution(0, 0, 1001, "float64") + contribution(1, 0, 1001, "float64")
    numpy.testing.assert_array_equal(results[0]["sum0"], expected)
    numpy.testing.assert_array_equal(results[1]["sum0"], expected)


def test_a_group_that_accepts_fewer_workers_starts_with_those_that_came_and_turns_late_ones_away(redis_url, tmp_path):
    """As a run that resumes does: 3 planned, slots 0 and 2 come; after the rendezvous timeout
    they train as ranks 0 and 1 of 2, and slot 1, coming later, is told the group left without it."""
    base = {"redis_url": redis_url, "group": new_group(), "world_size": 3, "dtype": "float64", "out": str(tmp_path),
            "role": "allreduce", "sizes": [1001], "min_world_size": 1, "rendezvous_timeout": 2}
    early = [start_process({**base, "rank": slot}, log_dir=tmp_path) for slot in (0, 2)]
    assert wait_all(early, timeout=60, log_dir=tmp_path) == [0, 0], logs_of(tmp_path)
    late = start_process({**base, "rank": 1}, log_dir=tmp_path)
    assert wait_all([late], timeout=60, log_dir=tmp_path) == [4], logs_of(tmp_path)

    expected = contribution(0, 0, 1001, "float64") + contribution(2, 0, 1001, "float64")
    for slot, rank in ((0, 0), (2, 1)):
        result = numpy.load(tmp_path / f"rank{slot}.npz")
        assert int(result["group_rank"]) == rank and int(result["world_size"]) == 2
        numpy.testing.assert_allclose(result["sum0"], expected, rtol=1e-12)
    error = json.loads((tmp_path / "rank1-error.json").read_text())
    assert error["type"] == "LateForRendezvous"
    assert "the group started without worker rank 1" in error["message"]


def test_rendezvous_fails_naming_the_missing_workers_within_its_timeout(redis_url):
    rendezvous = Rendezvous(redis_url, new_group(), rank=0, world_size=3, with_server=True, timeout=1.5)
    began = time.monotonic()
    with pytest.raises(RendezvousError) as raised:
        rendezvous.join("127.0.0.1:1")
    assert time.monotonic() - began < 5
    message = str(raised.value)
    assert "only 1 of 4 processes joined within 2 s" in message
    assert "parameter server, worker rank 1, worker rank 2" in message
    # a late member is turned away with the same reason instead of waiting again (whichever member
    # reports the failure, the run records the cause)
    late = Rendezvous(redis_url, rendezvous.group, rank=1, world_size=3, with_server=True, timeout=30)
    with pytest.raises(RendezvousError) as turned_away:
        late.join("127.0.0.1:2")
    assert str(turned_away.value) == message
    rendezvous.leave()
    late.leave()


@pytest.mark.parametrize("transport", ["auto", "grpc"])
@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_a_peer_that_dies_or_stops_answering_mid_collective_is_detected_within_seconds(redis_url, tmp_path, fault,
                                                                                      transport):
    """Rank 1 joins and then never sends; it is killed (SIGKILL) or frozen (SIGSTOP) while rank 0
    waits in an all-reduce whose timeout (60 s) is far longer than the detection. Shared memory:
    the group's files are gone from the moment both workers mapped them, killed or not."""
    group = new_group()
    base = {"redis_url": redis_url, "group": group, "world_size": 2, "dtype": "float64",
            "out": str(tmp_path), "sizes": [1000], "timeout": 60, "transport": transport}
    waiting = start_process({**base, "role": "allreduce", "rank": 0}, log_dir=tmp_path)
    silent = start_process({**base, "role": "idle", "rank": 1}, log_dir=tmp_path)
    try:
        wait_until(lambda: "all 2 processes joined" in (tmp_path / "rank0.log").read_text(), timeout=60,
                   what="the rendezvous", interval=0.1)
        time.sleep(1.0)  # rank 0 is inside the all-reduce now
        assert not list(SHARED_MEMORY_DIRECTORY.glob(f"netforge-{group}-*"))
        os.kill(silent.pid, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
        faulted_at = time.monotonic()
        assert wait_all([waiting], timeout=30, log_dir=tmp_path) == [3], logs_of(tmp_path)
        detected_after = time.monotonic() - faulted_at
    finally:
        silent.kill()
        silent.wait(timeout=10)
    error = json.loads((tmp_path / "rank0-error.json").read_text())
    assert error["type"] == "PeerFailure"
    assert "worker rank 1 (" in error["message"] and "stopped answering" in error["message"]
    assert detected_after < DETECTION_BOUND_SECONDS
    assert waiting.poll() is not None and silent.poll() is not None
    assert not list(SHARED_MEMORY_DIRECTORY.glob(f"netforge-{group}-*"))


@pytest.mark.parametrize("transport", ["auto", "grpc"])
def test_a_collective_whose_peer_is_alive_but_silent_times_out(redis_url, tmp_path, transport):
    base = {"redis_url": redis_url, "group": new_group(), "world_size": 2, "dtype": "float64",
            "out": str(tmp_path), "sizes": [10], "timeout": 2, "transport": transport}
    waiting = start_process({**base, "role": "allreduce", "rank": 0}, log_dir=tmp_path)
    silent = start_process({**base, "role": "idle", "rank": 1}, log_dir=tmp_path)
    try:
        assert wait_all([waiting], timeout=60, log_dir=tmp_path) == [3], logs_of(tmp_path)
    finally:
        silent.kill()
        silent.wait(timeout=10)
    error = json.loads((tmp_path / "rank0-error.json").read_text())
    assert error["type"] == "CollectiveTimeout", error
    assert "from worker rank 1 did not arrive within 2 s" in error["message"]


@pytest.mark.parametrize("transport", ["auto", "grpc"])
def test_a_worker_waiting_for_a_peer_that_finished_early_fails_instead_of_waiting(redis_url, tmp_path, transport):
    base = {"redis_url": redis_url, "group": new_group(), "world_size": 2, "dtype": "float64",
            "out": str(tmp_path), "sizes": [10], "timeout": 60, "transport": transport}
    waiting = start_process({**base, "role": "allreduce", "rank": 0}, log_dir=tmp_path)
    leaving = start_process({**base, "role": "leave", "rank": 1}, log_dir=tmp_path)
    try:
        assert wait_all([waiting], timeout=60, log_dir=tmp_path) == [3], logs_of(tmp_path)
    finally:
        leaving.kill()
        leaving.wait(timeout=10)
    error = json.loads((tmp_path / "rank0-error.json").read_text())
    assert error["type"] == "PeerFailure"
    assert "worker rank 1 finished 3 s before this worker" in error["message"]
    assert error["seconds"] < DETECTION_BOUND_SECONDS
