"""The dynamic batcher alone: batches form under load, a lone request is not held back, a full
queue is refused at once, and every caller gets its own rows back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy
import pytest

from workers.serving.batcher import BatcherClosed, DynamicBatcher, QueueFull


def doubling(batches: list):
    """A run_batch that doubles each request's rows and records the batch sizes."""
    def run(requests):
        batches.append(len(requests))
        joined = numpy.concatenate([inputs["x"] for inputs in requests])
        out = joined * 2
        pieces, start = [], 0
        for inputs in requests:
            pieces.append(out[start:start + len(inputs["x"])])
            start += len(inputs["x"])
        return pieces
    return run


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows():
    batches: list = []
    batcher = DynamicBatcher(doubling(batches), max_batch_size=8, max_queue_delay=0.005, max_queue_size=1000)
    try:
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(lambda i=i: batcher.submit({"x": numpy.array([[i]])}, 1).result(5))
                       for i in range(200)]
            results = [future.result() for future in futures]
        assert [int(result[0, 0]) for result in results] == [2 * i for i in range(200)]
        assert max(batches) > 1 and max(batches) <= 8 and sum(batches) == 200
    finally:
        batcher.close()


def test_a_lone_request_is_not_held_back():
    batcher = DynamicBatcher(doubling([]), max_batch_size=32, max_queue_delay=0.5)
    try:
        started = time.perf_counter()
        batcher.submit({"x": numpy.ones((1, 1))}, 1).result(5)
        assert time.perf_counter() - started < 0.25
    finally:
        batcher.close()


def test_a_full_queue_is_refused_at_once_and_a_closed_batcher_refuses_everything():
    gate = threading.Event()

    def slow(requests):
        gate.wait(5)
        return [inputs["x"] for inputs in requests]

    batcher = DynamicBatcher(slow, max_batch_size=1, max_queue_delay=0, max_queue_size=2)
    first = batcher.submit({"x": numpy.ones((1, 1))}, 1)
    time.sleep(0.05)  # the thread took the first request and waits in slow()
    queued = [batcher.submit({"x": numpy.ones((1, 1))}, 1) for _ in range(2)]
    started = time.perf_counter()
    with pytest.raises(QueueFull, match="queue is full"):
        batcher.submit({"x": numpy.ones((1, 1))}, 1)
    assert time.perf_counter() - started < 0.01
    gate.set()
    for future in [first, *queued]:
        assert future.result(5).shape == (1, 1)
    batcher.close()
    with pytest.raises(BatcherClosed):
        batcher.submit({"x": numpy.ones((1, 1))}, 1)


def test_a_failing_batch_fails_its_callers_only():
    calls = []

    def flaky(requests):
        calls.append(len(requests))
        if len(calls) == 1:
            raise ValueError("boom")
        return [inputs["x"] for inputs in requests]

    batcher = DynamicBatcher(flaky, max_batch_size=1)
    try:
        with pytest.raises(ValueError, match="boom"):
            batcher.submit({"x": numpy.ones((1, 1))}, 1).result(5)
        assert batcher.submit({"x": numpy.ones((1, 1))}, 1).result(5).shape == (1, 1)
    finally:
        batcher.close()
