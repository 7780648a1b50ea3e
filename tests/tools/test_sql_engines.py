"""Every `sql/` query gives the same rows, in the same order, on DuckDB over delta-rs as on Spark:
on a local warehouse, on an S3 one (the local SeaweedFS server) and on tables of an older version."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from giellm_batch import schemas
from giellm_batch.storage import storage_for
from giellm_batch.tools import local_s3, sql, sql_duckdb
from giellm_batch.warehouse import tables
from tests.conftest import CONFIG, REPO
from tests.warehouse.test_tables_upgrade import older

QUERIES = sorted((REPO / "sql").glob("*.sql"))
CLI = shutil.which("giellm-batch") or str(REPO / ".venv" / "bin" / "giellm-batch")


def s3_config(tmp_path: Path, warehouse: str, endpoint: str) -> Path:
    """conf/smoke.yaml with absolute paths, its warehouse on S3 and an object_store section."""
    text = (CONFIG.read_text(encoding="utf-8").replace("../", f"{REPO}/")
            .replace("task_registry: tasks.yaml", f"task_registry: {REPO}/conf/tasks.yaml")
            .replace(f"warehouse: {REPO}/warehouse", f"warehouse: {warehouse}"))
    assert f"warehouse: {warehouse}" in text
    path = tmp_path / f"s3-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(text + f"\nobject_store:\n  endpoint: {endpoint}\n  region: {local_s3.REGION}\n"
                           "  path_style: true\n", encoding="utf-8")
    return path


def _plain(value: Any) -> Any:
    """One comparable shape for both engines' values: Spark's DECIMAL and DuckDB's DOUBLE as floats."""
    if isinstance(value, Decimal | float):
        return round(float(value), 9)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def on_spark(spark, warehouse: str, query: Path) -> tuple[list[str], list[list[Any]]]:
    df = sql.run_sql_file(spark, warehouse, query)
    return df.columns, [_plain(tuple(row)) for row in df.collect()]


def on_duckdb(warehouse: str, query: Path, store=None) -> tuple[list[str], list[list[Any]]]:
    result = sql_duckdb.run_sql_file(warehouse, query, store)
    return result.columns, [_plain(row) for row in result.rows]


def _append(spark, warehouse: str, name: str, rows: list[dict[str, Any]], schema=None) -> None:
    schema = schema or schemas.TABLES[name].schema
    records = [tuple(row.get(f.name) for f in schema.fields) for row in rows]
    (spark.createDataFrame(records, schema).write.format("delta").mode("append")
     .save(tables.table_path(warehouse, name)))


