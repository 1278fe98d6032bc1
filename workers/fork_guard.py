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
import os
import threading

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
