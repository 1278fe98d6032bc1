"""The dynamic batcher alone: batches form under load, a lone request is not held back, a full
queue is refused at once, every caller gets its own rows back, quick batches run on the event loop
and long ones in a worker thread, and the model never runs twice at once."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy
import pytest
import uvloop

from webapp.serving.batcher import BatcherClosed, DynamicBatcher, QueueFull

QUICK = {"forward_seconds": 0.0001, "forward_rows": 32}  # a small model: its batches run on the loop
SLOW = {"forward_seconds": 0.05, "forward_rows": 1}  # every batch goes to a worker thread


def doubling(batches: list, threads: list | None = None, pause: float = 0.0):
    """A run_batch that doubles each request's rows and records the batch sizes (and threads)."""
    def run(requests):
        batches.append(len(requests))
        if threads is not None:
            threads.append(threading.current_thread())
        if pause:
            time.sleep(pause)
        joined = numpy.concatenate([inputs["x"] for inputs in requests])
        out = joined * 2
        pieces, start = [], 0
        for inputs in requests:
            pieces.append(out[start:start + len(inputs["x"])])
            start += len(inputs["x"])
        return pieces
    return run


@pytest.mark.parametrize("speed", [QUICK, SLOW], ids=["on the loop", "in a thread"])
def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(speed):
    batches, threads = [], []
    batcher = DynamicBatcher(doubling(batches, threads, pause=0.002), max_batch_size=8, max_queue_delay=0.005,
                             max_queue_size=1000, **speed)

    async def main():
        results = await asyncio.gather(*(batcher.predict({"x": numpy.array([[i]])}, 1) for i in range(200)))
        return results, threading.current_thread()

    results, loop_thread = asyncio.run(main())
    assert [int(result[0, 0]) for result in results] == [2 * i for i in range(200)]
    assert max(batches) == 8 and sum(batches) == 200
    if speed is QUICK:
        assert set(threads) == {loop_thread}
    else:
        assert loop_thread not in threads


def test_a_large_request_goes_to_a_worker_thread_and_the_loop_keeps_going():
    threads = []
    # 32 instances take 1 ms: up to 64 run on the loop (2 ms), a request of 500 in a thread
    batcher = DynamicBatcher(doubling([], threads, pause=0.05), max_batch_size=32, forward_seconds=0.001,
                             forward_rows=32, inline_seconds=0.002)
    assert batcher.inline_rows == 64

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        counting = asyncio.create_task(ticker())
        small = await batcher.predict({"x": numpy.ones((32, 1))}, 32)
        ticks_before = ticks
        large = await batcher.predict({"x": numpy.ones((500, 1))}, 500)
        counting.cancel()
        return small, large, ticks - ticks_before

    small, large, ticks_meanwhile = asyncio.run(main())
    assert small.shape == (32, 1) and large.shape == (500, 1)
    assert threads[0] is threading.main_thread() and threads[1] is not threading.main_thread()
    assert ticks_meanwhile >= 3  # the loop ran other tasks during the 50 ms forward pass


def test_a_lone_request_is_not_held_back():
    batcher = DynamicBatcher(doubling([]), max_batch_size=32, max_queue_delay=0.5, **QUICK)

    async def main():
        started = time.perf_counter()
        await batcher.predict({"x": numpy.ones((1, 1))}, 1)
        return time.perf_counter() - started

    assert asyncio.run(main()) < 0.25


@pytest.mark.parametrize("new_loop", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_under_load_a_full_batch_does_not_wait_for_the_delay(new_loop):
    batches = []
    batcher = DynamicBatcher(doubling(batches), max_batch_size=8, max_queue_delay=0.5, **QUICK)

    async def main():
        await asyncio.gather(*(batcher.predict({"x": numpy.ones((1, 1))}, 1) for _ in range(16)))  # now under load
        started = time.perf_counter()
        await asyncio.gather(*(batcher.predict({"x": numpy.ones((1, 1))}, 1) for _ in range(8)))
        return time.perf_counter() - started

    loop = new_loop()  # uvicorn serves on uvloop, whose timers are not asyncio.TimerHandle
    try:
        assert loop.run_until_complete(main()) < 0.25
    finally:
        loop.close()
    assert batches == [8, 8, 8]


def test_a_full_queue_is_refused_at_once_and_a_closed_batcher_refuses_everything():
    gate = threading.Event()

    def slow(requests):
        gate.wait(5)
        return [inputs["x"] for inputs in requests]

    batcher = DynamicBatcher(slow, max_batch_size=1, max_queue_delay=0, max_queue_size=2, **SLOW)

    async def main():
        first = asyncio.create_task(batcher.predict({"x": numpy.ones((1, 1))}, 1))
        await asyncio.sleep(0.05)  # a worker thread took the first request and waits in slow()
        queued = [asyncio.create_task(batcher.predict({"x": numpy.ones((1, 1))}, 1)) for _ in range(2)]
        await asyncio.sleep(0)
        started = time.perf_counter()
        with pytest.raises(QueueFull, match="queue is full"):
            await batcher.predict({"x": numpy.ones((1, 1))}, 1)
        refused_in = time.perf_counter() - started
        gate.set()
        answers = await asyncio.gather(first, *queued)
        batcher.close()
        with pytest.raises(BatcherClosed):
            await batcher.predict({"x": numpy.ones((1, 1))}, 1)
        return refused_in, answers

    refused_in, answers = asyncio.run(main())
    assert refused_in < 0.01
    assert [answer.shape for answer in answers] == [(1, 1)] * 3


@pytest.mark.parametrize("speed", [QUICK, SLOW], ids=["on the loop", "in a thread"])
def test_a_failing_batch_fails_its_callers_only(speed):
    calls = []

    def flaky(requests):
        calls.append(len(requests))
        if len(calls) == 1:
            raise ValueError("boom")
        return [inputs["x"] for inputs in requests]

    batcher = DynamicBatcher(flaky, max_batch_size=1, **speed)

    async def main():
        with pytest.raises(ValueError, match="boom"):
            await batcher.predict({"x": numpy.ones((1, 1))}, 1)
        return await batcher.predict({"x": numpy.ones((1, 1))}, 1)

    assert asyncio.run(main()).shape == (1, 1)


def test_the_model_never_runs_twice_at_once_from_two_event_loops():
    running, most = [0], [0]
    lock = threading.Lock()

    def watched(requests):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.001)
        with lock:
            running[0] -= 1
        return [inputs["x"] for inputs in requests]

    batcher = DynamicBatcher(watched, max_batch_size=4, **QUICK)

    async def burst():
        return await asyncio.gather(*(batcher.predict({"x": numpy.ones((1, 1))}, 1) for _ in range(40)))

    results = []
    threads = [threading.Thread(target=lambda: results.append(asyncio.run(burst()))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 2 and all(len(answers) == 40 for answers in results)
    assert most[0] == 1


def test_with_batching_off_every_request_runs_alone_on_the_loop_and_is_counted():
    batches, threads, counted = [], [], []
    batcher = DynamicBatcher(doubling(batches, threads), max_batch_size=1, max_queue_delay=0.001,
                             on_batch=lambda instances, requests: counted.append((instances, requests)), **QUICK)

    async def main():
        results = await asyncio.gather(*(batcher.predict({"x": numpy.array([[i]])}, 1) for i in range(50)))
        return results, threading.current_thread()

    results, loop_thread = asyncio.run(main())
    assert [int(result[0, 0]) for result in results] == [2 * i for i in range(50)]
    assert batches == [1] * 50 and counted == [(1, 1)] * 50
    assert set(threads) == {loop_thread}
