"""Kill the real job's process tree at a chosen moment, rerun it, compare its tables.

A moment is either a time after start (seconds) or the first log line containing a marker (the
job logs each phase at INFO): random times find what nobody thought of, markers make a test
deterministic.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from giellm_batch.schemas import TABLES
from giellm_batch.spark.submit import spark_submit_command, submit_environment

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO = Path(__file__).resolve().parents[2]
# Columns that name the run that wrote a row, or when: they differ between any two runs.
VOLATILE = {"run_id", "processed_at", "quarantined_at", "cached_at", "recorded_at"}


def job_command(config: Path, source: Path, warehouse: Path, *extra: str) -> list[str]:
    """The project's spark-submit command (submit.py) for one input and warehouse, on local[2]
    (INFO logs mark the phases)."""
    return spark_submit_command(REPO / "jobs" / "extract.py",
                                ["--config", str(config), "--input", str(source), "--output", str(warehouse),
                                 "--log-level", "INFO", *extra], master="local[2]")


def _env() -> dict[str, str]:
    return {**submit_environment(), "GIELLM_SPARK_LOG_LEVEL": "WARN", "VLLM_LOGGING_LEVEL": "ERROR"}


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
        timeout: float = 600) -> Outcome:
    """Run `cmd`; kill its tree `kill_after` seconds in, or when its log first shows `kill_on`."""
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=REPO,
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


def table_contents(spark: SparkSession, warehouse: Path) -> dict[str, list[str]]:
    """Every table but `runs`, rows sorted, without the columns that name the writing run."""
    out = {}
    for name in TABLES:
        if name == "runs":
            continue
        df = spark.read.format("delta").load(str(warehouse / name))
        out[name] = sorted(map(str, df.select([c for c in df.columns if c not in VOLATILE]).collect()))
    return out


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
