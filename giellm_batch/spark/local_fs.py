"""A local file system for Hadoop that starts no child process per file (driver code).

Why: pip's pyspark ships without Hadoop's native library, so Hadoop's local file system sets every
new file's and folder's permissions by running `chmod` and looks up a path's link status (on each
rename, so on every Delta commit) by running `readlink`. Each is a fork/exec of the driver JVM,
4-7 ms here: ~180 of them for a small nightly run, ~730 for a first run over 300 articles (Java
Flight Recorder's ProcessStart events, docs/measurements.md, issue 13 eighth pass). The classes in
`jvm/src` do both in the JVM (java.nio) and leave the rest, checksum files included, to Hadoop.

The jar is compiled from those sources with the JDK's `javac` (at `make setup`, else on first use)
next to them. Without a JDK nothing changes: Spark keeps Hadoop's own local file system. Only the
`file:` scheme is affected; HDFS and object stores are not.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger("giellm_batch.spark.local_fs")
JVM_DIR = Path(__file__).resolve().parent / "jvm"
SOURCES = JVM_DIR / "src"
JAR = JVM_DIR / "giellm-hadoop.jar"
# Hadoop settings (as Spark conf) that put the classes in place of Hadoop's for `file:` paths: the
# FileSystem API (Spark's readers and writers) and the FileContext API (Delta's commits).
HADOOP_CONF = {
    "spark.hadoop.fs.file.impl": "giellm.hadoop.NoForkLocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "giellm.hadoop.NoForkLocalFs",
}


def hadoop_conf(conf: dict[str, str]) -> dict[str, str]:
    """HADOOP_CONF, with any key the job's own Spark settings `conf` give left to them."""
    return {key: conf.get(key, value) for key, value in HADOOP_CONF.items()}


def _sources() -> list[Path]:
    return sorted(SOURCES.rglob("*.java"))


def _stale() -> bool:
    if not JAR.exists():
        return True
    built = JAR.stat().st_mtime
    return any(source.stat().st_mtime > built for source in _sources())


def _tool(name: str) -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / name).exists():
        return str(Path(home) / "bin" / name)
    return shutil.which(name)


def _hadoop_api_jars() -> list[str]:
    import pyspark

    return glob.glob(str(Path(pyspark.__file__).parent / "jars" / "hadoop-client-api-*.jar"))


def build_jar() -> Path:
    """Compile the classes and package them as JAR (replaced atomically); raises with the reason."""
    javac, jar = _tool("javac"), _tool("jar")
    api = _hadoop_api_jars()
    if not javac or not jar:
        raise RuntimeError("no JDK found (javac and jar, on PATH or under JAVA_HOME)")
    if not api:
        raise RuntimeError("pyspark's hadoop-client-api jar not found")
    with tempfile.TemporaryDirectory(prefix="giellm-jvm-") as tmp:
        classes = Path(tmp) / "classes"
        subprocess.run([javac, "--release", "17", "-nowarn", "-cp", os.pathsep.join(api), "-d", str(classes),
                        *map(str, _sources())], check=True, capture_output=True, text=True)
        packed = JVM_DIR / f".giellm-hadoop-{os.getpid()}.jar"
        subprocess.run([jar, "cf", str(packed), "-C", str(classes), "."], check=True, capture_output=True)
        os.replace(packed, JAR)  # concurrent builders each write their own file; the last rename wins
    return JAR


@functools.cache
def available_jar() -> Path | None:
    """The built jar (building it first if it is missing or older than its sources), or None when
    it cannot be built here: then Hadoop's own local file system is used, as without this module."""
    try:
        return build_jar() if _stale() else JAR
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        log.info("local file system without forks not available (%s); using Hadoop's", str(detail)[:300])
        return None


def lists_jar(jars: str | None) -> bool:
    """Does a `spark.jars` value name this project's jar?"""
    return any(Path(entry.removeprefix("file:").removeprefix("//")).name == JAR.name
               for entry in (jars or "").split(",") if entry)
