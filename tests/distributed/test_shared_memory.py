"""Shared memory between the workers of one machine, apart from the sums (``test_collectives``):
no file is left in ``/dev/shm`` by a group that fails while it connects, the transport setting, and
the cores that the workers of one machine share. Members are threads of this process here, with a
real Redis for the rendezvous."""

from __future__ import annotations

import threading
import time

import numpy
import pytest

from engine import parallel
from tests.distributed.conftest import new_group
from tests.platform.harness import wait_until
from workers.distributed.errors import PeerFailure
from workers.distributed.execution import threads_of_rank
from workers.distributed.rendezvous import Rendezvous
from workers.distributed.shared_memory import SHARED_MEMORY_DIRECTORY, memory_identity, segment_path
from workers.distributed.worker import TRANSPORT_VARIABLE, DataParallelWorker, default_transport, shares_memory

pytestmark = pytest.mark.xdist_group("distributed")


def join_in_threads(workers: list[DataParallelWorker]) -> list[Exception | None]:
    errors: list[Exception | None] = [None] * len(workers)

    def join(index: int) -> None:
        try:
            workers[index].join()
        except Exception as error:  # noqa: BLE001 - handed to the test
            errors[index] = error

    threads = [threading.Thread(target=join, args=(index,)) for index in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_a_group_that_fails_while_connecting_leaves_no_file_in_shared_memory(redis_url):
    """Worker rank 0 has made its file and waits for rank 1's, which rank 1 (killed, say) left
    empty; the group is aborted: rank 0 stops waiting and removes both files."""
    group = new_group()
    worker = DataParallelWorker(redis_url, group, rank=0, world_size=2, strategy="allreduce", dtype="float32",
                                timeout=30, transport_name="auto")
    peer = Rendezvous(redis_url, group, rank=1, world_size=2)
    segment_path(group, 1).write_bytes(b"")  # what a worker killed before it sized its file leaves
    errors: list[Exception] = []
    joining = threading.Thread(target=lambda: errors.extend(_raised(worker.join)))
    joining.start()
    try:
        peer.join("", transport="auto", shared_memory=memory_identity())
        wait_until(lambda: segment_path(group, 0).exists(), timeout=30, what="rank 0's file", interval=0.01)
        began = time.monotonic()
        peer.abort("worker rank 1 failed: its process was killed")
        joining.join(timeout=30)
        assert time.monotonic() - began < 5
        assert len(errors) == 1 and isinstance(errors[0], PeerFailure), errors
        assert "worker rank 1 failed: its process was killed" in str(errors[0])
        worker.abort(str(errors[0]))  # as the rank's task does
        assert not list(SHARED_MEMORY_DIRECTORY.glob(f"netforge-{group}-*"))
    finally:
        peer.leave()
        worker.collective.close()
        for slot in (0, 1):
            segment_path(group, slot).unlink(missing_ok=True)


def _raised(call) -> list[Exception]:
    try:
        call()
    except Exception as error:  # noqa: BLE001 - handed to the test
        return [error]
    return []


def test_workers_of_one_machine_connect_through_shared_memory_and_remove_its_files_at_once(redis_url):
    group = new_group()
    workers = [DataParallelWorker(redis_url, group, rank=rank, world_size=2, strategy="allreduce", dtype="float64",
                                  transport_name="auto") for rank in range(2)]
    try:
        assert join_in_threads(workers) == [None, None]
        assert [type(worker.collective).__name__ for worker in workers] == ["SharedMemoryAllReduce"] * 2
        assert not list(SHARED_MEMORY_DIRECTORY.glob(f"netforge-{group}-*"))  # mapped, so removed
    finally:
        for worker in workers:
            worker.finish()


def test_the_transport_setting_names_the_variable_when_wrong(monkeypatch):
    monkeypatch.delenv(TRANSPORT_VARIABLE, raising=False)
    assert default_transport() == "auto"
    monkeypatch.setenv(TRANSPORT_VARIABLE, " GRPC ")
    assert default_transport() == "grpc"
    monkeypatch.setenv(TRANSPORT_VARIABLE, "rdma")
    with pytest.raises(ValueError, match="NETFORGE_DISTRIBUTED_TRANSPORT must be one of auto, grpc, got 'rdma'"):
        default_transport()


def test_the_workers_of_one_machine_split_its_cores_unless_netforge_threads_says_otherwise(redis_url, monkeypatch):
    group = new_group()
    workers = [DataParallelWorker(redis_url, group, rank=rank, world_size=2, strategy="allreduce", dtype="float64",
                                  transport_name="grpc") for rank in range(2)]
    try:
        assert join_in_threads(workers) == [None, None]
        monkeypatch.delenv(parallel.ENVIRONMENT_VARIABLE, raising=False)
        monkeypatch.setattr(parallel, "default_threads", lambda: 5)  # a machine of 5 usable cores
        assert [threads_of_rank(worker) for worker in workers] == [3, 2]
        monkeypatch.setattr(parallel, "default_threads", lambda: 1)
        assert [threads_of_rank(worker) for worker in workers] == [1, 1]
        monkeypatch.setenv(parallel.ENVIRONMENT_VARIABLE, "4")  # every process uses 4, as the operator said
        assert [threads_of_rank(worker) for worker in workers] == [None, None]
    finally:
        for worker in workers:
            worker.finish()


def test_only_workers_that_see_one_shared_memory_and_accept_it_use_it():
    """Each worker's rendezvous entry says which ``/dev/shm`` it sees (boot id and mount) and
    which transport it accepts; every worker decides from the same entries."""
    same = {"transport": "auto", "shared_memory": memory_identity()}
    assert shares_memory({0: same, 1: same, 2: same})
    assert not shares_memory({0: same, 1: {**same, "shared_memory": "another-boot/27"}})  # another machine
    assert not shares_memory({0: same, 1: {**same, "shared_memory": f"{same['shared_memory']}1"}})  # a container's own
    assert not shares_memory({0: same, 1: {**same, "transport": "grpc"}})  # NETFORGE_DISTRIBUTED_TRANSPORT=grpc
    assert not shares_memory({0: same, 1: {**same, "shared_memory": None}})  # a machine without it
    assert not shares_memory({0: same})  # one worker has no one to exchange with


@pytest.mark.parametrize(("strategy", "buckets"), [("allreduce", 2), ("ps", 1)])
def test_the_all_reduce_sends_buckets_while_the_parameter_server_takes_one_buffer_a_step(redis_url, strategy, buckets):
    worker = DataParallelWorker(redis_url, new_group(), rank=0, world_size=2, strategy=strategy, dtype="float32")
    params = {key: numpy.zeros((1024, 2048), dtype=numpy.float32) for key in ("a/W", "b/W")}  # 8 MB each
    try:
        reducer = worker.make_reducer(params, on_stop=lambda: None, order=["b/W", "a/W"])
        assert len(reducer.buckets) == buckets and reducer.overlap == (buckets > 1)
        assert reducer.keys == ["b/W", "a/W"]  # laid out in the order backward finishes them
    finally:
        worker.collective.close()
