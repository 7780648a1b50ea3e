"""Shared fixtures: one local Spark session (real Delta) and the tiny model, built once per run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Arm faults.poison_check in every worker the tests start (only records carrying its marker trigger
# it), and have it log each fault it acts out (tests/resilience/test_poison.py counts them).
os.environ.setdefault("GIELLM_TEST_POISON", "1")
os.environ.setdefault("GIELLM_TEST_POISON_LOG", f"/tmp/giellm-test-poison-{os.getpid()}.log")

from giellm_batch.config.job_config import ObjectStoreSettings, SparkSettings
from giellm_batch.giellm.tasks import TaskRegistry, load_task_registry
from giellm_batch.schemas import TABLES
from giellm_batch.tools import local_s3

# The local S3 server's test credentials, in the environment before the test JVM starts: S3A reads
# them there (its standard provider chain), as it would on a user's machine.
for _name, _value in (("AWS_ACCESS_KEY_ID", local_s3.ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", local_s3.SECRET_KEY),
                      ("AWS_REGION", local_s3.REGION)):
    os.environ[_name] = _value

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "conf" / "smoke.yaml"  # the random-weight plumbing model
MODEL_DIR = REPO / "models" / "tiny-giellm"
SAMPLE = REPO / "data" / "sample" / "text"


@pytest.fixture(scope="session")
def registry() -> TaskRegistry:
    return load_task_registry(REPO / "conf" / "tasks.yaml")


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The same smoke-test model the quickstart uses; built here if `make setup` has not."""
    from giellm_batch.training.tiny_model import build_tiny_model, read_corpus

    return build_tiny_model(MODEL_DIR, read_corpus([SAMPLE]))


@pytest.fixture(scope="session")
def spark(tiny_model: Path) -> Iterator[Any]:
    from giellm_batch.spark.session import build_spark

    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    # local[2,2]: two cores, and a failed task is retried once (the in-task fault test relies on it)
    # Heap: this one JVM serves the whole suite, and its live set grows past Spark's default 1 GiB
    # driver heap (1.2-1.3 GB after GC near the end, docs/measurements.md); Spark exits the JVM on
    # an OutOfMemoryError and every later test fails (CI, issue 30).
    conf = {"spark.databricks.delta.snapshotPartitions": "2", "spark.ui.enabled": "false",  # as conf/smoke.yaml
            "spark.driver.memory": "4g"}
    # With S3A's jars from the start (a JVM's classpath is fixed when it starts); the `s3` fixture
    # points S3A at the local server.
    session = build_spark(SparkSettings(master="local[2,2]", app_name="giellm-batch-tests", shuffle_partitions=2,
                                        conf=conf), object_store=ObjectStoreSettings())
    yield session
    session.stop()


@pytest.fixture(scope="session")
def s3(spark, tmp_path_factory) -> Iterator[local_s3.LocalS3]:
    """A real S3 server (SeaweedFS) on 127.0.0.1 for the whole session, with the test session's S3A
    pointed at it. Built once per machine by scripts/build_seaweedfs.sh (minutes, cold)."""
    import tempfile

    from giellm_batch.spark.object_store import apply_s3a_settings

    # Not under pytest's basetemp: a second pytest session on the machine prunes old basetemps,
    # which would pull the data folder from under a running server.
    data = Path(tempfile.mkdtemp(prefix="giellm-test-s3-"))
    server = local_s3.start_local_s3(data)
    apply_s3a_settings(spark, server.object_store(), {})
    yield server
    server.stop()
    shutil.rmtree(data, ignore_errors=True)


def s3_settings(server: local_s3.LocalS3) -> tuple[str, ...]:
    """Job arguments that point the job's object_store settings at `server`."""
    store = server.object_store()
    return ("--set", f"object_store.endpoint={store.endpoint}", "--set", f"object_store.region={store.region}",
            "--set", "object_store.path_style=true")


# Shared by the nightly and cluster tests: three articles, one task, run once per session.
VOLATILE = {"run_id", "processed_at", "quarantined_at", "cached_at", "recorded_at"}


def articles_dir(tmp_path: Path, names: list[str], folder: str = "in") -> Path:
    root = tmp_path / folder / "topic-news"
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(next(SAMPLE.rglob(name)), root / name)
    return tmp_path / folder


# The test folders are small: the file manifest (manifest.py) is switched on for every size, so
# every job test (crash, rerun, edit, reprocess) runs through it.
MANIFEST_ALWAYS = ("--set", "input.skip_finished_files_from=0")


def argv(source: Path, warehouse: Path, *extra: str) -> list[str]:
    return ["--config", str(CONFIG), "--input", str(source), "--output", str(warehouse), "--tasks", "scnm_ner",
            *MANIFEST_ALWAYS, *extra]


def table(spark, warehouse: Path, name: str):
    return spark.read.format("delta").load(str(warehouse / name))


def contents(spark, warehouse: Path) -> dict[str, list[str]]:
    """Every table but runs, without the columns that name the run that wrote a row."""
    out = {}
    for name in TABLES:
        if name == "runs":
            continue
        df = table(spark, warehouse, name)
        out[name] = sorted(map(str, df.select([c for c in df.columns if c not in VOLATILE]).collect()))
    return out


ARTICLES = ["topic-news-6500401.txt", "topic-news-6500402.txt", "topic-news-6500403.txt"]


@pytest.fixture(scope="session")
def clean_run(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clean")
    source = articles_dir(tmp, ARTICLES)
    from giellm_batch.run import job

    assert job.main(argv(source, tmp / "wh")) == 0
    return source, contents(spark, tmp / "wh"), tmp / "wh"


def files_under(storage, folder: str) -> list[str]:
    """Every file below `folder` (a store with real folders may keep emptied ones listed)."""
    found = []
    for entry in storage.list_folder(folder):
        found.extend(files_under(storage, entry.path) if entry.is_dir else [entry.path])
    return found
