"""A run's staging folder (`<warehouse>/_staging/<run_id>`): step outputs materialised once.

Why parquet files and not Spark's cache: a cached step can be evicted and silently recomputed,
which for the generation step means asking the engines twice, and for the input means a
selection made after `articles` was written. A staged step is read back from its files, so it is
computed exactly once however many later steps and tables use it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from giellm_batch.spark_session import hadoop_path

log = logging.getLogger("giellm_batch.pipeline")


def stage(df: Any, staging: str, name: str) -> Any:
    """Materialise `df` once (parquet under the run's staging folder) and read it back."""
    path = f"{staging}/{name}"
    started = time.monotonic()
    df.write.mode("overwrite").parquet(path)
    log.info("staged %s in %.1fs", name, time.monotonic() - started)
    return df.sparkSession.read.parquet(path)


def remove_other_runs(spark: Any, warehouse: str, run_id: str) -> None:
    """Staging folders of runs that died (this run holds the lock: no other run is live)."""
    fs, root = hadoop_path(spark, f"{warehouse}/_staging")
    if fs.exists(root):
        for status in fs.listStatus(root):
            if status.getPath().getName() != run_id:
                fs.delete(status.getPath(), True)


def remove(spark: Any, path: str) -> None:
    fs, target = hadoop_path(spark, path)
    fs.delete(target, True)
