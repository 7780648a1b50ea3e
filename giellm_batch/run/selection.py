"""What a run processes (driver code): every input record classified against the articles this
pipeline has finished, then the optional --since/--until/--limit window.

States: `rejected` (at read: it goes to quarantine), `done` (a finished `articles` row of this
pipeline with the same id and content, or a quarantine row of this pipeline for a record isolated
with the same id and content: skipped), `changed` (finished, but only with other
content: an edited article, processed again and its old rows replaced) and `unfinished` (new, or
left by an interrupted run). With --reprocess nothing counts as done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from giellm_batch.isolation.process import POISON_KINDS
from giellm_batch.warehouse import tables

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


@dataclass(frozen=True)
class EarlierIsolations:
    """Records this pipeline's earlier runs isolated (they crashed, hung or exhausted a worker's
    memory: isolation/process.py), from one read of `quarantine`; few, so held on the driver."""

    # (record key, "bytes:<digest>") -> reason: isolated while decoding (input.read_step.DecodeFilesStep)
    decoded: dict[tuple[str, str], str] = field(default_factory=dict)
    # (article_id, content_hash): isolated in a later step (segment, prompt, generate, parse)
    articles: frozenset[tuple[str, str]] = frozenset()


def earlier_isolations(spark: SparkSession, warehouse: str, pipeline_hash: str) -> EarlierIsolations:
    from pyspark.sql import functions as F

    rows = (tables.read_table(spark, warehouse, "quarantine")
            .filter((F.col("pipeline_hash") == pipeline_hash) & F.col("stage").isin(*POISON_KINDS)
                    & F.col("content_hash").isNotNull())
            .select("record_key", "article_id", "content_hash", "reason").collect())
    at_read = [r["content_hash"].startswith("bytes:") for r in rows]  # input.read_step._raw_digest
    decoded = {(r["record_key"], r["content_hash"]): r["reason"] for r, read in zip(rows, at_read, strict=True) if read}
    articles = frozenset((r["article_id"], r["content_hash"]) for r, read in zip(rows, at_read, strict=True)
                         if not read and r["article_id"] is not None)
    return EarlierIsolations(decoded, articles)


def classified(spark: SparkSession, raw: DataFrame, warehouse: str, pipeline_hash: str, reprocess: bool,
               isolated: frozenset[tuple[str, str]] = frozenset()) -> DataFrame:
    """Every input record read (`raw`: input.reading.read_articles rows, of every file or of those
    manifest.read_input chose) with its `state` and `duplicate_id` (one row per record; the caller
    stages it once, so the selection does not change when the articles table is written later)."""
    from pyspark.sql import functions as F

    inputs = with_duplicate_ids_rejected(raw).withColumn("published_date", published_date())
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
        # A record isolated by an earlier run of this pipeline (`isolated`: EarlierIsolations.articles)
        # is not tried again while its content is the same: it would only cost the isolation again.
        # Editing the article, --reprocess, or deleting its quarantine row retries it.
        if isolated:
            known = spark.createDataFrame(sorted(isolated), "article_id string, _isolated string")
            inputs = inputs.join(F.broadcast(known), (inputs["article_id"] == known["article_id"])
                                 & (inputs["content_hash"] == known["_isolated"]), "left").drop(known["article_id"])
            finished = finished | F.col("_isolated").isNotNull()
    state = (F.when(F.col("reject_reason").isNotNull(), "rejected").when(finished, "done")
             .when(seen, "changed").otherwise("unfinished"))
    return inputs.withColumn("state", state).drop("_done", "_isolated")


TO_PROCESS = ("unfinished", "changed")  # the states of the records a run processes


def _size_columns() -> list[Column]:
    """Records (`n`) and body characters (`chars`): what a run holds in the driver when it is small
    (run/driver.py)."""
    from pyspark.sql import functions as F

    return [F.count(F.lit(1)).alias("n"), F.sum(F.length("body")).alias("chars")]


def tally(inputs: DataFrame) -> tuple[dict[str, int], int]:
    """Records per state of `inputs` (classified, staged), and the body characters of those to
    process: one aggregation."""
    rows = inputs.groupBy("state").agg(*_size_columns()).collect()
    return ({r["state"]: int(r["n"]) for r in rows},
            sum(int(r["chars"] or 0) for r in rows if r["state"] in TO_PROCESS))


def size(articles: DataFrame) -> tuple[int, int]:
    """(records, body characters) of `articles`, e.g. a run's window: one aggregation."""
    row = articles.agg(*_size_columns()).first()
    assert row is not None  # an aggregation without grouping has exactly one row
    return int(row["n"]), int(row["chars"] or 0)


