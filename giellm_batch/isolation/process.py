"""Per-record work in a disposable child process: a record that crashes, hangs or exhausts memory
costs that record, never the Spark task, the Python worker or the run (executor code).

Why a child process: a per-record step calls native code (MeCab, the tokenizer, JSON, the
grammar builder). A segfault there kills the Python worker, and Spark then fails the Spark task,
then the run; a hang holds the Spark task for ever; an allocation past the machine's memory brings the
kernel's OOM killer. None of these is an exception that `try` can catch. So a step hands a batch
of records to `map_isolated`, which forks a child that works through them in order while the
parent (the Spark Python worker) watches:

- the child writes the index of the record it is working on into a shared page before each
  record, and streams finished results back through a pipe;
- the child dies (signal, abort) -> `crash`; no record finishes for `record_timeout_seconds`
  -> the child is killed -> `timeout`; the child's address space may grow by at most
  `record_memory_bytes` beyond the parent's (RLIMIT_AS), an allocation past it raises
  MemoryError there -> `memory` (a SIGKILL the parent did not send, e.g. the OOM killer, also
  counts as `memory`);
- the record in flight is then run once more alone in a fresh child: if it fails again it is
  poisoned (the caller quarantines it with `Poisoned.reason`); if it passes alone the failure
  came from accumulated state and its result is kept. Work resumes in a fresh child after it.

The child inherits the batch by fork (nothing is copied up front) and leaves with `os._exit`, so
no Spark or atexit code runs in it. A batch costs one fork (milliseconds) plus pickling its
results. `enabled: false` runs the work in-process, without this protection.
"""

from __future__ import annotations

import mmap
import os
import pickle
import resource
import select
import signal
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

POISON_KINDS = ("crash", "timeout", "memory")
_FLUSH_RECORDS = 64  # results per pipe message at most ...
_FLUSH_SECONDS = 0.2  # ... or sooner when they are slow to come
_POLL_SECONDS = 0.05
_MEMORY_EXIT = 86  # the child's exit status after a MemoryError


@dataclass(frozen=True)
class IsolationLimits:
    """Bounds on one record's work (settings.ExecutionSettings builds it)."""

    enabled: bool = True
    record_timeout_seconds: float = 60.0  # no record may take longer (timed from the previous one's end)
    record_memory_bytes: int = 4 << 30  # address space the child may add beyond the worker's


@dataclass(frozen=True)
class Poisoned(Generic[T]):
    """A record that failed twice, the second time alone in a fresh child."""

    kind: str  # crash | timeout | memory (POISON_KINDS)
    detail: str  # the signal, the time bound or the memory bound, in words

    def reason(self, stage: str) -> str:
        """"<kind>: <stage>: <detail>": quarantine reasons start with the kind (records.quarantine_rows)."""
        return f"{self.kind}: {stage}: {self.detail}"


def is_poison_reason(reason: object) -> bool:
    return isinstance(reason, str) and reason.split(":", 1)[0] in POISON_KINDS


def map_isolated(items: Sequence[T], work: Callable[[T], R], limits: IsolationLimits) -> list[R | Poisoned[T]]:
    """`work(item)` for each item, in order; an item whose work kills, hangs or exhausts its child
    process (twice, the second time alone) yields `Poisoned` instead. `work` should not raise: an
    exception escaping it also makes its item `Poisoned` (kind crash)."""
    if not limits.enabled or not items:
        return [work(item) for item in items]
    results: dict[int, Any] = {}
    pending = list(range(len(items)))
    while pending:
        done, failed = _run_child(items, pending, work, limits)
        results.update(done)
        if failed is None:
            break
        index = failed[0]
        alone_done, alone_failed = _run_child(items, [index], work, limits)
        if alone_failed is None:
            results[index] = alone_done[index]  # state built up over earlier records, not this one
        else:
            results[index] = Poisoned(alone_failed[1], alone_failed[2])
        pending = [i for i in pending if i not in results]
    return [results[i] for i in range(len(items))]


def _run_child(items: Sequence[T], order: list[int], work: Callable[[T], R],
               limits: IsolationLimits) -> tuple[dict[int, Any], tuple[int, str, str] | None]:
    """Run `work` over `items[i] for i in order` in one child: (results by index, None) or, when the
    child failed, (the results it sent, (index in flight, kind, detail))."""
    current = mmap.mmap(-1, 8)  # shared with the child: position in `order` of the record in flight
    struct.pack_into("q", current, 0, -1)
    read_fd, write_fd = os.pipe()
    size = _address_space()
    memory_limit = size + limits.record_memory_bytes if size else 0  # 0: no bound known, none set
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _child(items, order, work, current, write_fd, memory_limit)
    os.close(write_fd)
    try:
        return _watch(pid, read_fd, order, current, limits)
    finally:
        os.close(read_fd)
        current.close()


