"""Delta table access: one directory per table under the warehouse root, idempotent MERGE writes.

Every write is one MERGE on the table's keys (schemas.TABLES), so one Delta commit: a rerun of
the same input adds no rows, and rows an interrupted attempt left behind are replaced, not
duplicated (see `upsert`).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from giellm_batch.schemas import TABLES, TableSpec
from giellm_batch.spark.concurrent_jobs import concurrently
from giellm_batch.storage import FileStatus, Storage, storage_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

log = logging.getLogger("giellm_batch.warehouse.tables")
_COMMIT = re.compile(r"\d{20}\.json")


def table_path(warehouse: str, name: str) -> str:
    return f"{warehouse.rstrip('/')}/{name}"


def table_exists(spark: SparkSession, warehouse: str, name: str) -> bool:
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, table_path(warehouse, name)))


def ensure_table(spark: SparkSession, warehouse: str, spec: TableSpec) -> None:
    from delta.tables import DeltaTable

    log.info("table %s: creating if absent", spec.name)
    builder = (DeltaTable.createIfNotExists(spark)
               .location(table_path(warehouse, spec.name))
               .addColumns(spec.schema)
               # downstream jobs read what changed with readChangeFeed
               .property("delta.enableChangeDataFeed", "true")
               .property("delta.dataSkippingStatsColumns", ",".join(spec.stats_columns)))
    if spec.partition_by:
        builder = builder.partitionedBy(*spec.partition_by)
    builder.execute()


def ensure_all_tables(spark: SparkSession, warehouse: str) -> None:
    """Create every missing table, first setting aside any a killed run left half-created; bring
    existing ones up to this version's columns. Tables are independent: done concurrently."""

    def ensure(spec: TableSpec) -> None:
        try:
            exists = table_exists(spark, warehouse, spec.name)
        except Exception:  # e.g. a torn first commit: Delta cannot even tell
            exists = False
        if not exists:  # a healthy table costs no listing; only a missing or broken one is looked at
            set_aside_unborn_table(spark, warehouse, spec.name)
            ensure_table(spark, warehouse, spec)
            log.info("table %s: created", spec.name)
        else:
            add_missing_columns(spark, warehouse, spec)

    concurrently([functools.partial(ensure, spec) for spec in TABLES.values()])


def missing_columns(current: StructType, wanted: StructType, prefix: str = "") -> list[tuple[str, DataType]]:
    """(column path, type) of every field in `wanted` that `current` lacks, nested struct fields
    (also inside arrays: `arguments.element.key`) included. Types of existing fields are not compared."""
    from pyspark.sql.types import ArrayType, StructType

    have = {f.name: f.dataType for f in current.fields}
    out: list[tuple[str, DataType]] = []
    for field in wanted.fields:
        path = f"{prefix}`{field.name}`"
        if field.name not in have:
            out.append((path, field.dataType))
            continue
        mine, theirs = have[field.name], field.dataType
        if isinstance(mine, StructType) and isinstance(theirs, StructType):
            out.extend(missing_columns(mine, theirs, f"{path}."))
        elif (isinstance(mine, ArrayType) and isinstance(theirs, ArrayType)
              and isinstance(mine.elementType, StructType) and isinstance(theirs.elementType, StructType)):
            out.extend(missing_columns(mine.elementType, theirs.elementType, f"{path}.element."))
    return out


def add_missing_columns(spark: SparkSession, warehouse: str, spec: TableSpec) -> None:
    """A table made by an older version gains the columns added since (one commit, only when needed)."""
    current = spark.read.format("delta").load(table_path(warehouse, spec.name)).schema
    missing = missing_columns(current, spec.schema)
    if not missing:
        return
    columns = ", ".join(f"{path} {dtype.simpleString()}" for path, dtype in missing)
    spark.sql(f"ALTER TABLE delta.`{table_path(warehouse, spec.name)}` ADD COLUMNS ({columns})")
    log.warning("table %s: added columns of this version: %s", spec.name, columns)


def _log_state(storage: Storage, log_dir: str) -> tuple[bool, FileStatus | None]:
    """(the log proves a table was born, the version-0 commit file to check when it does not).

    Born: a commit after version 0 or a checkpoint (old commits may have been cleaned up since).
    """
    first = None
    for entry in storage.list_folder(log_dir):  # [] when there is no log folder
        if _COMMIT.fullmatch(entry.name) and entry.size > 0:
            if int(entry.name[:20]) > 0:
                return True, None
            first = entry
        elif ".checkpoint" in entry.name or entry.name == "_last_checkpoint":
            return True, None
    return False, first


def _first_commit_actions(storage: Storage, commit: FileStatus) -> list[dict[str, Any]] | None:
    """The actions of a version-0 commit file, or None when it is not readable JSON (torn)."""
    import json

    data = storage.read_bytes(commit.path)
    try:
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    except ValueError:
        return None


def _first_commit_readable(storage: Storage, commit: FileStatus) -> bool:
    actions = _first_commit_actions(storage, commit)
    return actions is not None and any("metaData" in action for action in actions)


