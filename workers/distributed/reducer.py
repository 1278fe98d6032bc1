"""The trainer's ``reduce_gradients`` for data-parallel training: one fused buffer per step.

Every worker lays its gradients out in one flat buffer in the same order (parameter keys sorted),
in the model's dtype, each multiplied by the worker's share of the global batch, followed by two
more elements: the share-weighted loss and a stop flag. One all-reduce (ring or parameter server)
of that buffer gives every worker the global batch's gradient and loss, and tells all of them
together when any one must stop (the run's cancel, seen by rank 0): all workers leave the loop
after the same step, and none is left waiting in a collective for a worker that stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy

from engine import backend

EXTRA_ELEMENTS = 2  # the weighted loss, the stop flag


class GradientReducer:
    """``reducer(grads, loss, rows, batch_rows) -> (global grads, global loss)``: the trainer's
    ``reduce_gradients``; see the module docstring.

    ``collective`` has ``all_reduce(flat_buffer)``; ``params`` are the model's parameters (their
    keys, shapes and dtype fix the layout); ``on_stop`` is called when the reduced stop flag is set.
    """

    def __init__(self, collective, params: dict, *, on_stop: Callable[[], None]):
        self.collective = collective
        self.on_stop = on_stop
        self.keys = sorted(params)
        self.shapes = {key: tuple(params[key].shape) for key in self.keys}
        self.dtype = numpy.dtype(next(iter(params.values())).dtype) if params else numpy.dtype("float64")
        self.xp = backend.array_module(next(iter(params.values()))) if params else numpy
        offsets, position = {}, 0
        for key in self.keys:
            size = int(numpy.prod(self.shapes[key], dtype=numpy.int64))
            offsets[key] = (position, position + size)
            position += size
        self.offsets = offsets
        self.gradient_elements = position
        self.buffer = numpy.zeros(position + EXTRA_ELEMENTS, dtype=self.dtype)
        self._stop_requested = threading.Event()
        self.steps = 0
        self.rows = 0
        self.seconds_in_collectives = 0.0
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

    def __call__(self, grads: dict, loss: float, rows: int, batch_rows: int) -> tuple[dict, float]:
        share = rows / batch_rows
        self.rows += rows
        buffer = self.buffer
        for key in self.keys:
            start, stop = self.offsets[key]
            grad = grads.get(key)
            if grad is None:  # the loss does not depend on it on this worker's rows
                buffer[start:stop] = 0
            else:
                numpy.multiply(backend.to_numpy(grad).reshape(-1), share, out=buffer[start:stop])
        buffer[-2] = loss * share
        buffer[-1] = 1.0 if self._stop_requested.is_set() else 0.0
        began = time.perf_counter()
        self.collective.all_reduce(buffer)
        self.seconds_in_collectives += time.perf_counter() - began
        self.steps += 1
        if buffer[-1] > 0:
            self.on_stop()
        xp = self.xp
        reduced = {key: xp.asarray(buffer[start:stop].reshape(self.shapes[key]))
                   for key, (start, stop) in self.offsets.items()}
        return reduced, float(buffer[-2])


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
