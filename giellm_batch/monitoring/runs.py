"""The `runs` table: one row per run with its counts, and rows for runs that died.

A run writes its own row when it ends (succeeded or failed). A run killed outright cannot; the next
run that takes over its warehouse lock writes it for it (status failed, error "lost: ...").
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giellm_batch import schemas
from giellm_batch.config.job_config import JobConfig
from giellm_batch.warehouse import tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("giellm_batch.monitoring.runs")


@dataclass
class RunSummary:
    run_id: str
    warehouse: str
    pipeline_hash: str
    articles_in: int = 0
    articles_skipped: int = 0  # already done by this pipeline (or quarantined, in files skipped unread)
    files_skipped: int = 0  # input files skipped unread: unchanged since finished (input/manifest.py)
    articles_deferred: int = 0  # outside --since/--until/--limit; a later run picks them up
    articles_processed: int = 0
    articles_quarantined: int = 0
    sentences: int = 0
    prompts: int = 0
    parse_ok: int = 0
    parse_partial: int = 0
    parse_invalid: int = 0
    engine_errors: int = 0
    engine_calls: int = 0  # distinct prompts sent to engines (after deduplication and the cache)
    dedup_hits: int = 0  # prompts answered without an engine call
    engines: int = 0  # engine instances (worker processes) that answered prompts
    engine_seconds: float = 0.0  # summed over engines: time inside generate()
    inference_seconds: float = 0.0  # wall time of the generation stage
    prompts_per_second: float = 0.0  # engine_calls / inference_seconds
    engine_idle_share: float = 0.0  # share of the generation stage's engine-time spent outside the engine
    engines_json: str = "[]"  # per engine: id, GPUs assigned vs pinned, prompts, seconds, Spark tasks
    wall_seconds: float = 0.0
    status: str = "running"
    error: str | None = None
    outputs_at_item_bound: int = 0  # outputs with engine.max_items items (a configured bound may have cut them)
    profile_json: str | None = None  # monitoring.build_profile: statuses, text labels, items, spans
    drift_warnings: list[str] = dataclasses.field(default_factory=list)  # against the previous runs
    step_seconds_json: str | None = None  # Stopwatch: wall seconds per step, where the run's time went


class Stopwatch:
    """Wall seconds per named step of a run, lap by lap (a step named twice adds up).

    Kept in `runs.step_seconds_json` and the run report, so an operator sees where a slow night's
    time went (reading, segmentation, engines, table writes...) without rerunning it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, step: str) -> float:
        """Close `step` at now; returns its seconds."""
        now = time.monotonic()
        took = now - self._last
        self.seconds[step] = round(self.seconds.get(step, 0.0) + took, 3)
        self._last = now
        return took

    def json(self) -> str:
        return json.dumps(self.seconds)


def run_row(config: JobConfig, summary: RunSummary, started_at: datetime) -> dict[str, Any]:
    """The run's `runs` row, as a dict."""
    config_hash = hashlib.sha256(Path(config.source).read_bytes()).hexdigest()[:16]
    return {
        **{k: v for k, v in dataclasses.asdict(summary).items() if k != "warehouse"},
        "started_at": started_at, "finished_at": datetime.now(UTC), "config_path": config.source,
        "config_hash": config_hash, "model_id": config.model_id, "model_revision": config.model.revision,
        "tasks": list(config.tasks), "input_path": config.input.path, "package_version": package_version(),
    }


def append_run(spark: SparkSession, config: JobConfig, row: dict[str, Any]) -> None:
    try:
        df = spark.createDataFrame([row], schema=schemas.TABLES["runs"].schema)
        tables.append_rows(spark, config.output.warehouse, "runs", df)
    except Exception:  # never mask the run's own error with a bookkeeping one
        log.exception("could not record run %s", row["run_id"])


# How many of a pipeline's latest runs one read fetches for the drift check and the report's trend.
RECENT_RUNS = 100