def never_written(spark: SparkSession, warehouse: str, name: str) -> bool:
    """Is the table exactly as created: one version-0 commit that adds no file?

    Read from the log folder's listing and that one small file, without loading a Delta snapshot
    (a fraction of a second per table the first time in a JVM). Any later commit or checkpoint
    counts as written, even one that removed every row: callers use this only to skip a check."""
    storage = storage_for(spark, warehouse)
    born, first = _log_state(storage, f"{table_path(warehouse, name)}/_delta_log")
    if born or first is None:
        return False
    actions = _first_commit_actions(storage, first)
    return actions is not None and not any("add" in action for action in actions)


def set_aside_unborn_table(spark: SparkSession, warehouse: str, name: str) -> bool:
    """Move a table folder that holds no committed version to `<warehouse>/_trash/`.

    Why: a run killed while creating a table leaves a folder that is neither empty nor a Delta
    table (an empty `_delta_log`, a temp commit file, on stores without atomic rename a torn
    first commit). Delta refuses to create a table there and every later run would fail until
    someone deleted it. Such a folder holds no data any reader could see (no commit names a
    file), so it is set aside (not deleted: nothing is lost if the guess was wrong) and the
    table is created afresh. Callers hold the warehouse lock. Returns whether it moved one.
    """
    storage = storage_for(spark, warehouse)
    path = table_path(warehouse, name)
    if not storage.list_folder(path):
        return False  # nothing there, or an empty folder Delta creates into
    born, first = _log_state(storage, f"{path}/_delta_log")
    if born or (first is not None and _first_commit_readable(storage, first)):
        return False
    trash = f"{warehouse.rstrip('/')}/_trash/{name}-{time.strftime('%Y%m%dT%H%M%S')}"
    try:
        storage.rename(path, trash)
    except OSError as exc:
        raise RuntimeError(f"table folder {path} holds no committed Delta version and could not be moved to "
                           f"{trash}; move or delete it, then rerun") from exc
    log.warning("table %s: folder held no committed version (a run died creating it); moved to %s", name, trash)
    return True


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """`df` with exactly the table's columns, in order, cast to the table's types."""
    from pyspark.sql import functions as F

    missing = [f.name for f in spec.schema.fields if f.name not in df.columns]
    if missing:
        raise KeyError(f"rows for table '{spec.name}' lack columns {missing}")
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in spec.schema.fields])


# Columns that differ between two runs computing the same result; ignored when deciding whether a
# row changed, so recomputing identical results rewrites nothing.
_VOLATILE = {"run_id", "processed_at", "quarantined_at", "cached_at", "recorded_at", "package_version"}


def upsert(spark: SparkSession, warehouse: str, name: str, rows: DataFrame, *,
           replace_articles: DataFrame | None = None,
           pipeline_hash: str | None = None) -> None:
    """One MERGE (one atomic Delta commit) of `rows` into table `name`, keyed by the table's keys.

    New keys are inserted, changed rows updated, identical rows left alone. With
    `replace_articles` (a DataFrame of article_id) the table's rows of those articles under
    `pipeline_hash` that are not in `rows` are deleted in the same commit: afterwards the table
    holds exactly `rows` for them, whatever an interrupted earlier attempt had written.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    spec = TABLES[name]
    ensure_table(spark, warehouse, spec)
    keys = list(spec.keys)
    source = conform(rows, spec).dropDuplicates(keys).withColumn("_op", F.lit("upsert"))
    if replace_articles is not None:
        existing = (read_table(spark, warehouse, name).filter(F.col("pipeline_hash") == F.lit(pipeline_hash))
                    .join(replace_articles.select("article_id").distinct(), "article_id", "left_semi"))
        stale = existing.select(*keys).join(source.select(*keys), keys, "left_anti").withColumn("_op", F.lit("delete"))
        source = source.unionByName(stale, allowMissingColumns=True)
    if source.isEmpty():
        return
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    columns = [f.name for f in spec.schema.fields]
    changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in columns if c not in _VOLATILE and c not in keys)
    assignments: dict[str, Any] = {f"`{c}`": f"s.`{c}`" for c in columns}
    merge = (DeltaTable.forPath(spark, table_path(warehouse, name)).alias("t").merge(source.alias("s"), on)
             .whenMatchedDelete(condition="s._op = 'delete'"))
    if changed:
        merge = merge.whenMatchedUpdate(condition=f"s._op = 'upsert' AND ({changed})", set=assignments)
    merge.whenNotMatchedInsert(condition="s._op = 'upsert'", values=assignments).execute()


def is_empty(spark: SparkSession, warehouse: str, name: str) -> bool:
    """Does the table hold no data file (a first run)? Known from its snapshot: no Spark job."""
    return not len(read_table(spark, warehouse, name)._jdf.inputFiles())


def _rows_by_table(spark: SparkSession, warehouse: str, names: Sequence[str], pipeline_hash: str) -> list[DataFrame]:
    """(_table, article_id) rows of this pipeline per table of `names` that holds any rows; tables
    never written or empty are left out from their log and snapshot (no Spark job)."""
    from pyspark.sql import functions as F

    return [read_table(spark, warehouse, name).filter(F.col("pipeline_hash") == pipeline_hash)
            .select(F.lit(name).alias("_table"), "article_id")
            for name in names if not never_written(spark, warehouse, name) and not is_empty(spark, warehouse, name)]


def articles_with_rows(spark: SparkSession, warehouse: str, names: Sequence[str],
                       pipeline_hash: str) -> DataFrame | None:
    """DataFrame (article_id, distinct) of the articles that any of tables `names` holds rows of under
    this pipeline, or None when all of them are empty (known without a Spark job)."""
    ids = [frame.select("article_id") for frame in _rows_by_table(spark, warehouse, names, pipeline_hash)]
    return functools.reduce(lambda a, b: a.unionByName(b), ids).distinct() if ids else None


def tables_with_rows_for(spark: SparkSession, warehouse: str, names: Sequence[str], articles: DataFrame,
                         pipeline_hash: str) -> frozenset[str]:
    """Which of tables `names` hold rows of these articles under this pipeline (leftovers to
    replace): one query over all of them, so each table's write knows without asking again."""
    frames = _rows_by_table(spark, warehouse, names, pipeline_hash)
    if not frames:
        return frozenset()
    hits = (functools.reduce(lambda a, b: a.unionByName(b), frames)
            .join(articles.select("article_id").distinct(), "article_id", "left_semi")
            .select("_table").distinct().collect())
    return frozenset(str(r["_table"]) for r in hits)