def _synthetic_rows(article: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows the scnm_ner run does not produce, so every query returns rows, with the cases where the
    engines could differ: NULL group keys and dates, ties in the most frequent surface form, keys
    missing (rows from before the keys existed), a day with no sentiment words, Japanese text."""
    base = {"article_id": article["article_id"], "pipeline_hash": article["pipeline_hash"], "task": "x"}
    day, other = dt.date(2025, 3, 3), dt.date(2025, 3, 4)
    relation = {**base, "relation": "所属", "grounded": True, "published_date": day}
    relations = [
        {**relation, "head": "ｿﾌﾄﾊﾞﾝｸ", "head_key": "ソフトバンク", "tail": "孫", "tail_key": "孫"},
        {**relation, "head": "ソフトバンク", "head_key": "ソフトバンク", "tail": "孫", "tail_key": "孫"},  # tie
        {**relation, "head": "ソフトバンク", "head_key": "ソフトバンク", "tail": "孫", "tail_key": "孫",
         "published_date": other, "grounded": False},
        {**relation, "head": "東京", "head_key": None, "tail": "日本", "tail_key": None, "published_date": None},
        {**relation, "head": "東京", "relation": None, "tail": None, "tail_key": None},
    ]
    event = {**base, "event_type": "発表", "grounded": True, "published_date": day}
    events = [event, {**event, "grounded": False}, {**event, "event_type": "試合", "published_date": other},
              {**event, "event_type": None, "published_date": None}]
    word = {**base, "label": "ポジティブ", "span": "好調", "published_date": day}
    words = [word, {**word, "span": "不振", "label": "ネガティブ"}, {**word, "published_date": None}]
    sentence = {**base, "task": "scpos_sentiment", "sentence_idx": 0, "published_date": day}
    extractions = [{**sentence, "text_label": "積極"}, {**sentence, "text_label": "消極", "sentence_idx": 1},
                   {**sentence, "text_label": "積極", "published_date": other},
                   {**sentence, "text_label": "中立", "published_date": None}]
    entity = {**base, "label": "組織名", "text_label": "技術", "grounded": True, "published_date": day}
    entities = [{**entity, "span": "ｿﾌﾄﾊﾞﾝｸ", "span_key": "ソフトバンク"},
                {**entity, "span": "ソフトバンク", "span_key": "ソフトバンク"},  # tie between surface forms
                {**entity, "span": "東京", "span_key": None, "text_label": None, "label": None}]
    return {"relations": relations, "events": events, "sentiment_words": words, "extractions": extractions,
            "entities": entities}


@pytest.fixture(scope="module")
def local_warehouse(spark, clean_run, tmp_path_factory) -> str:
    """A copy of the clean run's warehouse (3 articles, scnm_ner) with the synthetic rows added."""
    warehouse = tmp_path_factory.mktemp("sql-engines") / "wh"
    shutil.copytree(clean_run[2], warehouse)
    article = tables.read_table(spark, str(warehouse), "articles").orderBy("article_id").first().asDict()
    for name, rows in _synthetic_rows(article).items():
        _append(spark, str(warehouse), name, rows)
    return str(warehouse)


def upload_tree(spark, local: Path | str, target: str) -> str:
    """Copy a local warehouse to `target` (s3a://...) file by file with the warehouse storage's
    write_bytes; the Delta logs name their data files relative to the table, so the copy holds the
    same tables. Returns `target`."""
    storage = storage_for(spark, target)
    for path in sorted(Path(local).rglob("*")):
        if path.is_file():
            storage.write_bytes(f"{target}/{path.relative_to(local).as_posix()}", path.read_bytes())
    return target


@pytest.fixture(scope="module")
def s3_warehouse(spark, s3, local_warehouse) -> str:
    """The same warehouse on the S3 server (copied, not a second job run: the same rows, in seconds)."""
    return upload_tree(spark, local_warehouse, s3.url("sql-engines", "wh"))


def _same_rows(spark, warehouse: str, store=None) -> dict[str, int]:
    counts = {}
    for query in QUERIES:
        spark_columns, spark_rows = on_spark(spark, warehouse, query)
        duck_columns, duck_rows = on_duckdb(warehouse, query, store)
        assert duck_columns == spark_columns, query.name
        assert duck_rows == spark_rows, query.name
        counts[query.stem] = len(spark_rows)
    return counts


def test_every_query_gives_the_same_rows_on_duckdb_as_on_spark_locally(spark, local_warehouse):
    counts = _same_rows(spark, local_warehouse)
    assert set(counts) == {q.stem for q in QUERIES} and all(counts.values()), counts  # no query compared empty


def test_every_query_gives_the_same_rows_on_an_s3_warehouse(spark, s3, local_warehouse, s3_warehouse):
    counts = _same_rows(spark, s3_warehouse, s3.object_store())
    for query in QUERIES:  # and the same as on the local copy: nothing lost on the way
        assert on_duckdb(s3_warehouse, query, s3.object_store()) == on_duckdb(local_warehouse, query), query.name
    assert all(counts.values()), counts


def test_tables_of_an_older_version_show_the_new_columns_as_null_on_both_engines(spark, clean_run, tmp_path):
    warehouse = str(tmp_path / "old")
    for spec in schemas.TABLES.values():
        tables.ensure_table(spark, warehouse, schemas.TableSpec(spec.name, older(spec.schema), spec.keys,
                                                                spec.description, spec.partition_by))
    article = tables.read_table(spark, str(clean_run[2]), "articles").orderBy("article_id").first().asDict()
    _append(spark, warehouse, "articles", [article], older(schemas.TABLES["articles"].schema))
    for name, rows in _synthetic_rows(article).items():
        _append(spark, warehouse, name, rows, older(schemas.TABLES[name].schema))  # the keys are dropped
    con = sql_duckdb.connect(warehouse)
    try:
        assert con.sql("SELECT COUNT(*), COUNT(span_key) FROM entities").fetchall() == [(3, 0)]
        assert "span_key" not in [f.name for f in tables.read_table(spark, warehouse, "entities").schema]
    finally:
        con.close()
    assert all(_same_rows(spark, warehouse).values())


def test_storage_options_carry_the_settings_and_never_credentials():
    from giellm_batch.config.settings import ObjectStoreSettings

    assert sql_duckdb.delta_uri("s3a://bucket/wh/entities") == "s3://bucket/wh/entities"
    assert sql_duckdb.delta_uri("relative/wh") == str(Path("relative/wh").resolve())
    options = sql_duckdb.storage_options(ObjectStoreSettings(endpoint="http://127.0.0.1:9000", region="eu-west-1",
                                                             path_style=True))
    assert options == {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true",
                       "AWS_REGION": "eu-west-1", "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false"}
    assert sql_duckdb.storage_options(ObjectStoreSettings(endpoint="https://s3.example")) == {
        "AWS_ENDPOINT_URL": "https://s3.example"}
    assert sql_duckdb.storage_options(ObjectStoreSettings()) == {}


def test_the_cli_runs_duckdb_on_s3_without_a_jvm_and_prints_no_secret(spark, s3, s3_warehouse, tmp_path):
    store = s3.object_store()
    config = s3_config(tmp_path, s3_warehouse, s3.endpoint)  # a job YAML whose object_store reaches the server
    query = REPO / "sql" / "relation_triples.sql"
    expected = sql_duckdb.run_sql_file(s3_warehouse, query, store)
    # A JAVA_HOME without java: a JVM start would fail, so the command proves it needs none.
    env = {**os.environ, **s3.env(), "JAVA_HOME": str(tmp_path)}
    done = subprocess.run([CLI, "sql", str(query), "--engine", "duckdb", "--warehouse", s3_warehouse,
                           "--config", str(config), "--limit", "2"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    body = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    assert body[0] == expected.columns
    assert body[1:] == [[sql_duckdb._cell(v) for v in row] for row in expected.rows[:2]]
    assert len(expected.rows) > 2 and lines[-1] == "only showing top 2 rows"
    assert s3.secret_key not in done.stdout + done.stderr
