"""Input files read with Spark's binaryFile source, with every listed file accounted for.

binaryFile does not turn every file it lists into a row (Spark 4.2 / Hadoop 3.4; the cases are
tests in tests/input/test_input_files.py):

- a zero-length file is listed but yields no row at all, silently (Spark plans no read for it);
- a file deleted between listing and reading fails the whole Spark task (FILE_NOT_EXIST), unless
  `ignoreMissingFiles`, which skips it silently;
- a file whose read fails fails the Spark task, unless `ignoreCorruptFiles`, which skips it silently:
  e.g. a name containing ':' (`a:b.txt`: its checksum file `.a:b.txt.crc` is not a valid Hadoop
  path), though not every time; a file without read permission should fail the same way (as root,
  which the tests run as, it is simply read);
- a file over 2 GiB - 1 fails the Spark task even with `ignoreCorruptFiles` (binaryFile's length check
  is not an I/O error). A filter on `length` is pushed into the reader, which then skips the file
  without opening it;
- names starting with `_` or `.` are hidden, like `.crc`, `_SUCCESS` and `_temporary/`: they and
  everything under such folders are never listed, so they are not input (by design). Exceptions:
  `_` names containing `=`, which are read, and names starting with `_metadata`, which are listed
  but then not read. A dangling symlink is not listed; a symlink to a file is read.

So this module reads with both `ignore*` options and a size limit, so that no single file can
fail the run, and then accounts for what was skipped: the files Spark planned to read (its own
listing, `DataFrame.inputFiles()`, the same index the scan uses, hidden-name rules included) are
compared with the files that produced rows (`input_file_name()`, the same URI spelling), and
every listed file that produced none becomes one rejected record with the best reason available
(local files are stat'ed for it). Everything stays one DataFrame: the read and the listing meet
in a window over the file URI (one shuffle of the decoded rows), so the files are scanned once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pandas as pd

from giellm_batch import schemas
from giellm_batch.isolation.failures import FATAL, failure

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

FILE_URI = "file_uri"
# Where each record's file was and how it looked when it was read (Hadoop path spelling, length,
# modification time, taken in the same scan as its content): the file manifest (manifest.py)
# records finished files by these. Null for files listed but not read and for table input.
FILE_COLUMNS = ("file_path", "file_length", "file_modified_at")
# Largest input file read. binaryFile cannot read 2 GiB or more, and one file is one row held in
# one Python worker's memory (bytes, then decoded text): big JSONL drops should be split.
MAX_FILE_BYTES = 512 * 1024 * 1024
_UNREAD = "_unread"


@dataclass(frozen=True)
class FileRules:
    """Which listed files are input: a name glob, names to leave out, the size limit."""

    glob: str
    excluded_names: tuple[str, ...] = ()
    max_bytes: int = MAX_FILE_BYTES

    @classmethod
    def for_format(cls, fmt: str, max_bytes: int = MAX_FILE_BYTES) -> FileRules:
        if fmt == "livedoor":  # each category folder carries a LICENSE.txt, not an article
            return cls("*.txt", ("LICENSE.txt",), max_bytes)
        return cls("*.json*", (), max_bytes)


def file_schema() -> StructType:
    """RAW_ARTICLE plus FILE_COLUMNS: what reading file input yields."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

    return StructType([*schemas.RAW_ARTICLE.fields, StructField("file_path", StringType(), True),
                       StructField("file_length", LongType(), True),
                       StructField("file_modified_at", TimestampType(), True)])


def decoded_schema() -> StructType:
    """What the file decoder emits: file_schema() plus the URI of the file each row came from."""
    from pyspark.sql.types import StringType, StructField, StructType

    return StructType([*file_schema().fields, StructField(FILE_URI, StringType(), True)])


_PARALLEL_LISTING = "spark.sql.sources.parallelPartitionDiscovery.threshold"


def binary_files(spark: SparkSession, path: str | list[str], rules: FileRules) -> DataFrame:
    """Spark's binaryFile DataFrame over `path` (a folder, or a list of files) with the rules' glob.

    A list of local files is listed on the driver: past 32 paths Spark lists them in a Spark job of
    one Spark task per path, about ten times slower than listing them on the driver. Remote stores
    keep the job, which spreads the per-file requests over executors."""
    reader = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
              .option("pathGlobFilter", rules.glob)
              .option("ignoreMissingFiles", "true").option("ignoreCorruptFiles", "true"))
    if isinstance(path, str) or not all(urlsplit(p).scheme in ("", "file") for p in path):
        return reader.load(path)
    before = spark.conf.get(_PARALLEL_LISTING)
    spark.conf.set(_PARALLEL_LISTING, str(len(path) + 1))  # the listing happens in load(): only then
    try:
        return reader.load(path)
    finally:
        if before is None:
            spark.conf.unset(_PARALLEL_LISTING)
        else:
            spark.conf.set(_PARALLEL_LISTING, before)


