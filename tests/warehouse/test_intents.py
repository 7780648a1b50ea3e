"""Write intents: when a warehouse may hold partial rows, decided without loading Delta snapshots."""

from __future__ import annotations

import shutil
from datetime import date

from giellm_batch import schemas
from giellm_batch.warehouse import intents, tables

PIPELINE = "p0"


def one_sentence(spark):
    """One `sentences` row of article a1 under PIPELINE (the other provenance columns left null)."""
    spec = schemas.TABLES["sentences"]
    row = {"article_id": "a1", "published_date": date(2025, 4, 1), "sentence_idx": 0, "text": "今日は晴れ。",
           "char_start": 0, "char_end": 6, "n_morphemes": 4, "pipeline_hash": PIPELINE}
    return spark.createDataFrame([tuple(row.get(f.name) for f in spec.schema.fields)], spec.schema)


def test_a_created_table_is_never_written_until_a_commit_adds_or_removes_rows(spark, tmp_path):
    warehouse = str(tmp_path / "wh")
    tables.ensure_all_tables(spark, warehouse)
    assert all(tables.never_written(spark, warehouse, name) for name in schemas.TABLES)
    tables.write_rows(spark, warehouse, "sentences", one_sentence(spark))
    assert not tables.never_written(spark, warehouse, "sentences")
    assert tables.never_written(spark, warehouse, "extractions")
    tables.read_table(spark, warehouse, "extractions")  # a read is not a write
    from delta.tables import DeltaTable
    DeltaTable.forPath(spark, tables.table_path(warehouse, "sentences")).delete()
    assert tables.is_empty(spark, warehouse, "sentences")
    assert not tables.never_written(spark, warehouse, "sentences")  # emptied is not "as created"


def test_a_warehouse_from_before_intents_is_checked_only_if_a_result_table_was_written(spark, tmp_path):
    warehouse = str(tmp_path / "wh")
    tables.ensure_all_tables(spark, warehouse)
    assert not intents.pending(spark, warehouse, PIPELINE)  # no _intents folder, nothing written
    tables.write_rows(spark, warehouse, "sentences", one_sentence(spark))
    assert intents.pending(spark, warehouse, PIPELINE)  # rows, and no intent folder to vouch for them
    intents.mark(spark, warehouse, PIPELINE, "r1")
    assert intents.pending(spark, warehouse, PIPELINE)
    intents.settle(spark, warehouse, PIPELINE, found=True)  # a1 has sentences but no articles row
    assert intents.pending(spark, warehouse, PIPELINE)
    assert intents.orphaned_articles(spark, warehouse, PIPELINE) == 1
    shutil.rmtree(tables.table_path(warehouse, "sentences"))
    tables.ensure_all_tables(spark, warehouse)
    intents.settle(spark, warehouse, PIPELINE, found=True)
    assert not intents.pending(spark, warehouse, PIPELINE)  # folder there, marker cleared