def _child(items: Sequence[Any], order: list[int], work: Callable[[Any], Any], current: mmap.mmap,
           write_fd: int, memory_limit: int) -> None:
    status = 0
    out: Any = None
    try:
        _die_with_parent()
        _default_fatal_signals()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if memory_limit and (hard == resource.RLIM_INFINITY or memory_limit < hard):
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, hard))
        out = os.fdopen(write_fd, "wb", buffering=0)
        batch: list[tuple[int, Any]] = []
        flushed = time.monotonic()
        for position, index in enumerate(order):
            struct.pack_into("q", current, 0, position)
            batch.append((index, work(items[index])))
            if len(batch) >= _FLUSH_RECORDS or time.monotonic() - flushed > _FLUSH_SECONDS:
                _send(out, ("results", batch))
                batch, flushed = [], time.monotonic()
        _send(out, ("results", batch))
        _send(out, ("end", None))
    except MemoryError:
        status = _MEMORY_EXIT
    except BaseException as exc:  # a work function that raised: its record is a crash case
        try:
            if out is not None:
                _send(out, ("raised", f"{type(exc).__name__}: {exc}"[:300]))
        except BaseException:
            pass
        status = 1
    finally:
        os._exit(status)


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the thread that forked it ends (a killed or cancelled Spark
    worker), so a hanging child never outlives its watcher."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _default_fatal_signals() -> None:
    """A fault kills the child at once, named by its own signal, and leaves no core file.

    Why: libraries loaded in the worker install crash handlers (faulthandler; torch's turns SIGSEGV
    into abort()). In a forked child such a handler can wait for a lock held by a thread that was
    not forked: a segfault then hangs until the time bound and is reported as `timeout`."""
    import faulthandler

    faulthandler.disable()
    for sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT):
        signal.signal(sig, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def _send(out: Any, message: Any) -> None:
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(struct.pack("q", len(blob)) + blob)


def _watch(pid: int, read_fd: int, order: list[int], current: mmap.mmap,
           limits: IsolationLimits) -> tuple[dict[int, Any], tuple[int, str, str] | None]:
    results: dict[int, Any] = {}
    buffer = b""
    ended, raised = False, ""
    last_position, last_progress = -1, time.monotonic()
    timed_out = eof = False
    while not eof:
        ready, _, _ = select.select([read_fd], [], [], _POLL_SECONDS)
        if ready:
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                eof = True
            buffer += chunk
            while len(buffer) >= 8:
                size = struct.unpack_from("q", buffer, 0)[0]
                if len(buffer) < 8 + size:
                    break
                kind, payload = pickle.loads(buffer[8:8 + size])
                buffer = buffer[8 + size:]
                if kind == "results":
                    results.update(payload)
                elif kind == "end":
                    ended = True
                else:
                    raised = str(payload)
            continue
        position = struct.unpack_from("q", current, 0)[0]
        if position != last_position:
            last_position, last_progress = position, time.monotonic()
        elif time.monotonic() - last_progress > limits.record_timeout_seconds:
            os.kill(pid, signal.SIGKILL)
            timed_out = True
            break
    status = _reap(pid)
    if ended and not timed_out:
        return results, None
    position = struct.unpack_from("q", current, 0)[0]
    index = order[max(position, 0)]
    if timed_out:
        return results, (index, "timeout", f"no result within {limits.record_timeout_seconds:g} s "
                                           "(execution.record_timeout_seconds)")
    return results, (index, *_death(status, raised, limits))


def _reap(pid: int) -> int | None:
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # SIGCHLD ignored by a parent process: the status is gone
        return None


def _death(status: int | None, raised: str, limits: IsolationLimits) -> tuple[str, str]:
    """(kind, detail) of a child that ended without finishing."""
    memory = f"more than {limits.record_memory_bytes >> 20} MiB (execution.record_memory_bytes)"
    if raised:
        return "crash", f"the step raised {raised}"
    if status is None:
        return "crash", "the process died (exit status unknown)"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        if sig == signal.SIGKILL:  # not sent by the watcher: the kernel's OOM killer, as a rule
            return "memory", f"killed by {name} (out of memory?) while allocating {memory}"
        return "crash", f"the process died of signal {name}"
    code = os.WEXITSTATUS(status)
    if code == _MEMORY_EXIT:
        return "memory", f"MemoryError: needed {memory}"
    return "crash", f"the process exited with status {code}"


def _address_space() -> int:
    """This process's current virtual size in bytes (the child starts with the same)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0