def read_files(spark: SparkSession, path: str | list[str], rules: FileRules, decoder: Callable[..., Any],
               unread_row: Callable[[str, str], dict[str, Any]], listed: DataFrame | None = None) -> DataFrame:
    """file_schema() rows: the decoder's rows for every file read, one `unread_row` per file not read.
    `path`: the input folder, or (manifest.py) the files of it to read; `listed`: binary_files of it,
    when the caller has it already (its listing is reused, not repeated)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    files = listed if listed is not None else binary_files(spark, path, rules)
    keep = name_filter(rules)
    index = files._jdf.inputFiles()
    decoded = (files.filter(F.col("length") <= rules.max_bytes)  # pushed into the reader: never opened
               .select("path", "content", "length", "modificationTime", F.input_file_name().alias(FILE_URI))
               .filter(keep)
               .coalesce(decode_partitions(len(index), spark.sparkContext.defaultParallelism))
               .mapInPandas(decoder, schema=decoded_schema()))
    unread = listed_files(spark, files, index).filter(keep).mapInPandas(
        unread_rows(rules.max_bytes, unread_row), schema=decoded_schema())
    rows = decoded.withColumn(_UNREAD, F.lit(False)).unionByName(unread.withColumn(_UNREAD, F.lit(True)))
    read_any = F.max((~F.col(_UNREAD)).cast("int")).over(Window.partitionBy(FILE_URI))
    return (rows.withColumn("_read_any", read_any).filter(~F.col(_UNREAD) | (F.col("_read_any") == 0))
            .select(*file_schema().fieldNames()))


# Files one decoding partition (one Spark task) takes at most (when there are more files than slots can share).
FILES_PER_DECODE_PARTITION = 2000


def decode_partitions(n_files: int, slots: int) -> int:
    """How many partitions (Spark tasks) decode `n_files` files: every slot busy, at most
    FILES_PER_DECODE_PARTITION files each.

    Why not the scan's own split: Spark sizes file partitions as if opening a file cost as much as
    reading 4 MB (`spark.sql.files.openCostInBytes`), which for news articles of a few KB means one
    partition per ~30 files, and each partition is one Python Spark task with its own Arrow round trip,
    which then costs far more than the decoding itself. Merging partitions (coalesce: no shuffle)
    keeps the scan, only in fewer Spark tasks."""
    return max(1, slots, -(-n_files // FILES_PER_DECODE_PARTITION))


def name_filter(rules: FileRules, column: str = FILE_URI) -> Column:
    """Column filter: the file is input (not one of the rules' excluded names)."""
    from pyspark.sql import functions as F

    keep = F.lit(True)
    for name in rules.excluded_names:
        keep = keep & ~F.col(column).endswith(f"/{name}")
    return keep


def listed_files(spark: SparkSession, files: DataFrame, listed: Any = None) -> DataFrame:
    """DataFrame (file_uri) of the files Spark's index lists for `files` (a file-source DataFrame);
    `listed`: that listing (`files._jdf.inputFiles()`) when the caller has it already.

    Built on the JVM side: `DataFrame.inputFiles()` in Python fetches the names one py4j call
    each, which costs seconds per ten thousand files."""
    from pyspark.sql import DataFrame

    jvm: Any = spark._jvm  # py4j's view of the driver JVM: untyped
    uris = jvm.scala.collection.immutable.ArraySeq.unsafeWrapArray(
        files._jdf.inputFiles() if listed is None else listed)
    dataset = spark._jsparkSession.createDataset(uris, jvm.org.apache.spark.sql.Encoders.STRING())
    return DataFrame(dataset.toDF(), spark).withColumnRenamed("value", FILE_URI)


def unread_rows(max_bytes: int, unread_row: Callable[[str, str], dict[str, Any]]
                ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function: listed file URIs -> the rejected row each stands for if it was not read."""
    columns = decoded_schema().fieldNames()

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows = []
            for uri in batch[FILE_URI]:
                path = hadoop_path(uri)
                try:
                    reason = unread_reason(uri, max_bytes)
                except FATAL:
                    raise
                except Exception as exc:
                    reason = failure("listing", exc)
                rows.append({**dict.fromkeys(FILE_COLUMNS), **unread_row(path, reason), FILE_URI: uri})
            yield pd.DataFrame(rows, columns=columns)

    return run


def hadoop_path(uri: str) -> str:
    """The spelling binaryFile's `path` column uses (Hadoop Path.toString) for a listed file URI:
    `file:///a/b%20c.txt` -> `file:/a/b c.txt`, so rejected files are keyed like read ones."""
    parts = urlsplit(uri)
    authority = f"//{unquote(parts.netloc)}" if parts.netloc else ""
    return f"{parts.scheme}:{authority}{unquote(parts.path)}" if parts.scheme else unquote(parts.path)


def unread_reason(uri: str, max_bytes: int) -> str:
    """Why a listed file produced no row. Exact for local files (a stat now); other file systems
    cannot be asked from a Python worker, so their reason lists the possibilities."""
    parts = urlsplit(uri)
    if parts.scheme not in ("", "file"):
        return (f"file listed but not read by Spark: empty, vanished, unreadable, or over the "
                f"{max_bytes}-byte limit")
    local = unquote(parts.path)
    try:
        size = os.stat(local).st_size
    except FileNotFoundError:
        return "file listed but not read by Spark: it vanished before it could be read"
    except OSError as exc:
        return f"file listed but not read by Spark: cannot stat it ({type(exc).__name__}: {exc.strerror})"
    if size == 0:
        return "empty file"
    if size > max_bytes:
        return f"file too large: {size} bytes, the limit is {max_bytes}"
    if not os.access(local, os.R_OK):
        return "file listed but not read by Spark: no read permission"
    return ("file listed but not read by Spark: an I/O error while reading it, or a name Hadoop cannot "
            "open (e.g. one with ':') or does not read (_metadata*)")
