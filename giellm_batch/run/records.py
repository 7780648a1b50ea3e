"""Spark transformations from staged step outputs to the rows of each output table.

Pure DataFrame -> DataFrame functions (no writes), so they can be checked on small inline data.
`stamp` holds the provenance columns every result row carries (pipeline_hash, model_id, run_id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from giellm_batch.config.job_config import JobConfig
from giellm_batch.isolation.process import POISON_KINDS
from giellm_batch.schemas import ITEMS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def _with_stamp(df: DataFrame, stamp: dict[str, str]) -> DataFrame:
    from pyspark.sql import functions as F

    for name, value in stamp.items():
        df = df.withColumn(name, F.lit(value))
    return df


def quarantine_rows(rejected: DataFrame, unprocessed: DataFrame | None, stamp: dict[str, str]) -> DataFrame:
    """Rows for the quarantine table: read/validation rejects, and articles that could not be
    processed (`unprocessed` carries a `reason`: nothing left after splitting, too long for the
    model, or a record isolated for crashing, hanging or exhausting memory in a later step).

    Stage: `read` / `segmentation`, except for a reason that starts with an isolation kind
    (isolation.POISON_KINDS): its stage is that kind (crash / timeout / memory), and with
    `content_hash` it keeps the record from being tried again (selection.classified)."""
    from pyspark.sql import functions as F

    rows = rejected.select("record_key", _stage("reject_reason", "read"), F.col("reject_reason").alias("reason"),
                           "article_id", "source", "payload", "content_hash")
    if unprocessed is not None:
        rows = rows.unionByName(unprocessed.select(
            "record_key", _stage("reason", "segmentation"), "reason", "article_id", "source",
            F.substring("body", 1, 2000).alias("payload"), "content_hash"))
    return _with_stamp(rows.withColumn("quarantined_at", F.current_timestamp()), stamp)


def _stage(reason: str, default: str) -> Column:
    """The isolation kind a `reason` column starts with, else `default`."""
    from pyspark.sql import functions as F

    kind = F.regexp_extract(reason, POISON_REASON, 1)
    return F.when(kind != "", kind).otherwise(F.lit(default)).alias("stage")


POISON_REASON = f"^({'|'.join(POISON_KINDS)}): "  # reasons of records isolation/process.py quarantined


def poisoned_articles(extractions: DataFrame) -> list[tuple[str, str]]:
    """(article_id, reason) of the articles with an extraction row that a crash, hang or memory
    exhaustion isolated (prompt, generate or parse step): such an article is quarantined whole."""
    from pyspark.sql import functions as F

    rows = (extractions.filter(F.col("error").rlike(POISON_REASON)).groupBy("article_id")
            .agg(F.min("error").alias("reason")).collect())
    return [(r["article_id"], r["reason"]) for r in rows]


def article_rows(done: DataFrame, sentences: DataFrame, stamp: dict[str, str]) -> DataFrame:
    from pyspark.sql import functions as F

    counts = sentences.groupBy("article_id").agg(F.count("*").cast("int").alias("n_sentences"))
    rows = done.join(counts, "article_id", "left").withColumn("processed_at", F.current_timestamp())
    return _with_stamp(rows, stamp)


def result_sizes(profile: dict[str, Any], config: JobConfig, n_sentences: int) -> dict[str, int]:
    """Row count each result table will receive, from the run's profile (monitoring.count_and_profile:
    rows and items per task)."""
    rows_of, items_of = profile["sentences"], profile["items"]
    sizes = {"sentences": n_sentences, "extractions": sum(rows_of.values()),
             "entities": 0, "sentiment_words": 0, "relations": 0, "events": 0}
    for task in config.selected_tasks():
        sizes[task.records] += items_of.get(task.name, 0)
    return sizes


def result_rows(
    sentences: DataFrame, extractions: DataFrame, dates: DataFrame, config: JobConfig, stamp: dict[str, str]
) -> dict[str, DataFrame]:
    """Rows for sentences, extractions and the four item tables (`dates`: article_id, published_date)."""
    from pyspark.sql import functions as F

    sentences = sentences.join(dates, "article_id")
    extractions = extractions.join(dates, "article_id")
    items = extractions.select(
        "article_id", "published_date", "sentence_idx", "task", "text_label",
        F.explode(F.from_json("items_json", ITEMS)).alias("it"),
    )
    first, second = F.col("it.spans")[0], F.col("it.spans")[1]
    by_table: dict[str, list[str]] = {}
    for task in config.selected_tasks():
        by_table.setdefault(task.records, []).append(task.name)

    def of(table: str) -> DataFrame:
        return items.filter(F.col("task").isin(by_table.get(table, [])))

    keys: list[Column | str] = ["article_id", "published_date", "sentence_idx", "task",
                                F.col("it.item_idx").alias("item_idx"),
            "text_label"]
    pair_cols: list[Column | str] = [
        *keys, F.col("it.label").alias("label"), F.col("it.label_known").alias("label_known"),
        first["text"].alias("span"), first["char_start"].alias("char_start"),
        first["char_end"].alias("char_end"), first["grounded"].alias("grounded"),
        first["snapped"].alias("snapped"), first["pos"].alias("pos"), first["pos_ok"].alias("pos_ok"),
        first["key"].alias("span_key"),
    ]
    out = {
        "sentences": sentences,
        "extractions": extractions.drop("items_json"),
        "entities": of("entities").select(*pair_cols),
        "sentiment_words": of("sentiment_words").select(*pair_cols),
        "relations": of("relations").select(
            *keys, first["text"].alias("head"), first["char_start"].alias("head_start"),
            first["char_end"].alias("head_end"), F.col("it.label").alias("relation"),
            F.col("it.label_known").alias("relation_known"), second["text"].alias("tail"),
            second["char_start"].alias("tail_start"), second["char_end"].alias("tail_end"),
            (first["grounded"] & second["grounded"]).alias("grounded"),
            first["key"].alias("head_key"), second["key"].alias("tail_key"),
        ),
        "events": of("events").select(
            *keys, F.col("it.label").alias("event_type"), F.col("it.label_known").alias("event_type_known"),
            F.col("it.spans").alias("arguments"),
            F.forall("it.spans", lambda s: s["grounded"]).alias("grounded"),
        ),
    }
    return {name: _with_stamp(df, stamp) for name, df in out.items()}
