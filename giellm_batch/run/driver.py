"""The extraction job as a sequence of small Spark steps (driver code only).

read -> validate -> skip finished -> segment -> prompts -> dedup -> generate (GPU stage) -> parse
-> write tables -> record the run

Each step's output that later steps reuse is materialised once under the run's staging folder
(`<warehouse>/_staging/<run_id>`), so the engine runs exactly once per prompt however many
tables are written from its output. Tables are written with key-based MERGE and the `articles`
row goes last: an article is marked done only after all its results are in, so a rerun after a
crash redoes unfinished articles and the MERGE keys keep finished rows from doubling.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.config.job_config import JobConfig
from giellm_batch.engine import placement
from giellm_batch.engine.vllm_engine import EngineSpec
from giellm_batch.input import manifest
from giellm_batch.isolation import faults
from giellm_batch.monitoring import drift, report, runs
from giellm_batch.monitoring.runs import RunSummary, Stopwatch
from giellm_batch.run import dedup, records, selection
from giellm_batch.run.progress import InferenceProgress
from giellm_batch.steps.generate import GENERATION_INPUT_COLUMNS, generation_step, prompt_step
from giellm_batch.steps.parse import parse_step
from giellm_batch.steps.plan import ExtractionPlan, PandasStep
from giellm_batch.text.segmentation import PromptBudget, segmentation_step
from giellm_batch.warehouse import intents, locking, tables
from giellm_batch.warehouse.staging import remove, remove_other_runs, stage

log = logging.getLogger("giellm_batch.run.driver")
NO_SENTENCE = "no sentence with text after segmentation"


@dataclass(frozen=True)
class RunOptions:
    """What to process in this run (CLI flags)."""

    reprocess: bool = False  # recompute articles already done by this pipeline and replace their rows
    since: str | None = None  # publication date bounds, YYYY-MM-DD, inclusive
    until: str | None = None
    limit: int | None = None  # at most this many articles (oldest first)


def extraction_plan(config: JobConfig, fault: str = "") -> ExtractionPlan:
    eng, ex = config.engine, config.execution
    spec = EngineSpec(
        model=config.model.path, max_model_len=eng.max_model_len, dtype=eng.dtype,
        kv_cache_memory_bytes=eng.kv_cache_memory_bytes, gpu_memory_utilization=eng.gpu_memory_utilization,
        tensor_parallel_size=eng.tensor_parallel_size, max_num_seqs=eng.max_num_seqs,
        enable_prefix_caching=eng.enable_prefix_caching, enforce_eager=eng.enforce_eager, seed=eng.seed,
        quantization=eng.quantization, adapter=config.model.adapter, max_lora_rank=config.model.max_lora_rank,
    )
    return ExtractionPlan(
        engine=spec, tasks=tuple(config.selected_tasks()), profiles=dict(config.task_registry.profiles),
        max_new_tokens=eng.max_new_tokens, decoding=eng.decoding, max_items=eng.max_items,
        max_span_chars=eng.max_span_chars, batch_size=eng.batch_size, fault=fault,
        # Everything besides the prompt that decides the engine's answer: the dedup cache key.
        identity=f"{config.pipeline_hash()}|{eng.dtype}|{eng.quantization}|{eng.seed}",
        dedup=ex.dedup, gpus_per_engine=ex.gpus_per_engine, gpu_resource_name=ex.gpu_resource_name,
        isolation=ex.isolation(),
    )


def extraction_step(plan: ExtractionPlan) -> PandasStep:
    """prompt -> generate -> parse composed in memory, one pass per batch (mapInPandas function:
    SENTENCE rows -> EXTRACTION_STAGE rows), for callers without Spark stages: evaluation,
    benchmarks, tests. The job itself runs the three as separate Spark stages (`_infer`)."""
    prompts, generations, parse = prompt_step(plan), generation_step(plan), parse_step(plan)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            requests = pd.concat(list(prompts(iter([batch]))), ignore_index=True)
            if requests.empty:
                continue
            # Requests whose prompt could not be built carry their error instead of an engine answer.
            failed = requests["error"].notna()
            unique = requests[~failed].drop_duplicates("prompt_key")[list(GENERATION_INPUT_COLUMNS)]
            unanswerable = requests.loc[failed, ["prompt_key", "error"]].assign(
                raw_output=None, finish_reason=None, n_output_tokens=0)
            generated = pd.concat([*(generations(iter([unique])) if len(unique) else []), unanswerable],
                                  ignore_index=True)
            sentences = batch[["article_id", "sentence_idx", "text", "char_start"]]
            joined = (requests.drop(columns="error").merge(generated, on="prompt_key")
                      .merge(sentences, on=["article_id", "sentence_idx"]))
            yield from parse(iter([joined]))

    return run


def provenance(config: JobConfig, run_id: str) -> dict[str, str]:
    return {"pipeline_hash": config.pipeline_hash(), "model_id": config.model_id,
            "model_revision": config.model.revision, "task_hash": config.task_hash(),
            "decoding_hash": config.decoding_hash(), "package_version": runs.package_version(), "run_id": run_id}


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
    lease: locking.Lease | None = None
    watch = Stopwatch()
    report_sources: dict[str, Any] = {}
    recent: Future[list[dict[str, Any]]] | None = None  # the pipeline's latest runs (drift check, report)
    try:
        lease = locking.acquire(spark, warehouse, run_id, config.output.lock_stale_seconds)
        tables.ensure_all_tables(spark, warehouse)
        if lease.taken_over:  # the dead run could not write its own row
            runs.record_lost_run(spark, config, lease.taken_over, run_id)
        remove_other_runs(spark, warehouse, run_id)
        # Read while the input is read: nothing changes `runs` until this run records itself.
        recent = tables.in_background(runs.recent_runs, spark, warehouse, summary.pipeline_hash, run_id)
        log.info("run %s: lock taken, tables ready", run_id)
        watch.lap("start")
        report_sources = _process(config, spark, options, fault, summary, staging, stamp, lease, watch)
        summary.status = "succeeded"
        drift.check_drift(spark, config, summary, recent)
    except Exception as exc:
        summary.status = "failed"
        summary.error = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        watch.lap("finish")
        summary.step_seconds_json = watch.json()
        summary.wall_seconds = round(time.monotonic() - clock, 3)
        if lease is not None:  # a run refused by the lock leaves no trace but its log line
            if not lease.lost:  # a run that lost its lock writes nothing more
                row = runs.run_row(config, summary, started_at)
                # The report is rendered from `row` and the staged rows (before they are removed), so
                # it need not wait for the row's commit: the two run side by side.
                sources = report_sources if summary.status == "succeeded" else {}
                tables.concurrently([lambda: runs.append_run(spark, config, row), *(
                    [lambda: report.write_run_report(spark, warehouse, run_id, row, sources, _result(recent))]
                    if config.monitoring.report else [])])
                remove(spark, staging)
            lease.release()
        log.info("run %s: recorded, report written in %.1fs", run_id, watch.lap("record"))
    log.warning("run %s %s in %.1fs: %s", run_id, summary.status, summary.wall_seconds, dataclasses.asdict(summary))
    return summary


def _result(future: Future[Any] | None) -> Any:
    """A background read's result, or None if it failed (its user then reads for itself)."""
    try:
        return future.result() if future is not None else None
    except Exception:
        log.exception("background read failed")
        return None


