"""Shared fixtures: one local Spark session (real Delta) and the tiny model, built once per run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from giellm_batch.config import SparkSettings
from giellm_batch.tasks import TaskRegistry, load_task_registry

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "conf" / "local.yaml"
MODEL_DIR = REPO / "models" / "tiny-giellm"
SAMPLE = REPO / "data" / "sample" / "text"


@pytest.fixture(scope="session")
def registry() -> TaskRegistry:
    return load_task_registry(REPO / "conf" / "tasks.yaml")


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The same smoke-test model the quickstart uses; built here if `make setup` has not."""
    from giellm_batch.tiny_model import build_tiny_model, read_corpus

    return build_tiny_model(MODEL_DIR, read_corpus([SAMPLE]))


@pytest.fixture(scope="session")
def spark(tiny_model: Path) -> Iterator[Any]:
    from giellm_batch.spark_session import build_spark

    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    # local[2,2]: two cores, and a failed task is retried once (the in-task fault test relies on it)
    session = build_spark(SparkSettings(master="local[2,2]", app_name="giellm-batch-tests", shuffle_partitions=2))
    yield session
    session.stop()
