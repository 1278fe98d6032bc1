"""The dynamic batcher: requests that arrive together run as one forward pass.

One ``DynamicBatcher`` per loaded model version. Async callers (the REST views, the ASGI fast
path, the gRPC servicer) ``await predict(inputs, rows)``; requests wait in a queue of the caller's
event loop, and the batches of one loop run one at a time, under a lock of the batcher's own, so
concurrent requests never share a graph mid-run (the engine's ``Model`` caches compiled plans and
keeps per-run state), whichever loop or thread they come from.

Where a batch runs depends on how long it should take, from the forward time measured when the
model was warmed up (``forward_seconds`` for ``forward_rows`` instances, scaled by the batch's
instances beyond that):

- a batch expected within ``inline_seconds`` (a millisecond or two: a small model) runs right on
  the event loop. No thread hand-off, no lock convoy, no cross-thread wake-up: for a small model
  those cost more than the forward pass itself;
- a longer batch runs in a worker thread while the loop goes on taking requests (which queue for
  the next batch), so a slow model or a request of many instances never stalls the server.

The queue is bounded: when it holds ``max_queue_size`` requests, a new one is refused at once with
``QueueFull`` (HTTP 429, gRPC RESOURCE_EXHAUSTED) rather than letting latency grow without bound.

Batching rule: take the oldest request and every request already waiting, up to
``max_batch_size`` instances (``call_soon`` puts the batch after the request handlers already due
in this loop iteration, so requests that arrived together go together). Under load (the previous
batch held more than one request, or more were waiting) wait for more until ``max_queue_delay``
has passed since the oldest request arrived; a lone request on an idle endpoint is never held
back, so batching costs nothing at concurrency 1. A request that fills a batch by itself (every
request when ``max_batch_size`` is 1) and finds the queue idle runs at once, inline.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable

import numpy

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_QUEUE_DELAY = 0.001  # seconds
DEFAULT_MAX_QUEUE_SIZE = 256  # requests
DEFAULT_INLINE_SECONDS = 0.002  # a batch expected to take longer runs in a worker thread


class QueueFull(Exception):
    """The batcher's queue is full: the caller should retry later (429 / RESOURCE_EXHAUSTED)."""


class BatcherClosed(Exception):
    """The batcher was stopped (its model version was unloaded) before it took the request."""


class _Request:
    __slots__ = ("inputs", "rows", "future", "arrived")

    def __init__(self, inputs: dict, rows: int, future: asyncio.Future, arrived: float):
        self.inputs, self.rows, self.future, self.arrived = inputs, rows, future, arrived


