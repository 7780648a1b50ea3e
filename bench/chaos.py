"""Kill the real job at random moments, rerun it plainly, and check every table equals a clean run.

Each cycle starts `spark-submit jobs/extract.py` (as the README runs it) and SIGKILLs its whole
process tree (driver JVM, Python driver, Python workers, engines) at a moment drawn uniformly
(seeded) over a clean run of the same kind, then runs the same command again with nothing done in
between: no `unlock`, nothing deleted. Cycles alternate between

  first   a fresh warehouse (kills land in table creation, staging, inference, writes, `runs`)
  nightly a warehouse already holding the first half of the articles (kills land in the
          incremental selection, MERGE/append of new rows, the lost-run bookkeeping)

A cycle counts as recovered when the plain rerun exits 0, and identical when every table but
`runs` equals the clean run's, row for row, ignoring run ids and timestamps.

    python bench/chaos.py --kills 10 [--seed 0] [--articles 12] [--tasks scnm_ner,tcree_re] [--set K=V] [--s3]

`--s3`: input and every warehouse on a local S3 server (SeaweedFS, giellm_batch/tools/local_s3.py)
instead of local disk; the job reaches it through S3A, with the server's credentials in its
environment. The sample input is uploaded there once, warehouse copies go through Hadoop.

Last line: kills=N recovered=N identical=N manual_steps=0 max_recovery_s=...
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from giellm_batch.config.job_config import SparkSettings  # noqa: E402
from giellm_batch.resilience.chaos import (  # noqa: E402
    copy_warehouse,
    differences,
    job_command,
    pending_uploads,
    remove_warehouse,
    run,
    table_contents,
    upload_folder,
)
from giellm_batch.spark.session import build_spark  # noqa: E402
from giellm_batch.tools.local_s3 import LocalS3, start_local_s3  # noqa: E402

SMOKE = REPO / "conf" / "smoke.yaml"  # the random-weight model: recovery does not depend on weights
SAMPLE = REPO / "data" / "sample" / "text"


def sample_subset(work: Path, count: int) -> Path:
    """The first `count` sample articles (by name) in Livedoor layout, with one bad file to quarantine."""
    source = work / "input"
    files = sorted(p for p in SAMPLE.rglob("*.txt") if p.name != "LICENSE.txt")[:count]
    for path in files:
        target = source / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    (source / files[0].parent.name / "broken.txt").write_bytes(b"http://x\n2025-01-01\n\xff\xfe bad\n")
    return source


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10, help="kill/rerun cycles (%(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--articles", type=int, default=30, help="sample articles per run (%(default)s: all)")
    parser.add_argument("--tasks", default="scnm_ner,tcree_re,tcree_ee,scpos_n")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="settings",
                        help="config override for every run, as the job's --set (e.g. "
                             "input.skip_finished_files_from=0: every run through the file manifest)")
    parser.add_argument("--s3", action="store_true", help="input and warehouses on a local S3 server")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="giellm-chaos-") as tmp:
        work = Path(tmp)
        server = start_local_s3(work / "s3") if args.s3 else None
        try:
            return cycles(args, rng, work, server)
        finally:
            if server is not None:
                server.stop()


def cycles(args: argparse.Namespace, rng: random.Random, work: Path, server: LocalS3 | None) -> int:
    store = server.object_store() if server is not None else None
    env = server.env() if server is not None else {}
    os.environ.update(env)  # before the JVM starts: S3A reads the credentials from its environment
    # Delta rebuilds each table's snapshot in 50 tasks by default: on local[1] reading ten small tables
    # then takes minutes (as conf/smoke.yaml and the tests: 2)
    spark = build_spark(SparkSettings(master="local[1]", app_name="chaos-compare", shuffle_partitions=2,
                                      conf={"spark.ui.enabled": "false",
                                            "spark.databricks.delta.snapshotPartitions": "2"}), object_store=store)
    local_source = sample_subset(work, args.articles)
    source: Path | str = local_source
    if server is not None:
        source = server.url("chaos", "input")
        upload_folder(spark, local_source, str(source))
    extra = ("--tasks", args.tasks, *(arg for setting in args.settings for arg in ("--set", setting)))

    def place(name: str) -> Path | str:
        return work / name if server is None else server.url("chaos", name)

    def command(warehouse: Path | str, *more: str) -> list[str]:
        return job_command(SMOKE, source, warehouse, *extra, *more, object_store=store)

    clean = run(command(place("clean")), work / "clean.log", env=env)
    half = run(command(place("half"), "--limit", str(max(1, args.articles // 2))), work / "half.log", env=env)
    for name, outcome in (("clean", clean), ("half", half)):
        if outcome.returncode != 0:
            print(outcome.log[-3000:])
            raise SystemExit(f"the {name} reference run failed")
    copy_warehouse(spark, place("half"), place("nightly-ref"))
    nightly = run(command(place("nightly-ref")), work / "nightly-ref.log", env=env)
    remove_warehouse(spark, place("nightly-ref"))
    expected = table_contents(spark, place("clean"))
    durations = {"first": clean.seconds, "nightly": nightly.seconds}
    print(f"clean run {clean.seconds:.1f}s, nightly rest {nightly.seconds:.1f}s ({args.articles} articles + 1 "
          f"broken file, tasks {args.tasks}, {'S3 ' + server.endpoint if server is not None else 'local disk'})")

    recovered = identical = 0
    recovery: list[float] = []
    for cycle in range(args.kills):
        kind = "first" if cycle % 2 == 0 else "nightly"
        warehouse = place(f"cycle{cycle}")
        if kind == "nightly":
            copy_warehouse(spark, place("half"), warehouse)
        moment = rng.uniform(0.5, durations[kind])
        killed = run(command(warehouse), work / f"cycle{cycle}-kill.log", kill_after=moment, env=env)
        rerun = run(command(warehouse), work / f"cycle{cycle}-rerun.log", env=env)
        ok = rerun.returncode == 0
        diff = differences(expected, table_contents(spark, warehouse)) if ok else ["rerun failed"]
        recovered += ok
        identical += ok and not diff
        recovery.append(rerun.seconds)
        print(f"cycle {cycle} ({kind}): killed at {killed.killed_at or 'never (ended first)'}, "
              f"rerun exit {rerun.returncode} in {rerun.seconds:.1f}s, "
              f"{'identical' if not diff else 'DIFFERENT: ' + '; '.join(diff)}", flush=True)
        if not ok:
            print(rerun.log[-3000:])
        remove_warehouse(spark, warehouse)
    if server is not None:
        # What killed writers left half-uploaded (S3A sends files over its multipart threshold in parts).
        print(f"open multipart uploads after the kills: {pending_uploads(spark, server.url('chaos')) or 'none'}")
    spark.stop()
    print(f"kills={args.kills} recovered={recovered} identical={identical} manual_steps=0 "
          f"max_recovery_s={max(recovery, default=0.0):.1f}")
    return 0 if identical == args.kills else 1


if __name__ == "__main__":
    raise SystemExit(main())
