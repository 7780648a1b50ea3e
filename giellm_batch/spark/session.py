"""Building the SparkSession with Delta Lake, the same way under spark-submit and under plain Python.

Under `python`/pytest the Delta jars are added with `spark.jars.packages` (resolved from Maven
Central once, then from the local Ivy cache). Under `spark-submit` the JVM is already running
when this code executes, so the jars must come from `--packages` (submit.py's command passes
`delta_maven_coordinate()`); we check that they did and say how to fix it if not. The driver's JVM
options (DRIVER_JAVA_OPTIONS) likewise: set here under python, `--driver-java-options` under spark-submit.
Building a session runs no compiler and writes nothing into the installed package.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from typing import TYPE_CHECKING

from giellm_batch.config.job_config import ObjectStoreSettings, SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
# The driver JVM of a batch run lives for minutes, and Spark generates fresh code for every query, so
# HotSpot's optimising C2 compiler spends more than it saves there (its threads take about half of a
# small run's JVM CPU): a driver that runs one job and exits compiles with C1 only (quick compiles,
# less optimised code; docs/measurements.md has the runs). Executors' JVMs on a cluster are left as
# they are.
# C1 alone also shrinks HotSpot's default code cache from 240 MB to 48 MB, which one run's generated
# code (Spark's plus Delta's) can fill: the JVM then stops compiling, or dies with "Out of space in
# CodeCache". So the code cache is sized as tiered HotSpot sizes it: reserved address space,
# committed only as code is compiled.
DRIVER_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"
CODEGEN_CACHE_ENTRIES = 2000


def delta_maven_coordinate() -> str:
    """Maven coordinate of the Delta jars matching the installed delta-spark and pyspark."""
    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{importlib.metadata.version('delta-spark')}"


def under_spark_submit() -> bool:
    # spark-submit's PythonRunner hands the driver its gateway through these variables.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def worker_environment() -> dict[str, str]:
    """Environment every Python worker needs (set before the JVM starts so local workers inherit it)."""
    return {
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # no engine subprocess inside a Spark worker
        "TOKENIZERS_PARALLELISM": "false",
        "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
    }


def build_spark(settings: SparkSettings, *, short_lived: bool = False,
                object_store: ObjectStoreSettings | None = None) -> SparkSession:
    """Get or create the SparkSession for a job, with Delta enabled.

    `short_lived`: this process runs one job or command and exits (`giellm-batch run`), so a JVM it
    starts gets DRIVER_JAVA_OPTIONS. Long-lived sessions (tests, benchmarks, notebooks) keep the
    JIT's default: over many runs C2's faster code wins.
    `object_store`: the run reaches s3a:// paths (object_store.py): S3A's jars (unless the cluster
    provides them) and settings are added, and checked."""
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    from giellm_batch.spark import object_store as s3a

    env = worker_environment()
    for name, value in env.items():
        os.environ.setdefault(name, value)
    builder = SparkSession.builder.appName(settings.app_name)
    # Under spark-submit its --master wins (a Python-side SparkConf cannot see it before the
    # context exists, so checking SparkConf here would silently fall back to local mode).
    if not under_spark_submit() and not SparkConf().contains("spark.master"):
        builder = builder.master(settings.master)
    conf = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        # One warm engine per Python worker only works if workers are reused across Spark tasks.
        "spark.python.worker.reuse": "true",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # The generation stage's range partitions (steps/chain.py: balanced) are sized from a sample of
        # ~3x this many keys per partition: Spark's 100 leaves partition sizes ~6 % apart (one
        # standard deviation), 1,000 ~2 %; the driver holds at most ~3 million 16-byte keys.
        "spark.sql.execution.rangeExchange.sampleSizePerPartition": "1000",
        # Spark caches the classes it compiles for query plans, keyed by their generated source. A run
        # generates ~350 distinct ones, more than the default cache of 100 holds, so every later run in
        # the same JVM would compile nearly all of them again (Janino, then HotSpot). Static: read at
        # JVM start.
        "spark.sql.codegen.cache.maxEntries": str(CODEGEN_CACHE_ENTRIES),
        **{f"spark.executorEnv.{k}": v for k, v in env.items() if k != "PYSPARK_PYTHON"},
        **settings.conf,
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    if not under_spark_submit():  # under spark-submit the JVM is running: both come from its command line
        packages = [delta_maven_coordinate()]
        if object_store is not None and object_store.hadoop_aws == "auto":
            packages.append(s3a.hadoop_aws_coordinate())
            builder = builder.config("spark.jars.excludes", s3a.JAR_EXCLUDES)
        builder = builder.config("spark.jars.packages", ",".join(packages))
        # Only a JVM started here takes them (a running session, e.g. under pytest, is reused as it is).
        starts_jvm = SparkContext._active_spark_context is None
        if starts_jvm and short_lived and "spark.driver.extraJavaOptions" not in settings.conf:
            builder = builder.config("spark.driver.extraJavaOptions", DRIVER_JAVA_OPTIONS)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("GIELLM_SPARK_LOG_LEVEL", "WARN"))  # spark-submit defaults to INFO
    _require_delta(spark)
    if object_store is not None:
        s3a.require_s3a(spark)
        s3a.apply_s3a_settings(spark, object_store, settings.conf)
    return spark


def _require_delta(spark: SparkSession) -> None:
    from delta.tables import DeltaTable

    try:  # without the jars py4j answers with a JavaPackage, and calling it raises TypeError
        DeltaTable.isDeltaTable(spark, "/nonexistent-giellm-batch-probe")
    except Exception as exc:
        raise RuntimeError(
            "Delta Lake jars are not on the Spark classpath. Run the job with `giellm-batch spark-submit -- "
            f"JOB ARGS`, or spark-submit with `--packages {delta_maven_coordinate()}` (see README, Quickstart)."
        ) from exc


def fetch_jars(with_s3a: bool = False) -> None:
    """Resolve the Delta jars (and with `with_s3a` hadoop-aws and its AWS SDK) into the Ivy cache
    once (a set-up step), then stop."""
    store = ObjectStoreSettings() if with_s3a else None
    spark = build_spark(SparkSettings(master="local[1]", app_name="giellm-batch-setup"), object_store=store)
    spark.range(1).count()
    spark.stop()


if __name__ == "__main__":
    fetch_jars(with_s3a="--s3a" in sys.argv[1:])
