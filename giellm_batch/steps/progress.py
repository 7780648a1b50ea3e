"""Driver-side progress of the inference stage: prompts done, prompts/s and ETA at a steady interval.

Executors add answered prompts to a Spark accumulator. Spark ships accumulator updates when a Spark
task ends, so the figures move in steps of one inference partition: `execution.prompts_per_partition`
sets that granularity (smaller partitions, smoother progress; the engine is reused across them).
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("giellm_batch.steps.progress")


class InferenceProgress:
    """Context manager: logs progress in a daemon thread while the inference stage runs."""

    def __init__(self, spark: SparkSession, total: int, interval_seconds: float, label: str) -> None:
        self.counter = spark.sparkContext.accumulator(0)
        self.total = total
        self.interval = interval_seconds
        self.label = label
        self.started = 0.0
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="giellm-progress", daemon=True)

    def __enter__(self) -> InferenceProgress:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self.started
        if exc is None:
            log.warning("%s: %s", self.label, self.line(self.total, self.seconds))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            log.warning("%s: %s", self.label, self.line(int(self.counter.value), time.monotonic() - self.started))

    def line(self, done: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        share = 100.0 * done / self.total if self.total else 100.0
        eta = f"{(self.total - done) / rate:.0f}s" if rate > 0 else "unknown"
        return f"{done}/{self.total} prompts ({share:.1f}%), {rate:.1f} prompts/s, elapsed {elapsed:.0f}s, ETA {eta}"
