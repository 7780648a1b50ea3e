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

    python bench/chaos.py --kills 10 [--seed 0] [--articles 12] [--tasks scnm_ner,tcree_re] [--set K=V]

Last line: kills=N recovered=N identical=N manual_steps=0 max_recovery_s=...
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from giellm_batch.config.job_config import SparkSettings  # noqa: E402
from giellm_batch.resilience.chaos import differences, job_command, run, table_contents  # noqa: E402
from giellm_batch.spark.session import build_spark  # noqa: E402

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
    args = parser.parse_args()
    rng = random.Random(args.seed)
    spark = build_spark(SparkSettings(master="local[1]", app_name="chaos-compare",
                                      conf={"spark.ui.enabled": "false"}))
    with tempfile.TemporaryDirectory(prefix="giellm-chaos-") as tmp:
        work = Path(tmp)
        source = sample_subset(work, args.articles)
        extra = ("--tasks", args.tasks, *(arg for setting in args.settings for arg in ("--set", setting)))

        def command(warehouse: Path, *more: str) -> list[str]:
            return job_command(SMOKE, source, warehouse, *extra, *more)

        clean = run(command(work / "clean"), work / "clean.log")
        half = run(command(work / "half", "--limit", str(max(1, args.articles // 2))), work / "half.log")
        for name, outcome in (("clean", clean), ("half", half)):
            if outcome.returncode != 0:
                print(outcome.log[-3000:])
                raise SystemExit(f"the {name} reference run failed")
        shutil.copytree(work / "half", work / "nightly-ref")
        nightly = run(command(work / "nightly-ref"), work / "nightly-ref.log")
        shutil.rmtree(work / "nightly-ref")
        expected = table_contents(spark, work / "clean")
        durations = {"first": clean.seconds, "nightly": nightly.seconds}
        print(f"clean run {clean.seconds:.1f}s, nightly rest {nightly.seconds:.1f}s "
              f"({args.articles} articles + 1 broken file, tasks {args.tasks})")

        recovered = identical = 0
        recovery: list[float] = []
        for cycle in range(args.kills):
            kind = "first" if cycle % 2 == 0 else "nightly"
            warehouse = work / f"cycle{cycle}"
            if kind == "nightly":
                shutil.copytree(work / "half", warehouse)
            moment = rng.uniform(0.5, durations[kind])
            killed = run(command(warehouse), work / f"cycle{cycle}-kill.log", kill_after=moment)
            rerun = run(command(warehouse), work / f"cycle{cycle}-rerun.log")
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
            shutil.rmtree(warehouse, ignore_errors=True)
    spark.stop()
    print(f"kills={args.kills} recovered={recovered} identical={identical} manual_steps=0 "
          f"max_recovery_s={max(recovery, default=0.0):.1f}")
    return 0 if identical == args.kills else 1


if __name__ == "__main__":
    raise SystemExit(main())
