"""The model cache: published versions loaded once per process, each with its own batcher.

``LoadedVersion`` is a version ready to answer: its ``Predictor`` (checksums verified on load),
the input specs requests are checked against, and a ``DynamicBatcher`` that alone runs the model.
Loading warms the model up (forwards at batch size 1 and at the largest batch) before the version
is handed out, so its first request does not pay for plan compilation; the warm-up also times the
largest batch, which tells the batcher which batches are quick enough to run on the serving event
loop and which go to a worker thread (see ``webapp.serving.batcher``).

``ModelCache`` keeps up to ``capacity`` versions (least recently used goes first; its batcher
finishes the requests it holds) and loads each version once even when several threads ask.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy

from engine.inference import Predictor
from webapp.serving.batcher import DEFAULT_INLINE_SECONDS, DynamicBatcher
from webapp.serving.inputs import DTYPES, InputSpec, output_arrays

log = logging.getLogger(__name__)


class LoadedVersion:
    def __init__(self, *, endpoint_id: int, endpoint: str, number: int, path: str | Path, max_batch_size: int,
                 max_queue_delay: float, max_queue_size: int, on_batch: Callable | None = None,
                 inline_seconds: float = DEFAULT_INLINE_SECONDS):
        started = time.perf_counter()
        self.endpoint_id, self.endpoint, self.number, self.path = endpoint_id, endpoint, number, str(path)
        self.predictor = Predictor.load(path)
        types = self.predictor.model.input_types
        self.specs = [InputSpec(name, tuple(types[name].shape), types[name].dtype)
                      for name in self.predictor.feature_inputs]
        self.schema = self.predictor.schema
        self.manifest = self.predictor.manifest
        self.forward_seconds = self._warm_up(max_batch_size)
        self.batcher = DynamicBatcher(
            self.run_batch, name=f"{endpoint}-v{number}", max_batch_size=max_batch_size,
            max_queue_delay=max_queue_delay, max_queue_size=max_queue_size,
            on_batch=(lambda instances, requests: on_batch(endpoint_id, number, instances, requests))
            if on_batch is not None else None,
            forward_seconds=self.forward_seconds, forward_rows=max_batch_size, inline_seconds=inline_seconds,
        )
        log.info("loaded %s v%s from %s in %.0f ms (%d instances in %.2f ms: batches up to %d run on the event "
                 "loop)", endpoint, number, path, 1000 * (time.perf_counter() - started), max_batch_size,
                 1000 * self.forward_seconds, self.batcher.inline_rows)

    def configure(self, *, max_batch_size: int, max_queue_delay: float, max_queue_size: int) -> None:
        """New batching limits take effect with the next batch."""
        batcher = self.batcher
        batcher.max_batch_size, batcher.max_queue_delay, batcher.max_queue_size = (
            max_batch_size, max_queue_delay, max_queue_size)

    def _warm_up(self, max_batch_size: int) -> float:
        """Compile the plans of the smallest and largest batch; the best of three timings of the largest.
        Also records ``outputs``: what a prediction returns, by name (dtype, shape after the batch
        axis), so that metadata declares every output before any request is served."""
        timings = []
        for rows in (*sorted({1, max_batch_size}), max_batch_size, max_batch_size):
            feeds = {spec.name: numpy.zeros((rows, *[size or 1 for size in spec.instance_shape]), DTYPES[spec.dtype])
                     for spec in self.specs}
            started = time.perf_counter()
            result = self.predictor.predict(feeds, batch_size=1 << 30)
            timings.append(time.perf_counter() - started)
            if not hasattr(self, "outputs"):
                self.outputs = {name: (numpy.asarray(array).dtype.name, tuple(numpy.asarray(array).shape[1:]))
                                for name, array in output_arrays(result).items()}
        return min(timings[-3:])

    def run_batch(self, requests: list[dict]) -> list[dict]:
        """The predictions of several requests in one forward pass, split back per request."""
        if len(requests) == 1:
            return [self.predictor.predict(requests[0], batch_size=1 << 30)]
        sizes = [len(next(iter(inputs.values()))) for inputs in requests]
        joined = {spec.name: numpy.concatenate([inputs[spec.name] for inputs in requests]) for spec in self.specs}
        result = self.predictor.predict(joined, batch_size=1 << 30)
        pieces = []
        start = 0
        for size in sizes:
            stop = start + size
            pieces.append(_slice(result, start, stop))
            start = stop
        return pieces

    def close(self) -> None:
        self.batcher.close()


def _slice(result: dict, start: int, stop: int) -> dict:
    piece = {}
    for key, value in result.items():
        if key == "outputs":
            piece[key] = {name: array[start:stop] for name, array in value.items()}
        else:
            piece[key] = value[start:stop]
    return piece


class ModelCache:
    def __init__(self, *, capacity: int = 16, on_batch: Callable | None = None,
                 inline_seconds: float = DEFAULT_INLINE_SECONDS):
        self.capacity = capacity
        self.on_batch = on_batch
        self.inline_seconds = inline_seconds
        self._loaded: collections.OrderedDict[tuple, LoadedVersion] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def peek(self, endpoint_id: int, number: int, path: str) -> LoadedVersion | None:
        """The loaded version if it is in the cache (no loading, safe on the event loop)."""
        key = (endpoint_id, number, path)
        loaded = self._loaded.get(key)
        if loaded is not None:
            with self._lock:
                if key in self._loaded:
                    self._loaded.move_to_end(key)
        return loaded

    def load(self, *, endpoint_id: int, endpoint: str, number: int, path: str, max_batch_size: int,
             max_queue_delay: float, max_queue_size: int) -> LoadedVersion:
        """The version, loaded and warmed up if it was not in the cache (blocking: call from a thread)."""
        key = (endpoint_id, number, path)
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is not None:
                loaded.configure(max_batch_size=max_batch_size, max_queue_delay=max_queue_delay,
                                 max_queue_size=max_queue_size)
                return loaded
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                loaded = self._loaded.get(key)
            if loaded is None:
                loaded = LoadedVersion(endpoint_id=endpoint_id, endpoint=endpoint, number=number, path=path,
                                       max_batch_size=max_batch_size, max_queue_delay=max_queue_delay,
                                       max_queue_size=max_queue_size, on_batch=self.on_batch,
                                       inline_seconds=self.inline_seconds)
                evicted = []
                with self._lock:
                    self._loaded[key] = loaded
                    self._loading.pop(key, None)
                    while len(self._loaded) > self.capacity:
                        evicted.append(self._loaded.popitem(last=False)[1])
                for old in evicted:
                    log.info("unloading %s v%s (cache full)", old.endpoint, old.number)
                    old.close()
        return loaded

    def drop(self, endpoint_id: int) -> None:
        """Unload every version of an endpoint (it was deleted)."""
        with self._lock:
            keys = [key for key in self._loaded if key[0] == endpoint_id]
            dropped = [self._loaded.pop(key) for key in keys]
        for loaded in dropped:
            loaded.close()

    def clear(self) -> None:
        with self._lock:
            dropped = list(self._loaded.values())
            self._loaded.clear()
        for loaded in dropped:
            loaded.close()
