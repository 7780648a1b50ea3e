"""One writer per warehouse: a lock file created atomically, kept alive by a heartbeat.

The file is created with the warehouse storage's create-if-absent (giellm_batch.storage): on a
local or mounted disk link(2), which fails if the name exists (Hadoop's local filesystem would
not do: its exists-then-create races); elsewhere Hadoop's `FileSystem.create(path,
overwrite=false)`, atomic on HDFS (on S3, S3A's conditional PUT: If-None-Match). A run
takes the lock before it writes anything; a second run that finds a live holder stops at once with
a message naming it, having written nothing.

Why a heartbeat: a killed driver never releases its lock, and a fixed age limit either blocks
retries for hours or lets a second run into a long live one. The holder writes its heartbeat
(`_lock/heartbeat-<run_id>`) every `stale_after / 6` seconds from a daemon thread, so

- a lock whose heartbeat is older than `stale_after` seconds belongs to a dead run and is taken
  over (the taker records that run as failed/lost in `runs`);
- a lock held on this very host by a process that no longer exists (pid gone, or reused by
  another process: the start time differs) is dead at once: a scheduler's retry right after a
  kill needs no wait and no manual step;
- a live holder is never taken over, however long it runs.

Rules that keep two runs from both holding the lock (stores have no compare-and-delete):
- `_lock/LOCK` is never rewritten while held: it is created, then deleted. The heartbeat goes to the
  holder's own file, so a holder paused past the bound cannot overwrite a new holder's LOCK with
  its old record (a rewrite of LOCK would be a blind PUT). Versions before this one kept the
  heartbeat inside LOCK: they read this one's LOCK as never refreshed, so run one version at a time.
- Of several runs that find the same dead lock, only the one that creates its takeover claim
  (`_lock/takeover-<digest of that LOCK>-<n>`, create-if-absent) may delete it; the others stop as
  if the lock were live. Without the claim, a slow taker deletes the lock the fast one just created
  and both run (tests/warehouse/test_locking.py shows the interleaving). A claim whose own age passes
  the bound belongs to a taker that died mid-takeover: the next number is claimed instead.
- What remains needs a run paused longer than the bound (it then races the run that took its lock
  over); the paused run finds its lock gone at its next heartbeat, and `Lease.check` raises before
  its next table write instead of writing beside the new holder.

`giellm-batch unlock` removes a lock by hand for the rare case where nothing else applies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable
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
    """The lock's files, on whatever store holds the warehouse: LOCK (create-if-absent, read, delete),
    each holder's heartbeat, takeover claims."""

    def __init__(self, spark: SparkSession, warehouse: str) -> None:
        self.folder = f"{warehouse.rstrip('/')}/_lock"
        self.path = f"{self.folder}/LOCK"
        self.storage = storage_for(spark, self.path)

    def create(self, data: bytes, path: str | None = None) -> bool:
        return self.storage.create_exclusive(path or self.path, data)

    def read(self, path: str | None = None) -> bytes | None:
        try:
            return self.storage.read_bytes(path or self.path)
        except FileNotFoundError:  # absent (or released while we looked)
            return None
        except Exception as exc:
            # S3A opens lazily: an object deleted between open and read (a lock released, a claim
            # dropped by its taker) fails at the read, which HadoopStorage passes on as py4j's error.
            if "java.io.FileNotFoundException" in str(exc):
                return None
            raise

    def modified(self, path: str | None = None) -> float | None:
        try:
            return self.storage.status(path or self.path).modified
        except FileNotFoundError:
            return None

    def delete(self, path: str | None = None) -> None:
        self.storage.delete(path or self.path)

    def beat_path(self, run_id: str) -> str:
        return f"{self.folder}/heartbeat-{re.sub(r'[^A-Za-z0-9._-]', '_', run_id)}"

    def claim_path(self, raw: bytes, number: int) -> str:
        return f"{self.folder}/takeover-{hashlib.sha256(raw).hexdigest()[:24]}-{number}"

    def beat(self, run_id: str) -> None:
        record = {"run_id": run_id, "heartbeat_at": datetime.now(UTC).isoformat()}
        self.storage.write_bytes(self.beat_path(run_id), json.dumps(record).encode("utf-8"))

    def holder(self, raw: bytes) -> dict[str, Any]:
        """The holder's record in `raw` (LOCK's bytes) with its latest heartbeat: the later of LOCK's
        own (its acquisition; older versions rewrote it) and the holder's heartbeat file."""
        holder = _parse(raw, self.modified)
        beat = _holder(self.read(self.beat_path(str(holder["run_id"]))))
        if beat is not None and beat["run_id"] == holder["run_id"] and _later(beat, holder):
            holder["heartbeat_at"] = beat["heartbeat_at"]
        return holder


def _later(beat: dict[str, Any], holder: dict[str, Any]) -> bool:
    try:
        return datetime.fromisoformat(str(beat["heartbeat_at"])) > datetime.fromisoformat(
            str(holder.get("heartbeat_at") or holder["acquired_at"]))
    except (KeyError, ValueError):
        return False


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


