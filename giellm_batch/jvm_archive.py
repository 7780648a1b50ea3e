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
checks before naming it. The archive's name carries the JDK, Spark and Delta versions: an upgrade
makes a new one instead of a warning on every run. Building it: jvm_archive_build.py.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
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


def archive_path(root: Path | None = None) -> Path | None:
    """Where this JDK + Spark + Delta's archive lives (None: no JDK found)."""
    home = java_home()
    if home is None:
        return None
    release = home / "release"
    jdk = release.read_text(errors="replace") if release.exists() else str(home)
    key = "|".join([jdk, str(home), importlib.metadata.version("pyspark"), importlib.metadata.version("delta-spark")])
    return (root or cache_root()) / "jvm" / f"driver-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"


def complete(path: Path) -> bool:
    sidecar = path.with_suffix(".size")
    try:
        return path.stat().st_size == int(sidecar.read_text().strip())
    except (OSError, ValueError):
        return False


def java_options(root: Path | None = None) -> str:
    """`-XX:SharedArchiveFile=...` when a complete archive exists for this JDK/Spark/Delta, else ''.
    (A path with whitespace is left out: Spark splits --driver-java-options on it.)"""
    path = archive_path(root)
    usable = path is not None and not any(c.isspace() for c in str(path)) and complete(path)
    return f"-XX:SharedArchiveFile={path}" if usable else ""
