"""The engine's threads: one setting for how many cores a process uses, honoured by NumPy's BLAS
and by a persistent pool of the engine's own that splits batch-wise work BLAS does not parallelize
(element-wise chains, im2col and col2im copies, pooling, per-channel sums) and, during a training
step (``owned_cores``), the matrix products too, BLAS then running on one thread in each piece.

NumPy releases the GIL inside ufuncs and copies, so Python threads that each run a slice of one
large array operation use several cores; what such a slice must be worth is ``grain`` elements,
below which a split costs more in hand-offs than it saves and the work runs on the calling thread.

The setting, in order of precedence: ``set_threads(n)`` or ``with threads(n):`` (the ``threads=``
argument of ``Trainer`` and ``fit``), the ``NETFORGE_THREADS`` environment variable, and the cores
this process may run on (``os.sched_getaffinity``). Several processes on one machine (distributed
ranks) should split the cores between them by giving each its share.

Results do not depend on scheduling: ``split`` cuts a range into the same pieces for the same thread
count and size, every piece writes its own part of the output, and ``map_reduce`` combines partial
results in piece order. A run is therefore bit-identical to another with the same seed and thread
count (BLAS splits its products deterministically too).

Typical use, from an op (``for_rows`` further cuts each piece into cache-sized runs)::

    def chunk(start, stop):
        numpy.multiply(g[start:stop], mask[start:stop], out=dx[start:stop])
    parallel.run(len(g), chunk, work=g.size)

Only NumPy arrays go to the pool: on CuPy arrays ``for_rows`` and ``reduce_rows`` make one call
over the whole batch (and ops do the same), as the GPU parallelizes it already.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator

import numpy

GRAIN = 1 << 17  # elements a piece of split work is worth at least (about 40 us of a simple ufunc, as a hand-off)
ENVIRONMENT_VARIABLE = "NETFORGE_THREADS"

_lock = threading.Lock()
_threads: int | None = None  # None until first asked: then the environment's or the machine's
_grain = GRAIN
_blas = None  # threadpoolctl's controllers of the loaded BLAS libraries, found once
_blas_single = 0  # how many splits are running now (BLAS stays on one thread while any is)
_pool: _Pool | None = None


def default_threads() -> int:
    """``NETFORGE_THREADS`` when set (a positive integer), else the cores this process may use."""
    raw = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{ENVIRONMENT_VARIABLE} must be a positive integer (a thread count), got {raw!r}")
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_count() -> int:
    """The number of threads the engine computes with in this process."""
    if _threads is None:
        set_threads(None)
    return _threads


def grain() -> int:
    return _grain


def set_threads(count: int | None, *, grain: int | None = None) -> int:
    """Use ``count`` threads from now on (``None``: the default above), in the engine's pool and in
    NumPy's BLAS; ``grain`` changes the smallest piece of split work (tests set 1 to split tiny
    arrays). Returns the count in force."""
    global _threads, _grain
    if count is None:
        count = default_threads()
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"threads must be a positive integer, got {count!r}")
    with _lock:
        if grain is not None:
            if grain < 1:
                raise ValueError(f"grain must be a positive integer, got {grain!r}")
            _grain = grain
        if count != _threads:
            _threads = count
            if not _blas_single:
                _set_blas_threads(count)
    return count


def _blas_controllers() -> list:
    global _blas
    if _blas is None:
        try:
            import threadpoolctl  # noqa: PLC0415 - optional: the engine runs without it
        except ImportError:  # the engine still runs; BLAS keeps its own setting
            _blas = []
        else:
            _blas = list(threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers)
    return _blas


def find_blas_libraries() -> None:
    """Look again for loaded BLAS libraries (one loaded after the first look: SciPy's, which the
    convolutions' compiled kernels call) and hold them all to the setting in force."""
    global _blas
    with _lock:
        _blas = None
        _set_blas_threads(1 if _blas_single else (_threads if _threads is not None else default_threads()))


def _set_blas_threads(count: int) -> None:
    for controller in _blas_controllers():
        controller.set_num_threads(count)


# The interpreter's switch interval while the pool's threads work (Python's default is 5 ms): a
# thread that finishes a NumPy call while another holds the GIL waits for it to be let go, and a
# holder that lets it go and takes it back at once (the next short call) can keep it for a whole
# interval. 0.2 ms made a small ResNet's steps on 2 threads 2-3% faster, VGG's and LeNet-5's 1-2%
# (medians of about 200 steps alternating with the default, in one process).
SWITCH_INTERVAL_SECONDS = 0.0002
_switch_interval_before: float | None = None


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread while the pool's threads run pieces that may call it: each piece is one
    core's work already, and nested BLAS threads would only contend for the same cores. The
    interpreter switches threads more often meanwhile (SWITCH_INTERVAL_SECONDS)."""
    global _blas_single, _switch_interval_before
    with _lock:
        _blas_single += 1
        if _blas_single == 1:
            _set_blas_threads(1)
            _switch_interval_before = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_INTERVAL_SECONDS, _switch_interval_before))
    try:
        yield
    finally:
        with _lock:
            _blas_single -= 1
            if not _blas_single:
                _set_blas_threads(_threads)
                sys.setswitchinterval(_switch_interval_before)


@contextlib.contextmanager
def threads(count: int | None, *, grain: int | None = None) -> Iterator[int]:
    """``set_threads`` for the duration of a ``with`` block, the previous setting restored after."""
    previous_count, previous_grain = thread_count(), _grain
    try:
        yield set_threads(count, grain=grain)
    finally:
        set_threads(previous_count, grain=previous_grain)


@contextlib.contextmanager
def owned_cores() -> Iterator[None]:
    """For the duration (a training step), BLAS runs on one thread and the engine's pool does all
    the splitting, matrix products included (``engine.ops.linalg`` splits their rows): BLAS worker
    threads spin for a while after each multi-threaded call (OpenBLAS: about 0.1 s), and would take
    the cores from the pool's threads in the element-wise work that follows."""
    if thread_count() == 1:
        yield
        return
    with _single_threaded_blas():
        yield


def cores_owned() -> bool:
    """Whether a training step holds the cores now (``owned_cores``): products then split on the pool."""
    return _blas_single > 0


def split(size: int, work: int | None = None, head_start: int = 0) -> list[tuple[int, int]]:
    """Contiguous (start, stop) pieces covering range(size): one per thread, fewer when ``work``
    (elements, ``size`` by default) does not give each piece ``grain`` of them. ``head_start``:
    work the first piece (the calling thread's, which starts at once, while the pool's workers wake
    50-100 us later on a virtual machine's idle cores) takes on top of an even share, taken from the
    others alike; at most doubling its share. Depends only on the arguments, the thread count and
    the grain, never on timing."""
    work = size if work is None else work
    pieces = max(1, min(thread_count(), size, work // _grain))
    bounds, start = [], 0
    if pieces > 1 and head_start > 0:
        share = work / pieces
        first_work = share + min(head_start * (pieces - 1) / pieces, share)
        first = min(size - (pieces - 1), max(1, round(size * first_work / work)))
        bounds.append((0, first))
        start, pieces, size = first, pieces - 1, size - first
    base, extra = divmod(size, pieces)
    for index in range(pieces):
        stop = start + base + (index < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def run(size: int, chunk: Callable[[int, int], None], *, work: int | None = None, head_start: int = 0) -> None:
    """Call ``chunk(start, stop)`` for each piece of ``split(size, work, head_start)``, the pieces in
    parallel on the pool (the calling thread takes the first); returns when all are done. ``chunk``
    must write only its own part of any shared output."""
    run_pieces(size, lambda index, start, stop: chunk(start, stop), work=work, head_start=head_start)


def run_pieces(size: int, chunk: Callable[[int, int, int], None], *, work: int | None = None,
               head_start: int = 0) -> None:
    """``run`` with the piece's index first, ``chunk(index, start, stop)``, for work that keeps
    buffers per piece (two pieces never run at once on the same index)."""
    pieces = split(size, work, head_start)
    if len(pieces) == 1:
        chunk(0, 0, size)
        return
    with _single_threaded_blas():
        _get_pool().run([lambda index=index, start=start, stop=stop: chunk(index, start, stop)
                         for index, (start, stop) in enumerate(pieces)])


def map_reduce(size: int, chunk: Callable[[int, int], object], combine: Callable[[object, object], object], *,
               work: int | None = None):
    """``chunk(start, stop)`` on each piece as ``run`` does, their results combined left to right in
    piece order (so the same pieces always sum in the same order)."""
    pieces = split(size, work)
    if len(pieces) == 1:
        return chunk(0, size)
    with _single_threaded_blas():
        results = _get_pool().run([lambda start=start, stop=stop: chunk(start, stop) for start, stop in pieces])
    total = results[0]
    for result in results[1:]:
        total = combine(total, result)
    return total


RUN_VALUES = 1 << 16  # elements of a run: a few arrays of this many float32 stay in a core's L2 cache


def runs(start: int, stop: int, row_values: int, run_values: int = RUN_VALUES) -> list[tuple[int, int]]:
    """[start, stop) cut into runs of whole rows holding about ``run_values`` elements (one row at
    least), so that a chain of passes over a run finds it in cache instead of memory."""
    step = max(1, run_values // max(row_values, 1))
    return [(low, min(low + step, stop)) for low in range(start, stop, step)]


def for_rows(xp, size: int, row_values: int, body: Callable[[int, int], None], *, cost: int = 1) -> None:
    """``body(low, high)`` over runs of rows of a (size, ...) batch with ``row_values`` elements a
    row: on NumPy split across the threads, each piece in cache-sized runs; one call on CuPy.
    ``cost`` weighs an element against a simple ufunc's (a tanh is worth several), so that costly
    work splits at smaller sizes."""
    if xp is not numpy:
        body(0, size)
        return

    def piece(start: int, stop: int) -> None:
        for low, high in runs(start, stop, row_values):
            body(low, high)

    run(size, piece, work=size * row_values * cost)


def reduce_rows(xp, size: int, row_values: int, body: Callable[[int, int], object],
                combine: Callable[[object, object], object]):
    """``for_rows`` whose runs return partial results, combined left to right in row order."""
    if xp is not numpy:
        return body(0, size)

    def piece(start: int, stop: int):
        total = None
        for low, high in runs(start, stop, row_values):
            partial = body(low, high)
            total = partial if total is None else combine(total, partial)
        return total

    return map_reduce(size, piece, combine, work=size * row_values)


def _get_pool() -> _Pool:
    global _pool
    wanted = thread_count() - 1
    if _pool is None or _pool.size < wanted:
        with _lock:
            if _pool is None or _pool.size < wanted:
                _pool = _Pool(wanted, previous=_pool)
    return _pool


class _Pool:
    """Daemon worker threads that live as long as the process and wait on one queue. A submitting
    thread hands the workers a job (its list of tasks) and works on it too: every thread claims the
    next unclaimed task until none is left, so a worker that wakes late costs nothing (the submitter
    has taken its task) and a slow core gets less. Which thread runs a task never changes what it
    computes. Several threads may submit at once (a server's request threads): each waits only for
    its own tasks."""

    def __init__(self, size: int, previous: _Pool | None = None):
        self.size = size
        self.jobs = previous.jobs if previous is not None else queue.SimpleQueue()
        started = previous.size if previous is not None else 0
        for index in range(started, size):
            threading.Thread(target=self._work, name=f"netforge-parallel-{index}", daemon=True).start()

    def _work(self) -> None:
        while True:
            _claim_and_run(*self.jobs.get())

    def run(self, tasks: list[Callable[[], object]]) -> list:
        results: list = [None] * len(tasks)
        # One plain lock per task, held until the task is done: the cheapest wait Python has
        # (threading.Semaphore is written in Python over a Condition).
        done = [threading.Lock() for _ in tasks]
        for lock in done:
            lock.acquire()
        job = (tasks, results, done, itertools.count())
        for _ in range(min(self.size, len(tasks) - 1)):
            self.jobs.put(job)
        _claim_and_run(*job)
        for lock in done:
            lock.acquire()
        values = []
        for ok, value in results:
            if not ok:
                raise value
            values.append(value)
        return values


def _claim_and_run(tasks: list, results: list, done: list, claims) -> None:
    """Run tasks of a job while any is unclaimed (``next`` on an itertools.count is atomic)."""
    while (index := next(claims)) < len(tasks):
        try:
            results[index] = (True, tasks[index]())
        except BaseException as error:  # noqa: BLE001 - handed to the submitting thread, which re-raises it
            results[index] = (False, error)
        done[index].release()


__all__ = ["GRAIN", "RUN_VALUES", "cores_owned", "default_threads", "for_rows", "grain", "map_reduce", "owned_cores",
           "reduce_rows", "run", "run_pieces", "runs", "set_threads", "split", "thread_count", "threads"]
