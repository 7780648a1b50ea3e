"""Building the driver JVM's class archive (jvm_archive.py): a spark-submit of a small workload that
runs the kinds of query a job runs, with `-XX:ArchiveClassesAtExit` (~1 min here, once per machine,
JDK, Spark and Delta; `giellm-batch jvm-archive`, `make setup`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from giellm_batch import jvm_archive


def ensure(root: Path | None = None, force: bool = False) -> Path | None:
    """The archive, built first if missing or incomplete (`force`: always rebuilt)."""
    path = jvm_archive.archive_path(root)
    if path is not None and jvm_archive.complete(path) and not force:
        return path
    return build(root)


def build(root: Path | None = None, timeout: float = 600) -> Path:
    """Write this machine's archive: a spark-submit of `exercise` (below) with ArchiveClassesAtExit."""
    from giellm_batch.local_fs import available_jar
    from giellm_batch.spark_session import DRIVER_JAVA_OPTIONS, delta_maven_coordinate

    path = jvm_archive.archive_path(root)
    if path is None:
        raise RuntimeError("no JDK found: set JAVA_HOME or put `java` on PATH")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(path.parent, timeout)
    bin_dir = Path(sys.executable).parent
    jar = available_jar()
    with tempfile.TemporaryDirectory(prefix=_BUILD_PREFIX, dir=path.parent) as tmp:
        partial = Path(tmp) / path.name
        command = [str(bin_dir / "spark-submit"), "--master", "local[2]", "--packages", delta_maven_coordinate(),
                   "--driver-java-options", f"{DRIVER_JAVA_OPTIONS} -XX:ArchiveClassesAtExit={partial}",
                   *(["--jars", str(jar)] if jar else []), __file__, tmp]
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               "GIELLM_SPARK_LOG_LEVEL": "ERROR"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not partial.exists():
            raise RuntimeError(f"building the JVM archive failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        publish(partial, path)
    return path


def publish(partial: Path, path: Path) -> None:
    """Move a freshly written archive to `path` once a JVM has mapped it without dying.

    Why the check: a dump cut short (disk full) leaves a truncated file, and a JVM given a truncated
    archive dies at start (SIGBUS, exit 134, measured), which would stop every run. Then the rename
    (same folder: atomic), then the size sidecar: a reader that finds the two agreeing has a whole
    archive (jvm_archive.complete)."""
    home = jvm_archive.java_home()
    java = str(home / "bin" / "java") if home is not None else "java"
    check = subprocess.run([java, f"-XX:SharedArchiveFile={partial}", "-version"], capture_output=True, text=True,
                           timeout=120, cwd=partial.parent)  # cwd: a crash's hs_err file goes with the folder
    if check.returncode != 0:
        raise RuntimeError(f"the new JVM archive does not load (java exit {check.returncode}); not used:\n"
                           f"{check.stderr[-1500:]}")
    size = partial.stat().st_size
    os.replace(partial, path)
    sidecar = path.with_suffix(".size")
    sidecar.with_suffix(".tmp").write_text(str(size))
    os.replace(sidecar.with_suffix(".tmp"), sidecar)


_BUILD_PREFIX = "giellm-jvm-archive-"


def _remove_abandoned_builds(folder: Path, timeout: float) -> None:
    """Folders of builds killed mid-way (~200 MB each); one younger than a build may take is left alone."""
    import shutil
    import time

    for stale in folder.glob(f"{_BUILD_PREFIX}*"):
        if stale.is_dir() and time.time() - stale.stat().st_mtime > timeout:
            shutil.rmtree(stale, ignore_errors=True)


def exercise(spark: object, root: Path) -> None:
    """The kinds of query a job runs, so their classes land in the archive: Delta create, append,
    MERGE and reads with filters and joins, Arrow transfers both ways, a Python (mapInPandas) stage,
    parquet staging, aggregations and a range repartition."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from giellm_batch import schemas, tables

    session: Any = spark
    warehouse = str(root / "wh")
    tables.ensure_table(session, warehouse, schemas.TABLES["runs"])
    rows = session.range(40).select(F.col("id").cast("string").alias("article_id"), F.lit("h").alias("pipeline_hash"),
                                    F.current_date().alias("published_date"), (F.col("id") % 3).alias("n"))
    table = rows.mapInPandas(lambda batches: (b.assign(n=b["n"] + 1) for b in batches), schema=rows.schema)
    staged = session.createDataFrame(table.toArrow(), schema=table.schema)
    staged.write.mode("overwrite").parquet(str(root / "staged"))
    staged = session.read.parquet(str(root / "staged"))
    path = str(root / "t")
    staged.write.format("delta").partitionBy("published_date").save(path)
    (DeltaTable.forPath(session, path).alias("t").merge(staged.alias("s"), "t.article_id = s.article_id")
     .whenMatchedUpdate(set={"n": "s.n"}).whenNotMatchedInsertAll().execute())
    current = session.read.format("delta").load(path).filter(F.col("pipeline_hash") == "h")
    current.join(staged, "article_id", "left_anti").count()
    held = current.join(staged.select("article_id"), "article_id", "left_semi")
    held.groupBy("n").agg(F.countDistinct("article_id")).collect()
    current.repartitionByRange(2, F.xxhash64("article_id")).sortWithinPartitions("article_id").toArrow()
    tables.read_table(session, warehouse, "runs").filter(F.col("status") == "succeeded").limit(5).collect()
    session.createDataFrame([], schemas.TABLES["runs"].schema).write.format("delta").mode("append").save(
        tables.table_path(warehouse, "runs"))


if __name__ == "__main__":  # under spark-submit, from `build`
    from giellm_batch.config import SparkSettings
    from giellm_batch.spark_session import build_spark

    exercise(build_spark(SparkSettings(master="local[2]", app_name="giellm-jvm-archive", shuffle_partitions=2,
                                       conf={"spark.ui.enabled": "false"})), Path(sys.argv[1]))