def recent_runs(spark: SparkSession, warehouse: str, pipeline_hash: str, run_id: str, *, before: datetime | None = None,
                limit: int | None = RECENT_RUNS) -> list[dict[str, Any]]:
    """This pipeline's `runs` rows other than `run_id` (started no later than `before`, if given),
    newest first, at most `limit` (None: all): one small query serves both the drift check and the
    run report's trend."""
    from pyspark.sql import functions as F

    wanted = (F.col("pipeline_hash") == pipeline_hash) & (F.col("run_id") != run_id)
    if before is not None:
        wanted &= F.col("started_at") <= before
    rows = tables.read_table(spark, warehouse, "runs").filter(wanted).orderBy(F.col("started_at").desc())
    return [r.asDict() for r in (rows if limit is None else rows.limit(limit)).collect()]


def record_lost_run(spark: SparkSession, config: JobConfig, holder: dict[str, Any], taken_by: str) -> None:
    """The row a killed run could not write: status failed, error naming why its lock was dead.

    Its config columns are the taker's (the dead run's config is not known; a retried nightly
    command has the same one).
    """
    try:
        started = datetime.fromisoformat(str(holder.get("acquired_at")))
    except ValueError:
        started = datetime.now(UTC)
    summary = RunSummary(run_id=str(holder["run_id"]), warehouse=config.output.warehouse,
                         pipeline_hash=config.pipeline_hash(), status="failed",
                         error=f"lost: {holder.get('dead_because', 'dead')}; its lock was taken over by run {taken_by}")
    append_run(spark, config, run_row(config, summary, started))


def package_version() -> str:
    try:
        return importlib.metadata.version("giellm-batch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def engine_figures(generations: DataFrame, engine_calls: int, seconds: float) -> tuple[dict[str, Any], int]:
    """(the engines' `runs` columns, how many answers had no error) from one aggregation of the
    generation stage's rows; `seconds`: the stage's wall time."""
    from pyspark.sql import functions as F

    engines = generations.groupBy("engine_id").agg(
        F.count("*").alias("prompts"), (F.sum("engine_ms") / 1000).alias("seconds"),
        F.sort_array(F.collect_set("task_gpus")).alias("task_gpus"),
        F.sort_array(F.collect_set("engine_gpus")).alias("engine_gpus"),
        F.countDistinct("spark_task_id").alias("spark_tasks"), F.max("engine_starts").alias("starts"),
        F.min("task_started_at").alias("first_start"), F.max("emitted_at").alias("last_emit"),
        F.count(F.when(F.col("error").isNull(), 1)).alias("answered"),
    ).orderBy("engine_id").collect()
    figures = [{k: v for k, v in row.asDict().items() if k not in ("first_start", "last_emit", "answered")}
               | {"seconds": round(row["seconds"], 3)} for row in engines]
    engine_seconds = round(float(sum(f["seconds"] for f in figures)), 3)
    idle = 0.0
    if engines:
        # From the first engine Spark task's start to the last answer: the generation stage proper (the
        # shuffle that feeds it and the staging write after it are not engine time to lose).
        span = max(r["last_emit"] for r in engines) - min(r["first_start"] for r in engines)
        idle = round(max(0.0, 1 - engine_seconds / max(span * len(engines), 1e-9)), 4)
    for f in figures:
        log.warning("engine %s: %d prompts, %.1fs generating, %d Spark tasks, GPUs %s (pinned %s)", f["engine_id"],
                    f["prompts"], f["seconds"], f["spark_tasks"], f["task_gpus"] or "-", f["engine_gpus"] or "-")
    return ({"engines": len(figures), "engine_seconds": engine_seconds, "inference_seconds": round(seconds, 3),
             "prompts_per_second": round(engine_calls / seconds, 2) if seconds > 0 else 0.0,
             "engines_json": json.dumps(figures), "engine_idle_share": idle},
            sum(int(r["answered"]) for r in engines))
