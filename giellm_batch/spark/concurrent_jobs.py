"""Spark jobs submitted from driver threads: independent actions side by side, reads in the background.

Why threads: Spark actions on one session from several driver threads run side by side (the
scheduler takes jobs from every thread). A small Delta commit or a short query spends much of its
time waiting on log I/O and job start-up, which another thread's job can fill. A thread pool is
enough: the work happens in the JVM and the executors, and the Python thread only waits on py4j.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def concurrently(actions: list[Callable[[], Any]], threads: int = 4) -> None:
    """Run independent driver-side Spark actions (writes to different tables) from a few threads.

    How much this buys depends on spare cores: a Delta commit keeps nearly two cores of JVM busy,
    so on a small driver the overlap is small (docs/measurements.md). Every action runs even if
    another fails; the first error is raised.
    """
    if len(actions) <= 1:
        for action in actions:
            action()
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(actions)), thread_name_prefix="giellm-write") as pool:
        futures = [pool.submit(action) for action in actions]
    for future in futures:
        future.result()  # raises the first action's error, in submission order


def in_background(read: Callable[..., T], *args: Any) -> Future[T]:
    """Start a driver-side read (a small Spark query) on its own thread; the caller takes its
    `result()` when it needs it, meanwhile other steps run."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="giellm-read")
    future = pool.submit(read, *args)
    pool.shutdown(wait=False)  # the thread ends with the read
    return future
