"""What a night costs on object storage, in S3 requests (by operation) and seconds, as the archive grows.

Everything on a real S3 server on 127.0.0.1 (SeaweedFS, giellm_batch/tools/local_s3.py), input and
warehouse as s3a:// paths, the job in this process (one Spark session, local[2]):

1. the real job once over `--real` sample articles (conf/smoke.yaml's random-weight model);
2. for each size in `--articles`: SEED the archive up to that many finished articles: upload
   copies of the real run's input files under new names (new article ids, dates spread over
   `--per-day` articles a day, title and body unchanged, so the same content hash), then append
   the rows a finished run would have written for them, derived from the real run's rows with the
   new ids: `articles` (what run/selection.py checks: id + content hash + pipeline), `input_files`
   (each uploaded object's path, length and modification time as S3A lists them: what
   input/manifest.py checks) and `prompt_cache` (the real run's answers under new keys, so the
   cache grows as a real archive's does). Files per table as a run a day would leave them: one
   `articles` file per day partition, `--per-day` articles' manifest rows and answers per file.
   Result tables (sentences, extractions, ...) are not seeded: a night only appends to them;
3. night A, no new file: must process 0 articles and skip every file unread (checks the seeding);
4. night B, `--new` new articles (new sentences, so the model runs): must process exactly them.

Requests are the server's own counters, from just before a night's run_job to just after it.
Timings are one run each on a shared machine: noisy.

    python bench/night_requests.py --articles 2000 20000 --new 20
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sample_text import livedoor_sentences

from giellm_batch.config.job_config import JobConfig, SparkSettings
from giellm_batch.monitoring.runs import RunSummary
from giellm_batch.run.driver import RunOptions, run_job
from giellm_batch.run.job import add_run_arguments, config_from_args
from giellm_batch.spark.session import build_spark
from giellm_batch.storage import storage_for
from giellm_batch.tools.local_s3 import LocalS3, start_local_s3
from giellm_batch.warehouse import tables

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "text"
MANIFEST_KEY = ("file_path", "file_length", "file_modified_at", "pipeline_hash")
FIRST_DAY = date(2024, 1, 1)  # seeded articles' days: before the samples' (2025), one partition each


@dataclass(frozen=True)
class Night:
    seconds: float
    requests: Counter[str]
    summary: RunSummary

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class Bench:
    def __init__(self, args: argparse.Namespace, server: LocalS3) -> None:
        self.args, self.server = args, server
        self.input, self.warehouse = server.url("articles"), server.url("warehouse")
        self.spark = build_spark(SparkSettings(master="local[2]", shuffle_partitions=2, conf={
            "spark.ui.enabled": "false", "spark.databricks.delta.snapshotPartitions": "2"}),
            object_store=server.object_store())
        self.storage = storage_for(self.spark, self.input)
        self.config = self._config()
        self.files = 0  # input files uploaded so far (every one finished after each night)
        self.real_run_id = ""  # the real run's: the rows seeding copies
        self.rng = random.Random(0)
        self.sentences = livedoor_sentences(SAMPLE)

    def _config(self) -> JobConfig:
        store = self.server.object_store()
        argv = ["--config", str(REPO / self.args.config), "--input", self.input, "--output", self.warehouse,
                "--tasks", self.args.tasks, "--set", f"object_store.endpoint={store.endpoint}",
                "--set", f"object_store.region={store.region}", "--set", "object_store.path_style=true"]
        parser = argparse.ArgumentParser()
        add_run_arguments(parser)
        return config_from_args(parser.parse_args(argv))

    def upload(self, named: dict[str, bytes]) -> None:
        """Objects under the input folder (relative name -> bytes), written in parallel through S3A."""
        with ThreadPoolExecutor(self.args.threads) as pool:
            list(pool.map(lambda item: self.storage.write_bytes(f"{self.input}/{item[0]}", item[1]), named.items()))
        self.files += len(named)

    def night(self, label: str) -> Night:
        self.server.mark()
        started = time.monotonic()
        summary = run_job(self.config, self.spark, RunOptions())
        seconds = time.monotonic() - started
        requests = self.server.request_counts()
        if summary.status != "succeeded":
            raise SystemExit(f"{label}: run {summary.status}: {summary.error}")
        print(f"{label}: {seconds:.1f}s, processed {summary.articles_processed}, in {summary.articles_in}, "
              f"skipped {summary.articles_skipped}, files unread {summary.files_skipped} of {self.files}; "
              f"requests {sum(requests.values())} {dict(sorted(requests.items()))}", flush=True)
        return Night(seconds, requests, summary)

    def real_run(self) -> None:
        paths = sorted(p for p in SAMPLE.rglob("*.txt") if p.name != "LICENSE.txt")[: self.args.real]
        self.upload({f"{p.parent.name}/{p.name}": p.read_bytes() for p in paths})
        self.real_run_id = self.night(f"real run over {len(paths)} sample articles").summary.run_id

    def seed(self, count: int) -> None:
        """`count` more finished articles: input objects plus the rows a finished run writes for them."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        spark, ph = self.spark, self.config.pipeline_hash()
        real = (tables.read_table(spark, self.warehouse, "articles").filter(F.col("run_id") == self.real_run_id)
                .withColumn("_src", F.row_number().over(Window.orderBy("article_id")) - 1).cache())
        models = {r["_src"]: r for r in real.select("_src", "source", "category", "article_id").collect()}
        contents = {i: self.storage.read_bytes(r["source"]) for i, r in models.items()}
        start = self.files
        seeds, objects = [], {}
        for n in range(start, start + count):
            model = models[n % len(models)]
            day = FIRST_DAY + timedelta(days=n // self.args.per_day)
            published = f"{day.isoformat()}T09:00:00+0900"
            lines = contents[n % len(models)].split(b"\n")
            lines[1] = published.encode()  # line 2: the date (decoding.decode_livedoor_file)
            name = f"{model['category']}/{model['category']}-seed{n:07d}.txt"
            objects[name] = b"\n".join(lines)
            seeds.append((n % len(models), f"{self.input}/{name}", name.rsplit("/", 1)[1][:-4], published))
        started = time.monotonic()
        self.upload(objects)
        uploaded = time.monotonic() - started
        seeded = spark.createDataFrame(seeds, "_src int, _path string, _id string, _published string")
        # Each object's path, length and modification time as S3A lists them (binaryFile without its
        # content column opens no file): the manifest's key, exactly as the job's own listing has it.
        listed = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
                  .option("pathGlobFilter", "*.txt").load(self.input)
                  .select(F.col("path").alias("_path"), "length", "modificationTime"))
        rows = seeded.join(listed, "_path").join(real.drop("source"), "_src").cache()
        if rows.count() != count:
            raise SystemExit(f"seeding: {rows.count()} of {count} uploaded objects listed")
        days = max(1, -(-count // self.args.per_day))
        articles = rows.select(*[
            F.col("_id").alias(c) if c == "article_id" else F.col("_path").alias(c) if c == "source"
            else F.col("_published").alias(c) if c == "published_at"
            else F.to_date(F.substring("_published", 1, 10)).alias(c) if c == "published_date"
            else F.col(c) for c in real.drop("_src").columns])
        tables.append_rows(spark, self.warehouse, "articles", articles.repartition("published_date"))
        manifest = rows.select(F.col("_path").alias("file_path"), F.col("length").alias("file_length"),
                               F.col("modificationTime").alias("file_modified_at"),
                               F.lit(1).cast("long").alias("records"), F.lit(ph).alias("pipeline_hash"),
                               F.col("run_id"), F.current_timestamp().alias("recorded_at"))
        tables.append_rows(spark, self.warehouse, "input_files", manifest.repartition(days))
        cache = tables.read_table(spark, self.warehouse, "prompt_cache").filter(F.col("run_id") == self.real_run_id)
        copies = spark.range(start, start + -(-count // len(models))).withColumnRenamed("id", "_copy")
        answers = cache.crossJoin(copies).withColumn(
            "prompt_key", F.sha2(F.concat_ws(":", "prompt_key", F.lit("seed"), "_copy"), 256)).drop("_copy")
        tables.append_rows(spark, self.warehouse, "prompt_cache", answers.repartition(days))
        rows.unpersist()
        real.unpersist()
        rows_s = time.monotonic() - started - uploaded
        print(f"seeded {count} articles ({days} days): upload {uploaded:.0f}s, rows {rows_s:.0f}s", flush=True)

    def parts(self) -> dict[str, Counter[str]]:
        """Requests of the reads a night makes whose size follows the archive, each alone: where the
        growth comes from (the server counts by operation only, not by path)."""
        from pyspark.sql import functions as F

        from giellm_batch.input import files as input_files
        from giellm_batch.input.reading import file_rules

        def listing() -> object:
            return input_files.binary_files(self.spark, self.input, file_rules(self.config.input))._jdf.inputFiles()

        def table(name: str, *columns: str) -> Callable[[], object]:
            # an aggregate of the values, so the columns are read (a plain count is answered by the log)
            keys = F.approx_count_distinct(F.concat_ws("|", *columns))
            return lambda: tables.read_table(self.spark, self.warehouse, name).agg(keys).collect()

        out = {}
        for label, read in (("input listing", listing), ("input_files keys", table("input_files", *MANIFEST_KEY)),
                            ("articles ids", table("articles", "article_id", "content_hash", "pipeline_hash")),
                            ("prompt_cache keys", table("prompt_cache", "prompt_key"))):
            self.server.mark()
            read()
            out[label] = self.server.request_counts()
            print(f"  {label}: {sum(out[label].values())} {dict(sorted(out[label].items()))}", flush=True)
        return out

    def add_new(self, count: int) -> None:
        """`count` new articles of sentence pairs never seen together: the model runs on them."""
        objects = {}
        for n in range(self.files, self.files + count):
            body = "\n".join("".join(self.rng.sample(self.sentences, 2)) for _ in range(3))
            objects[f"synthetic/synthetic-{n:07d}.txt"] = (
                f"http://news.example.jp/{n}/\n2025-06-01T09:00:00+0900\n記事{n}\n{body}\n").encode()
        self.upload(objects)


def start_server(tmp: Path, tries: int = 3) -> LocalS3:
    """weed mini, retried: a service port it found free can be taken by another server starting at
    the same moment (other test runs on this machine), and then it exits."""
    for attempt in range(1, tries + 1):
        try:
            return start_local_s3(tmp / f"s3-{attempt}")
        except RuntimeError as exc:
            if attempt == tries:
                raise
            print(f"local S3 server did not start ({str(exc)[:200]}...); again", flush=True)
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--new", type=int, default=20)
    parser.add_argument("--real", type=int, default=8, help="sample articles the real job processes first")
    parser.add_argument("--per-day", type=int, default=100, help="seeded articles a day (files per table)")
    parser.add_argument("--threads", type=int, default=16, help="parallel uploads")
    parser.add_argument("--tasks", default="scnm_ner")
    parser.add_argument("--config", default="conf/smoke.yaml")
    args = parser.parse_args()
    results: dict[int, tuple[Night, Night]] = {}
    with tempfile.TemporaryDirectory(prefix="giellm-night-requests-") as tmp:
        server = start_server(Path(tmp))
        os.environ.update(server.env())  # before the JVM starts: S3A reads credentials there
        try:
            bench = Bench(args, server)
            bench.real_run()
            for size in sorted(args.articles):
                bench.seed(size - bench.files)
                quiet = bench.night(f"{size}: night without new files")
                if quiet.summary.articles_processed != 0 or quiet.summary.files_skipped != bench.files:
                    raise SystemExit("seeding is not faithful: a night without new files read or processed some")
                bench.add_new(args.new)
                night = bench.night(f"{size}: night with {args.new} new files")
                if night.summary.articles_processed != args.new:
                    raise SystemExit(f"expected {args.new} articles processed, got {night.summary.articles_processed}")
                results[size] = (quiet, night)
                print(f"{size}: the reads that follow the archive, alone:", flush=True)
                try:
                    bench.parts()
                except Exception as exc:  # an explanation only: the nights above are the measurement
                    print(f"  could not measure the parts: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
        finally:
            server.stop()
    print_results(results)


def print_results(results: dict[int, tuple[Night, Night]]) -> None:
    def label(size: int) -> str:
        return f"{size // 1000}k" if size % 1000 == 0 else str(size)

    sizes = sorted(results)
    for size in sizes:
        for kind, night in zip(("no new file", "new files"), results[size], strict=True):
            print(f"{label(size)} {kind}: {night.total} requests {dict(sorted(night.requests.items()))}, "
                  f"{night.seconds:.1f}s")
    nights = {size: results[size][1] for size in sizes}
    fields = [f"night_{label(size)}_requests={nights[size].total}" for size in sizes]
    fields += [f"night_{label(size)}_s={nights[size].seconds:.1f}" for size in sizes]
    fields.append(f"growth_requests={nights[sizes[-1]].total / max(1, nights[sizes[0]].total):.2f}")
    for size in sizes:
        fields += [f"{op.lower()}_{label(size)}={nights[size].requests.get(op, 0)}" for op in ("GET", "LIST", "PUT")]
    print(" ".join(fields))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