def _holder(data: bytes | None) -> dict[str, Any] | None:
    """The record in a lock file's bytes (`_parse`), None for no file."""
    return None if data is None else _parse(data)


def _parse(data: bytes, modified: Callable[[], float | None] | None = None) -> dict[str, Any]:
    """The lock's record; for an unreadable lock file (not written by this version, or damaged by
    hand), one whose heartbeat is the file's modification time, so it still goes stale."""
    try:
        holder = json.loads(data.decode("utf-8"))
        if isinstance(holder, dict) and isinstance(holder.get("run_id"), str):
            holder.setdefault("holder", "unknown")
            holder.setdefault("acquired_at", holder.get("heartbeat_at"))
            return holder
    except ValueError:
        pass
    at = modified() if modified is not None else None
    beat = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
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


def read_holder(spark: SparkSession, warehouse: str) -> dict[str, Any] | None:
    """The warehouse lock's holder with its latest heartbeat, None when nobody holds it."""
    lock = _LockFile(spark, warehouse)
    raw = lock.read()
    return None if raw is None else lock.holder(raw)


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
        self.lock.beat(self.run_id)  # our own file: however late it lands, it overwrites no other run's

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
        self.lock.delete(self.lock.beat_path(self.run_id))


def _locked(warehouse: str, holder: dict[str, Any], stale_after: float, note: str = "") -> WarehouseLocked:
    return WarehouseLocked(
        f"warehouse {warehouse} is locked by run {holder['run_id']} ({holder['holder']}){note}, alive: last "
        f"heartbeat {holder.get('heartbeat_at', holder['acquired_at'])}; this run wrote nothing. Retry "
        f"after it finishes (a dead holder is taken over once its heartbeat is {stale_after:.0f}s "
        f"old; `giellm-batch unlock --warehouse {warehouse}` removes a lock by hand).")


def _claim(lock: _LockFile, raw: bytes, data: bytes, stale_after: float) -> str | None:
    """Create this run's claim to take over the lock whose bytes are `raw`: its path, or None when a
    live claim of another run is there (that run is taking it over). A claim older than the bound is
    a dead taker's: the next number is tried."""
    for number in range(100):
        path = lock.claim_path(raw, number)
        if lock.create(data, path):
            return path
        claimer = _holder(lock.read(path))
        if claimer is None:
            continue  # its taker removed it as we looked: that taker found the lock changed; try again
        if why_dead({**claimer, "host": None}, stale_after) is None:  # its age only: claims are short-lived
            return None
    return None


def acquire(spark: SparkSession, warehouse: str, run_id: str,
            stale_after_seconds: float = DEFAULT_STALE_SECONDS) -> Lease:
    """Take the warehouse lock for `run_id` (taking over a dead holder's) or raise WarehouseLocked."""
    lock = _LockFile(spark, warehouse)
    record = _record(run_id, datetime.now(UTC).isoformat(), stale_after_seconds)
    data = json.dumps(record).encode("utf-8")
    taken_over: dict[str, Any] | None = None
    claims: list[str] = []  # ours, removed once the takeover ended (either way)
    try:
        for _attempt in range(4):
            if lock.create(data):
                if taken_over is not None:
                    lock.delete(lock.beat_path(str(taken_over["run_id"])))  # the dead holder's heartbeat
                return Lease(lock, record, stale_after_seconds, taken_over)
            raw = lock.read()
            if raw is None:
                continue  # released between our create and read: try again
            holder = lock.holder(raw)
            reason = why_dead(holder, stale_after_seconds)
            if reason is None:
                raise _locked(warehouse, holder, stale_after_seconds)
            claim = _claim(lock, raw, data, stale_after_seconds)
            if claim is None:
                raise _locked(warehouse, holder, stale_after_seconds, ", found dead and being taken over by "
                              "another run")
            claims.append(claim)
            # Look again with the claim held: the LOCK may have been replaced (a taker that claimed
            # before us is done) or its holder may have beaten since (it was paused, not dead).
            again = lock.read()
            if again != raw:
                continue
            holder = lock.holder(raw)
            reason = why_dead(holder, stale_after_seconds)
            if reason is None:
                raise _locked(warehouse, holder, stale_after_seconds)
            log.warning("taking over the lock of dead run %s (%s): %s", holder["run_id"], holder["holder"], reason)
            lock.delete()
            taken_over = {**holder, "dead_because": reason}
        raise WarehouseLocked(f"could not take the lock on {warehouse}; this run wrote nothing. Retry.")
    finally:
        for claim in claims:
            lock.delete(claim)


def release(spark: SparkSession, warehouse: str, run_id: str | None = None) -> None:
    """Drop the lock: only `run_id`'s own, or any lock when run_id is None (`giellm-batch unlock`)."""
    lock = _LockFile(spark, warehouse)
    holder = _holder(lock.read())
    if holder is not None and (run_id is None or holder.get("run_id") == run_id):
        lock.delete()
        lock.delete(lock.beat_path(str(holder["run_id"])))
