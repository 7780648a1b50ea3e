"""Spark's way to `s3a://` paths: the hadoop-aws jars and the S3A settings of `object_store:`.

Rules:
- hadoop-aws must be the Hadoop version Spark runs (pip's pyspark bundles one; S3A fails with
  NoSuchMethodError against another), so the coordinate is read off pyspark's own jars.
- The settings go into the driver's Hadoop configuration at session build, whether this process
  started the JVM or found it running (tests, notebooks, spark-submit): Spark ships that
  configuration to every task that reads or writes a table, and the driver's own files (lock,
  intents, reports: giellm_batch.storage) use it directly. `spark.hadoop.fs.s3a.*` keys the user
  gives under `spark.conf` win.
- Credentials are never set here (see config.settings.ObjectStoreSettings).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giellm_batch.config.settings import ObjectStoreSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
# delta-spark's POM pulls hadoop-client-api/-runtime 3.4.x next to the 3.5 jars pip's pyspark
# bundles; with hadoop-aws on the classpath the two versions' classes clash. Spark's own win.
JAR_EXCLUDES = "org.apache.hadoop:hadoop-client-api,org.apache.hadoop:hadoop-client-runtime"


def uses_s3a(paths: Iterable[str]) -> bool:
    """Does any of `paths` live on S3 through S3A?"""
    return any(path.lower().startswith("s3a://") for path in paths if path)


def hadoop_version() -> str:
    """The Hadoop version of pip's pyspark, read off its bundled `hadoop-client-api-<v>.jar`."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    for jar in sorted(jars.glob("hadoop-client-api-*.jar")):
        match = re.fullmatch(r"hadoop-client-api-(\d+\.\d+\.\d+)\.jar", jar.name)
        if match:
            return match.group(1)
    raise RuntimeError(f"no hadoop-client-api jar in {jars}: cannot tell which hadoop-aws matches this Spark; "
                       "set object_store.hadoop_aws: provided and put S3A on the classpath yourself")


def hadoop_aws_coordinate() -> str:
    """Maven coordinate of the S3A connector matching this Spark's Hadoop."""
    return f"org.apache.hadoop:hadoop-aws:{hadoop_version()}"


def s3a_settings(store: ObjectStoreSettings) -> dict[str, str]:
    """Hadoop keys (`fs.s3a.*`) for `store`: only those the settings decide; S3A's defaults stay."""
    conf: dict[str, str] = {}
    if store.endpoint:
        conf["fs.s3a.endpoint"] = store.endpoint
        conf["fs.s3a.connection.ssl.enabled"] = str(store.endpoint.startswith("https://")).lower()
    if store.region:
        conf["fs.s3a.endpoint.region"] = store.region
    if store.path_style:
        conf["fs.s3a.path.style.access"] = "true"
    return conf


def apply_s3a_settings(spark: SparkSession, store: ObjectStoreSettings, user_conf: dict[str, str]) -> None:
    """Put `store`'s S3A keys into the driver's Hadoop configuration, under the user's own."""
    hadoop_conf = spark._jsc.hadoopConfiguration()
    for key, value in s3a_settings(store).items():
        hadoop_conf.set(key, user_conf.get(f"spark.hadoop.{key}", value))
    _quiet_expected_refusals(spark)


def _quiet_expected_refusals(spark: SparkSession) -> None:
    """A conditional create that loses (the lock is held: 412) is an expected answer, which S3A's
    output stream logs as a WARN with a page of statistics; keep the driver's log to real problems."""
    try:
        jvm: Any = spark._jvm  # py4j view of the driver JVM: untyped
        level = jvm.org.apache.logging.log4j.Level.ERROR
        for logger in ("org.apache.hadoop.fs.s3a.S3ABlockOutputStream", "org.apache.hadoop.fs.s3a.S3AInstrumentation"):
            jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(logger, level)
    except Exception:  # another logging back end: the WARN stays, nothing else changes
        return


def require_s3a(spark: SparkSession) -> None:
    """Fail with what to do when S3A is not on the driver's classpath."""
    try:
        # Spark's class loader (which holds --packages jars), not the JVM's system loader.
        spark._jvm.org.apache.spark.util.Utils.classForName(S3A_FILESYSTEM, False, False)  # type: ignore[union-attr]
    except Exception as exc:
        raise RuntimeError(
            f"s3a:// paths need Hadoop's S3A connector, which is not on the Spark classpath. Run the job with "
            f"`giellm-batch spark-submit -- JOB ARGS` (it adds it), or spark-submit with `--packages "
            f"{hadoop_aws_coordinate()}`; on a cluster that provides S3A set object_store.hadoop_aws: provided "
            "and check its Spark/Hadoop set-up.") from exc
