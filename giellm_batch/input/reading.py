"""Reading the configured input into RAW_ARTICLE rows (accepted and rejected), as a Spark DataFrame.

Every input record becomes one row of `schemas.RAW_ARTICLE`. A record that cannot be used
(undecodable bytes, bad JSON, a field of the wrong type, missing id, empty body, duplicate id, an
input file Spark listed but could not read) keeps its row with a `reject_reason`; the job routes
those rows to the quarantine table, so nothing is lost silently (decoding: input/decoding.py, the
steps: input/read_step.py).

Livedoor directories and JSONL files are read as raw bytes (Spark's binaryFile source, see
input/files.py for what it skips and how those files are still accounted for) and decoded
strictly, so a bad byte is caught and reported with its file and line instead of being replaced
with U+FFFD on the way in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from giellm_batch import schemas
from giellm_batch.config.job_config import InputSettings
from giellm_batch.input import files as input_files
from giellm_batch.input.decoding import PAYLOAD_CHARS, column_map
from giellm_batch.input.read_step import DecodeFilesStep, ValidateTableStep, unread_file_row
from giellm_batch.isolation.process import IsolationLimits

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


def file_rules(settings: InputSettings, max_file_bytes: int | None = None) -> input_files.FileRules:
    """Which files of a Livedoor/JSONL input are read (glob, names left out, size limit)."""
    limit = max_file_bytes or input_files.MAX_FILE_BYTES
    return input_files.FileRules.for_format(settings.format, limit)


def read_articles(spark: SparkSession, settings: InputSettings, max_file_bytes: int | None = None,
                  files: list[str] | None = None, listed: DataFrame | None = None,
                  limits: IsolationLimits | None = None,
                  isolated: dict[tuple[str, str], str] | None = None) -> DataFrame:
    """Spark DataFrame of RAW_ARTICLE rows (accepted and rejected) for the configured input, plus
    input_files.FILE_COLUMNS (null for table input).

    Livedoor/JSONL: one row per record of every file Spark lists (see input/files.py), or of
    `files` only (manifest.py), files larger than `max_file_bytes` (default
    input_files.MAX_FILE_BYTES) rejected unread. `listed`: the input's binaryFile DataFrame when
    the caller has listed it already (input_files.binary_files)."""
    if settings.format in ("livedoor", "jsonl"):
        return input_files.read_files(spark, settings.path if files is None else files,
                                      file_rules(settings, max_file_bytes), DecodeFilesStep(settings, limits, isolated),
                                      unread_file_row(settings.format), listed=listed)
    from pyspark.sql import functions as F

    return _read_table(spark, settings).select("*", *(
        F.lit(None).cast(field.dataType).alias(field.name)
        for field in input_files.file_schema().fields if field.name in input_files.FILE_COLUMNS))


def _read_table(spark: SparkSession, settings: InputSettings) -> DataFrame:
    from pyspark.sql import functions as F

    reader = spark.read.format("delta") if settings.format == "delta" else spark.read
    table = reader.load(settings.path) if settings.format == "delta" else reader.parquet(settings.path)
    selected, problems = [], []
    for canonical, column in column_map(settings).items():
        value, problem = _typed_text_column(table, canonical, column)
        selected.append(value.alias(canonical))
        if problem is not None:
            problems.append(problem)
    raw = F.to_json(F.struct(*[F.col(f"`{c}`") for c in column_map(settings).values() if c in table.columns]))
    # A record without id is keyed by its content: its canonical columns as JSON, as earlier versions
    # keyed it (a changed key would make its finished rows look like a new record's).
    content = F.to_json(F.struct(*column_map(settings)))
    key = F.concat_ws(":", F.lit(settings.path), F.coalesce(F.col("article_id"), F.sha2(content, 256)))
    reason = F.coalesce(*problems, F.lit(None).cast("string")) if problems else F.lit(None).cast("string")
    payload = F.substring(raw, 1, PAYLOAD_CHARS)
    shaped = (table.select(*selected, reason.alias("reject_reason"), payload.alias("payload"))
              .withColumn("record_key", key).withColumn("source", F.lit(settings.path))
              .withColumn("content_hash", F.lit(None).cast("string"))
              .withColumn("payload", F.when(F.col("reject_reason").isNotNull(), F.col("payload"))))
    return shaped.select(*schemas.RAW_ARTICLE.fieldNames()).mapInPandas(ValidateTableStep(), schema=schemas.RAW_ARTICLE)


def _typed_text_column(table: DataFrame, canonical: str, column: str) -> tuple[Column, Column | None]:
    """(value as string, reject reason or None) for one input column, by its Spark type: as for
    JSONL, only string columns are text (and integer ids); others are rejected where non-null,
    never cast into article text."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegralType, StringType

    if column not in table.columns:
        return F.lit(None).cast("string"), None
    col = F.col(f"`{column}`")
    dtype = table.schema[column].dataType
    if isinstance(dtype, StringType) or (canonical == "article_id" and isinstance(dtype, IntegralType)):
        return col.cast("string"), None
    expected = "a string or an integer" if canonical == "article_id" else "a string"
    reason = F.when(col.isNotNull(), F.lit(f"field '{column}' must be {expected}, got {dtype.simpleString()}"))
    return F.lit(None).cast("string"), reason
