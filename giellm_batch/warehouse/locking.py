"""One writer per warehouse: a lock file created atomically, kept alive by a heartbeat.

The file is created with the warehouse storage's create-if-absent (giellm_batch.storage): on a
local or mounted disk link(2), which fails if the name exists (Hadoop's local filesystem would
not do: its exists-then-create races); elsewhere Hadoop's `FileSystem.create(path,
overwrite=false)`, atomic on HDFS (on S3 it needs s3a conditional writes). A run
takes the lock before it writes anything; a second run that finds a live holder stops at once with
a message naming it, having written nothing.

Why a heartbeat: a killed driver never releases its lock, and a fixed age limit either blocks
retries for hours or lets a second run into a long live one. The holder rewrites the lock's
`heartbeat_at` every `stale_after / 6` seconds from a daemon thread, so

- a lock whose heartbeat is older than `stale_after` seconds belongs to a dead run and is taken
  over (the taker records that run as failed/lost in `runs`);
- a lock held on this very host by a process that no longer exists (pid gone, or reused by
  another process: the start time differs) is dead at once: a scheduler's retry right after a
  kill needs no wait and no manual step;
- a live holder is never taken over, however long it runs.

If a holder finds its lock taken (it was paused longer than the bound), `Lease.check` raises
before its next table write instead of writing beside the new holder. `giellm-batch unlock`
removes a lock by hand for the rare case where nothing else applies.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from giellm_batch.storage import storage_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("giellm_batch.warehouse.locking")
DEFAULT_STALE_SECONDS = 120.0


class WarehouseLocked(RuntimeError):
    """Another run holds the warehouse; nothing was written by this one."""


class LockLost(RuntimeError):
    """This run's lock was taken over by another run (its heartbeat went stale); stop writing."""


class _LockFile:
    """The lock file, on whatever store holds the warehouse: create-if-absent, read, replace, delete."""

    def __init__(self, spark: SparkSession, warehouse: str) -> None:
        self.path = f"{warehouse.rstrip('/')}/_lock/LOCK"
        self.storage = storage_for(spark, self.path)

    def create(self, data: bytes) -> bool:
        return self.storage.create_exclusive(self.path, data)

    def read(self) -> bytes | None:
        try:
            return self.storage.read_bytes(self.path)
        except FileNotFoundError:  # absent (or released while we looked): no holder
            return None

    def modified(self) -> float | None:
        try:
            return self.storage.status(self.path).modified
        except FileNotFoundError:
            return None

    def replace(self, data: bytes) -> None:
        self.storage.write_bytes(self.path, data)  # atomic where the store allows: no half-written heartbeat

    def delete(self) -> None:
        self.storage.delete(self.path)


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _holder(data: bytes | None, modified: float | None = None) -> dict[str, Any] | None:
    """The lock's record; for an unreadable lock file (not written by this version, or damaged by
    hand), one whose heartbeat is the file's modification time, so it still goes stale."""
    if data is None:
        return None
    try:
        holder = json.loads(data.decode("utf-8"))
        if isinstance(holder, dict) and isinstance(holder.get("run_id"), str):
            holder.setdefault("holder", "unknown")
            holder.setdefault("acquired_at", holder.get("heartbeat_at"))
            return holder
    except ValueError:
        pass
    beat = datetime.fromtimestamp(modified, UTC) if modified is not None else datetime.now(UTC)
    return {"run_id": "unknown", "holder": "unknown", "acquired_at": beat.isoformat(),
            "heartbeat_at": beat.isoformat()}


def _record(run_id: str, acquired_at: str, stale_after: float) -> dict[str, Any]:
    pid = os.getpid()
    now = datetime.now(UTC).isoformat()
    return {"run_id": run_id, "holder": f"{socket.gethostname()}:{pid}", "host": socket.gethostname(),
            "boot_id": _boot_id(), "pid": pid, "pid_start": _process_start(pid), "acquired_at": acquired_at,
            "heartbeat_at": now, "stale_after_seconds": stale_after}