def held_by_skipped_files(spark: SparkSession, warehouse: str, pipeline_hash: str, inputs: DataFrame,
                          skipped: DataFrame) -> DataFrame | None:
    """`inputs` (classified, staged) with each record rejected as a duplicate whose id was finished
    from another file that this run skipped unread (unchanged), or None when there is none.

    Had that file been read, the two records would have met in `with_duplicate_ids_rejected`. The
    first finished copy keeps its rows; the new one goes to quarantine instead of replacing them.
    Only a record whose id is finished already (state done or changed) can be one: the caller asks
    only when the run's counts show such records, so a night of new articles pays nothing."""
    from pyspark.sql import functions as F

    ids = (inputs.filter(F.col("state").isin("done", "changed"))
           .select("article_id", F.col("file_path").alias("_own")))
    # articles.source is the record key: the file's path (Livedoor) or path:line (JSONL)
    held = (tables.read_table(spark, warehouse, "articles").filter(F.col("pipeline_hash") == pipeline_hash)
            .select("article_id", F.regexp_replace("source", r":[0-9]+$", "").alias("file_path"))
            .join(ids, "article_id", "left_semi").join(skipped, "file_path", "left_semi")
            .join(ids, "article_id").filter(F.col("file_path") != F.col("_own"))
            .groupBy("article_id").agg(F.min("file_path").alias("_held_by")))
    if held.isEmpty():
        return None
    reason = F.concat(F.lit("duplicate article_id '"), F.col("article_id"),
                      F.lit("': already finished from "), F.col("_held_by"), F.lit(", which is unchanged"))
    is_held = F.col("_held_by").isNotNull() & F.col("state").isin("done", "changed")
    return (inputs.join(held, "article_id", "left")
            .withColumn("duplicate_id", F.col("duplicate_id") | is_held)
            .withColumn("reject_reason", F.when(is_held, reason).otherwise(F.col("reject_reason")))
            .withColumn("state", F.when(is_held, F.lit("rejected")).otherwise(F.col("state")))
            .drop("_held_by"))


def window(articles: DataFrame, since: str | None, until: str | None, limit: int | None) -> DataFrame:
    """Articles published in [since, until] (YYYY-MM-DD, inclusive), at most `limit`, oldest first."""
    from pyspark.sql import functions as F

    if since:
        articles = articles.filter(F.col("published_date") >= F.lit(since).cast("date"))
    if until:
        articles = articles.filter(F.col("published_date") <= F.lit(until).cast("date"))
    if limit is not None:
        articles = articles.orderBy(F.col("published_at").asc_nulls_last(), "article_id").limit(limit)
    return articles


def published_date() -> Column:
    """The article's own calendar day from `published_at` (ISO 8601); null when unparseable."""
    from pyspark.sql import functions as F

    return F.try_to_date(F.substring("published_at", 1, 10), "yyyy-MM-dd")


def with_duplicate_ids_rejected(raw: DataFrame) -> DataFrame:
    """Reject every accepted record after the first with the same article_id (by record_key);
    `duplicate_id` marks them (which copy wins depends on the other records: manifest.py)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    accepted_first = Window.partitionBy("article_id").orderBy(F.col("reject_reason").isNotNull(), "record_key")
    rank = F.row_number().over(accepted_first)
    duplicate = F.col("reject_reason").isNull() & F.col("article_id").isNotNull() & (rank > 1)
    reason = F.when(F.col("duplicate_id"), F.concat(F.lit("duplicate article_id '"), F.col("article_id"),
                                        F.lit("' in this input"))).otherwise(F.col("reject_reason"))
    return raw.withColumn("duplicate_id", duplicate).withColumn("reject_reason", reason)
