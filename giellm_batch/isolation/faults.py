"""Fault injection for crash-safety tests: `GIELLM_FAULT=<point>` makes a run fail at that point.

Points: `before_first_write` (driver, after inference, before any table write),
`between_writes` (driver: the `sentences` write fails while the other result tables commit), `after_last_write` (driver,
after the `articles` commit, before the write intent is settled), `in_task` (executor, inside
the inference Spark task on its first attempt only, so Spark's task retry can recover when allowed).
"""

from __future__ import annotations

import os

from giellm_batch.isolation.process import POISON_KINDS

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


def check_in_spark_task(configured_point: str) -> None:
    """Executor side: fail the first attempt of the running Spark task (fault point `in_task`)."""
    if configured_point != "in_task":
        return
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is not None and context.attemptNumber() == 0:
        raise InjectedFault(f"injected fault in Spark task {context.taskAttemptId()} ({FAULT_ENV})")


# Per-record poison, for the isolation tests and bench/poison.py: with GIELLM_TEST_POISON=1 in a
# worker's environment, a record whose text holds `GIELLM-POISON:<stage>:<kind>` makes that
# stage's per-record code segfault (a null pointer read), hang, or allocate without end. Without
# the variable the check is one boolean test; nothing in the job's plan or config can arm it.
POISON_ENV = "GIELLM_TEST_POISON"
POISON_LOG_ENV = "GIELLM_TEST_POISON_LOG"  # optional: a file that gets one line per fault acted out
POISON_STAGES = ("read", "segment", "prompt", "generate", "parse")
_POISON_ARMED = os.environ.get(POISON_ENV) == "1"


def poison_marker(stage: str, kind: str) -> str:
    return f"GIELLM-POISON:{stage}:{kind}"


def poison_check(stage: str, text: object) -> None:
    """Executor side, inside the stage's per-record work: act out the marked record's fault."""
    if not _POISON_ARMED:
        return
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str) or f"GIELLM-POISON:{stage}:" not in text:
        return
    rest = text.split(f"GIELLM-POISON:{stage}:", 1)[1]
    kind = next((k for k in POISON_KINDS if rest.startswith(k)), "")
    if kind and os.environ.get(POISON_LOG_ENV):
        with open(os.environ[POISON_LOG_ENV], "a") as log:
            log.write(f"{stage} {kind}\n")
    if kind == "crash":
        import ctypes

        ctypes.string_at(0)  # SIGSEGV
    elif kind == "timeout":
        import time

        time.sleep(3600)
    elif kind == "memory":
        hoard = []
        for _ in range(1024):  # 64 GiB at most: touched pages, as a real leak would hold
            hoard.append(b"\x01" * (64 << 20))
