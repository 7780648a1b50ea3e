"""The job on object storage: a local S3 server (SeaweedFS, giellm_batch/tools/local_s3.py) holding
input and warehouse, reached through S3A as a user's job reaches AWS S3 or MinIO.

Phases, each printed with its figures:
  s3 first run      the sample job (conf/smoke.yaml, tasks scnm_ner, --articles sample articles + 1
                    undecodable file) with input and warehouse on S3; S3 requests counted
  local run         the same job on local disk: every table must equal the S3 run's, row for row
                    (run ids, timestamps, the input's location and file times aside)
  lock race         --racers OS processes (own JVM and S3A client each) race for one S3 warehouse's
                    lock, --rounds times on a free lock and --rounds times on a dead holder's:
                    exactly one winner each time (giellm_batch/resilience/lock_race.py)
  kills             --kills runs on fresh S3 warehouses SIGKILLed at random moments (seeded, over
                    the first run's duration), each rerun plainly: tables identical to the first
                    run's, no staging left, open multipart uploads counted
  nights            a rerun with no new input, then one after 2 new articles were uploaded: S3
                    requests by operation (the server's own counters)

    python bench/objectstore.py [--articles 12] [--kills 3] [--seed 0] [--racers 4] [--rounds 3]

Last line: s3_tables_equal_local=1 lock_race_winners=1 kills=K recovered=K identical=K manual_steps=0
requests_per_night=<requests of the night with 2 new articles> get=.. head=.. list=.. put=.. copy=.. delete=..
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from giellm_batch.config.job_config import SparkSettings  # noqa: E402
from giellm_batch.resilience.chaos import (  # noqa: E402
    Outcome,
    differences,
    job_command,
    pending_uploads,
    run,
    staged_runs,
    table_contents,
    upload_folder,
)
from giellm_batch.resilience.lock_race import RacerPool  # noqa: E402
from giellm_batch.spark.session import build_spark  # noqa: E402
from giellm_batch.storage import storage_for  # noqa: E402
from giellm_batch.tools.local_s3 import LocalS3, start_local_s3  # noqa: E402

SMOKE = REPO / "conf" / "smoke.yaml"
SAMPLE = REPO / "data" / "sample" / "text"
TASKS = "scnm_ner"
# Both runs read their input through the file manifest (input/manifest.py), as a run on an object
# store does by default (input.skip_finished_files_from: 0 there, 50,000 files on a local disk), so
# the `input_files` tables compare too.
MANIFEST = ("--set", "input.skip_finished_files_from=0")
# The bench's own session only reads tables back: Delta rebuilds each table's snapshot in 50 tasks by
# default, minutes for ten small tables on local[1] (conf/smoke.yaml and the tests use 2).
COMPARER_CONF = {"spark.ui.enabled": "false", "spark.databricks.delta.snapshotPartitions": "2"}
# Request types (SeaweedFS's names for S3 operations) -> the figure they count in.
KINDS = (("multipart", ("multipart", "uploadpart", "completemultipart", "abortmultipart")),
         ("copy", ("copy",)), ("delete", ("delete",)), ("list", ("list",)), ("head", ("head",)),
         ("get", ("get",)), ("put", ("put", "post")))


def by_kind(counts: Counter[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for name, count in counts.items():
        low = name.lower()
        kind = next((k for k, words in KINDS if any(w in low for w in words)), "other")
        out[kind] += count
    return out


def figures(counts: Counter[str]) -> str:
    kinds = by_kind(counts)
    return " ".join([f"requests={sum(counts.values())}",
                     *(f"{k}={kinds[k]}" for k in ("get", "head", "list", "put", "copy", "delete", "multipart", "other")
                       if kinds[k] or k in ("get", "list", "put", "copy", "delete"))])


def articles(work: Path, first: int, count: int, folder: str) -> Path:
    """Sample articles [first, first + count) by name, Livedoor layout; the first batch also gets an
    undecodable file (quarantined)."""
    source = work / folder
    files = sorted(p for p in SAMPLE.rglob("*.txt") if p.name != "LICENSE.txt")[first:first + count]
    for path in files:
        target = source / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    if first == 0:
        (source / files[0].parent.name / "broken.txt").write_bytes(b"http://x\n2025-01-01\n\xff\xfe bad\n")
    return source


def require(outcome: Outcome, what: str) -> Outcome:
    if outcome.returncode != 0:
        print(outcome.log[-3000:])
        raise SystemExit(f"{what} failed (exit {outcome.returncode})")
    return outcome


def lock_race(server: LocalS3, work: Path, racers: int, rounds: int, spark: SparkSession) -> list[int]:
    """Winners per round: `rounds` on a free lock, `rounds` on a dead holder's."""
    import json
    from datetime import UTC, datetime, timedelta

    started = time.monotonic()
    pool = RacerPool(work / "lock-race", server.object_store(), server.url("lock-race"), server.env())
    winners = []
    try:
        pool.start(racers)
        print(f"lock race: {racers} racer processes up in {time.monotonic() - started:.1f}s", flush=True)
        for number in range(2 * rounds):
            warehouse = server.url("lock-race", uuid.uuid4().hex)
            dead = number >= rounds
            if dead:  # another host's run whose heartbeat stopped 5 minutes ago
                old = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
                path = f"{warehouse}/_lock/LOCK"
                storage_for(spark, path).write_bytes(path, json.dumps(
                    {"run_id": "run-dead", "holder": "elsewhere:1", "host": "elsewhere", "pid": 1,
                     "acquired_at": old, "heartbeat_at": old}).encode())
            race = pool.race(warehouse)
            pool.release(race.seq)
            winners.append(len(race.winners))
            took = [o.get("taken_over") for o in race.outcomes.values() if o["outcome"] == "won"]
            print(f"  round {number} ({'dead holder' if dead else 'free lock'}): winners={len(race.winners)} "
                  f"refused={len(race.locked)} errors={race.errors or 0} most in flight at once={race.most_in_flight} "
                  f"(starts {race.spread_ms:.0f} ms apart)"
                  f"{' took over ' + str(took[0]['run_id']) if took and took[0] else ''}", flush=True)
    finally:
        pool.stop()
    return winners


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=12)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--racers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="lock race rounds of each kind (%(default)s)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    bench_started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="giellm-objectstore-") as tmp:
        work = Path(tmp)
        server = start_local_s3(work / "s3")
        try:
            return phases(args, rng, work, server, bench_started)
        finally:
            server.stop()


