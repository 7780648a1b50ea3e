"""One writer per warehouse: a lock file created atomically through the Hadoop FileSystem API.

`FileSystem.create(path, overwrite=false)` fails if the file exists, atomically on HDFS and local
disks (on S3 it needs s3a conditional writes; see docs/tables.md). A run takes the lock before
it writes anything; a second run that finds it stops at once with a message naming the holder,
having written nothing. A lock older than `stale_after_hours` (a driver that was killed and
never released it) is taken over; `giellm-batch unlock` removes one by hand.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any


class WarehouseLocked(RuntimeError):
    """Another run holds the warehouse; nothing was written by this one."""


def _fs_path(spark: Any, warehouse: str) -> tuple[Any, Any]:
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(f"{warehouse.rstrip('/')}/_lock/LOCK")
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path


def _read(fs: Any, path: Any) -> dict[str, Any] | None:
    try:
        stream = fs.open(path)
    except Exception:
        return None
    try:
        data = bytearray()
        while (b := stream.read()) != -1:
            data.append(b)
    finally:
        stream.close()
    try:
        holder: dict[str, Any] = json.loads(bytes(data).decode("utf-8"))
        return holder
    except ValueError:
        return {"run_id": "unknown", "holder": "unknown", "acquired_at": "1970-01-01T00:00:00+00:00"}


def acquire(spark: Any, warehouse: str, run_id: str, stale_after_hours: float = 12.0) -> None:
    """Take the warehouse lock for `run_id` or raise WarehouseLocked."""
    fs, path = _fs_path(spark, warehouse)
    now = datetime.now(UTC)
    record = json.dumps({"run_id": run_id, "holder": f"{socket.gethostname()}:{os.getpid()}",
                         "acquired_at": now.isoformat()}).encode("utf-8")
    for _attempt in range(2):
        try:
            stream = fs.create(path, False)
        except Exception:
            holder = _read(fs, path)
            if holder is None:
                continue  # released between our create and read: try again
            acquired = datetime.fromisoformat(holder["acquired_at"])
            if now - acquired > timedelta(hours=stale_after_hours):
                fs.delete(path, False)  # stale: its run died without releasing
                continue
            raise WarehouseLocked(
                f"warehouse {warehouse} is locked by run {holder['run_id']} ({holder['holder']}) since "
                f"{holder['acquired_at']}; this run wrote nothing. Wait for it to finish, or if it died, "
                f"remove the lock with `giellm-batch unlock --warehouse {warehouse}`.") from None
        try:
            stream.write(bytearray(record))
        finally:
            stream.close()
        return
    raise WarehouseLocked(f"could not take the lock on {warehouse}; this run wrote nothing. Retry.")


def release(spark: Any, warehouse: str, run_id: str | None = None) -> None:
    """Drop the lock: only `run_id`'s own, or any lock when run_id is None (`giellm-batch unlock`)."""
    fs, path = _fs_path(spark, warehouse)
    holder = _read(fs, path)
    if holder is not None and (run_id is None or holder.get("run_id") == run_id):
        fs.delete(path, False)
