"""A class-data-sharing archive for the driver JVM of short-lived runs (cron nights, `make run`).

Why: a cold `spark-submit` spends seconds loading and verifying the ~20,000 classes of Spark, Delta,
Parquet and Arrow before and during its first queries. HotSpot can map them from an archive made by
an earlier JVM instead (JDK 13+ dynamic CDS: `-XX:ArchiveClassesAtExit` writes it at exit,
`-XX:SharedArchiveFile` maps it). Measured here (`python bench/cold_start.py --baseline no-archive`):
a cold night adding 2 articles to 200 took 24.4 s against 28.5 s without it, the first run 40.6 against
44.3 s (means of 2; docs/measurements.md, issue 13 eleventh pass).

Safety: the JVM checks an archive against its own build and classpath and, if they differ, prints a
warning and runs without it; a class from a jar that changed since is loaded from the jar (its bytes'
CRC is compared). The one thing that crashes a JVM is a truncated archive, so an archive is written
under a temporary name and published by rename, with its size in a sidecar that `java_options()`
checks before naming it. The archive records the absolute paths, sizes and times of the classpath's
jars (pip's pyspark/jars) and the JVM refuses it if any differ, so the archive's name hashes the
JDK, the Spark and Delta versions and that folder's path and listing: a rebuilt venv, an upgrade or
another clone finds no archive (and `make setup` builds its own) instead of one the JVM would refuse
with a warning on every run. Building it: jvm_archive_build.py.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
from pathlib import Path


def java_home() -> Path | None:
    """The JDK that spark-submit starts: $JAVA_HOME, else the `java` on PATH (as Spark's launcher)."""
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    return Path(os.path.realpath(java)).parents[1] if java else None


def cache_root() -> Path:
    """Machine-wide build cache, shared by every clone (GIELLM_BATCH_CACHE overrides), as trained models."""
    return Path(os.environ.get("GIELLM_BATCH_CACHE") or Path.home() / ".cache" / "giellm-batch")


def spark_jars() -> Path:
    """The folder of the jars on the driver JVM's classpath (pip's pyspark), as the archive records it."""
    import pyspark

    return Path(os.path.realpath(Path(pyspark.__file__).parent / "jars"))


def _classpath_listing(jars: Path) -> str:
    """Name, size and modification time of every jar: what the JVM compares before using an archive."""
    try:
        entries = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(jars) if e.is_file())
    except OSError:
        return ""
    return json.dumps(entries)


def archive_path(root: Path | None = None) -> Path | None:
    """Where the archive for this JDK, Spark, Delta and classpath lives (None: no JDK found)."""
    home = java_home()
    if home is None:
        return None
    release = home / "release"
    jdk = release.read_text(errors="replace") if release.exists() else str(home)
    jars = spark_jars()
    key = "|".join([jdk, str(home), importlib.metadata.version("pyspark"), importlib.metadata.version("delta-spark"),
                    str(jars), _classpath_listing(jars)])
    return (root or cache_root()) / "jvm" / f"driver-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"


def sidecar(path: Path) -> Path:
    """Written after the archive: its size (checked before use) and the jar folder it was built for."""
    return path.with_suffix(".json")


def complete(path: Path) -> bool:
    try:
        return path.stat().st_size == int(json.loads(sidecar(path).read_text())["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def java_options(root: Path | None = None) -> str:
    """`-XX:SharedArchiveFile=...` when a complete archive exists for this JDK/Spark/Delta/classpath,
    else ''. (A path with whitespace is left out: Spark splits --driver-java-options on it.)"""
    path = archive_path(root)
    usable = path is not None and not any(c.isspace() for c in str(path)) and complete(path)
    return f"-XX:SharedArchiveFile={path}" if usable else ""
