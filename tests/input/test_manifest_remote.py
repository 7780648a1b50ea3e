"""The file manifest's threshold by store: 50,000 files on a local disk, from the first file on an
object store (every file read there is a billed request), unless the user configured it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from giellm_batch.config.job_config import ConfigError, InputSettings, load_config
from giellm_batch.config.settings import MANIFEST_FROM_LOCAL, is_local_path
from giellm_batch.input import manifest
from giellm_batch.storage import storage_for
from giellm_batch.warehouse import tables
from tests.conftest import ARTICLES, REPO, SAMPLE, articles_dir

REMOTE = ("s3a://bucket/news", "S3A://bucket/news", "gs://bucket/news", "abfss://c@acct.dfs.core.windows.net/news",
          "hdfs://namenode:8020/news")
LOCAL = ("/data/news", "data/news", "file:/data/news", "file:///data/news", "")


def test_left_out_the_threshold_depends_on_the_store():
    for path in REMOTE:
        assert not is_local_path(path) and InputSettings(path=path).manifest_from() == 0, path
    for path in LOCAL:
        assert is_local_path(path) and InputSettings(path=path).manifest_from() == MANIFEST_FROM_LOCAL, path


def test_a_configured_threshold_wins_on_every_store():
    for path in (*REMOTE, *LOCAL):
        for configured in (-1, 0, 7, 50_000):
            assert InputSettings(path=path, skip_finished_files_from=configured).manifest_from() == configured


def _config(tmp_path: Path, input_path: str, extra: str = "") -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(f"input: {{path: '{input_path}'{extra}}}\nmodel: {{path: /nowhere}}\n"
                    f"task_registry: {REPO}/conf/tasks.yaml\ntasks: [scnm_ner]\n", encoding="utf-8")
    return path


def test_the_loaded_config_holds_the_threshold_in_effect(tmp_path):
    assert load_config(_config(tmp_path, "s3a://b/news"), check_paths=False).input.skip_finished_files_from == 0
    local = load_config(_config(tmp_path, "news"), check_paths=False).input
    assert (local.path, local.skip_finished_files_from) == (str(tmp_path / "news"), MANIFEST_FROM_LOCAL)
    set_remote = load_config(_config(tmp_path, "s3a://b/news", ", skip_finished_files_from: 60000"), check_paths=False)
    assert set_remote.input.skip_finished_files_from == 60_000
    never = load_config(_config(tmp_path, "s3a://b/news"), check_paths=False,
                        overrides={"input": {"skip_finished_files_from": -1}})
    assert never.input.skip_finished_files_from == -1
    with pytest.raises(ConfigError, match=r"input\.skip_finished_files_from: must be >= 0"):
        load_config(_config(tmp_path, "s3a://b/news", ", skip_finished_files_from: -3"), check_paths=False)


def test_one_file_on_s3_goes_through_the_manifest_while_one_local_file_is_simply_read(spark, s3, tmp_path):
    """The same one-file folder: on S3 the plan records its finished files (so the next night skips
    them unread); on a local disk it reads everything and records nothing (below 50,000 files)."""
    name = ARTICLES[0]
    local = articles_dir(tmp_path, [name])
    remote = s3.url("manifest-remote", uuid.uuid4().hex)
    storage_for(spark, remote).write_bytes(f"{remote}/topic-news/{name}", next(SAMPLE.rglob(name)).read_bytes())
    warehouse = str(tmp_path / "wh")
    tables.ensure_all_tables(spark, warehouse)

    on_s3 = manifest.plan(spark, InputSettings(path=remote, format="livedoor"), warehouse, "p1", False)
    assert on_s3 == manifest.FilePlan(records_files=True)
    on_disk = manifest.plan(spark, InputSettings(path=str(local), format="livedoor"), warehouse, "p1", False)
    assert on_disk == manifest.FilePlan()