def phases(args: argparse.Namespace, rng: random.Random, work: Path, server: LocalS3, bench_started: float) -> int:
    os.environ.update(server.env())  # before the JVM starts: S3A reads the credentials from its environment
    store, env = server.object_store(), server.env()
    spark = build_spark(SparkSettings(master="local[1]", app_name="objectstore-bench", shuffle_partitions=2,
                                      conf=COMPARER_CONF), object_store=store)
    local_input = articles(work, 0, args.articles, "input")
    s3_input = server.url("bench", "input")
    upload_folder(spark, local_input, s3_input)

    def s3_job(warehouse: str, log: str, kill_after: float | None = None) -> Outcome:
        return run(job_command(SMOKE, s3_input, warehouse, "--tasks", TASKS, *MANIFEST, object_store=store), work / log,
                   env=env, kill_after=kill_after)

    def s3_contents(warehouse: str) -> dict[str, list[str]]:
        return table_contents(spark, warehouse, input_roots=[s3_input], ignore=["file_modified_at"])

    # 1. the first run on S3, counted
    warehouse = server.url("bench", "warehouse")
    server.mark()
    first = require(s3_job(warehouse, "s3-first.log"), "the first S3 run")
    first_counts = server.request_counts()
    expected = s3_contents(warehouse)
    print(f"s3 first run: {first.seconds:.1f}s, {args.articles} articles + 1 broken file, "
          f"{sum(map(len, expected.values()))} rows; {figures(first_counts)}", flush=True)
    # 2. the same job on local disk
    local = require(run(job_command(SMOKE, local_input, work / "local-wh", "--tasks", TASKS, *MANIFEST),
                        work / "local.log"), "the local run")
    local_rows = table_contents(spark, work / "local-wh", input_roots=[f"file:{local_input}", str(local_input)],
                                ignore=["file_modified_at"])
    diff = differences(local_rows, expected)
    print(f"local run: {local.seconds:.1f}s; tables {'equal to the S3 run' if not diff else 'DIFFERENT: '}"
          f"{'; '.join(diff)}", flush=True)
    # 3. the lock race
    winners = lock_race(server, work, args.racers, args.rounds, spark)
    # 4. kills at random moments, plain reruns
    recovered = identical = 0
    for cycle in range(args.kills):
        target = server.url("bench", f"kill{cycle}")
        moment = rng.uniform(0.5, first.seconds)
        killed = s3_job(target, f"kill{cycle}.log", kill_after=moment)
        rerun = s3_job(target, f"kill{cycle}-rerun.log")
        ok = rerun.returncode == 0
        found = differences(expected, s3_contents(target)) if ok else ["rerun failed"]
        staged = sorted(staged_runs(spark, target))
        recovered += ok
        identical += ok and not found and not staged
        print(f"kill {cycle}: killed at {killed.killed_at or 'never (ended first)'}, rerun exit {rerun.returncode} "
              f"in {rerun.seconds:.1f}s, {'identical' if not found else 'DIFFERENT: ' + '; '.join(found)}, "
              f"staging left: {staged or 'none'}", flush=True)
        if not ok:
            print(rerun.log[-3000:])
    uploads = pending_uploads(spark, server.url("bench"))
    print(f"open multipart uploads after the kills: {len(uploads)} {uploads or ''}", flush=True)
    # 5. nights: nothing new, then 2 new articles
    server.mark()
    quiet = require(s3_job(warehouse, "night-empty.log"), "the rerun with no new input")
    quiet_counts = server.request_counts()
    print(f"night with no new input: {quiet.seconds:.1f}s; {figures(quiet_counts)}", flush=True)
    upload_folder(spark, articles(work, args.articles, 2, "new"), s3_input)
    server.mark()
    night = require(s3_job(warehouse, "night-new.log"), "the rerun with 2 new articles")
    night_counts = server.request_counts()
    print(f"night with 2 new articles: {night.seconds:.1f}s; {figures(night_counts)}", flush=True)
    print(f"  by S3 operation: {dict(sorted(night_counts.items()))}")
    print(f"bench wall time {time.monotonic() - bench_started:.0f}s")
    spark.stop()
    race_figure = "1" if winners and set(winners) == {1} else ",".join(map(str, winners))
    kinds = by_kind(night_counts)
    print(f"s3_tables_equal_local={int(not diff)} lock_race_winners={race_figure} kills={args.kills} "
          f"recovered={recovered} identical={identical} manual_steps=0 "
          f"requests_per_night={sum(night_counts.values())} "
          + " ".join(f"{k}={kinds[k]}" for k in ("get", "head", "list", "put", "copy", "delete", "multipart")))
    return 0 if not diff and race_figure == "1" and identical == args.kills else 1


if __name__ == "__main__":
    raise SystemExit(main())
