"""A run's staging folder (`<warehouse>/_staging/<run_id>`): step outputs materialised once.

Why parquet files and not Spark's cache: a cached step can be evicted and silently recomputed,
which for the generation step means asking the engines twice, and for the input means a
selection made after `articles` was written. A staged step is read back from its files, so it is
computed exactly once however many later steps and tables use it.

A small run's later steps (a night's few articles) are held in the driver instead, as Arrow
tables: computed once by one collect, read back from the driver's copy, never recomputed. Files
would cost each small step a write job, a commit and a listing on read for a few KB.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from giellm_batch.storage import storage_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("giellm_batch.run.driver")


def stage(df: DataFrame, staging: str, name: str, in_driver: bool = False) -> DataFrame:
    """Materialise `df` once (parquet under the run's staging folder) and read it back; with
    `in_driver` (the caller knows the rows are few) collect it and serve it from the driver."""
    started = time.monotonic()
    if in_driver:
        # toArrow/createDataFrame keep every type as it is (no pandas conversion in between).
        staged = df.sparkSession.createDataFrame(df.toArrow(), schema=df.schema)
        log.info("staged %s in the driver in %.1fs", name, time.monotonic() - started)
        return staged
    path = f"{staging}/{name}"
    df.write.mode("overwrite").parquet(path)
    log.info("staged %s in %.1fs", name, time.monotonic() - started)
    return df.sparkSession.read.parquet(path)


def folder(warehouse: str, run_id: str = "") -> str:
    """`<warehouse>/_staging`, or the staging folder of run `run_id` in it."""
    root = f"{warehouse.rstrip('/')}/_staging"
    return f"{root}/{run_id}" if run_id else root


def remove_other_runs(spark: SparkSession, warehouse: str, run_id: str) -> None:
    """Staging folders of runs that died (this run holds the lock: no other run is live)."""
    storage = storage_for(spark, warehouse)
    for entry in storage.list_folder(folder(warehouse)):  # [] when there is none
        if entry.name != run_id:
            storage.delete(entry.path)


def remove(spark: SparkSession, warehouse: str, run_id: str) -> None:
    """Run `run_id`'s staging folder with everything in it (nothing happens when there is none)."""
    path = folder(warehouse, run_id)
    storage_for(spark, path).delete(path)
