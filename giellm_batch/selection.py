"""What a run processes (driver code): every input record classified against the articles this
pipeline has finished, then the optional --since/--until/--limit window.

States: `rejected` (at read: it goes to quarantine), `done` (a finished `articles` row of this
pipeline with the same id and content: skipped), `changed` (finished, but only with other
content: an edited article, processed again and its old rows replaced) and `unfinished` (new, or
left by an interrupted run). With --reprocess nothing counts as done.
"""

from __future__ import annotations

from typing import Any

from giellm_batch import records, tables
from giellm_batch.config import InputSettings
from giellm_batch.reading import read_articles


def classified(spark: Any, source: InputSettings, warehouse: str, pipeline_hash: str, reprocess: bool) -> Any:
    """Every input record with its `state` (one row per record; the caller stages it once, so the
    selection does not change when the articles table is written later in the run)."""
    from pyspark.sql import functions as F

    inputs = records.with_duplicate_ids_rejected(read_articles(spark, source))
    inputs = inputs.withColumn("published_date", records.published_date())
    if reprocess:
        finished = seen = F.lit(False)
    else:
        # The content hashes this pipeline finished per id (a set: one row per id joins, so no
        # input record is duplicated); an id finished only with other content was edited since.
        done = (tables.read_table(spark, warehouse, "articles")
                .filter(F.col("pipeline_hash") == pipeline_hash)
                .groupBy("article_id").agg(F.collect_set("content_hash").alias("_done")))
        inputs = inputs.join(done, "article_id", "left")
        finished = F.coalesce(F.array_contains("_done", F.col("content_hash")), F.lit(False))
        seen = F.col("_done").isNotNull()
    state = (F.when(F.col("reject_reason").isNotNull(), "rejected").when(finished, "done")
             .when(seen, "changed").otherwise("unfinished"))
    return inputs.withColumn("state", state).drop("_done")


def window(articles: Any, since: str | None, until: str | None, limit: int | None) -> Any:
    """Articles published in [since, until] (YYYY-MM-DD, inclusive), at most `limit`, oldest first."""
    from pyspark.sql import functions as F

    if since:
        articles = articles.filter(F.col("published_date") >= F.lit(since).cast("date"))
    if until:
        articles = articles.filter(F.col("published_date") <= F.lit(until).cast("date"))
    if limit is not None:
        articles = articles.orderBy(F.col("published_at").asc_nulls_last(), "article_id").limit(limit)
    return articles
