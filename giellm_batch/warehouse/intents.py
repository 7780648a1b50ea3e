"""Write intents: a marker per pipeline that says "a run may have left partial result rows".

Why: each result table is written in its own commit (side by side, articles last), so a run that
dies in between leaves rows of articles that are not done, in any subset of the result tables.
The next run must replace those rows (MERGE) rather than append beside them. Finding out by
scanning the result tables for the articles to process costs a Spark job over whole tables every
night, growing with the warehouse, although a clean night has nothing to find. So a run writes
`<warehouse>/_intents/<pipeline_hash>` before its first result write and deletes it after its
`articles` commit; the scan runs only when a marker is found (an earlier run died or failed
between the two), for edited articles, or with --reprocess.

A found marker is cleared only once no result row of the pipeline lacks its `articles` row:
an interrupted run's articles may be missing from this run's selection (a deleted file, a --limit
window) and come back later, and they must still be merged then. Callers hold the warehouse lock.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from giellm_batch.schemas import ARTICLE_RESULT_TABLES
from giellm_batch.storage import storage_for
from giellm_batch.warehouse.tables import articles_with_rows, never_written, read_table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("giellm_batch.warehouse.intents")


def _folder(warehouse: str) -> str:
    return f"{warehouse.rstrip('/')}/_intents"


def marker_path(warehouse: str, pipeline_hash: str) -> str:
    return f"{_folder(warehouse)}/{pipeline_hash}"


def pending(spark: SparkSession, warehouse: str, pipeline_hash: str) -> bool:
    """May a run of this pipeline have left partial rows (its marker is there)?

    A warehouse without the `_intents` folder was written by a version without markers (or never
    written): there only result tables that were never written prove that no run left rows."""
    storage = storage_for(spark, warehouse)
    if storage.exists(marker_path(warehouse, pipeline_hash)):
        return True
    return not storage.exists(_folder(warehouse)) and not all(
        never_written(spark, warehouse, name) for name in ARTICLE_RESULT_TABLES)


def mark(spark: SparkSession, warehouse: str, pipeline_hash: str, run_id: str) -> None:
    """Record, before the first result write, that this run is about to write rows."""
    body = json.dumps({"run_id": run_id, "written_at": datetime.now(UTC).isoformat()})
    storage_for(spark, warehouse).write_bytes(marker_path(warehouse, pipeline_hash), body.encode())


def clear(spark: SparkSession, warehouse: str, pipeline_hash: str) -> None:
    storage_for(spark, warehouse).delete(marker_path(warehouse, pipeline_hash))


def orphaned_articles(spark: SparkSession, warehouse: str, pipeline_hash: str) -> int:
    """How many articles have result rows of this pipeline (in any result table) but no `articles`
    row: what an interrupted run left behind. Only run when a marker was found: it scans the tables."""
    from pyspark.sql import functions as F

    written = articles_with_rows(spark, warehouse, ARTICLE_RESULT_TABLES, pipeline_hash)
    if written is None:
        return 0
    done = read_table(spark, warehouse, "articles").filter(F.col("pipeline_hash") == pipeline_hash)
    return int(written.join(done.select("article_id"), "article_id", "left_anti").count())


def settle(spark: SparkSession, warehouse: str, pipeline_hash: str, found: bool) -> None:
    """After this run's `articles` commit: remove the marker when nothing partial can remain.

    `found`: a marker was there before this run wrote (else it is this run's own, and all of this
    run's writes are in). A found one is cleared only if no article anywhere is left half-written,
    whether this run's input held it or not (deleted since, or held back by --limit/--since)."""
    orphans = orphaned_articles(spark, warehouse, pipeline_hash) if found else 0
    if orphans == 0:
        clear(spark, warehouse, pipeline_hash)
        if found:
            log.info("pipeline %s: write intent cleared, no partial rows remain", pipeline_hash)
    else:
        log.warning("pipeline %s: %d article(s) have result rows but no articles row (left by an interrupted "
                    "run, not in this run's selection); the leftovers check stays on until they are done",
                    pipeline_hash, orphans)
