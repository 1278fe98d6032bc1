"""The dynamic batcher: requests that arrive together run as one forward pass.

One ``DynamicBatcher`` per loaded model version. It runs the model under a lock of its own, so
concurrent requests never share a graph mid-run (the engine's ``Model`` caches compiled plans and
keeps per-run state) whichever thread or event loop they come from.

Async callers (the REST views, the ASGI fast path, the gRPC servicer) ``await predict(inputs,
rows)``. Where the batches run depends on the model's speed, measured when it was warmed up:

- a fast model (``inline``: its largest batch takes a millisecond or two) is batched and run on
  the caller's event loop. Requests whose handlers ran in the same loop iteration form a batch,
  with no thread hand-off, no lock convoy and no cross-thread wake-up: for a small model those cost
  more than the forward pass itself;
- a slow model runs on the batcher's own thread (``submit`` returns a ``concurrent.futures.Future``
  that ``predict`` awaits), so a long forward pass never blocks the event loop.

The queue is bounded: when it holds ``max_queue_size`` requests, a new one is refused at once with
``QueueFull`` (HTTP 429, gRPC RESOURCE_EXHAUSTED) rather than letting latency grow without bound.

Batching rule (both ways): take the oldest request and every request already waiting, up to
``max_batch_size`` instances. Under load (the previous batch held more than one request) wait for
more until ``max_queue_delay`` has passed since the oldest request arrived; a lone request on an
idle endpoint is never held back, so batching costs nothing at concurrency 1.
"""

from __future__ import annotations

import asyncio
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

    def __init__(self, inputs: dict, rows: int, future, arrived: float):
        self.inputs, self.rows, self.future, self.arrived = inputs, rows, future, arrived


class _LoopQueue:
    """The inline requests of one event loop (a serving process has one; Django's test client
    makes one per request)."""

    __slots__ = ("loop", "queue", "rows", "handle", "under_load")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: collections.deque[_Request] = collections.deque()
        self.rows = 0
        self.handle: asyncio.Handle | None = None  # the scheduled flush
        self.under_load = False


