"""Deduplication of engine calls (driver code): each distinct prompt is answered once, ever.

News repeats itself (wire copy, boilerplate lines, corrections), so many (sentence, task) pairs
were answered before. A prompt's `prompt_key` hashes the prompt with everything that decides the
engine's answer (model, revision, task and decoding settings, dtype, seed: `ExtractionPlan.identity`).
Within a run only one request per key goes to the engine; across runs the `prompt_cache` table
answers keys seen before. Answers are joined back to every request by key, and parsing and
grounding run per request, so reused outputs get the new article's keys and offsets. Engine
errors are never cached: the next run retries them.
"""

from __future__ import annotations

from typing import Any

from giellm_batch.warehouse import tables


def engine_inputs(requests: Any, cache: Any | None) -> Any:
    """The requests the engine must answer: one per prompt_key, minus keys the cache answers."""
    unique = requests.dropDuplicates(["prompt_key"])
    if cache is None:
        return unique
    return unique.join(cache.select("prompt_key"), "prompt_key", "left_anti")


def cached_answers(cache: Any, requests: Any) -> Any:
    """Cache rows for this run's keys, shaped like generation answers."""
    from pyspark.sql import functions as F

    keys = requests.select("prompt_key").distinct()
    no_error = F.lit(None).cast("string").alias("error")
    return (cache.join(keys, "prompt_key", "left_semi")
            .select("prompt_key", "raw_output", "finish_reason", "n_output_tokens", no_error))


def answers(generations: Any, cached: Any | None) -> Any:
    fresh = generations.select("prompt_key", "raw_output", "finish_reason", "n_output_tokens", "error")
    return fresh if cached is None else fresh.unionByName(cached)


def cache_rows(generations: Any, requests: Any, stamp: dict[str, str]) -> Any:
    """New prompt_cache rows: this run's successful engine outputs."""
    from pyspark.sql import functions as F

    tasks = requests.select("prompt_key", "task").dropDuplicates(["prompt_key"])
    rows = generations.filter(F.col("error").isNull()).join(tasks, "prompt_key")
    return rows.select(
        "prompt_key", "task", "raw_output", "finish_reason", "n_prompt_tokens", "n_output_tokens",
        F.lit(stamp["pipeline_hash"]).alias("pipeline_hash"), F.lit(stamp["model_id"]).alias("model_id"),
        F.lit(stamp["run_id"]).alias("run_id"), F.current_timestamp().alias("cached_at"))


def read_cache(spark: Any, warehouse: str) -> Any:
    return tables.read_table(spark, warehouse, "prompt_cache")
