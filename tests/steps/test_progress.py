"""Driver progress logs during inference (real Spark accumulator, updated by real tasks)."""

from __future__ import annotations

import logging
import time

from giellm_batch.steps.progress import InferenceProgress


def test_progress_logs_done_rate_and_eta_at_the_interval(spark, caplog):
    caplog.set_level(logging.WARNING, logger="giellm_batch.steps.progress")
    with InferenceProgress(spark, total=100, interval_seconds=0.2, label="run r1 inference") as progress:
        counter = progress.counter
        spark.sparkContext.parallelize(range(40), 2).foreach(lambda _: counter.add(1))
        time.sleep(0.5)
    lines = [r.getMessage() for r in caplog.records]
    assert any("40/100 prompts (40.0%)" in line and "prompts/s" in line and "ETA" in line for line in lines)
    assert lines[-1].startswith("run r1 inference: 100/100 prompts (100.0%)")
    assert progress.seconds >= 0.5


def test_eta_is_remaining_over_rate(spark):
    progress = InferenceProgress(spark, total=1000, interval_seconds=60, label="x")
    assert progress.line(250, 10.0) == "250/1000 prompts (25.0%), 25.0 prompts/s, elapsed 10s, ETA 30s"
    assert progress.line(0, 0.0).endswith("ETA unknown")
