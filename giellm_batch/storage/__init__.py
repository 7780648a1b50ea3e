"""Every file the job reads or writes besides its Delta tables, through one small interface.

Its one responsibility: the warehouse's own files (the writer lock, write intents, staging folders,
run reports, a table's `_delta_log` listing and first commit when a table is checked without Delta)
on whatever store holds the warehouse. Callers ask `storage_for(spark, path)` for the store of a
path and use the `Storage` methods (interface.py); they never touch the operating system's or
Hadoop's file APIs themselves. One implementation per kind of store:

- posix.py: local and mounted disks (plain paths, `file:` URIs), through the operating system;
- hadoop.py: everything else, through Hadoop's FileSystem in the driver JVM (HDFS, s3a, abfs, gs).

A new kind of store (an object-store client in Python, Spark Connect without a driver JVM) is a
new implementation and a new branch in `storage_for`; callers do not change.

What it may import: the standard library and, for the driver's session, giellm_batch.spark's
session helpers; nothing else of the package (layout rules in pyproject.toml).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from giellm_batch.storage.hadoop import HadoopStorage
from giellm_batch.storage.interface import FileStatus, Storage
from giellm_batch.storage.posix import PosixStorage, local_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["FileStatus", "HadoopStorage", "PosixStorage", "Storage", "is_local", "local_path", "storage_for"]

_POSIX = PosixStorage()  # holds no state: one serves every local path


def is_local(path: str) -> bool:
    """Does `path` name a file on a local or mounted disk (no scheme, or `file:`)?

    The scheme is read as Hadoop's Path reads it (letters before the first ':' that comes before
    any '/'), so `hdfs:/data` is remote and `/data/a:b` local, as Spark would take them."""
    return urlsplit(path).scheme in ("", "file")


def storage_for(spark: SparkSession | None, path: str) -> Storage:
    """The storage that holds `path`: the operating system's for local paths (atomic create-if-absent,
    no py4j round trip per call), Hadoop's in the driver JVM for every other scheme. `spark` is only
    used for the latter (None is fine for a local path)."""
    if is_local(path):
        return _POSIX
    if spark is None:
        raise ValueError(f"{path} is not a local path: a Spark session is needed to reach it")
    return HadoopStorage(spark)