class DynamicBatcher:
    """Runs ``run_batch(requests_inputs) -> per-request results`` over batches of queued requests.
    ``on_batch(instances, requests)`` is told each batch's size (metrics)."""

    def __init__(
        self,
        run_batch: Callable[[list[dict]], list],
        *,
        name: str = "model",
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_queue_delay: float = DEFAULT_MAX_QUEUE_DELAY,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        on_batch: Callable[[int, int], None] | None = None,
        inline: bool = False,
    ):
        if max_batch_size < 1 or max_queue_size < 1 or max_queue_delay < 0:
            raise ValueError("max_batch_size and max_queue_size must be >= 1 and max_queue_delay >= 0")
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_queue_delay = max_queue_delay
        self.max_queue_size = max_queue_size
        self.inline = inline
        self._run_batch = run_batch
        self._on_batch = on_batch
        self._run_lock = threading.Lock()  # one forward pass at a time, from any thread or loop
        self._closed = False
        # the thread's queue (slow models, and ``submit`` from plain threads); started on first use
        self._queue: collections.deque[_Request] = collections.deque()
        self._condition = threading.Condition(threading.Lock())
        self._under_load = False
        self._thread: threading.Thread | None = None
        self._loop_queues: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}
        if not inline:
            self._start_thread()

    @property
    def queued(self) -> int:
        return len(self._queue) + sum(len(state.queue) for state in list(self._loop_queues.values()))

    # -- async callers ---------------------------------------------------------------------------------
    async def predict(self, inputs: dict, rows: int):
        """The result of one request (``rows`` instances, arrays by input name), batched with others."""
        if not self.inline:
            return await asyncio.wrap_future(self.submit(inputs, rows))
        if self._closed:
            raise BatcherClosed(f"the batcher of {self.name} is stopped")
        loop = asyncio.get_running_loop()
        state = self._loop_queues.get(loop)
        if state is None:
            state = self._loop_state(loop)
        if len(state.queue) >= self.max_queue_size:
            raise QueueFull(f"{self.name}: the queue is full ({self.max_queue_size} requests waiting); retry later")
        future = loop.create_future()
        state.queue.append(_Request(inputs, rows, future, time.perf_counter()))
        state.rows += rows
        if state.handle is None:
            self._schedule(state)
        elif state.rows >= self.max_batch_size and isinstance(state.handle, asyncio.TimerHandle):
            state.handle.cancel()  # a full batch need not wait for the delay
            state.handle = loop.call_soon(self._flush, state)
        return await future

    def _loop_state(self, loop: asyncio.AbstractEventLoop) -> _LoopQueue:
        state = self._loop_queues[loop] = _LoopQueue(loop)
        for other in [other for other in self._loop_queues if other is not loop and other.is_closed()]:
            self._loop_queues.pop(other, None)  # loops that ended (Django's test client makes one a request)
        return state

    def _schedule(self, state: _LoopQueue) -> None:
        # ``call_soon``: the flush runs after the handlers already due in this loop iteration, so
        # requests that arrived together are batched together
        if state.under_load and self.max_queue_delay > 0 and state.rows < self.max_batch_size:
            delay = state.queue[0].arrived + self.max_queue_delay - time.perf_counter()
            if delay > 0:
                state.handle = state.loop.call_later(delay, self._flush, state)
                return
        state.handle = state.loop.call_soon(self._flush, state)

    def _flush(self, state: _LoopQueue) -> None:
        state.handle = None
        queue = state.queue
        batch, rows = [], 0
        while queue and (not batch or rows + queue[0].rows <= self.max_batch_size):
            request = queue.popleft()
            rows += request.rows
            if not request.future.done():  # its caller went away (cancelled)
                batch.append(request)
        state.rows -= rows
        state.under_load = len(batch) > 1 or bool(queue)
        if batch:
            try:
                results = self._run_locked([request.inputs for request in batch])
            except Exception as error:  # noqa: BLE001  (every caller of the batch gets the error)
                log.exception("%s: a batch of %d request(s) failed", self.name, len(batch))
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
            else:
                for request, result in zip(batch, results):
                    if not request.future.done():
                        request.future.set_result(result)
                if self._on_batch is not None:
                    self._on_batch(sum(request.rows for request in batch), len(batch))
        if queue:
            self._schedule(state)

    def _run_locked(self, requests: list[dict]) -> list:
        with self._run_lock:
            return self._run_batch(requests)

    # -- the thread ----------------------------------------------------------------------------------
    def submit(self, inputs: dict, rows: int) -> Future:
        """Queue one request for the batcher's thread; its future gets the result."""
        future: Future = Future()
        with self._condition:
            if self._closed:
                raise BatcherClosed(f"the batcher of {self.name} is stopped")
            if len(self._queue) >= self.max_queue_size:
                raise QueueFull(f"{self.name}: the queue is full ({self.max_queue_size} requests waiting); retry later")
            if self._thread is None:
                self._start_thread()
            self._queue.append(_Request(inputs, rows, future, time.perf_counter()))
            self._condition.notify()
        return future

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"batcher-{self.name}", daemon=True)
        self._thread.start()

    def close(self, *, timeout: float = 5.0) -> None:
        """Stop taking requests, finish the queued ones, and end the thread (inline requests
        already queued are run by their loop's scheduled flush)."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        thread = self._thread
        if thread is not None and threading.current_thread() is not thread:
            thread.join(timeout)

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
                results = self._run_locked([request.inputs for request in live])
            except BaseException as error:  # noqa: BLE001  (every caller of the batch gets the error)
                log.exception("%s: a batch of %d request(s) failed", self.name, len(live))
                for request in live:
                    request.future.set_exception(error)
                continue
            for request, result in zip(live, results):
                request.future.set_result(result)
            if self._on_batch is not None:
                self._on_batch(sum(request.rows for request in live), len(live))
