"""The session build_spark makes: settings that the job's fixed cost depends on."""

from __future__ import annotations

from giellm_batch.spark.session import CODEGEN_CACHE_ENTRIES


def _compiles(spark) -> int:
    return int(spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME().getCount())


def test_code_compiled_for_earlier_plans_is_reused_past_sparks_default_cache_size(spark):
    # Spark's default cache holds 100 compiled classes; a job run generates ~350. Plans that differ
    # in an inlined integer literal compile to different classes: 150 of them, then all again.
    distinct = 150
    assert CODEGEN_CACHE_ENTRIES > distinct > 100

    def run(i: int) -> None:
        # Preparing the plan's RDD compiles its code on the driver without running a Spark job.
        spark.range(3).selectExpr(f"id * {i + 7} + {i + 1000003} AS v")._jdf.queryExecution().executedPlan().execute()

    for i in range(distinct):
        run(i)
    first = _compiles(spark)
    for i in range(distinct):
        run(i)
    assert _compiles(spark) - first == 0
    run(distinct)  # the check can see a compile
    assert _compiles(spark) - first >= 1
