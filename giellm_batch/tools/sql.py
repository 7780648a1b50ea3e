"""Run the analytics SQL in `sql/` against a warehouse: every table is registered as a view."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from giellm_batch.schemas import TABLES
from giellm_batch.warehouse import tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def register_views(spark: SparkSession, warehouse: str) -> list[str]:
    """Create a temporary view per existing table (named like the table); returns their names.

    A table written by an older version lacks the columns added since (e.g. `span_key`); its view
    shows them as NULL, so the current queries run on it (the next job run adds them for real)."""
    from pyspark.sql import functions as F

    names = []
    for name, spec in TABLES.items():
        if tables.table_exists(spark, warehouse, name):
            df = tables.read_table(spark, warehouse, name)
            for field in spec.schema.fields:
                if field.name not in df.columns:
                    df = df.withColumn(field.name, F.lit(None).cast(field.dataType))
            df.createOrReplaceTempView(name)
            names.append(name)
    return names


def run_sql_file(spark: SparkSession, warehouse: str, path: str | Path) -> DataFrame:
    """DataFrame of the query in `path` (one statement; `--` comments allowed)."""
    register_views(spark, warehouse)
    return spark.sql(read_statement(path))


def read_statement(path: str | Path) -> str:
    """The one statement in `path`, without its `--` comment lines and final `;` (both engines run it)."""
    text = Path(path).read_text(encoding="utf-8")
    statement = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--")).strip()
    return statement.rstrip(";")
