"""Independent training and evaluation runs side by side, one CPU core each.

A 2-core CPU trains two tiny models at once faster than one model on both cores: the tiny models'
ops are too small to split well across threads. Every job runs in its own process with one torch
thread, whatever the number of workers, so results do not depend on ``--jobs``. A job's console
output (LAVIS's logs, progress bars) goes to its own log file.
"""
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path


def start_worker() -> None:
    """A worker's set-up: one torch thread, and an end with the process that started it."""
    import torch

    torch.set_num_threads(1)
    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()


def exit_with_parent() -> None:
    """Wait until the parent process has ended, then end this one. A pool's workers outlive a parent
    that is killed (SIGTERM, ``timeout``): each would finish its training job, then wait for the
    next one forever, holding its memory. For spawned workers (``Jobs``): a forked one would hold
    its siblings' copies of the parent's pipe ends."""
    multiprocessing.connection.wait([multiprocessing.parent_process().sentinel])
    os._exit(1)


def logged(log: Path, function, *args):
    """``function(*args)`` with this process's stdout and stderr, down to the file descriptors, in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "w") as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        try:
            return function(*args)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


class Jobs:
    """A pool of ``workers`` processes (spawned, one torch thread each, ending with this process)."""

    def __init__(self, workers: int):
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=start_worker)

    def submit(self, log: Path, function, *args) -> Future:
        """Run ``function(*args)`` in a worker, its console output in ``log``."""
        return self.pool.submit(logged, Path(log), function, *args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.shutdown(cancel_futures=exc[0] is not None)


def default_workers() -> int:
    return len(os.sched_getaffinity(0))
