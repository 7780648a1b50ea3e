"""One writer per warehouse: a lock file created atomically (create-if-absent).

On a local or mounted disk the file is created with O_CREAT|O_EXCL (atomic on POSIX; Hadoop's
local filesystem is not: its exists-then-create races). Elsewhere `FileSystem.create(path,
overwrite=false)` is used, which is atomic on HDFS (on S3 it needs s3a conditional writes). A run takes the lock before
it writes anything; a second run that finds it stops at once with a message naming the holder,
having written nothing. A lock older than `stale_after_hours` (a driver that was killed and
never released it) is taken over; `giellm-batch unlock` removes one by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any


class WarehouseLocked(RuntimeError):
    """Another run holds the warehouse; nothing was written by this one."""


class _LocalLock:
    """The lock file on a POSIX path, with the two operations the Hadoop API offers."""

    def __init__(self, warehouse: str) -> None:
        root = warehouse[len("file:"):] if warehouse.startswith("file:") else warehouse
        self.path = os.path.join(root, "_lock", "LOCK")

    def create(self, data: bytes) -> bool:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True

    def read(self) -> bytes | None:
        try:
            with open(self.path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


class _HadoopLock:
    def __init__(self, spark: Any, warehouse: str) -> None:
        self.fs, self.path = _fs_path(spark, warehouse)

    def create(self, data: bytes) -> bool:
        try:
            stream = self.fs.create(self.path, False)
        except Exception:
            return False
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()
        return True

    def read(self) -> bytes | None:
        try:
            stream = self.fs.open(self.path)
        except Exception:
            return None
        try:
            data = bytearray()
            while (b := stream.read()) != -1:
                data.append(b)
            return bytes(data)
        finally:
            stream.close()

    def delete(self) -> None:
        self.fs.delete(self.path, False)


def _lock_file(spark: Any, warehouse: str) -> _LocalLock | _HadoopLock:
    local = warehouse.startswith(("/", "file:")) or "://" not in warehouse
    return _LocalLock(warehouse) if local else _HadoopLock(spark, warehouse)


def _fs_path(spark: Any, warehouse: str) -> tuple[Any, Any]:
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(f"{warehouse.rstrip('/')}/_lock/LOCK")
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path


def _holder(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        holder: dict[str, Any] = json.loads(data.decode("utf-8"))
        return holder
    except ValueError:  # caught mid-write: treat as held, not stale
        return {"run_id": "unknown", "holder": "unknown", "acquired_at": datetime.now(UTC).isoformat()}


def acquire(spark: Any, warehouse: str, run_id: str, stale_after_hours: float = 12.0) -> None:
    """Take the warehouse lock for `run_id` or raise WarehouseLocked."""
    lock = _lock_file(spark, warehouse)
    now = datetime.now(UTC)
    record = json.dumps({"run_id": run_id, "holder": f"{socket.gethostname()}:{os.getpid()}",
                         "acquired_at": now.isoformat()}).encode("utf-8")
    for _attempt in range(2):
        if lock.create(record):
            return
        holder = _holder(lock.read())
        if holder is None:
            continue  # released between our create and read: try again
        if now - datetime.fromisoformat(holder["acquired_at"]) > timedelta(hours=stale_after_hours):
            lock.delete()  # stale: its run died without releasing
            continue
        raise WarehouseLocked(
            f"warehouse {warehouse} is locked by run {holder['run_id']} ({holder['holder']}) since "
            f"{holder['acquired_at']}; this run wrote nothing. Wait for it to finish, or if it died, "
            f"remove the lock with `giellm-batch unlock --warehouse {warehouse}`.")
    raise WarehouseLocked(f"could not take the lock on {warehouse}; this run wrote nothing. Retry.")


def release(spark: Any, warehouse: str, run_id: str | None = None) -> None:
    """Drop the lock: only `run_id`'s own, or any lock when run_id is None (`giellm-batch unlock`)."""
    lock = _lock_file(spark, warehouse)
    holder = _holder(lock.read())
    if holder is not None and (run_id is None or holder.get("run_id") == run_id):
        lock.delete()
