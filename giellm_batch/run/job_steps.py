"""The job's steps on the driver, in the order `driver.process` runs them:

    select_input  -> read and validate the input, classify each record against finished work
    segment       -> sentences of the articles to process (SegmentStep)
    extract       -> the inference chain: prompts, engine calls, answers, parse (steps/chain.py)
    set_aside     -> articles whose later step was isolated are quarantined whole
    write_results -> result tables, quarantine and prompt cache side by side, `articles` last

Each step takes what earlier ones returned and returns a frozen record of its own frames and
counts; `RunSummary` is assembled from those (driver.py), never mutated here. Step outputs that
later steps reuse are materialised once under the run's staging folder (`Run.put`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from giellm_batch.config.job_config import JobConfig
from giellm_batch.engine import placement
from giellm_batch.input import manifest
from giellm_batch.monitoring import runs
from giellm_batch.run import dedup, records, selection
from giellm_batch.steps import chain
from giellm_batch.steps.plan import ExtractionPlan
from giellm_batch.steps.segment import SegmentStep
from giellm_batch.text.segmentation import PromptBudget
from giellm_batch.warehouse import staging, tables
from giellm_batch.warehouse.locking import Lease

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("giellm_batch.run.job_steps")
NO_SENTENCE = "no sentence with text after segmentation"


@dataclass(frozen=True)
class RunOptions:
    """What to process in this run (CLI flags)."""

    reprocess: bool = False  # recompute articles already done by this pipeline and replace their rows
    since: str | None = None  # publication date bounds, YYYY-MM-DD, inclusive
    until: str | None = None
    limit: int | None = None  # at most this many articles (oldest first)

    @property
    def windowed(self) -> bool:
        return bool(self.since or self.until or self.limit is not None)


@dataclass(frozen=True)
class Run:
    """What every step of one run may read; fixed for the run."""

    spark: SparkSession
    config: JobConfig
    options: RunOptions
    run_id: str
    pipeline_hash: str
    stamp: dict[str, str]  # provenance columns of every row written (driver.provenance)
    lease: Lease
    fault: str = ""  # isolation.faults point; tests only
    in_driver: bool = False  # small runs hold step outputs in the driver instead of staged files

    @property
    def warehouse(self) -> str:
        return self.config.output.warehouse

    @property
    def staging(self) -> str:
        return staging.folder(self.warehouse, self.run_id)

    def put(self, frame: DataFrame, name: str) -> DataFrame:
        """`frame` computed once (staging.stage): later steps and counts reuse it."""
        return staging.stage(frame, self.staging, name, self.in_driver)


@dataclass(frozen=True)
class Selected:
    read: manifest.FilePlan
    inputs: DataFrame  # every record read, with its `state`
    rejected: DataFrame  # rejected at read: quarantine
    todo: DataFrame  # the articles this run processes
    finished_files: DataFrame  # manifest rows of the files this run finishes
    figures: dict[str, int]  # articles_in, articles_skipped, files_skipped, articles_deferred
    n_rejected: int
    n_changed: int
    n_todo: int
    todo_chars: int


def select_input(run: Run) -> Selected:
    """Read and validate; classify every record (rejected / done / changed / unfinished).

    Files the manifest shows finished and unchanged are not read (input/manifest.py); one staged
    read classifies the records of the others, and one aggregation counts them: the selection must
    not change when `articles` is written later. Records an earlier run isolated are not worked on
    again: rejected as they were without being decoded again, or skipped while their content is
    the same (selection.EarlierIsolations)."""
    from pyspark.sql import functions as F

    spark, options = run.spark, run.options
    isolated = (selection.EarlierIsolations() if options.reprocess
                else selection.earlier_isolations(spark, run.warehouse, run.pipeline_hash))
    read, raw = manifest.read_input(spark, run.config.input, run.warehouse, run.pipeline_hash, options.reprocess,
                                    run.config.execution.isolation(), isolated.decoded)
    inputs = staging.stage(selection.classified(spark, raw, run.warehouse, run.pipeline_hash, options.reprocess,
                                                isolated.articles), run.staging, "input")
    states, todo_chars = selection.tally(inputs)
    if read.skipped is not None and (states.get("done", 0) or states.get("changed", 0)):
        held = selection.held_by_skipped_files(spark, run.warehouse, run.pipeline_hash, inputs, read.skipped)
        if held is not None:  # ids already finished from files skipped unread: duplicates
            inputs = staging.stage(held, run.staging, "input-checked")
            states, todo_chars = selection.tally(inputs)
    n_changed = states.get("changed", 0)
    n_unfinished = states.get("unfinished", 0) + n_changed
    unfinished = inputs.filter(F.col("state").isin(*selection.TO_PROCESS)).drop("state")
    todo, n_todo = unfinished, n_unfinished
    if options.windowed:
        todo = staging.stage(selection.window(unfinished, options.since, options.until, options.limit),
                             run.staging, "todo")
        n_todo, todo_chars = selection.size(todo)
    figures = {"files_skipped": read.skipped_files,
               "articles_in": sum(states.values()) + read.skipped_records,
               "articles_skipped": states.get("done", 0) + read.skipped_records,
               "articles_deferred": n_unfinished - n_todo}
    log.warning("run %s: %d records in (%d files skipped unread), %d rejected at read, %d already done, "
                "%d deferred, %d to process", run.run_id, figures["articles_in"], read.skipped_files,
                states.get("rejected", 0), figures["articles_skipped"], figures["articles_deferred"], n_todo)
    finished_files = manifest.finished_rows(spark, run.warehouse, inputs, read, run.pipeline_hash, run.run_id,
                                            options.windowed)
    return Selected(read, inputs, inputs.filter(F.col("state") == "rejected"), todo, finished_files, figures,
                    states.get("rejected", 0), n_changed, n_todo, todo_chars)


@dataclass(frozen=True)
class Segmented:
    sentences: DataFrame  # SENTENCE rows
    unsegmented: DataFrame  # articles without a sentence, with a `reason`
    n_sentences: int
    n_unsegmented: int


def segment(run: Run, plan: ExtractionPlan, todo: DataFrame, n_todo: int) -> Segmented:
    """Sentences of the articles to process; an article whose text cannot fit the model yields
    only its reject row and is quarantined whole, never truncated."""
    from pyspark.sql import functions as F

    budget = PromptBudget(run.config.model.path, plan.max_prompt_tokens, plan.prompt_suffixes())
    segmented = run.put(SegmentStep(run.config.segmentation, budget, plan.isolation).apply(todo), "segmented")
    too_long = segmented.filter(F.col("reject_reason").isNotNull()).select(
        "article_id", F.col("reject_reason").alias("too_long"))
    sentences = segmented.filter(F.col("reject_reason").isNull()).drop("reject_reason")
    unsegmented = (todo.join(sentences.select("article_id").distinct(), "article_id", "left_anti")
                   .join(too_long, "article_id", "left")
                   .withColumn("reason", F.coalesce("too_long", F.lit(NO_SENTENCE))))
    ok = F.col("reject_reason").isNull()
    counts = segmented.agg(F.count(F.when(ok, 1)).alias("sentences"),
                           F.countDistinct(F.when(ok, F.col("article_id"))).alias("articles")).collect()[0]
    # Sentences come only from `todo` articles, so the rest of `todo` is what `unsegmented` holds.
    return Segmented(sentences, unsegmented, int(counts["sentences"]), n_todo - int(counts["articles"]))


@dataclass(frozen=True)
class Extracted:
    inference: chain.Inference
    figures: dict[str, Any]  # engine_calls and the engines' figures (runs.engine_figures)
    cache_write: list[Callable[[], None]] = field(default_factory=list)  # run with the other writes


def extract(run: Run, plan: ExtractionPlan, sentences: DataFrame, n_sentences: int) -> Extracted:
    """The inference chain over this run's sentences, answered from the prompt cache where it can."""
    ex = run.config.execution
    cache = dedup.read_cache(run.spark, run.warehouse) if ex.dedup else None
    profile = placement.inference_profile(ex.gpus_per_engine, ex.cpus_per_engine, ex.gpu_resource_name)

    def announce(calls: int, parts: int) -> None:
        log.warning("run %s: %d sentences x %d tasks, %d engine calls in %d partitions (%s)", run.run_id,
                    n_sentences, len(plan.tasks), calls, parts,
                    f"{ex.gpus_per_engine} GPU(s) per engine" if profile else "CPU engines")

    inference = chain.infer(plan, sentences, stage=run.put, cache=cache, profile=profile,
                            progress_seconds=ex.progress_interval_seconds, label=f"run {run.run_id} inference",
                            on_calls=announce)
    figures: dict[str, Any] = {"engine_calls": inference.engine_calls}
    answered = 0
    if inference.engine_calls:
        engines, answered = runs.engine_figures(inference.generations, inference.engine_calls,
                                                inference.inference_seconds)
        figures.update(engines)
    if cache is None:
        return Extracted(inference, figures)
    # Run only after the answers are staged: the cache read above must not see these rows.
    rows = dedup.cache_rows(inference.generations, inference.requests, run.stamp)
    return Extracted(inference, figures, [lambda: tables.write_rows(
        run.spark, run.warehouse, "prompt_cache", rows, fresh_keys=True, n_rows=answered)])


