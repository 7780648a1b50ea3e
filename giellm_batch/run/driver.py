"""The extraction job on the driver: take the warehouse, run the steps, record the run.

    read/validate -> skip finished -> segment -> prompt -> dedup -> generate (GPU stage) -> parse
    -> write tables -> record the run

`process` shows the order (the steps: run/job_steps.py and run/writing.py; the inference chain:
steps/chain.py). `run_job` wraps it: the warehouse lock, the tables, the `runs` row and the report,
and the run's counts, assembled from what the steps return.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from giellm_batch.config.job_config import JobConfig
from giellm_batch.isolation import faults
from giellm_batch.monitoring import drift, report, runs
from giellm_batch.monitoring.runs import RunSummary, Stopwatch
from giellm_batch.run import job_steps
from giellm_batch.run.job_steps import Run, RunOptions
from giellm_batch.run.writing import write_results
from giellm_batch.spark.concurrent_jobs import concurrently, in_background
from giellm_batch.steps.plan import extraction_plan
from giellm_batch.warehouse import locking, staging, tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("giellm_batch.run.driver")
__all__ = ["RunOptions", "process", "provenance", "run_job"]


def provenance(config: JobConfig, run_id: str) -> dict[str, str]:
    return {"pipeline_hash": config.pipeline_hash(), "model_id": config.model_id,
            "model_revision": config.model.revision, "task_hash": config.task_hash(),
            "decoding_hash": config.decoding_hash(), "package_version": runs.package_version(), "run_id": run_id}


def process(run: Run, watch: Stopwatch) -> tuple[dict[str, Any], dict[str, DataFrame]]:
    """The job's steps in order; returns (the run's counts, its rows per report section)."""
    selected = job_steps.select_input(run)
    watch.lap("read")
    figures: dict[str, Any] = dict(selected.figures)
    if selected.n_todo == 0:
        sources = job_steps.nothing_to_do(run, selected)
        watch.lap("write")
        return {**figures, "articles_quarantined": selected.n_rejected}, sources
    plan = extraction_plan(run.config, run.fault)
    # Few characters to process (a night's news): every later step's output is held in the driver.
    run = dataclasses.replace(run, in_driver=selected.todo_chars <= run.config.execution.driver_staging_max_chars)
    log.info("run %s: %d characters to process: step outputs %s (execution.driver_staging_max_chars)",
             run.run_id, selected.todo_chars, "held in the driver" if run.in_driver else "staged as files")
    segmented = job_steps.segment(run, plan, selected.todo, selected.n_todo)
    watch.lap("segment")
    extracted = job_steps.extract(run, plan, segmented.sentences, segmented.n_sentences)
    watch.lap("generate")
    aside = job_steps.set_aside(run, selected.todo, segmented, extracted.inference.extractions)
    parsed, profile = drift.count_and_profile(aside.extractions, run.run_id,
                                              plan.max_items if plan.decoding != "free" else 0)
    answered = parsed["prompts"] if aside.n_prompts_answered is None else aside.n_prompts_answered
    figures |= {**extracted.figures, **parsed, "sentences": aside.n_sentences,
                "dedup_hits": answered - extracted.inference.engine_calls}
    watch.lap("parse")
    written, sources = write_results(run, selected, aside, profile, extracted.cache_write)
    watch.lap("write")
    log.warning("run %s: tables written", run.run_id)
    return figures | written, sources


def run_job(config: JobConfig, spark: SparkSession, options: RunOptions | None = None) -> RunSummary:
    """Run the whole job; returns the counts also written to the `runs` table."""
    options = options or RunOptions()
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    run_id = started_at.strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    warehouse, pipeline_hash = config.output.warehouse, config.pipeline_hash()
    log.warning("run %s: input %s (%s) -> %s, tasks %s, pipeline %s", run_id, config.input.path,
                config.input.format, warehouse, ",".join(config.tasks), pipeline_hash)
    figures: dict[str, Any] = {"status": "running"}
    lease: locking.Lease | None = None
    watch = Stopwatch()
    report_sources: dict[str, DataFrame] = {}
    recent: Future[list[dict[str, Any]]] | None = None  # the pipeline's latest runs (drift check, report)
    try:
        lease = _take_lock(spark, warehouse, run_id, config.output.lock_stale_seconds)
        tables.ensure_all_tables(spark, warehouse)
        if lease.taken_over:  # the dead run could not write its own row
            runs.record_lost_run(spark, config, lease.taken_over, run_id)
        staging.remove_other_runs(spark, warehouse, run_id)
        # Read while the input is read: nothing changes `runs` until this run records itself.
        recent = in_background(runs.recent_runs, spark, warehouse, pipeline_hash, run_id)
        log.info("run %s: lock taken, tables ready", run_id)
        watch.lap("start")
        run = Run(spark, config, options, run_id, pipeline_hash, provenance(config, run_id), lease, faults.configured())
        counts, report_sources = process(run, watch)
        figures |= {**counts, "status": "succeeded"}
        figures |= drift.check_drift(spark, config, _summary(run_id, warehouse, pipeline_hash, figures), recent)
    except Exception as exc:
        figures |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]}
        raise
    finally:
        watch.lap("finish")
        figures |= {"step_seconds_json": watch.json(), "wall_seconds": round(time.monotonic() - clock, 3)}
        summary = _summary(run_id, warehouse, pipeline_hash, figures)
        if lease is not None:  # a run refused by the lock leaves no trace but its log line
            if not lease.lost:  # a run that lost its lock writes nothing more
                _record(spark, config, summary, started_at, report_sources, recent)
            lease.release()
        log.info("run %s: recorded, report written in %.1fs", run_id, watch.lap("record"))
    log.warning("run %s %s in %.1fs: %s", run_id, summary.status, summary.wall_seconds, dataclasses.asdict(summary))
    return summary


class WarehouseUnreachable(RuntimeError):
    """The warehouse's store refused the lock's first write (no such bucket or folder, no permission,
    no connection); nothing was written."""


def _take_lock(spark: SparkSession, warehouse: str, run_id: str, stale_after: float) -> locking.Lease:
    """locking.acquire, with a store that cannot be written told as such, not as a JVM stack trace."""
    try:
        return locking.acquire(spark, warehouse, run_id, stale_after)
    except locking.WarehouseLocked:
        raise
    except Exception as exc:
        java = getattr(exc, "java_exception", None)
        why = str(java.toString() if java is not None else exc).splitlines()[0][:400]
        raise WarehouseUnreachable(
            f"cannot write the warehouse lock under {warehouse}: {why}. Check that the bucket or folder exists "
            "and that this run's credentials may write it (`giellm-batch doctor --config YOUR.yaml`); this run "
            "wrote nothing.") from exc


def _summary(run_id: str, warehouse: str, pipeline_hash: str, figures: dict[str, Any]) -> RunSummary:
    return RunSummary(run_id=run_id, warehouse=warehouse, pipeline_hash=pipeline_hash, **figures)


def _record(spark: SparkSession, config: JobConfig, summary: RunSummary, started_at: datetime,
            sources: dict[str, DataFrame], recent: Future[list[dict[str, Any]]] | None) -> None:
    """The run's `runs` row and its report, side by side (the report is rendered from the row and
    the staged rows, before they are removed, so it need not wait for the row's commit)."""
    row = runs.run_row(config, summary, started_at)
    sources = sources if summary.status == "succeeded" else {}
    concurrently([lambda: runs.append_run(spark, config, row), *(
        [lambda: report.write_run_report(spark, config.output.warehouse, summary.run_id, row, sources,
                                         _result(recent))] if config.monitoring.report else [])])
    staging.remove(spark, config.output.warehouse, summary.run_id)


def _result(future: Future[Any] | None) -> Any:
    """A background read's result, or None if it failed (its user then reads for itself)."""
    try:
        return future.result() if future is not None else None
    except Exception:
        log.exception("background read failed")
        return None
