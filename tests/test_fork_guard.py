"""A fork of the worker's main process waits while its watchdog or sweeps thread does database
work (workers.fork_guard): a pool process forked mid-query inherited a held SQLite lock and hung in
its first connect, keeping a pool slot for good."""

from __future__ import annotations

import os
import threading

from workers.fork_guard import main_process_db_work


def test_a_fork_waits_until_the_database_work_of_another_thread_is_done():
    inside, leave = threading.Event(), threading.Event()
    done = []

    def database_work():
        with main_process_db_work():
            inside.set()
            leave.wait(5)
            done.append("left")

    worker = threading.Thread(target=database_work)
    worker.start()
    assert inside.wait(5)
    threading.Timer(0.2, leave.set).start()
    pid = os.fork()
    if pid == 0:  # the child: the guard is free there (no thread of the parent came with it)
        with main_process_db_work():
            pass
        os._exit(0)
    assert done == ["left"]  # the fork returned only once the block had ended
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    worker.join(5)
