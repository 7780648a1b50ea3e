"""`giellm-batch sql --engine duckdb`: the `sql/` queries on DuckDB over the Delta tables read by
delta-rs, without a JVM, on a local warehouse or an `s3a://` one.

Rules:
- Tables are read by delta-rs (`deltalake`), not by DuckDB's delta extension (it is downloaded at
  first use, which offline machines cannot do). Each existing table becomes a view named like the
  table over its pyarrow dataset, scanned lazily (DuckDB pushes projections and filters into it).
- A table written by an older version lacks the columns added since; its view shows them as NULL
  of the column's type, as `register_views` does for Spark, so the current queries run on it.
- The `sql/` files are written in SQL both engines accept (no `<=>`, which is a vector distance in
  DuckDB; no `MODE`, whose tie-break differs). The one difference left is a session setting, not
  the query: Spark sorts NULLs first ascending and last descending, DuckDB last in both, so the
  connection is set to Spark's order (`default_null_order`) and the rows come out in the same order.
- `s3a://` is Hadoop's scheme; delta-rs reads the same objects as `s3://`. The `object_store:`
  settings become delta-rs storage options; credentials are never among them: delta-rs takes them
  from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN) as S3A does.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giellm_batch.config.settings import ObjectStoreSettings
from giellm_batch.schemas import TABLES
from giellm_batch.tools.sql import read_statement
from giellm_batch.warehouse.tables import table_path

if TYPE_CHECKING:
    import duckdb

SPARK_NULL_ORDER = "nulls_first_on_asc_last_on_desc"  # Spark's: NULLS FIRST for ASC, NULLS LAST for DESC


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def delta_uri(path: str) -> str:
    """The URI delta-rs reads `path` at: `s3a://` -> `s3://`, a local path made absolute."""
    scheme, sep, rest = path.partition("://")
    if not sep:
        return str(Path(path).resolve())
    return f"s3://{rest}" if scheme.lower() == "s3a" else path


def storage_options(store: ObjectStoreSettings | None) -> dict[str, str]:
    """delta-rs (object_store crate) options for `store`: only what the settings decide, never credentials."""
    options: dict[str, str] = {}
    if store is None:
        return options
    if store.endpoint:
        options["AWS_ENDPOINT_URL"] = store.endpoint
        if store.endpoint.lower().startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"  # object_store refuses plain http unless told
    if store.region:
        options["AWS_REGION"] = store.region
    if store.path_style:
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return options


def _duckdb_types(con: duckdb.DuckDBPyConnection, fields: Sequence[Any]) -> list[str]:
    """DuckDB's SQL spelling of Spark fields' types (through Arrow, which both sides map the same way)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_type  # pure Python: no JVM

    if not fields:
        return []
    empty = pa.schema([pa.field(f.name, to_arrow_type(f.dataType)) for f in fields]).empty_table()
    return [str(t) for t in con.from_arrow(empty).dtypes]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def register_views(con: duckdb.DuckDBPyConnection, warehouse: str,
                   store: ObjectStoreSettings | None = None) -> list[str]:
    """A view per existing table of `warehouse` (named like the table); returns their names."""
    from deltalake import DeltaTable

    options = storage_options(store)
    names = []
    for name, spec in TABLES.items():
        uri = delta_uri(table_path(warehouse, name))
        if not DeltaTable.is_deltatable(uri, storage_options=options):
            continue
        dataset = DeltaTable(uri, storage_options=options).to_pyarrow_dataset()
        source = f"__delta_{name}"
        con.register(source, dataset)
        missing = [f for f in spec.schema.fields if f.name not in dataset.schema.names]
        added = "".join(f", CAST(NULL AS {t}) AS {_quote(f.name)}"
                        for f, t in zip(missing, _duckdb_types(con, missing), strict=True))
        con.execute(f"CREATE OR REPLACE VIEW {_quote(name)} AS SELECT *{added} FROM {_quote(source)}")
        names.append(name)
    return names


def connect(warehouse: str, store: ObjectStoreSettings | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the warehouse's tables as views and Spark's NULL order."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET default_null_order = '{SPARK_NULL_ORDER}'")
    register_views(con, warehouse, store)
    return con


def run_sql_file(warehouse: str, path: str | Path, store: ObjectStoreSettings | None = None,
                 limit: int | None = None) -> QueryResult:
    """Columns and rows (the first `limit`, all if None) of the query in `path` on `warehouse`."""
    con = connect(warehouse, store)
    try:
        relation = con.sql(read_statement(path))
        rows = (relation if limit is None else relation.limit(limit)).fetchall()
        return QueryResult(list(relation.columns), rows)
    finally:
        con.close()


def _cell(value: Any) -> str:
    """A value as Spark's `show()` prints it (NULL, [a, b], {a, b}), for output that reads the same."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(_cell(v) for v in value.values()) + "}"
    return str(value)


def _width(text: str) -> int:
    """Columns a terminal gives `text`: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def render(result: QueryResult, limit: int, more: bool) -> str:
    """The rows as a table like Spark's `show(limit, truncate=False)`."""
    cells = [[_cell(v) for v in row] for row in result.rows[:limit]]
    widths = [max([3, _width(c), *(_width(row[i]) for row in cells)]) for i, c in enumerate(result.columns)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"

    def line(values: Sequence[str]) -> str:
        return "|" + "|".join(v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True)) + "|"

    out = [rule, line(result.columns), rule, *(line(row) for row in cells), rule]
    if more:
        out.append(f"only showing top {limit} row{'s' if limit != 1 else ''}")
    return "\n".join(out) + "\n"


def show_sql_file(warehouse: str, path: str | Path, store: ObjectStoreSettings | None, limit: int) -> str:
    """What `giellm-batch sql --engine duckdb` prints: at most `limit` rows, and whether there were more."""
    result = run_sql_file(warehouse, path, store, limit=limit + 1)
    return render(result, limit, more=len(result.rows) > limit)
