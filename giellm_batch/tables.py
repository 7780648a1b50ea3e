"""Delta table access: one directory per table under the warehouse root, idempotent MERGE writes.

Every write is a MERGE on the table's keys (schemas.TABLES): a key already present is left as it
is (or updated where the caller says so), a new key is inserted. A rerun of the same input
therefore adds no rows, and a row written by an earlier, interrupted attempt is not duplicated.
"""

from __future__ import annotations

from typing import Any

from giellm_batch.schemas import TABLES, TableSpec


def table_path(warehouse: str, name: str) -> str:
    return f"{warehouse.rstrip('/')}/{name}"


def table_exists(spark: Any, warehouse: str, name: str) -> bool:
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, table_path(warehouse, name)))


def ensure_table(spark: Any, warehouse: str, spec: TableSpec) -> None:
    from delta.tables import DeltaTable

    (DeltaTable.createIfNotExists(spark)
     .location(table_path(warehouse, spec.name))
     .addColumns(spec.schema)
     .property("delta.enableChangeDataFeed", "true")
     .execute())


def ensure_all_tables(spark: Any, warehouse: str) -> None:
    for spec in TABLES.values():
        ensure_table(spark, warehouse, spec)


def conform(df: Any, spec: TableSpec) -> Any:
    """`df` with exactly the table's columns, in order, cast to the table's types."""
    from pyspark.sql import functions as F

    missing = [f.name for f in spec.schema.fields if f.name not in df.columns]
    if missing:
        raise KeyError(f"rows for table '{spec.name}' lack columns {missing}")
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in spec.schema.fields])


def merge_rows(spark: Any, warehouse: str, name: str, df: Any, *, update_condition: str | None = None) -> None:
    """Insert rows whose keys are new; update matched rows only where `update_condition` holds."""
    from delta.tables import DeltaTable

    spec = TABLES[name]
    ensure_table(spark, warehouse, spec)
    source = conform(df, spec).dropDuplicates(list(spec.keys))
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in spec.keys)
    merge = DeltaTable.forPath(spark, table_path(warehouse, name)).alias("t").merge(source.alias("s"), on)
    if update_condition:
        merge = merge.whenMatchedUpdateAll(condition=update_condition)
    merge.whenNotMatchedInsertAll().execute()


def append_rows(spark: Any, warehouse: str, name: str, df: Any) -> None:
    spec = TABLES[name]
    ensure_table(spark, warehouse, spec)
    conform(df, spec).write.format("delta").mode("append").save(table_path(warehouse, name))


def read_table(spark: Any, warehouse: str, name: str) -> Any:
    return spark.read.format("delta").load(table_path(warehouse, name))
