"""Run the analytics SQL in `sql/` against a warehouse: every table is registered as a view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from giellm_batch import tables
from giellm_batch.schemas import TABLES


def register_views(spark: Any, warehouse: str) -> list[str]:
    """Create a temporary view per existing table (named like the table); returns their names."""
    names = []
    for name in TABLES:
        if tables.table_exists(spark, warehouse, name):
            tables.read_table(spark, warehouse, name).createOrReplaceTempView(name)
            names.append(name)
    return names


def run_sql_file(spark: Any, warehouse: str, path: str | Path) -> Any:
    """DataFrame of the query in `path` (one statement; `--` comments allowed)."""
    register_views(spark, warehouse)
    text = Path(path).read_text(encoding="utf-8")
    statement = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--")).strip()
    return spark.sql(statement.rstrip(";"))