def _process(config: JobConfig, spark: Any, options: RunOptions, fault: str, summary: RunSummary,
             staging: str, stamp: dict[str, str], lease: locking.Lease, watch: Stopwatch) -> dict[str, Any]:
    """Read, infer, write; returns this run's non-empty rows per report section (report.gather_run)."""
    from pyspark.sql import functions as F

    warehouse, run_id = config.output.warehouse, summary.run_id
    # Files the manifest shows finished and unchanged are not read (manifest.py). One staged read
    # classifies every record of the others (selection.py: rejected / done / changed / unfinished)
    # and one aggregation counts them: the selection must not change when `articles` is written below.
    # Records an earlier run isolated are not worked on again: rejected as they were without being
    # decoded again, or skipped while their content is the same (selection.EarlierIsolations).
    isolated = (selection.EarlierIsolations() if options.reprocess
                else selection.earlier_isolations(spark, warehouse, summary.pipeline_hash))
    read, raw = manifest.read_input(spark, config.input, warehouse, summary.pipeline_hash, options.reprocess,
                                    config.execution.isolation(), isolated.decoded)
    inputs = stage(selection.classified(spark, raw, warehouse, summary.pipeline_hash, options.reprocess,
                                        isolated.articles), staging, "input")
    states, todo_chars = selection.tally(inputs)
    if read.skipped is not None and (states.get("done", 0) or states.get("changed", 0)):
        held = selection.held_by_skipped_files(spark, warehouse, summary.pipeline_hash, inputs, read.skipped)
        if held is not None:  # ids already finished from files skipped unread: duplicates
            inputs = stage(held, staging, "input-checked")
            states, todo_chars = selection.tally(inputs)
    summary.files_skipped = read.skipped_files
    summary.articles_in = sum(states.values()) + read.skipped_records
    summary.articles_skipped = states.get("done", 0) + read.skipped_records
    n_rejected, n_changed = states.get("rejected", 0), states.get("changed", 0)
    n_unfinished = states.get("unfinished", 0) + n_changed
    rejected = inputs.filter(F.col("state") == "rejected")
    unfinished = inputs.filter(F.col("state").isin(*selection.TO_PROCESS)).drop("state")
    windowed = bool(options.since or options.until or options.limit is not None)
    todo, n_todo = unfinished, n_unfinished
    if windowed:
        todo = stage(selection.window(unfinished, options.since, options.until, options.limit), staging, "todo")
        n_todo, todo_chars = selection.size(todo)
    summary.articles_deferred = n_unfinished - n_todo
    log.warning("run %s: %d records in (%d files skipped unread), %d rejected at read, %d already done, "
                "%d deferred, %d to process", run_id, summary.articles_in, summary.files_skipped, n_rejected,
                summary.articles_skipped, summary.articles_deferred, n_todo)
    watch.lap("read")
    finished_files = manifest.finished_rows(spark, warehouse, inputs, read, summary.pipeline_hash, run_id, windowed)

    if n_todo == 0:  # nothing new: only bad records may need (idempotent) quarantining
        lease.check()
        summary.articles_quarantined = n_rejected
        quarantined = records.quarantine_rows(rejected, None, stamp)
        tables.write_rows(spark, warehouse, "quarantine", quarantined, n_rows=n_rejected)
        manifest.write_finished(spark, warehouse, read, finished_files)
        if intents.pending(spark, warehouse, summary.pipeline_hash):  # e.g. killed after its last commit
            intents.settle(spark, warehouse, summary.pipeline_hash, found=True)
        watch.lap("write")
        return {"quarantine": quarantined} if n_rejected else {}

    plan = extraction_plan(config, fault)
    # Few characters to process (a night's news): every later step's output is held in the driver.
    in_driver = todo_chars <= config.execution.driver_staging_max_chars
    log.info("run %s: %d characters to process: step outputs %s (execution.driver_staging_max_chars=%d)", run_id,
             todo_chars, "held in the driver" if in_driver else "staged as files",
             config.execution.driver_staging_max_chars)

    def put(df: Any, name: str) -> Any:
        return stage(df, staging, name, in_driver)

    sentences, unsegmented, n_unsegmented = _segment(config, plan, todo, put, summary, n_todo)
    watch.lap("segment")
    extractions, cache_write = _infer(spark, config, plan, sentences, put, stamp, summary, watch)
    # An article with a sentence whose prompt, engine call or parse was isolated (a crash, hang or
    # memory exhaustion: isolation.py) is quarantined whole, like one that could not be segmented.
    poisoned = records.poisoned_articles(extractions)
    prompts_before: int | None = None
    if poisoned:
        log.warning("run %s: %d article(s) isolated in a later step, quarantined: %s", run_id, len(poisoned),
                    "; ".join(f"{a}: {r[:120]}" for a, r in poisoned[:5]))
        prompts_before = extractions.count()  # deduplication counts every prompt the engines answered
        reasons = spark.createDataFrame(poisoned, "article_id string, late_reason string")
        extractions = extractions.join(reasons.select("article_id"), "article_id", "left_anti")
        sentences = sentences.join(reasons.select("article_id"), "article_id", "left_anti")
        summary.sentences = sentences.count()
        unsegmented = unsegmented.unionByName(
            todo.join(reasons, "article_id").withColumnRenamed("late_reason", "reason"), allowMissingColumns=True)
        n_unsegmented += len(poisoned)
    profile = drift.count_and_profile(extractions, summary, plan.max_items if plan.decoding != "free" else 0)
    summary.dedup_hits = (summary.prompts if prompts_before is None else prompts_before) - summary.engine_calls
    watch.lap("parse")

    faults.check("before_first_write", fault)
    lease.check()
    # Each table is one commit, the result tables side by side and articles last. An earlier attempt
    # that died in between left rows of these articles in some of the result tables; one query over
    # them decides append vs replace for all, and it is needed only where rows can exist: edited
    # articles, --reprocess, or an earlier run that started writing and did not finish (its write
    # intent is still there: intents.py).
    interrupted = intents.pending(spark, warehouse, summary.pipeline_hash)
    holding = (tables.tables_with_rows_for(spark, warehouse, (*schemas.ARTICLE_RESULT_TABLES, "articles"), todo,
                                           summary.pipeline_hash)
               if interrupted or n_changed > 0 or options.reprocess else frozenset())
    intents.mark(spark, warehouse, summary.pipeline_hash, run_id)
    sizes = records.result_sizes(profile, config, summary.sentences)
    dates = todo.select("article_id", "published_date")
    results = records.result_rows(sentences, extractions, dates, config, stamp)

    def write(name: str) -> Callable[[], None]:
        def run() -> None:
            if name == "sentences":  # the injected fault fails this write while the others commit
                faults.check("between_writes", fault)
            tables.write_rows(spark, warehouse, name, results[name], replace_articles=todo,
                              pipeline_hash=summary.pipeline_hash, leftovers=name in holding, n_rows=sizes[name])
        return run

    summary.articles_quarantined = n_rejected + n_unsegmented
    quarantined = records.quarantine_rows(rejected, unsegmented, stamp)
    tables.concurrently([*(write(name) for name in results), lambda: tables.write_rows(
        spark, warehouse, "quarantine", quarantined, n_rows=summary.articles_quarantined), *cache_write])
    done = todo.join(unsegmented.select("article_id"), "article_id", "left_anti")
    summary.articles_processed = n_todo - n_unsegmented
    # Last: an article counts as done only once all its results are in.
    lease.check()
    tables.write_rows(spark, warehouse, "articles", records.article_rows(done, sentences, stamp),
                      replace_articles=todo, pipeline_hash=summary.pipeline_hash, leftovers="articles" in holding,
                      n_rows=summary.articles_processed)
    # Only now are this run's files finished: a run killed before this commit reads them again.
    manifest.write_finished(spark, warehouse, read, finished_files)
    faults.check("after_last_write", fault)
    intents.settle(spark, warehouse, summary.pipeline_hash, found=interrupted)
    watch.lap("write")
    log.warning("run %s: tables written", run_id)
    sources = {**results, "quarantine": quarantined}
    counts = {**sizes, "quarantine": summary.articles_quarantined}
    return {name: sources[name] for name in report.RUN_SECTIONS if counts[name]}


