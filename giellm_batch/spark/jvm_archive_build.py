"""Building the driver JVM's class archive (jvm_archive.py): a spark-submit of a small workload that
runs the kinds of query a job runs, with `-XX:ArchiveClassesAtExit` (~1 min here, once per machine,
JDK, Spark, Delta and venv; `giellm-batch jvm-archive`, `make setup`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from giellm_batch.spark import jvm_archive

RETRY_FAILED_AFTER_S = 24 * 3600  # a JDK that cannot write an archive is not asked again every run


def ensure(root: Path | None = None, force: bool = False) -> Path:
    """The archive, built first if missing or incomplete (`force`: always rebuilt, failed or not).

    One build at a time per cache folder (a file lock): two clones' `make setup`, or a setup beside
    a test session, wait for each other instead of racing; the one that waited finds it built. A build
    that failed is not retried for a day (its error is raised again), unless forced."""
    path = jvm_archive.archive_path(root)
    if path is None:
        raise RuntimeError("no JDK found: set JAVA_HOME or put `java` on PATH")
    if jvm_archive.complete(path) and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent / ".lock"):
        if jvm_archive.complete(path) and not force:
            return path
        failed = path.with_suffix(".failed")
        if not force and failed.exists() and time.time() - failed.stat().st_mtime < RETRY_FAILED_AFTER_S:
            raise RuntimeError(f"{failed.read_text()[-1500:]}\n(an earlier build failed; `giellm-batch jvm-archive "
                               "--force` tries again)")
        try:
            build(path)
        except Exception as exc:
            failed.write_text(f"{type(exc).__name__}: {exc}")
            raise
        failed.unlink(missing_ok=True)
        return path


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(path: Path, timeout: float = 600) -> None:
    """Write the archive at `path` (jvm_archive.archive_path; its folder exists): a spark-submit of
    `exercise` (below) with ArchiveClassesAtExit, then `publish`."""
    from giellm_batch.spark.local_fs import available_jar
    from giellm_batch.spark.session import DRIVER_JAVA_OPTIONS, delta_maven_coordinate

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


def publish(partial: Path, path: Path) -> None:
    """Move a freshly written archive to `path` once a JVM has mapped it without dying.

    Why the check: a dump cut short (disk full) leaves a truncated file, and a JVM given a truncated
    archive dies at start (SIGBUS, exit 134, measured), which would stop every run. Then the rename
    (same folder: atomic), then the sidecar with its size: a reader that finds the two agreeing has
    a whole archive (jvm_archive.complete). Callers hold the cache folder's lock (`ensure`)."""
    home = jvm_archive.java_home()
    java = str(home / "bin" / "java") if home is not None else "java"
    check = subprocess.run([java, f"-XX:SharedArchiveFile={partial}", "-version"], capture_output=True, text=True,
                           timeout=120, cwd=partial.parent)  # cwd: a crash's hs_err file goes with the folder
    if check.returncode != 0:
        raise RuntimeError(f"the new JVM archive does not load (java exit {check.returncode}); not used:\n"
                           f"{check.stderr[-1500:]}")
    size = partial.stat().st_size
    os.replace(partial, path)
    jars = str(jvm_archive.spark_jars())
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json.tmp")
    with os.fdopen(fd, "w") as out:
        json.dump({"size": size, "jars": jars}, out)
    os.chmod(tmp, 0o644)  # as the archive: readable by every user of a shared cache (an image's)
    os.replace(tmp, jvm_archive.sidecar(path))
    _remove_superseded(path, jars)


def _remove_superseded(path: Path, jars: str) -> None:
    """Other archives (~200 MB each) built for this same jar folder (before a venv rebuild or an
    upgrade) or for one that is gone, and any left by older versions of this module."""
    for other in path.parent.glob("driver-*.jsa"):
        if other == path:
            continue
        try:
            built_for = json.loads(jvm_archive.sidecar(other).read_text()).get("jars", "")
        except (OSError, ValueError, AttributeError):
            built_for = ""  # no readable sidecar: never named by java_options, so never in use
        if not built_for or built_for == jars or not Path(built_for).exists():
            for stale in (other, jvm_archive.sidecar(other), other.with_suffix(".size"), other.with_suffix(".failed")):
                stale.unlink(missing_ok=True)


_BUILD_PREFIX = "giellm-jvm-archive-"


def _remove_abandoned_builds(folder: Path, timeout: float) -> None:
    """Folders of builds killed mid-way (~200 MB each); one younger than a build may take is left alone."""
    for stale in folder.glob(f"{_BUILD_PREFIX}*"):
        with contextlib.suppress(OSError):  # another build may remove its own folder meanwhile
            if stale.is_dir() and time.time() - stale.stat().st_mtime > timeout:
                shutil.rmtree(stale, ignore_errors=True)


def exercise(spark: object, root: Path) -> None:
    """The kinds of query a job runs, so their classes land in the archive: Delta create, append,
    MERGE and reads with filters and joins, Arrow transfers both ways, a Python (mapInPandas) stage,
    parquet staging, aggregations and a range repartition."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from giellm_batch import schemas
    from giellm_batch.warehouse import tables

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
    from giellm_batch.config.job_config import SparkSettings
    from giellm_batch.spark.session import build_spark

    exercise(build_spark(SparkSettings(master="local[2]", app_name="giellm-jvm-archive", shuffle_partitions=2,
                                       conf={"spark.ui.enabled": "false"})), Path(sys.argv[1]))