def why_dead(holder: dict[str, Any], stale_after: float, now: datetime | None = None) -> str | None:
    """Why the lock's holder is certainly dead, or None if it may be alive."""
    now = now or datetime.now(UTC)
    same_machine = holder.get("host") == socket.gethostname() and holder.get("boot_id") == _boot_id()
    if same_machine and isinstance(holder.get("pid"), int):
        start = _process_start(holder["pid"])
        if start is None or start != holder.get("pid_start"):
            return f"its process {holder['holder']} no longer exists"
    beat = holder.get("heartbeat_at") or holder.get("acquired_at")
    try:
        age = (now - datetime.fromisoformat(str(beat))).total_seconds()
    except ValueError:
        return None
    if age > stale_after:
        return f"its heartbeat is {age:.0f}s old (bound {stale_after:.0f}s)"
    return None


class Lease:
    """A held lock: refreshes its heartbeat in a daemon thread until released."""

    def __init__(self, lock: _LockFile, record: dict[str, Any], stale_after: float,
                 taken_over: dict[str, Any] | None) -> None:
        self.lock, self.record, self.stale_after = lock, record, stale_after
        self.taken_over = taken_over  # the dead holder's record, when this run took its lock over
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="giellm-lock-heartbeat", daemon=True)
        self._thread.start()

    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])

    def _beat(self) -> None:
        interval = max(0.2, self.stale_after / 6)
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # a missed beat is retried; only a stale bound's worth of misses matters
                log.exception("lock heartbeat of run %s failed", self.run_id)
            if self.lost:
                return

    def refresh(self) -> None:
        holder = _holder(self.lock.read())
        if holder is None or holder.get("run_id") != self.run_id:
            taker = holder.get("run_id") if holder else "nobody"
            self.lost = f"run {self.run_id} lost the warehouse lock (now held by {taker})"
            log.error("%s; it will stop before its next write", self.lost)
            return
        self.record = {**self.record, "heartbeat_at": datetime.now(UTC).isoformat()}
        self.lock.replace(json.dumps(self.record).encode("utf-8"))

    def check(self) -> None:
        """Raise LockLost if another run took this lock over; call before writing."""
        if self.lost:
            raise LockLost(self.lost)

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        holder = _holder(self.lock.read())
        if holder is not None and holder.get("run_id") == self.run_id:
            self.lock.delete()


def acquire(spark: SparkSession, warehouse: str, run_id: str,
            stale_after_seconds: float = DEFAULT_STALE_SECONDS) -> Lease:
    """Take the warehouse lock for `run_id` (taking over a dead holder's) or raise WarehouseLocked."""
    lock = _LockFile(spark, warehouse)
    record = _record(run_id, datetime.now(UTC).isoformat(), stale_after_seconds)
    data = json.dumps(record).encode("utf-8")
    taken_over = None
    for _attempt in range(3):
        if lock.create(data):
            return Lease(lock, record, stale_after_seconds, taken_over)
        raw = lock.read()
        holder = _holder(raw, lock.modified())
        if holder is None:
            continue  # released between our create and read: try again
        reason = why_dead(holder, stale_after_seconds)
        if reason is None:
            raise WarehouseLocked(
                f"warehouse {warehouse} is locked by run {holder['run_id']} ({holder['holder']}), alive: last "
                f"heartbeat {holder.get('heartbeat_at', holder['acquired_at'])}; this run wrote nothing. Retry "
                f"after it finishes (a dead holder is taken over once its heartbeat is {stale_after_seconds:.0f}s "
                f"old; `giellm-batch unlock --warehouse {warehouse}` removes a lock by hand).")
        if lock.read() != raw:
            continue  # it changed under us (a heartbeat or another taker): look again
        log.warning("taking over the lock of dead run %s (%s): %s", holder["run_id"], holder["holder"], reason)
        lock.delete()
        taken_over = {**holder, "dead_because": reason}
    raise WarehouseLocked(f"could not take the lock on {warehouse}; this run wrote nothing. Retry.")


def release(spark: SparkSession, warehouse: str, run_id: str | None = None) -> None:
    """Drop the lock: only `run_id`'s own, or any lock when run_id is None (`giellm-batch unlock`)."""
    lock = _LockFile(spark, warehouse)
    holder = _holder(lock.read())
    if holder is not None and (run_id is None or holder.get("run_id") == run_id):
        lock.delete()