def write_rows(spark: SparkSession, warehouse: str, name: str, rows: DataFrame, *,
           replace_articles: DataFrame | None = None,
               pipeline_hash: str | None = None, leftovers: bool = True, n_rows: int | None = None,
               fresh_keys: bool = False) -> None:
    """Write `rows` with the semantics of `upsert`, taking the cheap path when it is the same.

    A nightly run's articles usually have no rows yet (`leftovers=False`: the caller found with
    `tables_with_rows_for`, once for all tables, that this one holds none of `replace_articles`):
    then a plain append equals the MERGE at a fraction of its cost. Articles with leftovers (an
    interrupted attempt, changed content, --reprocess) go through the MERGE. Callers hold the
    warehouse lock, so nothing adds rows in between.
    `n_rows`, when known, skips writing (and committing) nothing. `fresh_keys`: the caller knows
    none of the rows' keys is in the table (the prompt cache's new keys were chosen against it under
    the lock), so the insert-only path needs no anti-join against the whole table.
    """
    started = time.monotonic()
    if n_rows == 0:
        return
    spec = TABLES[name]  # the table exists: run_job ensured all of them under the lock
    keys = list(spec.keys)
    if replace_articles is not None and leftovers:
        upsert(spark, warehouse, name, rows, replace_articles=replace_articles, pipeline_hash=pipeline_hash)
        log.info("%s: merged (leftover rows replaced) in %.1fs", name, time.monotonic() - started)
        return
    if replace_articles is not None or fresh_keys:  # no row of these keys in the table: append
        new = _by_partition(conform(rows, spec), spec, n_rows)
    else:  # insert-only: keys already present stay as they are
        existing = read_table(spark, warehouse, name).select(*keys)
        new = conform(rows, spec).dropDuplicates(keys).join(existing, keys, "left_anti")
        if new.isEmpty():
            return
    new.write.format("delta").mode("append").save(table_path(warehouse, name))
    log.info("%s: appended in %.1fs", name, time.monotonic() - started)


# Up to this many rows an append is written by one Spark task (no shuffle): one file per day.
SINGLE_SPARK_TASK_ROWS = 200_000


def _by_partition(rows: DataFrame, spec: TableSpec, n_rows: int | None = None) -> DataFrame:
    """`rows` without duplicate keys, each table partition (publication day) in one Spark partition.

    Why: rows spread over every shuffle partition write one small file per (Spark task, day): a
    backfill over many days would write shuffle-partitions x days files per table, and every file
    makes each later append slower. Deduplicating on keys + partition columns (the same rows: an
    article has one publication day) over a shuffle on the partition columns needs that one shuffle
    only, and each day lands in one file. A write of at most SINGLE_SPARK_TASK_ROWS rows (`n_rows`, when
    the caller knows it) skips even that shuffle: one Spark task holds every day, which makes a
    small append cheaper."""
    keys = [*spec.keys, *(c for c in spec.partition_by if c not in spec.keys)]
    if n_rows is not None and n_rows <= SINGLE_SPARK_TASK_ROWS:
        rows = rows.coalesce(1)  # one partition satisfies the deduplication's clustering: no exchange
    elif spec.partition_by:
        rows = rows.repartition(*spec.partition_by)
    return rows.dropDuplicates(keys)


def append_rows(spark: SparkSession, warehouse: str, name: str, df: DataFrame) -> None:
    spec = TABLES[name]
    ensure_table(spark, warehouse, spec)
    # mergeSchema: a warehouse made by an older version gains the columns added since (e.g. in `runs`)
    conform(df, spec).write.format("delta").mode("append").option("mergeSchema", "true").save(
        table_path(warehouse, name))


def read_table(spark: SparkSession, warehouse: str, name: str) -> DataFrame:
    return spark.read.format("delta").load(table_path(warehouse, name))
