"""The trainer's ``reduce_gradients`` for data-parallel training: one fused buffer per step.

Every worker lays its gradients out in one flat buffer in the same order (the order backward
finishes them, ``Model.gradient_order``, then the other keys sorted), in the model's dtype, each
multiplied by the worker's share of the global batch, followed by two more elements: the
share-weighted loss and a stop flag. All-reducing that buffer (ring, shared memory or parameter
server) gives every worker the global batch's gradient and loss, and tells all of them together
when any one must stop (the run's cancel, seen by rank 0): all workers leave the loop after the same
step, and none is left waiting in a collective for a worker that stopped.

The buffer is cut into buckets of whole parameters of at least ``BUCKET_BYTES`` (the last one
holds the loss and the flag). With ``overlap``, as PyTorch's DDP does, a bucket is all-reduced on a
thread of its own as soon as backward has finished its gradients (``gradient_ready``), while
backward goes on with the layers below; buckets go in the same order on every worker, one at a
time, and the last one once backward is done. A model smaller than a bucket is one all-reduce.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures

import numpy

from engine import backend

EXTRA_ELEMENTS = 2  # the weighted loss, the stop flag
BUCKET_BYTES = 4 * 1024 * 1024


class GradientReducer:
    """``reducer(grads, loss, rows, batch_rows) -> (global grads, global loss)``: the trainer's
    ``reduce_gradients``; see the module docstring.

    ``collective`` has ``all_reduce(flat_buffer)``; ``params`` are the model's parameters (their
    keys, shapes and dtype fix the layout); ``order``: keys in the order backward finishes them;
    ``bucket_bytes`` None: the whole buffer is one bucket; ``on_stop`` is called when the reduced
    stop flag is set.
    """

    def __init__(self, collective, params: dict, *, on_stop: Callable[[], None], order: list[str] | None = None,
                 overlap: bool = True, bucket_bytes: int | None = BUCKET_BYTES):
        self.collective = collective
        self.on_stop = on_stop
        first = [key for key in (order or []) if key in params]
        self.keys = first + sorted(set(params) - set(first))
        self.shapes = {key: tuple(params[key].shape) for key in self.keys}
        self.dtype = numpy.dtype(next(iter(params.values())).dtype) if params else numpy.dtype("float64")
        self.xp = backend.array_module(next(iter(params.values()))) if params else numpy
        offsets, position = {}, 0
        buckets, bucket_of, bucket_start = [], {}, 0
        for key in self.keys:
            size = int(numpy.prod(self.shapes[key], dtype=numpy.int64))
            offsets[key] = (position, position + size)
            position += size
            bucket_of[key] = len(buckets)
            if bucket_bytes is not None and (position - bucket_start) * self.dtype.itemsize >= bucket_bytes:
                buckets.append((bucket_start, position))
                bucket_start = position
        if buckets and bucket_start == position:  # the loss and the flag go with the last gradients
            bucket_start = buckets.pop()[0]
        buckets.append((bucket_start, position + EXTRA_ELEMENTS))
        self.offsets = offsets
        self.gradient_elements = position
        self.buckets = buckets
        self.bucket_of = bucket_of
        self.bucket_sizes = [sum(1 for key in self.keys if bucket_of[key] == index) for index in range(len(buckets))]
        self.buffer = numpy.zeros(position + EXTRA_ELEMENTS, dtype=self.dtype)
        self.overlap = overlap and len(buckets) > 1
        self._sender = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bucket") if self.overlap else None
        self._stop_requested = threading.Event()
        self._new_step()
        self.steps = 0
        self.rows = 0
        self.seconds_in_collectives = 0.0  # the time the training loop waited for them
        self.started_at = time.monotonic()

    @property
    def gradient_bytes(self) -> int:
        return self.gradient_elements * self.dtype.itemsize

    def request_stop(self) -> None:
        """Ask every worker to stop after the next step (thread-safe)."""
        self._stop_requested.set()

    def cancel(self) -> None:
        """So that the recorder can watch this in place of the trainer (see workers.distributed.execution)."""
        self.request_stop()

    def _new_step(self) -> None:
        self._written: set[str] = set()
        self._missing = list(self.bucket_sizes)
        self._sent: list[futures.Future] = []

    def _write(self, key: str, grad, share: float) -> None:
        start, stop = self.offsets[key]
        if grad is None:  # the loss does not depend on it on this worker's rows
            self.buffer[start:stop] = 0
        else:
            numpy.multiply(backend.to_numpy(grad).reshape(-1), share, out=self.buffer[start:stop])
        self._written.add(key)
        self._missing[self.bucket_of[key]] -= 1

    def _send_ready_buckets(self, *, through: int) -> None:
        """All-reduce, in order, the buckets up to ``through`` whose gradients are all written."""
        while len(self._sent) <= through and (self._missing[len(self._sent)] == 0 or through == len(self.buckets) - 1):
            start, stop = self.buckets[len(self._sent)]
            part = self.buffer[start:stop]
            if self._sender is None:
                self.collective.all_reduce(part)
                self._sent.append(_done)
            else:
                self._sent.append(self._sender.submit(self.collective.all_reduce, part))

    def gradient_ready(self, key: str, grad, *, rows: int, batch_rows: int) -> None:
        """One parameter's gradient, as soon as backward has finished it: a bucket whose gradients
        are all here (and every bucket before it) goes at once (see the module docstring)."""
        self._write(key, grad, rows / batch_rows)
        if self.overlap:
            self._send_ready_buckets(through=len(self.buckets) - 2)

    def __call__(self, grads: dict, loss: float, rows: int, batch_rows: int) -> tuple[dict, float]:
        share = rows / batch_rows
        self.rows += rows
        buffer = self.buffer
        try:
            for key in self.keys:
                if key not in self._written:
                    self._write(key, grads.get(key), share)
            buffer[-2] = loss * share
            buffer[-1] = 1.0 if self._stop_requested.is_set() else 0.0
            began = time.perf_counter()
            self._send_ready_buckets(through=len(self.buckets) - 1)
            for sending in self._sent:
                sending.result()
            self.seconds_in_collectives += time.perf_counter() - began
        finally:
            self._new_step()
        self.steps += 1
        if buffer[-1] > 0:
            self.on_stop()
        xp = self.xp
        reduced = {key: xp.asarray(buffer[start:stop].reshape(self.shapes[key]))
                   for key, (start, stop) in self.offsets.items()}
        return reduced, float(buffer[-2])

    def close(self) -> None:
        if self._sender is not None:
            self._sender.shutdown(wait=False, cancel_futures=True)


_done: futures.Future = futures.Future()
_done.set_result(None)


class AsyncGradientReducer:
    """The trainer's ``reduce_gradients`` with an asynchronous parameter server: this worker's
    own mean gradient goes to the server, the weights after the server's update come back into the
    model's parameters in place, and the trainer's optimizer takes no step (``None`` gradients).
    Rank 0 gives the server the initial weights (every worker starts from the same, by seed)."""

    def __init__(self, client, params: dict, *, on_stop: Callable[[], None], rank: int):
        self.client = client
        self.params = params
        self.on_stop = on_stop
        self.keys = sorted(params)
        self.dtype = numpy.dtype(next(iter(params.values())).dtype)
        offsets, position = {}, 0
        for key in self.keys:
            size = int(params[key].size)
            offsets[key] = (position, position + size)
            position += size
        self.offsets = offsets
        self.gradient_elements = position
        self.gradient = numpy.zeros(position, dtype=self.dtype)
        self.weights = numpy.zeros(position, dtype=self.dtype)
        self._stop_requested = threading.Event()
        self.steps = 0
        self.rows = 0
        self.seconds_in_collectives = 0.0
        if rank == 0:
            for key, (start, stop) in offsets.items():
                self.weights[start:stop] = backend.to_numpy(params[key]).reshape(-1)
            client.set_weights(self.weights)

    @property
    def gradient_bytes(self) -> int:
        return self.gradient_elements * self.dtype.itemsize

    def request_stop(self) -> None:
        self._stop_requested.set()

    def cancel(self) -> None:
        self.request_stop()

    def __call__(self, grads: dict, loss: float, rows: int, batch_rows: int) -> tuple[None, float]:
        self.rows += rows
        if rows:
            for key, (start, stop) in self.offsets.items():
                grad = grads.get(key)
                self.gradient[start:stop] = 0 if grad is None else backend.to_numpy(grad).reshape(-1)
        began = time.perf_counter()
        stopping = self.client.apply(self.gradient if rows else None, self.weights,
                                     stop=self._stop_requested.is_set())
        self.seconds_in_collectives += time.perf_counter() - began
        self.steps += 1
        for key, (start, stop) in self.offsets.items():
            param = self.params[key]
            param[...] = backend.array_module(param).asarray(self.weights[start:stop].reshape(param.shape))
        if stopping:
            self.on_stop()
        return None, loss
