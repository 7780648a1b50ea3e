"""Table maintenance: compaction (OPTIMIZE, optional Z-order) and VACUUM with a safe retention.

Nightly appends leave many small files per day partition; OPTIMIZE compacts them. Z-ordering
clusters rows by the columns analysts filter on inside a partition. VACUUM deletes files no
longer referenced, but only those older than the retention (default 7 days), so readers of
older snapshots and the Change Data Feed of the last week keep working.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from giellm_batch.schemas import TABLES
from giellm_batch.warehouse import tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("giellm_batch.warehouse.maintenance")

# Columns queries filter on within a day partition (the partition column itself cannot be Z-ordered).
ZORDER_COLUMNS: dict[str, tuple[str, ...]] = {
    "extractions": ("task", "article_id"),
    "entities": ("label", "article_id"),
    "sentiment_words": ("label", "article_id"),
    "relations": ("relation", "article_id"),
    "events": ("event_type", "article_id"),
    "sentences": ("article_id",),
    "articles": ("category",),
    "prompt_cache": ("prompt_key",),  # key lookups (dedup) skip files by min/max of the key
}
DEFAULT_RETENTION_HOURS = 168.0
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def _size_listing_to_the_cluster(spark: SparkSession) -> None:
    """VACUUM lists a table's folders in a Spark job of this many Spark tasks; Spark's default
    (10,000) is sized for huge partitioned tables, and on a small table scheduling them takes several
    times longer than a few per core (docs/measurements.md). A few Spark tasks per core list even
    thousands of day folders quickly. A value the user set wins."""
    if spark.conf.get(LISTING_PARALLELISM, None) in (None, "10000"):
        spark.conf.set(LISTING_PARALLELISM, str(max(4, 4 * spark.sparkContext.defaultParallelism)))


def optimize(spark: SparkSession, warehouse: str, *, zorder: bool = False, vacuum: bool = True,
             retention_hours: float = DEFAULT_RETENTION_HOURS,
             only: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Compact (and optionally Z-order) every table (or `only` these), then vacuum. Returns metrics."""
    from delta.tables import DeltaTable

    if retention_hours < DEFAULT_RETENTION_HOURS:
        raise ValueError(f"retention below {DEFAULT_RETENTION_HOURS:.0f} hours would break readers of recent "
                         "snapshots; Delta's own safety check refuses it too")
    report: dict[str, dict[str, Any]] = {}
    unknown = set(only) - set(TABLES)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}; tables are {list(TABLES)}")
    _size_listing_to_the_cluster(spark)
    for name in only or tuple(TABLES):
        if not tables.table_exists(spark, warehouse, name):
            continue
        table = DeltaTable.forPath(spark, tables.table_path(warehouse, name))
        builder = table.optimize()
        columns = ZORDER_COLUMNS.get(name, ())
        result = builder.executeZOrderBy(*columns) if zorder and columns else builder.executeCompaction()
        metrics = result.collect()[0]["metrics"]
        report[name] = {"files_added": metrics["numFilesAdded"], "files_removed": metrics["numFilesRemoved"]}
        if vacuum:
            table.vacuum(retention_hours)
        log.warning("%s: optimized (%s)%s", name, report[name], ", vacuumed" if vacuum else "")
    return report
