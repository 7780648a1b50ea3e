"""The input file manifest: finished files are skipped unread while unchanged, and nothing is lost."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime

from pyspark.sql import functions as F

from giellm_batch.config.job_config import InputSettings
from giellm_batch.input import files as input_files
from giellm_batch.input import manifest
from giellm_batch.input.reading import file_rules
from giellm_batch.run import job
from giellm_batch.schemas import TABLES
from giellm_batch.warehouse import tables
from tests.conftest import ARTICLES, argv, articles_dir, table
from tests.run.test_nightly import assert_accounting, assert_no_duplicate_keys

BROKEN = b"http://x\n2025-01-01\n\xff\xfe bad\n"  # rejected for its content: a finished file too


def test_plan_reads_the_files_not_finished_as_they_are_now(spark, tmp_path):
    source = articles_dir(tmp_path, ARTICLES)
    warehouse = str(tmp_path / "wh")
    tables.ensure_all_tables(spark, warehouse)
    settings = InputSettings(path=str(source), format="livedoor", skip_finished_files_from=0)
    assert manifest.plan(spark, settings, warehouse, "p1", False) == manifest.FilePlan(records_files=True)
    listed = sorted(input_files.binary_files(spark, str(source), file_rules(settings)).select(
        F.col("path").alias("file_path"), "length", "modificationTime").collect())
    recorded = [(r["file_path"], r["length"], r["modificationTime"], 1, "p1", "r0", datetime.now(UTC))
                for r in listed[:2]]
    tables.write_rows(spark, warehouse, manifest.TABLE,
                      spark.createDataFrame(recorded, TABLES[manifest.TABLE].schema), fresh_keys=True)

    plan = manifest.plan(spark, settings, warehouse, "p1", False)
    assert plan.files == [listed[2]["file_path"]] and (plan.skipped_files, plan.skipped_records) == (2, 2)
    assert {r["file_path"] for r in plan.skipped.collect()} == {r["file_path"] for r in listed[:2]}
    assert manifest.plan(spark, settings, warehouse, "p2", False).reads_everything  # another pipeline's
    assert manifest.plan(spark, settings, warehouse, "p1", True).reads_everything  # --reprocess
    for small in (-1, 4):  # never; from 4 files (the folder has 3)
        assert manifest.plan(spark, dataclasses.replace(settings, skip_finished_files_from=small), warehouse,
                             "p1", False) == manifest.FilePlan()

    touched = listed[0]["file_path"].removeprefix("file:")
    os.utime(touched, (os.stat(touched).st_atime, os.stat(touched).st_mtime + 5))  # same content, new time
    (source / "topic-news" / "empty.txt").write_bytes(b"")  # listed, but Spark's scans yield no row for it
    plan = manifest.plan(spark, settings, warehouse, "p1", False)
    assert sorted(plan.files or []) == sorted([listed[0]["file_path"], listed[2]["file_path"],
                                               f"file:{source}/topic-news/empty.txt"])
    # a name Spark's reader would take for a glob pattern: the folder is read whole instead
    (source / "topic-news" / "x[1].txt").write_bytes(BROKEN)
    assert manifest.plan(spark, settings, warehouse, "p1", False).reads_everything


def test_next_night_reads_only_new_and_changed_files_and_loses_no_record(spark, tmp_path):
    source = articles_dir(tmp_path, ARTICLES[:2])
    folder = source / "topic-news"
    (folder / "broken.txt").write_bytes(BROKEN)
    (folder / "empty.txt").write_bytes(b"")  # listed but never read by Spark: retried every night
    warehouse = tmp_path / "wh"
    assert job.main(argv(source, warehouse)) == 0
    names = [r["file_path"].rsplit("/", 1)[-1] for r in table(spark, warehouse, manifest.TABLE).collect()]
    assert sorted(names) == sorted([*ARTICLES[:2], "broken.txt"])

    articles_dir(tmp_path, ARTICLES[2:])  # a new article
    touched = folder / ARTICLES[0]  # same content, new time: read again, found done (edits: test_nightly)
    os.utime(touched, (touched.stat().st_atime, touched.stat().st_mtime + 5))
    copy = source / "other" / ARTICLES[1]  # a new file reusing the id of a finished, unchanged one
    copy.parent.mkdir()
    copy.write_text((folder / ARTICLES[1]).read_text(encoding="utf-8") + "別の版です。\n", encoding="utf-8")
    assert job.main(argv(source, warehouse)) == 0

    last = table(spark, warehouse, "runs").orderBy(F.col("started_at").desc()).first()
    assert last["files_skipped"] == 2  # ARTICLES[1] and broken.txt, finished and unchanged
    assert (last["articles_in"], last["articles_processed"], last["articles_skipped"],
            last["articles_quarantined"]) == (6, 1, 3, 2)  # quarantined: empty.txt and the copy
    held = table(spark, warehouse, "quarantine").filter(F.col("source").endswith(f"other/{ARTICLES[1]}")).first()
    assert "already finished from" in held["reason"] and f"topic-news/{ARTICLES[1]}" in held["reason"]
    kept = table(spark, warehouse, "articles").filter(F.col("article_id") == ARTICLES[1].removesuffix(".txt")).first()
    assert kept["source"].endswith(f"topic-news/{ARTICLES[1]}") and "別の版" not in kept["body"]
    names = [r["file_path"].rsplit("/", 1)[-1] for r in table(spark, warehouse, manifest.TABLE).collect()]
    # the touched file twice (as it was, as it is); never the unread file or the duplicate
    assert sorted(names) == sorted([ARTICLES[0], *ARTICLES, "broken.txt"])
    assert_no_duplicate_keys(spark, warehouse)
    assert_accounting(spark, warehouse)