class _LoopQueue:
    """The waiting requests of one event loop (a serving process has one; Django's test client
    makes one a request)."""

    __slots__ = ("loop", "queue", "rows", "handle", "delayed", "under_load", "running")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: collections.deque[_Request] = collections.deque()
        self.rows = 0  # instances waiting in ``queue``
        self.handle: asyncio.Handle | None = None  # the next flush, when one is scheduled
        self.delayed = False  # that flush waits for max_queue_delay (uvloop's timers are not asyncio's)
        self.under_load = False
        self.running = False  # a batch is in a worker thread; the next flush follows it


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
        forward_seconds: float = float("inf"),
        forward_rows: int = 1,
        inline_seconds: float = DEFAULT_INLINE_SECONDS,
    ):
        if max_batch_size < 1 or max_queue_size < 1 or max_queue_delay < 0:
            raise ValueError("max_batch_size and max_queue_size must be >= 1 and max_queue_delay >= 0")
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_queue_delay = max_queue_delay
        self.max_queue_size = max_queue_size
        self.forward_seconds, self.forward_rows = forward_seconds, max(forward_rows, 1)
        self.inline_seconds = inline_seconds
        self._run_batch = run_batch
        self._on_batch = on_batch
        self._run_lock = threading.Lock()  # one forward pass at a time, from any loop or thread
        self._closed = False
        self._loop_queues: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}

    @property
    def queued(self) -> int:
        return sum(len(state.queue) for state in list(self._loop_queues.values()))

    @property
    def inline_rows(self) -> int:
        """The most instances a batch may hold and still run on the event loop (0: none does)."""
        if self.forward_seconds > self.inline_seconds:
            return 0
        return max(self.forward_rows, int(self.inline_seconds / self.forward_seconds * self.forward_rows))

    def runs_inline(self, rows: int) -> bool:
        """Whether a batch of ``rows`` instances is expected to be quick enough for the event loop."""
        return self.forward_seconds * max(1.0, rows / self.forward_rows) <= self.inline_seconds

    async def predict(self, inputs: dict, rows: int):
        """The result of one request (``rows`` instances, arrays by input name), batched with others."""
        if self._closed:
            raise BatcherClosed(f"the batcher of {self.name} is stopped")
        loop = asyncio.get_running_loop()
        state = self._loop_queues.get(loop) or self._loop_state(loop)
        if len(state.queue) >= self.max_queue_size:
            raise QueueFull(f"{self.name}: the queue is full ({self.max_queue_size} requests waiting); retry later")
        if (rows >= self.max_batch_size and not state.queue and state.handle is None and not state.running
                and self.runs_inline(rows)):
            # A request that fills a batch alone (every request, with batching off) on an idle queue
            # has nothing to wait for or to join: it runs now, without a future or a turn of the loop.
            try:
                (result,) = self._run_locked([inputs])
            except Exception:
                log.exception("%s: a batch of 1 request failed", self.name)
                raise
            if self._on_batch is not None:
                self._on_batch(rows, 1)
            return result
        future = loop.create_future()
        state.queue.append(_Request(inputs, rows, future, time.perf_counter()))
        state.rows += rows
        if state.handle is None:
            if not state.running:
                self._schedule(state)
        elif state.delayed and state.rows >= self.max_batch_size:
            state.handle.cancel()  # a full batch need not wait for the delay
            state.handle, state.delayed = loop.call_soon(self._flush, state), False
        return await future

    def close(self) -> None:
        """Refuse new requests; the queued ones are still answered."""
        self._closed = True

    # -- on the event loop ------------------------------------------------------------------------------
    def _loop_state(self, loop: asyncio.AbstractEventLoop) -> _LoopQueue:
        for other in [other for other in self._loop_queues if other.is_closed()]:
            self._loop_queues.pop(other, None)  # loops that ended
        state = self._loop_queues[loop] = _LoopQueue(loop)
        return state

    def _schedule(self, state: _LoopQueue) -> None:
        if state.under_load and self.max_queue_delay > 0 and state.rows < self.max_batch_size:
            delay = state.queue[0].arrived + self.max_queue_delay - time.perf_counter()
            if delay > 0:
                state.handle, state.delayed = state.loop.call_later(delay, self._flush, state), True
                return
        state.handle, state.delayed = state.loop.call_soon(self._flush, state), False

    def _take(self, state: _LoopQueue) -> list[_Request]:
        queue = state.queue
        batch, rows = [], 0
        while queue and (not batch or rows + queue[0].rows <= self.max_batch_size):
            request = queue.popleft()
            state.rows -= request.rows
            if not request.future.done():  # else its caller went away (cancelled)
                batch.append(request)
                rows += request.rows
        state.under_load = len(batch) > 1 or bool(queue)
        return batch

    def _flush(self, state: _LoopQueue) -> None:
        state.handle = None
        batch = self._take(state)
        if not batch:
            if state.queue:
                self._schedule(state)
            return
        inputs = [request.inputs for request in batch]
        if self.runs_inline(sum(request.rows for request in batch)):
            try:
                results = self._run_locked(inputs)
            except Exception as error:  # noqa: BLE001  (every caller of the batch gets the error)
                self._fail(batch, error)
            else:
                self._answer(batch, results)
            if state.queue:
                self._schedule(state)
            return
        state.running = True
        running = state.loop.run_in_executor(None, self._run_locked, inputs)
        running.add_done_callback(lambda done: self._finished(state, batch, done))

    def _finished(self, state: _LoopQueue, batch: list[_Request], done: asyncio.Future) -> None:
        state.running = False
        if done.cancelled():
            self._fail(batch, BatcherClosed(f"the batch of {self.name} was cancelled"))
        elif done.exception() is not None:
            self._fail(batch, done.exception())
        else:
            self._answer(batch, done.result())
        if state.queue and state.handle is None:
            self._schedule(state)

    def _answer(self, batch: list[_Request], results: list) -> None:
        for request, result in zip(batch, results):
            if not request.future.done():
                request.future.set_result(result)
        if self._on_batch is not None:
            self._on_batch(sum(request.rows for request in batch), len(batch))

    def _fail(self, batch: list[_Request], error: BaseException) -> None:
        log.error("%s: a batch of %d request(s) failed", self.name, len(batch), exc_info=error)
        for request in batch:
            if not request.future.done():
                request.future.set_exception(error)

    def _run_locked(self, requests: list[dict]) -> list:
        # Inputs of huge magnitude overflow to inf/NaN in their own rows only: each request's result is
        # checked for that (runtime.check_finite_result), so NumPy's warnings stay quiet and the batch
        # that request shares with others is not failed for it.
        with self._run_lock, numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._run_batch(requests)
