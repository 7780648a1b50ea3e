"""The extraction job as a sequence of small Spark steps (driver code only).

read -> validate -> skip finished -> segment -> infer + parse -> write tables -> record the run

Each step's output that later steps reuse is materialised once under the run's staging folder
(`<warehouse>/_staging/<run_id>`), so the engine runs exactly once per prompt however many
tables are written from its output. Tables are written with key-based MERGE and the `articles`
row goes last: an article is marked done only after all its results are in, so a rerun after a
crash redoes unfinished articles and the MERGE keys keep finished rows from doubling.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from giellm_batch import faults, locking, records, schemas, tables
from giellm_batch.config import JobConfig
from giellm_batch.engine import EngineSpec
from giellm_batch.inference import ExtractionPlan, extraction_step
from giellm_batch.reading import read_articles
from giellm_batch.segmentation import segmentation_step

log = logging.getLogger("giellm_batch.pipeline")


@dataclass
class RunSummary:
    run_id: str
    warehouse: str
    pipeline_hash: str
    articles_in: int = 0
    articles_skipped: int = 0  # already done by this pipeline
    articles_deferred: int = 0  # outside --since/--until/--limit; a later run picks them up
    articles_processed: int = 0
    articles_quarantined: int = 0
    sentences: int = 0
    prompts: int = 0
    parse_ok: int = 0
    parse_partial: int = 0
    parse_invalid: int = 0
    engine_errors: int = 0
    wall_seconds: float = 0.0
    status: str = "running"
    error: str | None = None


@dataclass(frozen=True)
class RunOptions:
    """What to process in this run (CLI flags)."""

    reprocess: bool = False  # recompute articles already done by this pipeline and replace their rows
    since: str | None = None  # publication date bounds, YYYY-MM-DD, inclusive
    until: str | None = None
    limit: int | None = None  # at most this many articles (oldest first)


def extraction_plan(config: JobConfig, fault: str = "") -> ExtractionPlan:
    eng = config.engine
    spec = EngineSpec(
        model=config.model.path, max_model_len=eng.max_model_len, dtype=eng.dtype,
        kv_cache_memory_bytes=eng.kv_cache_memory_bytes, gpu_memory_utilization=eng.gpu_memory_utilization,
        tensor_parallel_size=eng.tensor_parallel_size, max_num_seqs=eng.max_num_seqs,
        enable_prefix_caching=eng.enable_prefix_caching, enforce_eager=eng.enforce_eager, seed=eng.seed,
        quantization=eng.quantization,
    )
    return ExtractionPlan(
        engine=spec, tasks=tuple(config.selected_tasks()), profiles=dict(config.task_registry.profiles),
        max_new_tokens=eng.max_new_tokens, constrained=eng.constrained_decoding, max_items=eng.max_items,
        max_span_chars=eng.max_span_chars, batch_size=eng.batch_size, fault=fault,
    )


def provenance(config: JobConfig, run_id: str) -> dict[str, str]:
    return {"pipeline_hash": config.pipeline_hash(), "model_id": config.model_id,
            "model_revision": config.model.revision, "task_hash": config.task_hash(),
            "decoding_hash": config.decoding_hash(), "package_version": _version(), "run_id": run_id}


def run_job(config: JobConfig, spark: Any, options: RunOptions | None = None) -> RunSummary:
    """Run the whole job; returns the counts also written to the `runs` table."""
    options = options or RunOptions()
    fault = faults.configured()
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    run_id = started_at.strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    warehouse = config.output.warehouse
    summary = RunSummary(run_id=run_id, warehouse=warehouse, pipeline_hash=config.pipeline_hash())
    staging = f"{warehouse}/_staging/{run_id}"
    stamp = provenance(config, run_id)
    log.warning("run %s: input %s (%s) -> %s, tasks %s, pipeline %s", run_id, config.input.path,
                config.input.format, warehouse, ",".join(config.tasks), summary.pipeline_hash)
    locked = False
    try:
        locking.acquire(spark, warehouse, run_id)
        locked = True
        tables.ensure_all_tables(spark, warehouse)
        log.info("run %s: lock taken, tables ready", run_id)
        _process(config, spark, options, fault, summary, staging, stamp)
        summary.status = "succeeded"
    except Exception as exc:
        summary.status = "failed"
        summary.error = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        summary.wall_seconds = round(time.monotonic() - clock, 3)
        if locked:  # a run refused by the lock leaves no trace but its log line
            _record_run(spark, config, summary, started_at)
            _remove(spark, staging)
            locking.release(spark, warehouse, run_id)
    log.warning("run %s %s in %.1fs: %s", run_id, summary.status, summary.wall_seconds, dataclasses.asdict(summary))
    return summary


def _process(config: JobConfig, spark: Any, options: RunOptions, fault: str, summary: RunSummary,
             staging: str, stamp: dict[str, str]) -> None:
    from pyspark.sql import functions as F

    warehouse, run_id = config.output.warehouse, summary.run_id
    inputs = _stage(records.with_duplicate_ids_rejected(read_articles(spark, config.input)), staging, "input")
    summary.articles_in = inputs.count()
    rejected = inputs.filter(F.col("reject_reason").isNotNull())
    accepted = inputs.filter(F.col("reject_reason").isNull()).withColumn("published_date", records.published_date())
    unfinished = accepted if options.reprocess else _unfinished(spark, config, accepted, summary.pipeline_hash)
    # Staged: the selection must not change when the articles table is written below.
    todo = _stage(_window(unfinished, options), staging, "todo")
    n_unfinished, n_todo = unfinished.count(), todo.count()
    summary.articles_skipped = accepted.count() - n_unfinished
    summary.articles_deferred = n_unfinished - n_todo
    log.warning("run %s: %d records in, %d rejected at read, %d already done, %d deferred, %d to process",
                run_id, summary.articles_in, rejected.count(), summary.articles_skipped,
                summary.articles_deferred, n_todo)

    if n_todo == 0:  # nothing new: only bad records may need (idempotent) quarantining
        summary.articles_quarantined = rejected.count()
        tables.write_rows(spark, warehouse, "quarantine", records.quarantine_rows(rejected, rejected.limit(0), stamp),
                          n_rows=summary.articles_quarantined)
        return

    seg = config.segmentation
    sentences = _stage(
        todo.select("article_id", "body").mapInPandas(
            segmentation_step(seg.max_sentence_chars, seg.min_sentence_chars), schema=schemas.SENTENCE),
        staging, "sentences")
    summary.sentences = sentences.count()
    unsegmented = todo.join(sentences.select("article_id").distinct(), "article_id", "left_anti")

    parts = max(1, spark.sparkContext.defaultParallelism)
    log.warning("run %s: %d sentences x %d tasks -> engine (%d partitions)", run_id, summary.sentences,
                len(config.tasks), parts)
    extractions = _stage(
        sentences.repartition(parts, "article_id").sortWithinPartitions("article_id", "sentence_idx")
        .mapInPandas(extraction_step(extraction_plan(config, fault)), schema=schemas.EXTRACTION_STAGE),
        staging, "extractions")
    _count_statuses(extractions, summary)
    log.info("run %s: inference done", run_id)

    faults.check("before_first_write", fault)
    # Writes go sentences first, articles last, each one commit: if an earlier attempt left rows of
    # these articles anywhere, `sentences` has them. One check decides append vs replace for all.
    leftovers = tables.has_rows_for(spark, warehouse, "sentences", todo, summary.pipeline_hash)
    sizes = records.result_sizes(extractions, config, summary.sentences)
    dates = todo.select("article_id", "published_date")
    for i, (name, rows) in enumerate(records.result_rows(sentences, extractions, dates, config, stamp).items()):
        tables.write_rows(spark, warehouse, name, rows, replace_articles=todo, pipeline_hash=summary.pipeline_hash,
                          leftovers=leftovers, n_rows=sizes[name])
        if i == 0:
            faults.check("between_writes", fault)
    quarantine = records.quarantine_rows(rejected, unsegmented, stamp)
    summary.articles_quarantined = quarantine.count()
    tables.write_rows(spark, warehouse, "quarantine", quarantine, n_rows=summary.articles_quarantined)
    done = todo.join(unsegmented.select("article_id"), "article_id", "left_anti")
    summary.articles_processed = done.count()
    # Last: an article counts as done only once all its results are in.
    tables.write_rows(spark, warehouse, "articles", records.article_rows(done, sentences, stamp),
                      replace_articles=todo, pipeline_hash=summary.pipeline_hash, leftovers=leftovers,
                      n_rows=summary.articles_processed)
    log.warning("run %s: tables written", run_id)


def _window(articles: Any, options: RunOptions) -> Any:
    from pyspark.sql import functions as F

    if options.since:
        articles = articles.filter(F.col("published_date") >= F.lit(options.since).cast("date"))
    if options.until:
        articles = articles.filter(F.col("published_date") <= F.lit(options.until).cast("date"))
    if options.limit is not None:
        articles = articles.orderBy(F.col("published_at").asc_nulls_last(), "article_id").limit(options.limit)
    return articles


def _stage(df: Any, staging: str, name: str) -> Any:
    """Materialise `df` once (parquet under the run's staging folder) and read it back."""
    path = f"{staging}/{name}"
    df.write.mode("overwrite").parquet(path)
    return df.sparkSession.read.parquet(path)


def _unfinished(spark: Any, config: JobConfig, accepted: Any, pipeline_hash: str) -> Any:
    """Accepted articles without a finished row for this pipeline (same id and content)."""
    from pyspark.sql import functions as F

    done = (tables.read_table(spark, config.output.warehouse, "articles")
            .filter(F.col("pipeline_hash") == pipeline_hash).select("article_id", "content_hash"))
    return accepted.join(done, ["article_id", "content_hash"], "left_anti")


def _count_statuses(extractions: Any, summary: RunSummary) -> None:
    counts = {row["parse_status"]: row["count"] for row in extractions.groupBy("parse_status").count().collect()}
    summary.prompts = sum(counts.values())
    summary.parse_ok = counts.get("ok", 0)
    summary.parse_partial = counts.get("partial", 0)
    summary.parse_invalid = counts.get("invalid", 0)
    summary.engine_errors = counts.get("error", 0)


def _record_run(spark: Any, config: JobConfig, summary: RunSummary, started_at: datetime) -> None:
    config_hash = hashlib.sha256(Path(config.source).read_bytes()).hexdigest()[:16]
    row = {
        **{k: v for k, v in dataclasses.asdict(summary).items() if k != "warehouse"},
        "started_at": started_at, "finished_at": datetime.now(UTC), "config_path": config.source,
        "config_hash": config_hash, "model_id": config.model_id, "model_revision": config.model.revision,
        "tasks": list(config.tasks), "input_path": config.input.path, "package_version": _version(),
    }
    try:
        df = spark.createDataFrame([row], schema=schemas.TABLES["runs"].schema)
        tables.append_rows(spark, config.output.warehouse, "runs", df)
    except Exception:  # never mask the run's own error with a bookkeeping one
        log.exception("could not record run %s", summary.run_id)


def _remove(spark: Any, path: str) -> None:
    jvm = spark._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()).delete(hadoop_path, True)


def _version() -> str:
    try:
        return importlib.metadata.version("giellm-batch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