Stage = Callable[[Any, str], Any]  # (step output, name) -> the same rows, computed once (staging.stage)


def _segment(config: JobConfig, plan: ExtractionPlan, todo: Any, put: Stage, summary: RunSummary,
             n_todo: int) -> tuple[Any, Any, int]:
    """Sentences of the articles to process, the articles that yield none (with a reason), and how
    many those are (with `summary.sentences`, from one aggregation over the staged output)."""
    from pyspark.sql import functions as F

    seg = config.segmentation
    budget = PromptBudget(config.model.path, plan.max_prompt_tokens, plan.prompt_suffixes())
    segmented = put(
        todo.select("article_id", "body").mapInPandas(
            segmentation_step(seg.max_sentence_chars, seg.min_sentence_chars, budget, seg.max_article_chars,
                              plan.isolation, seg.mecab_max_chars), schema=schemas.SEGMENTED),
        "segmented")
    # The step emits either an article's sentences or, if one cannot fit the model, only its reject
    # row: such an article is quarantined whole, never truncated.
    too_long = segmented.filter(F.col("reject_reason").isNotNull()).select(
        "article_id", F.col("reject_reason").alias("too_long"))
    sentences = segmented.filter(F.col("reject_reason").isNull()).drop("reject_reason")
    unsegmented = (todo.join(sentences.select("article_id").distinct(), "article_id", "left_anti")
                   .join(too_long, "article_id", "left")
                   .withColumn("reason", F.coalesce("too_long", F.lit(NO_SENTENCE))))
    ok = F.col("reject_reason").isNull()
    counts = segmented.agg(F.count(F.when(ok, 1)).alias("sentences"),
                           F.countDistinct(F.when(ok, F.col("article_id"))).alias("articles")).first()
    summary.sentences = int(counts["sentences"])
    # Sentences come only from `todo` articles, so the rest of `todo` is what `unsegmented` holds.
    return sentences, unsegmented, n_todo - int(counts["articles"])


