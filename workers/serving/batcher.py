"""The dynamic batcher: requests that arrive together run as one forward pass.

One ``DynamicBatcher`` per loaded model version, with one thread of its own that is the only caller
of that version's model: concurrent requests never share a graph mid-run (the engine's ``Model``
caches compiled plans and keeps per-run state, so it is used from one thread only).

Callers ``submit`` validated input arrays and get a ``concurrent.futures.Future`` (the async views
and the gRPC servicer await it with ``asyncio.wrap_future``). The queue is bounded: when it holds
``max_queue_size`` requests, ``submit`` raises ``QueueFull`` at once (HTTP 429, gRPC
RESOURCE_EXHAUSTED) rather than letting latency grow without bound.

Batching rule: the thread takes the oldest request and every request already waiting, up to
``max_batch_size`` instances. Under load (the previous batch held more than one request) it also
waits for more until ``max_queue_delay`` has passed since the oldest request arrived; a lone
request on an idle endpoint is never held back, so batching costs nothing at concurrency 1.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_QUEUE_DELAY = 0.001  # seconds
DEFAULT_MAX_QUEUE_SIZE = 256  # requests


class QueueFull(Exception):
    """The batcher's queue is full: the caller should retry later (429 / RESOURCE_EXHAUSTED)."""


class BatcherClosed(Exception):
    """The batcher was stopped (its model version was unloaded) before it took the request."""


class _Request:
    __slots__ = ("inputs", "rows", "future", "arrived")

    def __init__(self, inputs: dict, rows: int, future: Future, arrived: float):
        self.inputs, self.rows, self.future, self.arrived = inputs, rows, future, arrived


class DynamicBatcher:
    """Runs ``run_batch(requests_inputs) -> per-request results`` on its own thread, over batches
    of queued requests. ``on_batch(size, requests)`` is told each batch's size (metrics)."""

    def __init__(
        self,
        run_batch: Callable[[list[dict]], list],
        *,
        name: str = "model",
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_queue_delay: float = DEFAULT_MAX_QUEUE_DELAY,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        on_batch: Callable[[int, int], None] | None = None,
    ):
        if max_batch_size < 1 or max_queue_size < 1 or max_queue_delay < 0:
            raise ValueError("max_batch_size and max_queue_size must be >= 1 and max_queue_delay >= 0")
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_queue_delay = max_queue_delay
        self.max_queue_size = max_queue_size
        self._run_batch = run_batch
        self._on_batch = on_batch
        self._queue: collections.deque[_Request] = collections.deque()
        self._condition = threading.Condition(threading.Lock())
        self._closed = False
        self._under_load = False
        self._thread = threading.Thread(target=self._loop, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, inputs: dict, rows: int) -> Future:
        """Queue one request (``rows`` instances, arrays by input name); its future gets the result."""
        future: Future = Future()
        with self._condition:
            if self._closed:
                raise BatcherClosed(f"the batcher of {self.name} is stopped")
            if len(self._queue) >= self.max_queue_size:
                raise QueueFull(f"{self.name}: the queue is full ({self.max_queue_size} requests waiting); retry later")
            self._queue.append(_Request(inputs, rows, future, time.perf_counter()))
            self._condition.notify()
        return future

    def close(self, *, timeout: float = 5.0) -> None:
        """Stop taking requests, finish the queued ones, and end the thread."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _take(self) -> list[_Request] | None:
        with self._condition:
            while not self._queue:
                if self._closed:
                    return None
                self._condition.wait()
            first = self._queue.popleft()
            batch, rows = [first], first.rows
            deadline = first.arrived + self.max_queue_delay if self._under_load else 0.0
            while rows < self.max_batch_size:
                if self._queue:
                    if rows + self._queue[0].rows > self.max_batch_size:
                        break
                    request = self._queue.popleft()
                    batch.append(request)
                    rows += request.rows
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._closed:
                    break
                self._condition.wait(remaining)
            self._under_load = len(batch) > 1 or bool(self._queue)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            live = [request for request in batch if request.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                results = self._run_batch([request.inputs for request in live])
            except BaseException as error:  # noqa: BLE001  (every caller of the batch gets the error)
                log.exception("%s: a batch of %d request(s) failed", self.name, len(live))
                for request in live:
                    request.future.set_exception(error)
                continue
            for request, result in zip(live, results):
                request.future.set_result(result)
            if self._on_batch is not None:
                self._on_batch(sum(request.rows for request in live), len(live))
