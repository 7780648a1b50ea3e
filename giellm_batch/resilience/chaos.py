"""Kill the real job's process tree at a chosen moment, rerun it, compare its tables.

A moment is either a time after start (seconds) or the first log line containing a marker (the
job logs each phase at INFO): random times find what nobody thought of, markers make a test
deterministic.

Input and warehouse may be local folders or `s3a://` URLs: `job_command` then passes the
`object_store` settings (spark_submit_command adds S3A's jars for the s3a:// arguments) and `run`
the store's credentials in the job's environment (never on its command line: a process list or a
log would show them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giellm_batch.config.settings import ObjectStoreSettings
from giellm_batch.schemas import TABLES
from giellm_batch.spark.object_store import uses_s3a
from giellm_batch.spark.submit import spark_submit_command, submit_environment
from giellm_batch.storage import storage_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO = Path(__file__).resolve().parents[2]
# Columns that name the run that wrote a row, or when: they differ between any two runs.
VOLATILE = {"run_id", "processed_at", "quarantined_at", "cached_at", "recorded_at"}


def job_command(config: Path, source: Path | str, warehouse: Path | str, *extra: str,
                object_store: ObjectStoreSettings | None = None) -> list[str]:
    """The project's spark-submit command (submit.py) for one input and warehouse, on local[2]
    (INFO logs mark the phases); `object_store` points the job's S3A at a store."""
    store = object_store_args(object_store) if object_store is not None else []
    return spark_submit_command(REPO / "jobs" / "extract.py",
                                ["--config", str(config), "--input", str(source), "--output", str(warehouse),
                                 "--log-level", "INFO", *store, *extra], master="local[2]")


def object_store_args(store: ObjectStoreSettings) -> list[str]:
    """The job's `--set object_store.*` arguments for `store` (no credentials: those are never config)."""
    values = {"endpoint": store.endpoint, "region": store.region, "path_style": str(store.path_style).lower(),
              "hadoop_aws": store.hadoop_aws}
    return [arg for key, value in values.items() if value for arg in ("--set", f"object_store.{key}={value}")]


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**submit_environment(), "GIELLM_SPARK_LOG_LEVEL": "WARN", "VLLM_LOGGING_LEVEL": "ERROR", **(extra or {})}


@dataclass
class Outcome:
    returncode: int | None  # None: killed by us
    seconds: float
    killed_at: str = ""  # what triggered the kill, "" when the run ended first
    log: str = ""


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and every descendant (Spark's Python daemon forks workers that may
    leave the process group), then reap it."""
    import psutil

    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(family, timeout=10)


def run(cmd: list[str], log_path: Path, *, kill_after: float | None = None, kill_on: str | None = None,
        timeout: float = 600, env: Mapping[str, str] | None = None) -> Outcome:
    """Run `cmd` (with `env` added to its environment, e.g. a store's credentials); kill its tree
    `kill_after` seconds in, or when its log first shows `kill_on`."""
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(env), cwd=REPO,
                                start_new_session=True)
    trigger = ""
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if kill_after is not None and elapsed >= kill_after:
                trigger = f"{kill_after:.1f}s"
            elif kill_on is not None and kill_on in log_path.read_text(encoding="utf-8", errors="replace"):
                trigger = f"log line '{kill_on}' ({elapsed:.1f}s)"
            elif elapsed > timeout:
                trigger = f"timeout {timeout:.0f}s"
            if trigger:
                kill_tree(proc)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return Outcome(None if trigger else proc.returncode, time.monotonic() - started, trigger, text)


def table_contents(spark: SparkSession, warehouse: Path | str, *, input_roots: Iterable[str] = (),
                   ignore: Iterable[str] = ()) -> dict[str, list[str]]:
    """Every table but `runs`, rows sorted, without the columns that name the writing run (nor
    those in `ignore`). Each of `input_roots` (the input folder as rows spell it: `file:/...`,
    `s3a://...`) is written `<input>`, so runs over copies of one input in two places compare."""
    out = {}
    skip = VOLATILE | set(ignore)
    roots = sorted(input_roots, key=len, reverse=True)  # the longest first: one may contain another
    for name in TABLES:
        if name == "runs":
            continue
        df = spark.read.format("delta").load(f"{str(warehouse).rstrip('/')}/{name}")
        rows = [str(row) for row in df.select([c for c in df.columns if c not in skip]).collect()]
        for root in roots:
            rows = [row.replace(root, "<input>") for row in rows]
        out[name] = sorted(rows)
    return out


def copy_warehouse(spark: SparkSession, source: Path | str, target: Path | str) -> None:
    """Copy a whole warehouse folder (Delta logs name files relative to each table: a copy is a
    warehouse); object stores through Hadoop's FileUtil in the driver JVM."""
    if not uses_s3a([str(source), str(target)]):
        shutil.copytree(source, target)
        return
    jvm: Any = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    src, dst = jvm.org.apache.hadoop.fs.Path(str(source)), jvm.org.apache.hadoop.fs.Path(str(target))
    if not jvm.org.apache.hadoop.fs.FileUtil.copy(src.getFileSystem(conf), src, dst.getFileSystem(conf), dst,
                                                  False, conf):
        raise OSError(f"could not copy {source} to {target}")


def upload_folder(spark: SparkSession, folder: Path, url: str) -> int:
    """Copy every file under the local `folder` to the same layout under `url`; how many."""
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    for path in files:
        target = f"{url.rstrip('/')}/{path.relative_to(folder).as_posix()}"
        storage_for(spark, target).write_bytes(target, path.read_bytes())
    return len(files)


def remove_warehouse(spark: SparkSession, warehouse: Path | str) -> None:
    storage_for(spark, str(warehouse)).delete(str(warehouse))


def pending_uploads(spark: SparkSession, url: str) -> list[str]:
    """Multipart uploads begun and neither completed nor aborted under `url` (an s3a:// folder), as
    `key (initiated ...)`: what a writer killed mid-upload leaves; the store keeps (and bills) their
    parts until they are aborted. Asked of S3A, which lists them with ListMultipartUploads."""
    jvm: Any = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    prefix = str(path.toUri().getPath()).lstrip("/")
    uploads = fs.listUploads(prefix)
    found = []
    while uploads.hasNext():
        upload = uploads.next()
        found.append(f"{upload.key()} (initiated {upload.initiated()})")
    return found


def differences(expected: dict[str, list[str]], actual: dict[str, list[str]]) -> list[str]:
    """One line per table whose rows differ: counts and a first differing row."""
    lines = []
    for name in sorted(set(expected) | set(actual)):
        want, got = expected.get(name, []), actual.get(name, [])
        if want != got:
            extra = sorted(set(got) - set(want))[:1]
            missing = sorted(set(want) - set(got))[:1]
            lines.append(f"{name}: {len(got)} rows, expected {len(want)}; extra {extra} missing {missing}")
    return lines


def staged_runs(spark: SparkSession, warehouse: str) -> set[str]:
    """The run ids whose staging folder (`<warehouse>/_staging/<run_id>`) still holds a file.

    Files, not folders: a store with real folders (SeaweedFS's filer, HDFS) may keep an emptied run
    folder listed after its objects were deleted; on S3 an emptied prefix is gone."""
    from giellm_batch.storage import storage_for
    from giellm_batch.warehouse.staging import folder

    storage = storage_for(spark, warehouse)

    def holds_a_file(path: str) -> bool:
        return any(not entry.is_dir or holds_a_file(entry.path) for entry in storage.list_folder(path))

    return {entry.name for entry in storage.list_folder(folder(warehouse)) if holds_a_file(entry.path)}
