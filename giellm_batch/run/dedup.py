"""The `prompt_cache` table: engine answers kept across runs, so each distinct prompt is answered
once, ever (news repeats itself: wire copy, boilerplate lines, corrections). The inference chain
(steps/chain.py) reuses them; engine errors are never cached, so the next run retries them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from giellm_batch.warehouse import tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def cache_rows(generations: DataFrame, requests: DataFrame, stamp: dict[str, str]) -> DataFrame:
    """New prompt_cache rows: this run's successful engine outputs."""
    from pyspark.sql import functions as F

    tasks = requests.select("prompt_key", "task").dropDuplicates(["prompt_key"])
    rows = generations.filter(F.col("error").isNull()).join(tasks, "prompt_key")
    return rows.select(
        "prompt_key", "task", "raw_output", "finish_reason", "n_prompt_tokens", "n_output_tokens",
        F.lit(stamp["pipeline_hash"]).alias("pipeline_hash"), F.lit(stamp["model_id"]).alias("model_id"),
        F.lit(stamp["run_id"]).alias("run_id"), F.current_timestamp().alias("cached_at"))


def read_cache(spark: SparkSession, warehouse: str) -> DataFrame:
    return tables.read_table(spark, warehouse, "prompt_cache")
