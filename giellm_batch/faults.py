"""Fault injection for crash-safety tests: `GIELLM_FAULT=<point>` makes a run fail at that point.

Points: `before_first_write` (driver, after inference, before any table write),
`between_writes` (driver: the `sentences` write fails while the other result tables commit), `after_last_write` (driver,
after the `articles` commit, before the write intent is settled), `in_task` (executor, inside
the inference task on its first attempt only, so Spark's task retry can recover when allowed).
"""

from __future__ import annotations

import os

FAULT_ENV = "GIELLM_FAULT"
POINTS = ("before_first_write", "between_writes", "after_last_write", "in_task")


class InjectedFault(RuntimeError):
    """Raised on purpose by a test through GIELLM_FAULT."""


def configured() -> str:
    point = os.environ.get(FAULT_ENV, "")
    if point and point not in POINTS:
        raise ValueError(f"{FAULT_ENV}={point!r} is not one of {list(POINTS)}")
    return point


def check(point: str, configured_point: str) -> None:
    if point == configured_point:
        raise InjectedFault(f"injected fault at {point} ({FAULT_ENV})")


def check_in_task(configured_point: str) -> None:
    """Executor side: fail the first attempt of the task."""
    if configured_point != "in_task":
        return
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is not None and context.attemptNumber() == 0:
        raise InjectedFault(f"injected fault in task {context.taskAttemptId()} ({FAULT_ENV})")