def _infer(spark: Any, config: JobConfig, plan: ExtractionPlan, sentences: Any, put: Stage,
           stamp: dict[str, str], summary: RunSummary, watch: Stopwatch) -> tuple[Any, list[Callable[[], None]]]:
    """prompts -> distinct engine calls on the GPU stage -> answers joined back -> parsed rows;
    also the prompt cache's write of the new answers, for the caller to run with its other writes."""
    from pyspark.sql import functions as F

    ex = config.execution
    requests = put(sentences.mapInPandas(prompt_step(plan), schema=schemas.PROMPT_REQUEST), "requests")
    cache = dedup.read_cache(spark, config.output.warehouse) if ex.dedup else None
    # A request whose prompt could not be built (its `error` is set) is answered with that error.
    # Staged: the count below and the generation stage's range sampling and read reuse one anti-join
    # with the prompt cache instead of computing it three times.
    calls = put(dedup.engine_inputs(requests.filter(F.col("error").isNull()), cache)
                .select("prompt_key", "task", "prompt", "sentence_key"), "calls")
    summary.engine_calls = calls.count()
    watch.lap("prompts")
    # A multiple of the task slots: with 5 partitions on 2 engines, one engine idles through the
    # last partition (measured: 36 of 38 core-seconds of in-stage overhead in bench/throughput.py).
    slots = spark.sparkContext.defaultParallelism
    parts = slots * max(1, math.ceil(summary.engine_calls / (ex.prompts_per_partition * slots)))
    profile = placement.inference_profile(ex.gpus_per_engine, ex.cpus_per_engine, ex.gpu_resource_name)
    log.warning("run %s: %d sentences x %d tasks, %d engine calls in %d partitions (%s)", summary.run_id,
                summary.sentences, len(config.tasks), summary.engine_calls, parts,
                f"{ex.gpus_per_engine} GPU(s) per engine" if profile else "CPU engines")
    if summary.engine_calls == 0:  # every prompt answered before (prompt_cache): no engine is started
        generations = spark.createDataFrame([], schemas.GENERATION)
        answered = 0
    else:
        with InferenceProgress(spark, summary.engine_calls, ex.progress_interval_seconds,
                               f"run {summary.run_id} inference") as progress:
            generations = put(
                _balanced(calls, parts).select("prompt_key", "task", "prompt")
                .mapInPandas(generation_step(plan, progress.counter), schema=schemas.GENERATION, profile=profile),
                "generations")
        answered = runs.record_engines(generations, summary, progress.seconds)
    watch.lap("generate")
    answers = dedup.answers(generations, dedup.cached_answers(cache, requests) if cache is not None else None)
    answers = answers.unionByName(records.failed_prompt_answers(requests))
    joined = (requests.drop("error").join(answers, "prompt_key")
              .join(sentences.select("article_id", "sentence_idx", "text", "char_start"),
                    ["article_id", "sentence_idx"]))
    extractions = put(
        joined.repartition(parts, "article_id").sortWithinPartitions("article_id", "sentence_idx")
        .mapInPandas(parse_step(plan), schema=schemas.EXTRACTION_STAGE), "extractions")
    watch.lap("parse")
    if cache is None:
        return extractions, []
    # Run only after the answers are staged: the cache read above must not see these rows.
    return extractions, [lambda: tables.write_rows(spark, config.output.warehouse, "prompt_cache",
                                                   dedup.cache_rows(generations, requests, stamp), fresh_keys=True,
                                                   n_rows=answered)]


def _balanced(calls: Any, parts: int) -> Any:
    """`calls` in `parts` partitions of (nearly) equal size, each sorted by sentence.

    Why ranges, not hashes: engines take partitions as they free up and should finish together.
    Hashing `sentence_key` sends every copy of a repeated sentence (wire copy, dedup off) to one
    partition: measured 9,524 vs 10,476 prompts on two engines, one idle for 11 s of a 126 s stage.
    Ranges over (sentence, call) are unique per call, so they split evenly and still keep a
    sentence's prompts together for the prefix cache. The bounds come from a sample of the keys
    (spark.sql.execution.rangeExchange.sampleSizePerPartition, set in spark_session.build_spark);
    the keys are 64-bit hashes so that sample stays small on the driver."""
    from pyspark.sql import functions as F

    return (calls.repartitionByRange(parts, F.xxhash64("sentence_key"), F.xxhash64("prompt_key"))
            .sortWithinPartitions("sentence_key", "task"))