@dataclass(frozen=True)
class SetAside:
    extractions: DataFrame
    sentences: DataFrame
    unsegmented: DataFrame  # articles quarantined whole, with a `reason`
    n_sentences: int
    n_unsegmented: int
    n_prompts_answered: int | None  # every prompt the engines answered, when some were set aside


def set_aside(run: Run, todo: DataFrame, segmented: Segmented, extractions: DataFrame) -> SetAside:
    """An article with a sentence whose prompt, engine call or parse was isolated (a crash, hang or
    memory exhaustion: isolation.process) is quarantined whole, like one that could not be segmented."""
    poisoned = records.poisoned_articles(extractions)
    if not poisoned:
        return SetAside(extractions, segmented.sentences, segmented.unsegmented, segmented.n_sentences,
                        segmented.n_unsegmented, None)
    log.warning("run %s: %d article(s) isolated in a later step, quarantined: %s", run.run_id, len(poisoned),
                "; ".join(f"{a}: {r[:120]}" for a, r in poisoned[:5]))
    answered = extractions.count()
    reasons = run.spark.createDataFrame(poisoned, "article_id string, late_reason string")
    sentences = segmented.sentences.join(reasons.select("article_id"), "article_id", "left_anti")
    unsegmented = segmented.unsegmented.unionByName(
        todo.join(reasons, "article_id").withColumnRenamed("late_reason", "reason"), allowMissingColumns=True)
    return SetAside(extractions.join(reasons.select("article_id"), "article_id", "left_anti"), sentences,
                    unsegmented, sentences.count(), segmented.n_unsegmented + len(poisoned), answered)


def nothing_to_do(run: Run, selected: Selected) -> dict[str, Any]:
    """A run with no article to process: only bad records may need (idempotent) quarantining."""
    from giellm_batch.warehouse import intents

    run.lease.check()
    quarantined = records.quarantine_rows(selected.rejected, None, run.stamp)
    tables.write_rows(run.spark, run.warehouse, "quarantine", quarantined, n_rows=selected.n_rejected)
    manifest.write_finished(run.spark, run.warehouse, selected.read, selected.finished_files)
    if intents.pending(run.spark, run.warehouse, run.pipeline_hash):  # e.g. killed after its last commit
        intents.settle(run.spark, run.warehouse, run.pipeline_hash, found=True)
    return {"quarantine": quarantined} if selected.n_rejected else {}

