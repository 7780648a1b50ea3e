"""The one inference chain: sentences -> prompt requests -> one engine call per distinct prompt ->
answers joined back to every request -> parsed, grounded rows.

The job, evaluation, the benches and the tests all run exactly this code (there is no in-memory
copy of it), so what the tests check is what the job does.

Deduplication: a prompt's `prompt_key` hashes the prompt with everything that decides the engine's
answer (`ExtractionPlan.identity`). Within a run only one request per key goes to an engine; a
prompt cache (the job's `prompt_cache` table) answers keys seen before. Answers are joined back to
every request by key, and parsing and grounding run per request, so a reused output gets the new
article's keys and offsets. A request whose prompt could not be built carries its `error` and is
answered with it, never sent to an engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from giellm_batch import schemas
from giellm_batch.steps.generate import GenerateStep
from giellm_batch.steps.parse import ParseStep
from giellm_batch.steps.plan import ExtractionPlan
from giellm_batch.steps.progress import InferenceProgress
from giellm_batch.steps.prompt import PromptStep

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.resource import ResourceProfile
    from pyspark.sql import DataFrame, SparkSession

# (step output, name) -> the same rows, computed once (the job stages them: warehouse.staging).
Stage = Callable[["DataFrame", str], "DataFrame"]
ANSWER_COLUMNS = ("prompt_key", "raw_output", "finish_reason", "n_output_tokens", "error")
SENTENCE_COLUMNS = ("article_id", "sentence_idx", "text", "char_start")


def _as_is(frame: DataFrame, _name: str) -> DataFrame:
    return frame


@dataclass(frozen=True)
class Inference:
    requests: DataFrame  # PROMPT_REQUEST rows, one per sentence x task
    generations: DataFrame  # GENERATION rows: this chain's engine answers (empty when none ran)
    extractions: DataFrame  # EXTRACTION_STAGE rows, one per request
    engine_calls: int  # distinct prompts sent to engines
    inference_seconds: float  # wall time of the generation stage


def infer(plan: ExtractionPlan, sentences: DataFrame, *, stage: Stage = _as_is, cache: DataFrame | None = None,
          profile: ResourceProfile | None = None, progress_seconds: float = 30.0, label: str = "inference",
          on_calls: Callable[[int, int], None] | None = None) -> Inference:
    """The chain over `sentences` (SENTENCE rows; an optional `task` column picks one task per row).

    `cache`: prompt_cache rows whose answers are reused instead of engine calls. `stage`
    materialises each named intermediate once. `on_calls(engine_calls, partitions)` is told the
    generation stage's size before it starts (the job logs it)."""
    spark = sentences.sparkSession
    requests = stage(PromptStep(plan).apply(sentences), "requests")
    # Staged: the count, the range sampling and the generation stage reuse one anti-join.
    calls = stage(engine_inputs(requests, cache), "calls")
    n_calls = calls.count()
    slots = spark.sparkContext.defaultParallelism
    # A multiple of the task slots, so no engine idles through a last, lone partition.
    parts = slots * max(1, math.ceil(n_calls / (plan.prompts_per_partition * slots)))
    if on_calls is not None:
        on_calls(n_calls, parts)
    seconds = 0.0
    if n_calls == 0:  # every prompt answered before: no engine is started
        generations = spark.createDataFrame([], schemas.GENERATION)
    else:
        with InferenceProgress(spark, n_calls, progress_seconds, label) as progress:
            generations = stage(GenerateStep(plan, progress.counter).apply(balanced(calls, parts), profile),
                                "generations")
        seconds = progress.seconds
    joined = join_answers(requests, answers(requests, generations, cache), sentences)
    extractions = stage(ParseStep(plan).apply(
        joined.repartition(parts, "article_id").sortWithinPartitions("article_id", "sentence_idx")), "extractions")
    return Inference(requests, generations, extractions, n_calls, seconds)


def engine_inputs(requests: DataFrame, cache: DataFrame | None) -> DataFrame:
    """The requests an engine must answer: one per prompt_key, none whose prompt failed, none the
    cache answers."""
    from pyspark.sql import functions as F

    unique = requests.filter(F.col("error").isNull()).dropDuplicates(["prompt_key"])
    if cache is not None:
        unique = unique.join(cache.select("prompt_key"), "prompt_key", "left_anti")
    return unique.select("prompt_key", "task", "prompt", "sentence_key")


def answers(requests: DataFrame, generations: DataFrame, cache: DataFrame | None) -> DataFrame:
    """One answer per prompt_key of `requests`: fresh engine answers, cached ones, and the error of
    each request whose prompt could not be built (the parse step makes it an `error` row)."""
    from pyspark.sql import functions as F

    fresh = generations.select(*ANSWER_COLUMNS)
    if cache is not None:
        keys = requests.select("prompt_key").distinct()
        fresh = fresh.unionByName(cache.join(keys, "prompt_key", "left_semi").select(
            *ANSWER_COLUMNS[:-1], F.lit(None).cast("string").alias("error")))
    failed = requests.filter(F.col("error").isNotNull()).select(
        "prompt_key", F.lit(None).cast("string").alias("raw_output"), F.lit(None).cast("string").alias("finish_reason"),
        F.lit(0).cast("int").alias("n_output_tokens"), "error")
    return fresh.unionByName(failed)


def join_answers(requests: DataFrame, answered: DataFrame, sentences: DataFrame) -> DataFrame:
    """Every request with its answer and its sentence: the parse step's input."""
    return (requests.drop("error").join(answered, "prompt_key")
            .join(sentences.select(*SENTENCE_COLUMNS), ["article_id", "sentence_idx"]))


def balanced(calls: DataFrame, parts: int) -> DataFrame:
    """`calls` in `parts` partitions of (nearly) equal size, each sorted by sentence.

    Ranges, not hashes: engines take partitions as they free up and should finish together, and
    hashing `sentence_key` sends every copy of a repeated sentence (wire copy, dedup off) to one
    partition. Ranges over (sentence, call) are unique per call, so they split evenly and still
    keep a sentence's prompts together for the prefix cache. The bounds come from a sample of the
    keys (spark.sql.execution.rangeExchange.sampleSizePerPartition, set in spark.session); the keys
    are 64-bit hashes so that sample stays small on the driver."""
    from pyspark.sql import functions as F

    return (calls.repartitionByRange(parts, F.xxhash64("sentence_key"), F.xxhash64("prompt_key"))
            .sortWithinPartitions("sentence_key", "task"))


def extract_frame(plan: ExtractionPlan, spark: SparkSession, sentences: pd.DataFrame) -> pd.DataFrame:
    """The chain over in-memory sentences (evaluation, benches, tests): the job's code, run by
    `spark` (local or not) on a small frame, EXTRACTION_STAGE rows back in memory."""
    from pyspark.sql.types import StringType, StructField, StructType

    types = {f.name: f.dataType for f in schemas.SENTENCE.fields} | {"task": StringType()}
    schema = StructType([StructField(c, types[c], True) for c in sentences.columns])
    rows = [tuple(None if v is None or v != v else v for v in row) for row in sentences.itertuples(index=False)]
    frame = spark.createDataFrame(rows, schema)  # NaN (a missing value in pandas) -> null
    frame = frame.repartition(max(1, spark.sparkContext.defaultParallelism))
    return infer(plan, frame).extractions.toPandas()
