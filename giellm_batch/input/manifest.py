"""The input file manifest: files whose every record is finished are skipped unread by later runs.

Without it a nightly run over a growing folder reads and decodes every file it has ever seen to
find the night's few new ones, so its cost grows with the collection instead of with the news.
After a run's `articles` commit, the `input_files` table records each file (Hadoop path, length
and modification time, as seen by the scan that read its content) whose records are all done or
quarantined. A later run lists the folder (names, lengths and times only: no file is opened) and
reads just the files without a manifest row of the same path, length and modification time. A
file changed in any way is read again and classified as always (run/selection.py: done, changed or
unfinished), so the manifest can make a run skip work, never skip a change.

Never recorded, so read by every run: files listed but not read (the reason may pass: an I/O
error, a file vanishing mid-run), files with a record rejected as a duplicate id (which copy wins
depends on the other files) and, in --since/--until/--limit runs, files with a record the window
held back. --reprocess reads everything.

Only folders of at least `input.skip_finished_files_from` files use the manifest, for reading and
for recording (the value in effect: InputSettings.manifest_from). Its default depends on the store.
On a local disk, 50,000: the manifest's listing, lookup and commit cost ~3 s a night, and each file
it skips saves ~0.2 ms of reading and decoding, so it pays from about 20,000 files on
(docs/measurements.md). On an object store (any scheme but file:), 0: there every file read is a
request (a GET, billed, ~10-50 ms), so without the manifest a night's requests grow with the archive.

Why the whole folder is read when more than an eighth of its files need reading: Spark checks
every file named to its reader (a few ms a file in Spark's parallel listing job, ~0.2-0.6 ms a
local file listed on the driver, see files.binary_files) while reading a folder whole costs
~0.25 ms a file before decoding.
Names with glob characters are read that way too: Spark's reader would take them for patterns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from giellm_batch.config.job_config import InputSettings
from giellm_batch.input import files as input_files
from giellm_batch.input.reading import file_rules, read_articles
from giellm_batch.isolation.failures import FATAL
from giellm_batch.isolation.process import IsolationLimits
from giellm_batch.warehouse import tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("giellm_batch.input.manifest")
TABLE = "input_files"
# Files named to the reader at most: an eighth of the listing (see above), at least a few, and
# never more than the driver holds easily as a list of names.
MIN_NAMED_FILES, NAMED_SHARE, MAX_NAMED_FILES = 32, 8, 100_000
_GLOB_CHARS = frozenset("[]{}*?\\")
_KEY = ("file_path", "file_length", "file_modified_at")


@dataclass(frozen=True)
class FilePlan:
    """What a run reads of a file input."""

    files: list[str] | None = None  # the files to read (Hadoop paths); None: the whole input
    skipped: DataFrame | None = None  # (file_path) of the files skipped unread, when any are
    skipped_files: int = 0
    skipped_records: int = 0  # their records: all finished by earlier runs
    records_files: bool = False  # the run records its finished files (the folder is large enough)
    # the binaryFile DataFrame over the whole input when the plan listed it (the read reuses that
    # listing); not part of what the plan decides
    folder: DataFrame | None = field(default=None, compare=False)

    @property
    def reads_everything(self) -> bool:
        return self.files is None


def plan(spark: SparkSession, source: InputSettings, warehouse: str, pipeline_hash: str, reprocess: bool) -> FilePlan:
    """Which files of `source` this run reads. Reads everything unless the manifest lets it skip some."""
    from pyspark.sql import functions as F

    threshold = source.manifest_from()
    if source.format not in ("livedoor", "jsonl") or threshold < 0:
        return FilePlan()
    rules = file_rules(source)
    files = input_files.binary_files(spark, source.path, rules)
    index = files._jdf.inputFiles()  # the driver's listing (names only, no job): is the folder large enough?
    if len(index) < threshold:
        return FilePlan(folder=files)
    if reprocess or tables.never_written(spark, warehouse, TABLE):  # a fresh manifest: no snapshot to load
        return FilePlan(records_files=True, folder=files)
    finished = (tables.read_table(spark, warehouse, TABLE).filter(F.col("pipeline_hash") == pipeline_hash)
                .select(*_KEY, "records").dropDuplicates(list(_KEY)).withColumn("_finished", F.lit(True)))
    uri = input_files.FILE_URI
    # Lengths and times from a scan that opens no file. The scan yields no row for some listed files
    # (empty ones, see input/files.py): joined to the listing, those are read like new ones, so
    # read_files accounts for them.
    # Coalesced as for decoding (files.decode_partitions): Spark plans ~one Spark task per 30 small files.
    scanned = (files.select(F.col("path").alias("file_path"), F.col("length").alias("file_length"),
                            F.col("modificationTime").alias("file_modified_at"), F.input_file_name().alias(uri))
               .coalesce(input_files.decode_partitions(len(index), spark.sparkContext.defaultParallelism)))
    listed = (input_files.listed_files(spark, files, index).filter(input_files.name_filter(rules))
              .join(scanned, uri, "left").join(finished, list(_KEY), "left"))
    # One job: one row per file to read, one for all skipped files (keys null), at most the limit.
    to_read_path = F.when(F.col("_finished"), F.lit(None)).otherwise(F.col("file_path"))
    unscanned = F.when(F.col("_finished") | F.col("file_path").isNotNull(), F.lit(None)).otherwise(F.col(uri))
    rows = (listed.groupBy(to_read_path.alias("file"), unscanned.alias("uri"))
            .agg(F.count("*").alias("files"), F.sum("records").alias("records"))
            .limit(MAX_NAMED_FILES + 2).collect())
    to_read = [r["file"] or input_files.hadoop_path(r["uri"]) for r in rows if r["file"] or r["uri"]]
    skipped = [r for r in rows if not (r["file"] or r["uri"])]
    listed_files = sum(int(r["files"]) for r in rows)
    if (not skipped or len(to_read) > max(MIN_NAMED_FILES, min(MAX_NAMED_FILES, listed_files // NAMED_SHARE))
            or any(_GLOB_CHARS & set(f) for f in to_read)):
        return FilePlan(records_files=True, folder=files)
    log.info("manifest: %d file(s) unchanged since finished, skipped unread; %d to read",
             skipped[0]["files"], len(to_read))
    return FilePlan(files=to_read, skipped=listed.filter(F.col("_finished")).select("file_path"),
                    skipped_files=int(skipped[0]["files"]), skipped_records=int(skipped[0]["records"] or 0),
                    records_files=True)


def read_input(spark: SparkSession, source: InputSettings, warehouse: str, pipeline_hash: str,
               reprocess: bool, limits: IsolationLimits | None = None,
               isolated: dict[tuple[str, str], str] | None = None) -> tuple[FilePlan, DataFrame]:
    """(what is read, the records read: reading.read_articles rows) for this run; `limits`: the
    per-record isolation of decoding (isolation/process.py); `isolated`: selection.EarlierIsolations.decoded."""
    from pyspark.errors import AnalysisException

    try:
        read = plan(spark, source, warehouse, pipeline_hash, reprocess)
    except FATAL:
        raise
    except Exception:  # the manifest only saves work: without it every file is read
        log.exception("manifest: could not be read; reading every input file and recording none")
        read = FilePlan()
    if read.files == []:  # every file finished and unchanged
        return read, spark.createDataFrame([], input_files.file_schema())
    if read.reads_everything:  # the folder as the plan listed it: one listing for the run
        return read, read_articles(spark, source, listed=read.folder, limits=limits, isolated=isolated)
    try:
        return read, read_articles(spark, source, files=read.files, limits=limits, isolated=isolated)
    except AnalysisException as exc:  # Spark refuses a named file that vanished since the listing
        log.warning("manifest: a file to read is gone (%s); reading the whole input instead", str(exc)[:300])
        whole = read_articles(spark, source, limits=limits, isolated=isolated)
        return FilePlan(records_files=read.records_files), whole


def finished_rows(spark: SparkSession, warehouse: str, inputs: DataFrame, read: FilePlan, pipeline_hash: str,
                  run_id: str, windowed: bool) -> DataFrame:
    """Manifest rows for the files this run read whose records are now all finished: to write after
    the `articles` commit. `inputs`: the run's staged classified records (selection.classified)."""
    from pyspark.sql import functions as F

    open_record = (F.col("file_length").isNull() | F.col("duplicate_id")
                   | (F.col("state").isin("unfinished", "changed") if windowed else F.lit(False)))
    rows = (inputs.filter(F.col("file_path").isNotNull())
            .groupBy(*_KEY).agg(F.count("*").alias("records"), F.max(open_record.cast("int")).alias("_open"))
            .filter(F.col("_open") == 0).drop("_open"))
    if read.records_files and read.reads_everything and not tables.never_written(spark, warehouse, TABLE):
        # files recorded before were read again (a full read): their rows are there already
        done = tables.read_table(spark, warehouse, TABLE).filter(F.col("pipeline_hash") == pipeline_hash)
        rows = rows.join(done.select(*_KEY), list(_KEY), "left_anti")
    return rows.select(*_KEY, "records", F.lit(pipeline_hash).alias("pipeline_hash"),
                       F.lit(run_id).alias("run_id"), F.current_timestamp().alias("recorded_at"))


def write_finished(spark: SparkSession, warehouse: str, read: FilePlan, rows: DataFrame) -> None:
    """Append the manifest rows (their keys are new: files in the manifest were not read, or were
    removed from `rows` against it); no commit when there are none."""
    if not read.records_files or read.files == []:
        return
    try:
        if not rows.isEmpty():
            tables.write_rows(spark, warehouse, TABLE, rows, fresh_keys=True)
    except FATAL:
        raise
    except Exception:  # every result is in already; the next run reads these files again instead
        log.exception("manifest: could not record this run's finished files; the next run reads them again")
