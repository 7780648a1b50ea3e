"""The floor under a warm night: only the Delta reads and commits any night must make, against the night.

A night that adds 1 % new articles must at least (1) find which input articles the `articles` table
already holds, (2) look this night's prompts up in `prompt_cache`, (3) append its rows to the result
tables it fills (side by side, as the job does), then to `articles`, and (4) append its `runs` row.
This runs exactly those queries, from driver-held rows of the night's real sizes, on a copy of the
warehouse after a first run, in the same warm session as the real nights (bench/nightly.py's
generator and job), in the order night, floor, floor, night, ... No segmentation, prompts, engine,
parsing, staging, counts or report: whatever the job does besides these costs more than the floor.
Last line is machine-readable.

    python bench/night_floor.py [--articles 200] [--tasks scnm_ner] [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nightly import write_articles
from sample_text import livedoor_sentences

from giellm_batch.config.job_config import load_config
from giellm_batch.monitoring.runs import RunSummary
from giellm_batch.run.driver import RunOptions, run_job
from giellm_batch.run.job import config_from_args
from giellm_batch.spark.concurrent_jobs import concurrently
from giellm_batch.spark.session import build_spark
from giellm_batch.warehouse import tables


def floor(spark: Any, source: str, warehouse: str, night: RunSummary, new_ids: list[str],
          sizes: dict[str, int]) -> dict[str, float]:
    """Seconds of each of the night's unavoidable Delta operations, run on `warehouse` (a fresh copy of
    `source`, so that, as in the night, no table's state is loaded before the clock starts)."""
    from pyspark.sql import functions as F

    seconds: dict[str, float] = {}
    # Rows of the night's sizes, taken from the original's tables and held in the driver beforehand.
    held = {name: spark.createDataFrame(tables.read_table(spark, source, name).limit(n).toArrow())
            for name, n in sizes.items() if n}

    def append(name: str) -> None:
        held[name].write.format("delta").mode("append").save(tables.table_path(warehouse, name))

    ids = spark.createDataFrame([(i,) for i in new_ids], "article_id string")
    keys = spark.createDataFrame(tables.read_table(spark, source, "prompt_cache").limit(max(night.prompts, 1))
                                 .select("prompt_key").toArrow())
    started = time.monotonic()
    done = tables.read_table(spark, warehouse, "articles").filter(F.col("pipeline_hash") == night.pipeline_hash)
    ids.join(done, "article_id", "left_anti").count()
    seconds["articles_lookup"] = time.monotonic() - started
    mark = time.monotonic()
    tables.read_table(spark, warehouse, "prompt_cache").join(keys, "prompt_key", "left_semi").toArrow()
    seconds["prompt_cache_lookup"] = time.monotonic() - mark
    mark = time.monotonic()
    results = [name for name in held if name not in ("articles", "runs")]
    concurrently([functools.partial(append, name) for name in results])
    seconds["result_appends"] = time.monotonic() - mark
    mark = time.monotonic()
    append("articles")
    seconds["articles_append"] = time.monotonic() - mark
    mark = time.monotonic()
    append("runs")
    seconds["runs_append"] = time.monotonic() - mark
    seconds["total"] = time.monotonic() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--new-share", type=float, default=0.01)
    parser.add_argument("--tasks", default="scnm_ner")
    parser.add_argument("--config", default="conf/smoke.yaml")
    parser.add_argument("--rounds", type=int, default=3, help="night + floor pairs, alternating A B B A")
    args = parser.parse_args()

    rng = random.Random(0)
    sentences = livedoor_sentences(Path(load_config(args.config).input.path))
    with tempfile.TemporaryDirectory(prefix="giellm-floor-") as tmp:
        source, warehouse = Path(tmp) / "in", Path(tmp) / "wh"
        write_articles(source, 0, args.articles, sentences, rng)

        def config_for(output: Path) -> Any:
            ns = argparse.Namespace(config=args.config, output=str(output), input=str(source), input_format="livedoor",
                                    model=None, tasks=args.tasks, settings=[])
            return config_from_args(ns)

        spark = build_spark(config_for(warehouse).spark)
        run_job(config_for(warehouse), spark, RunOptions())
        new = max(1, round(args.articles * args.new_share))
        write_articles(source, args.articles, new, sentences, rng)
        new_ids = [f"synthetic-{n:07d}" for n in range(args.articles, args.articles + new)]
        nights: list[float] = []
        floors: list[dict[str, float]] = []
        night: RunSummary | None = None
        sizes: dict[str, int] = {}
        order = [("night", "floor", "floor", "night")[n % 4] for n in range(2 * args.rounds)]
        for n, kind in enumerate(["night", *order]):  # a first night to learn the sizes, not counted
            copy = Path(tmp) / f"wh{n}"
            shutil.copytree(warehouse, copy)
            if kind == "night" or night is None:
                started = time.monotonic()
                night = run_job(config_for(copy), spark, RunOptions())
                if n:
                    nights.append(time.monotonic() - started)
                # the rows this night added: result tables as the job counts them, no prompt_cache
                # rows when every prompt was answered before
                spans = int(json.loads(night.profile_json or "{}").get("spans", 0))
                sizes = {"sentences": night.sentences, "extractions": night.prompts, "entities": spans,
                         "prompt_cache": night.engine_calls, "articles": night.articles_processed, "runs": 1}
                print(f"night {n}: {nights[-1] if n else time.monotonic() - started:.2f}s {night.step_seconds_json}")
            else:
                floors.append(floor(spark, str(warehouse), str(copy), night, new_ids, sizes))
                print(f"floor {n}: " + ", ".join(f"{k} {v:.2f}s" for k, v in floors[-1].items()))
            shutil.rmtree(copy)
        night_s = sum(nights) / len(nights)
        floor_s = sum(f["total"] for f in floors) / len(floors)
        print(f"night_s={night_s:.2f} floor_s={floor_s:.2f} floor_share={floor_s / night_s:.2f} "
              f"articles={args.articles} new={new} tasks={args.tasks} rows={sizes}")


if __name__ == "__main__":
    main()
