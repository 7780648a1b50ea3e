"""The warehouse commands on an s3a:// warehouse (the local SeaweedFS server): `optimize` compacts
and vacuums, `unlock` removes a dead run's lock, `report` writes its page beside the tables."""

from __future__ import annotations

import json
import uuid

import pytest

from giellm_batch import cli
from giellm_batch.schemas import TABLES
from giellm_batch.storage import storage_for
from giellm_batch.warehouse import locking, tables
from tests.tools.test_sql_engines import s3_config as job_config
from tests.tools.test_sql_engines import upload_tree


@pytest.fixture(scope="module")
def s3_warehouse(spark, s3, clean_run) -> str:
    """A copy of the clean run's warehouse on the S3 server."""
    return upload_tree(spark, clean_run[2], s3.url("maintenance", uuid.uuid4().hex, "wh"))


@pytest.fixture(scope="module")
def s3_config(s3, s3_warehouse, tmp_path_factory) -> str:
    """A job YAML whose object_store section reaches the server (what the warehouse commands read of it)."""
    return str(job_config(tmp_path_factory.mktemp("s3-config"), s3_warehouse, s3.endpoint))


def _rows(spark, warehouse: str, name: str) -> list[str]:
    return sorted(map(str, tables.read_table(spark, warehouse, name).collect()))


def _data_files(spark, warehouse: str, name: str) -> int:
    return int(spark.sql(f"DESCRIBE DETAIL delta.`{tables.table_path(warehouse, name)}`").first()["numFiles"])


def test_optimize_compacts_and_vacuums_an_s3_table_and_keeps_its_rows(spark, s3_warehouse, s3_config, capsys):
    entities = tables.read_table(spark, s3_warehouse, "entities")
    for _ in range(2):  # more small files in the same day partitions, as nightly appends leave them
        entities.limit(3).write.format("delta").mode("append").save(tables.table_path(s3_warehouse, "entities"))
    before, files_before = _rows(spark, s3_warehouse, "entities"), _data_files(spark, s3_warehouse, "entities")
    assert cli.main(["optimize", "--warehouse", s3_warehouse, "--config", s3_config, "--table", "entities",
                     "--zorder"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entities"]["files_removed"] > report["entities"]["files_added"] >= 1, report
    assert _data_files(spark, s3_warehouse, "entities") == files_before - report["entities"]["files_removed"] \
        + report["entities"]["files_added"]
    assert _rows(spark, s3_warehouse, "entities") == before
    operations = [r["operation"] for r in spark.sql(
        f"DESCRIBE HISTORY delta.`{tables.table_path(s3_warehouse, 'entities')}`").collect()]
    assert "OPTIMIZE" in operations, operations
    # VACUUM ran on S3 (the command succeeded) and kept the compacted-away files (younger than the
    # 7-day retention): an older snapshot still reads
    first = spark.read.format("delta").option("versionAsOf", 1).load(tables.table_path(s3_warehouse, "entities"))
    assert first.count() > 0


def test_optimize_of_every_table_on_s3_changes_no_rows(spark, s3_warehouse, s3_config, clean_run, capsys):
    assert cli.main(["optimize", "--warehouse", s3_warehouse, "--config", s3_config]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"articles", "entities", "extractions"}
    for name in TABLES:  # as in the local original the job wrote
        if name != "entities":  # the test above appended rows to it
            assert _rows(spark, s3_warehouse, name) == _rows(spark, str(clean_run[2]), name), name


def test_unlock_removes_a_dead_runs_lock_on_s3(spark, s3_warehouse, s3_config, capsys):
    lease = locking.acquire(spark, s3_warehouse, "killed-run", stale_after_seconds=3600)
    try:
        with pytest.raises(locking.WarehouseLocked):  # the lock is really held on S3
            locking.acquire(spark, s3_warehouse, "next-run", stale_after_seconds=3600)
        assert cli.main(["unlock", "--warehouse", s3_warehouse, "--config", s3_config]) == 0
        assert capsys.readouterr().out.strip() == f"lock removed from {s3_warehouse}"
        assert locking.read_holder(spark, s3_warehouse) is None
        locking.acquire(spark, s3_warehouse, "next-run", stale_after_seconds=3600).release()
    finally:
        lease.release()
    assert locking.read_holder(spark, s3_warehouse) is None


def test_report_writes_its_page_on_s3_by_default_and_where_out_says(spark, s3, s3_warehouse, s3_config, tmp_path,
                                                                    capsys):
    run_id = tables.read_table(spark, s3_warehouse, "runs").first()["run_id"]
    assert cli.main(["report", "--warehouse", s3_warehouse, "--config", s3_config]) == 0
    default = f"{s3_warehouse}/_reports/latest.html"
    assert capsys.readouterr().out.strip() == default
    page = storage_for(spark, default).read_bytes(default).decode("utf-8")
    assert page.startswith("<!DOCTYPE html>") and f"<title>run {run_id}" in page, page[:200]
    elsewhere = s3.url("reports", uuid.uuid4().hex, "run.html")
    assert cli.main(["report", "--warehouse", s3_warehouse, "--config", s3_config, "--run", run_id,
                     "--out", elsewhere]) == 0
    assert storage_for(spark, elsewhere).read_bytes(elsewhere).decode("utf-8") == page
    local = tmp_path / "new" / "folder" / "run.html"  # a local file still works, its folder created
    assert cli.main(["report", "--warehouse", s3_warehouse, "--config", s3_config, "--out", str(local)]) == 0
    assert local.read_text(encoding="utf-8") == page
