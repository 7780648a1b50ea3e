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

from giellm_batch import records, schemas, tables
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
    articles_skipped: int = 0
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


def extraction_plan(config: JobConfig) -> ExtractionPlan:
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
        max_span_chars=eng.max_span_chars, batch_size=eng.batch_size,
    )


def run_job(config: JobConfig, spark: Any, *, force: bool = False) -> RunSummary:
    """Run the whole job; returns the counts also written to the `runs` table."""
    from pyspark.sql import functions as F

    started_at = datetime.now(UTC)
    clock = time.monotonic()
    run_id = started_at.strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    warehouse = config.output.warehouse
    summary = RunSummary(run_id=run_id, warehouse=warehouse, pipeline_hash=config.pipeline_hash())
    staging = f"{warehouse}/_staging/{run_id}"
    stamp = {"pipeline_hash": summary.pipeline_hash, "model_id": config.model_id, "run_id": run_id}
    log.warning("run %s: input %s (%s) -> %s, tasks %s, pipeline %s", run_id, config.input.path,
                config.input.format, warehouse, ",".join(config.tasks), summary.pipeline_hash)
    try:
        tables.ensure_all_tables(spark, warehouse)
        log.warning("run %s: tables ready (%.1fs)", run_id, time.monotonic() - clock)
        inputs = _stage(records.with_duplicate_ids_rejected(read_articles(spark, config.input)), staging, "input")
        summary.articles_in = inputs.count()
        rejected = inputs.filter(F.col("reject_reason").isNotNull())
        accepted = inputs.filter(F.col("reject_reason").isNull())
        # Staged: the selection must not change when the articles table is written below.
        todo = _stage(accepted if force else _unfinished(spark, config, accepted, summary.pipeline_hash),
                      staging, "todo")
        summary.articles_skipped = accepted.count() - todo.count()
        log.warning("run %s: %d records in, %d rejected at read, %d already done, %d to process", run_id,
                    summary.articles_in, rejected.count(), summary.articles_skipped,
                    summary.articles_in - rejected.count() - summary.articles_skipped)

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
            .mapInPandas(extraction_step(extraction_plan(config)), schema=schemas.EXTRACTION_STAGE),
            staging, "extractions")
        _count_statuses(extractions, summary)

        quarantine = records.quarantine_rows(rejected, unsegmented, stamp)
        for name, rows in records.result_rows(sentences, extractions, config, stamp).items():
            tables.merge_rows(spark, warehouse, name, rows)
        tables.merge_rows(spark, warehouse, "quarantine", quarantine)
        done = todo.join(unsegmented.select("article_id"), "article_id", "left_anti")
        tables.merge_rows(spark, warehouse, "articles", records.article_rows(done, sentences, stamp),
                          update_condition="t.content_hash <> s.content_hash")
        summary.articles_processed = done.count()
        summary.articles_quarantined = quarantine.count()
        summary.status = "succeeded"
    except Exception:
        summary.status = "failed"
        raise
    finally:
        summary.wall_seconds = round(time.monotonic() - clock, 3)
        _record_run(spark, config, summary, started_at)
        _remove(spark, staging)
    log.warning("run %s %s in %.1fs: %s", run_id, summary.status, summary.wall_seconds, dataclasses.asdict(summary))
    return summary


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
