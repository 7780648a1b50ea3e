"""Nightly-run guarantees: incremental selection, crash safety, one writer at a time, reprocessing."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from giellm_batch.isolation.faults import FAULT_ENV, InjectedFault
from giellm_batch.run import job
from giellm_batch.schemas import TABLES
from giellm_batch.warehouse import intents, tables
from tests.conftest import ARTICLES, CONFIG, argv, articles_dir, contents, table


def pipeline_of(spark, warehouse: Path) -> str:
    return table(spark, warehouse, "runs").first()["pipeline_hash"]


def assert_no_duplicate_keys(spark, warehouse: Path) -> None:
    for name, spec in TABLES.items():
        df = table(spark, warehouse, name)
        assert df.groupBy(*spec.keys).count().filter("count > 1").count() == 0, name


def assert_accounting(spark, warehouse: Path) -> None:
    for run in table(spark, warehouse, "runs").filter("status = 'succeeded'").collect():
        assert run["articles_in"] == (run["articles_processed"] + run["articles_quarantined"]
                                      + run["articles_skipped"] + run["articles_deferred"])


def test_second_night_sends_only_new_articles_to_the_engine(spark, tmp_path, monkeypatch):
    source = articles_dir(tmp_path, ARTICLES[:2])
    warehouse = tmp_path / "wh"
    assert job.main(argv(source, warehouse, "--limit", "1")) == 0  # night 1 is capped: one article waits
    articles_dir(tmp_path, ARTICLES[2:])  # the next night's arrival lands beside the old files
    scans = []  # a clean night has no partial rows to look for: no scan of the sentences table
    monkeypatch.setattr(tables, "tables_with_rows_for", lambda *a, **k: scans.append(a) or frozenset({"sentences"}))
    assert job.main(argv(source, warehouse)) == 0
    assert scans == [] and not intents.pending(spark, str(warehouse), pipeline_of(spark, warehouse))
    first, second = table(spark, warehouse, "runs").orderBy("started_at").collect()
    assert (first["articles_processed"], first["articles_deferred"]) == (1, 1)
    assert (second["articles_skipped"], second["articles_processed"], second["articles_deferred"]) == (1, 2, 0)
    done_first = {r["article_id"] for r in table(spark, warehouse, "articles").filter(
        F.col("run_id") == first["run_id"]).collect()}
    new_sentences = table(spark, warehouse, "sentences").filter(~F.col("article_id").isin(done_first)).count()
    assert second["prompts"] == new_sentences  # one task: one prompt per new sentence, none for old ones
    assert first["prompts"] + second["prompts"] == table(spark, warehouse, "extractions").count()
    assert_no_duplicate_keys(spark, warehouse)
    assert_accounting(spark, warehouse)


@pytest.mark.parametrize("point", ["before_first_write", "between_writes", "after_last_write"])
def test_crash_then_rerun_equals_one_clean_run(spark, tmp_path, monkeypatch, clean_run, point):
    source, expected, _ = clean_run
    warehouse = tmp_path / "wh"
    monkeypatch.setenv(FAULT_ENV, point)
    with pytest.raises(InjectedFault):
        job.main(argv(source, warehouse))
    (failed,) = table(spark, warehouse, "runs").collect()
    assert failed["status"] == "failed" and point in failed["error"]
    monkeypatch.delenv(FAULT_ENV)
    pipeline = pipeline_of(spark, warehouse)
    assert intents.pending(spark, str(warehouse), pipeline) == (point != "before_first_write")
    if point == "between_writes":  # the half-written article's file is gone for a night, then back
        # the sentences write failed while the other result tables committed: leftovers are only there
        assert table(spark, warehouse, "sentences").count() == 0 < table(spark, warehouse, "extractions").count()
        parked = tmp_path / "parked"
        shutil.move(source / "topic-news" / ARTICLES[0], parked)
        assert job.main(argv(source, warehouse)) == 0
        assert_no_duplicate_keys(spark, warehouse)
        assert intents.pending(spark, str(warehouse), pipeline)  # its partial rows still await a merge
        shutil.move(parked, source / "topic-news" / ARTICLES[0])
    assert job.main(argv(source, warehouse)) == 0
    assert contents(spark, warehouse) == expected
    assert_no_duplicate_keys(spark, warehouse)
    assert not intents.pending(spark, str(warehouse), pipeline)


def test_an_edited_article_replaces_its_rows(spark, tmp_path, clean_run):
    source, _, clean_warehouse = clean_run
    edited = tmp_path / "in"
    shutil.copytree(source, edited)
    warehouse = tmp_path / "wh"
    shutil.copytree(clean_warehouse, warehouse)
    path = edited / "topic-news" / ARTICLES[1]
    path.write_text(path.read_text(encoding="utf-8") + "訂正：本文の一部を改めました。\n", encoding="utf-8")
    assert job.main(argv(edited, warehouse)) == 0
    last = table(spark, warehouse, "runs").orderBy(F.col("started_at").desc()).first()
    assert (last["articles_processed"], last["articles_skipped"]) == (1, 2)
    assert_no_duplicate_keys(spark, warehouse)
    article_id = ARTICLES[1].removesuffix(".txt")
    body = table(spark, warehouse, "articles").filter(F.col("article_id") == article_id).first()["body"]
    rows = table(spark, warehouse, "sentences").filter(F.col("article_id") == article_id).collect()
    assert "訂正" in body and any("訂正" in r["text"] for r in rows)
    assert all(body[r["char_start"]:r["char_end"]] == r["text"] for r in rows)  # no old sentence left
    n_extractions = table(spark, warehouse, "extractions").filter(F.col("article_id") == article_id).count()
    assert n_extractions == len(rows)  # one task: one extraction per sentence, the old ones replaced


def test_spark_task_failing_on_first_attempt_is_retried_and_equals_a_clean_run(spark, tmp_path, monkeypatch, clean_run):
    source, expected, _ = clean_run
    warehouse = tmp_path / "wh"
    monkeypatch.setenv(FAULT_ENV, "in_task")  # the fixture's local[2,2] allows one retry per Spark task
    # Step outputs staged as files (the clean run, like every small run, held them in the driver):
    # both ways give the same tables.
    assert job.main(argv(source, warehouse, "--set", "execution.driver_staging_max_chars=0")) == 0
    assert contents(spark, warehouse) == expected


def test_two_runs_at_once_never_duplicate(spark, tmp_path):
    source = articles_dir(tmp_path, ARTICLES[:2])
    warehouse = tmp_path / "wh"
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(job.main(argv(source, warehouse)))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) in ([0, 0], [0, 3])  # 3: refused by the warehouse lock, wrote nothing
    runs = table(spark, warehouse, "runs").collect()
    assert len(runs) == codes.count(0) and {r["status"] for r in runs} == {"succeeded"}
    assert table(spark, warehouse, "articles").count() == 2
    assert_no_duplicate_keys(spark, warehouse)


def test_reprocess_replaces_current_version_and_keeps_other_versions(spark, tmp_path, clean_run):
    source, _, clean_warehouse = clean_run
    warehouse = tmp_path / "wh"
    shutil.copytree(clean_warehouse, warehouse)
    other = tmp_path / "other.yaml"  # same everything but the model name: another pipeline version
    other.write_text(CONFIG.read_text(encoding="utf-8").replace("name: tiny-giellm", "name: tiny-giellm-v2")
                     .replace("../", f"{CONFIG.parent.parent}/").replace("task_registry: tasks.yaml",
                                                                      f"task_registry: {CONFIG.parent}/tasks.yaml"),
                     encoding="utf-8")
    other_args = argv(source, warehouse)
    other_args[1] = str(other)
    assert job.main(other_args) == 0
    before = contents(spark, warehouse)
    assert job.main(argv(source, warehouse, "--reprocess", "--since", "2025-01-01")) == 0
    assert contents(spark, warehouse) == before  # same model, same outputs: nothing changes
    versions = {r["model_id"] for r in table(spark, warehouse, "extractions").select("model_id").distinct().collect()}
    assert versions == {"tiny-giellm", "tiny-giellm-v2"}
    last = table(spark, warehouse, "runs").orderBy(F.col("started_at").desc()).first()
    assert last["articles_processed"] == 3 and last["articles_skipped"] == 0
    # every prompt was answered by the first run (prompt_cache): no engine was started for it
    assert (last["engine_calls"], last["engines"], last["dedup_hits"]) == (0, 0, last["prompts"])


def test_optimize_compacts_without_changing_rows_and_tables_publish_changes(spark, tmp_path, clean_run):
    from giellm_batch.warehouse.maintenance import optimize

    _, expected, clean_warehouse = clean_run
    warehouse = tmp_path / "wh"
    shutil.copytree(clean_warehouse, warehouse)
    # VACUUM a few seconds per table here (was 30-50 s before maintenance sized its listing): one
    # table is vacuumed, two Z-ordered
    report = optimize(spark, str(warehouse), zorder=True, vacuum=False, only=("extractions", "entities"))
    report.update(optimize(spark, str(warehouse), only=("articles",)))
    assert set(report) == {"articles", "extractions", "entities"}
    from giellm_batch.warehouse.maintenance import LISTING_PARALLELISM
    assert spark.conf.get(LISTING_PARALLELISM) == str(4 * spark.sparkContext.defaultParallelism)  # not 10,000
    assert all(r["files_removed"] >= r["files_added"] for r in report.values())
    assert contents(spark, warehouse) == expected
    with pytest.raises(ValueError, match="retention below 168"):
        optimize(spark, str(warehouse), retention_hours=1)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{warehouse / 'extractions'}`").first()
    assert detail["properties"]["delta.enableChangeDataFeed"] == "true"
    assert detail["partitionColumns"] == ["published_date"]
    changes = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
               .load(str(warehouse / "extractions")).filter("_change_type = 'insert'"))
    assert changes.count() == table(spark, warehouse, "extractions").count()
