"""A warehouse written by an earlier version keeps working: new columns are added, queries run."""

from __future__ import annotations

from pyspark.sql.types import ArrayType, StructField, StructType

from giellm_batch import schemas
from giellm_batch.tools.sql import run_sql_file
from giellm_batch.warehouse import tables
from tests.conftest import REPO

NEW = {"span_key", "head_key", "tail_key", "key", "outputs_at_item_bound", "profile_json", "drift_warnings"}


def older(dtype):
    """The type as the previous version wrote it: without this version's columns, nested ones included."""
    if isinstance(dtype, StructType):
        return StructType([StructField(f.name, older(f.dataType), f.nullable) for f in dtype.fields
                           if f.name not in NEW])
    if isinstance(dtype, ArrayType):
        return ArrayType(older(dtype.elementType), dtype.containsNull)
    return dtype


def test_old_tables_gain_the_new_columns_and_the_queries_run_before_and_after(spark, tmp_path):
    warehouse = str(tmp_path / "wh")
    for spec in schemas.TABLES.values():
        tables.ensure_table(spark, warehouse, schemas.TableSpec(spec.name, older(spec.schema), spec.keys,
                                                                spec.description, spec.partition_by))
    assert tables.missing_columns(tables.read_table(spark, warehouse, "events").schema,
                                  schemas.TABLES["events"].schema) == [("`arguments`.element.`key`",
                                                                        schemas.TABLES["events"].schema
                                                                        ["arguments"].dataType.elementType["key"]
                                                                        .dataType)]
    # the queries already run on the old tables (the views show the new columns as NULL)
    for query in sorted((REPO / "sql").glob("*.sql")):
        run_sql_file(spark, warehouse, query).collect()
    tables.ensure_all_tables(spark, warehouse)  # what every run does first
    for spec in schemas.TABLES.values():
        assert tables.missing_columns(tables.read_table(spark, warehouse, spec.name).schema, spec.schema) == []
    for query in sorted((REPO / "sql").glob("*.sql")):
        run_sql_file(spark, warehouse, query).collect()
