"""One record must never stop a run: the real job, as the README runs it, over poisoned input.

Runs `spark-submit jobs/extract.py` (conf/smoke.yaml) three times on one input folder:

  clean     the first `--articles` sample articles, into a warehouse of its own
  poisoned  the same folder plus one article per (stage, kind) whose per-record code segfaults,
            hangs or allocates without end (stages read, segment, prompt, generate, parse; the
            test-only hook faults.poison_check, armed by GIELLM_TEST_POISON=1 in this process's
            environment, which spark-submit and its Python workers inherit) and one real
            3,000,000-character article of one kanji without punctuation
  rerun     the poisoned command again, nothing changed

and checks: each poisoned run exits 0; exactly the poison records are quarantined, with stage
crash / timeout / memory (segmentation for the giant article's bound); every other article's rows
equal the clean run's; the rerun processes nothing and changes no table.

    python bench/poison.py [--articles 6] [--timeout 5]

Last line: poison_records=N quarantined=N others_identical=1 run_failures=0 rerun_noop=1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from giellm_batch.config.job_config import SparkSettings  # noqa: E402
from giellm_batch.isolation.faults import POISON_ENV  # noqa: E402
from giellm_batch.resilience.chaos import job_command, run  # noqa: E402
from giellm_batch.resilience.poison import add_poison, compare, snapshot, write_input  # noqa: E402
from giellm_batch.spark.session import build_spark  # noqa: E402

SMOKE = REPO / "conf" / "smoke.yaml"
SAMPLE = REPO / "data" / "sample" / "text"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=6, help="clean sample articles (%(default)s)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="execution.record_timeout_seconds for the runs (%(default)s); each hanging record "
                             "costs twice this (once in its batch, once alone)")
    parser.add_argument("--tasks", default="scnm_ner,tcree_re")
    args = parser.parse_args()
    os.environ[POISON_ENV] = "1"
    settings = ["--tasks", args.tasks, "--set", f"execution.record_timeout_seconds={args.timeout}",
                "--set", "execution.record_memory_bytes=1073741824"]
    with tempfile.TemporaryDirectory(prefix="giellm-poison-") as tmp:
        work = Path(tmp)
        clean = write_input(work / "input", SAMPLE, args.articles)
        failures = 0
        first = run(job_command(SMOKE, clean.folder, work / "clean-wh", *settings), work / "clean.log", timeout=900)
        if first.returncode != 0:
            print(first.log[-3000:])
            raise SystemExit("the clean run failed; nothing to compare with")
        poisoned = add_poison(clean)
        outcome = run(job_command(SMOKE, poisoned.folder, work / "wh", *settings), work / "poisoned.log", timeout=900)
        failures += outcome.returncode != 0
        print(f"clean run {first.seconds:.1f}s, poisoned run {outcome.seconds:.1f}s (exit {outcome.returncode})")
        spark = build_spark(SparkSettings(master="local[2]", app_name="giellm-poison-check", shuffle_partitions=2))
        result = compare(spark, work / "clean-wh", work / "wh", poisoned)
        for line in result["wrong"]:
            print("  differs:", line)
        before = snapshot(spark, work / "wh")
        again = run(job_command(SMOKE, poisoned.folder, work / "wh", *settings), work / "rerun.log", timeout=900)
        failures += again.returncode != 0
        runs = spark.read.format("delta").load(str(work / "wh" / "runs")).orderBy("started_at").collect()
        noop = again.returncode == 0 and runs[-1]["articles_processed"] == 0 and snapshot(spark, work / "wh") == before
        print(f"rerun {again.seconds:.1f}s: processed {runs[-1]['articles_processed']}, skipped "
              f"{runs[-1]['articles_skipped']}, quarantined {runs[-1]['articles_quarantined']}")
        if outcome.returncode or again.returncode:
            print((outcome.log if outcome.returncode else again.log)[-3000:])
        spark.stop()
    others_identical = not [line for line in result["wrong"] if not line.startswith("quarantine:")]
    print(f"poison_records={len(poisoned.expected_stage)} quarantined={result['quarantined']} "
          f"others_identical={int(others_identical)} run_failures={failures} rerun_noop={int(noop)}")
    return 0 if not result["wrong"] and not failures and noop else 1


if __name__ == "__main__":
    raise SystemExit(main())
