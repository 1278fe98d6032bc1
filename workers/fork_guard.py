"""Database work in a thread of the worker's main process, kept apart from its forks.

Celery's main process forks a new pool process whenever one ends (a task killed, a rank lost). A
fork copies every lock as it is at that instant but only the forking thread: had the watchdog's or
the sweeps' thread been inside SQLite (or a database driver) at that moment, the new pool process
inherits a mutex nobody will release, and its first database connection waits forever (seen: a
replaced pool process stuck in ``sqlite3.connect``, holding a slot of the pool for good). So those
threads do their database work inside ``main_process_db_work()``, and a fork waits until it is done.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_lock = threading.Lock()


def _release_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # the child has no thread doing database work: a fresh, free lock


os.register_at_fork(before=lambda: _lock.acquire(), after_in_parent=lambda: _lock.release(),
                    after_in_child=_release_in_child)


@contextlib.contextmanager
def main_process_db_work():
    """Hold off forks of this process while the block runs (it should be short: a fork waits)."""
    with _lock:
        yield


def repeat_db_work(stop: threading.Event, interval: float, work: Callable[[], None], *, what: str) -> None:
    """``work()`` every ``interval`` seconds until ``stop`` is set, each time inside
    ``main_process_db_work()``, a failure logged and retried at the next turn (a database hiccup must
    not end the loop), and no connection held open between turns (or across a fork)."""
    from django.db import close_old_connections, connection  # noqa: PLC0415 - the guard itself needs no Django

    while not stop.is_set():
        with main_process_db_work():  # a pool process forked meanwhile would inherit held locks
            try:
                work()
            except Exception:
                log.exception("%s failed; retrying", what)
            finally:
                close_old_connections()
                connection.close()
        stop.wait(interval)
