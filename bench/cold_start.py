"""Cold runs as cron starts them: the project's one spark-submit command (giellm_batch/spark/submit.py).

Each cycle copies N generated Livedoor-layout articles (bench/nightly.py's generator, seeded) into a
fresh folder and warehouse, runs `spark-submit jobs/extract.py` once over them (a first run), adds
1 % new articles and runs the same command again (a night). Every run is a new JVM and new Python
workers, so start-up, class loading and JIT warm-up are paid each time, as in production; the
in-process benches (nightly.py, throughput.py) reuse one warm session and do not see them.
The command is `chaos.job_command`: `submit.spark_submit_command` on local[2], as `giellm-batch
spark-submit`, `make run` and `scripts/nightly.sh` build it. Last line is machine-readable.

    python bench/cold_start.py [--articles 200] [--tasks scnm_ner] [--config conf/smoke.yaml] [--cycles 2]
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from nightly import write_articles  # noqa: E402
from sample_text import livedoor_sentences  # noqa: E402

from giellm_batch.resilience.chaos import job_command, run  # noqa: E402


def summary_line(log: str) -> dict[str, object]:
    """The job's JSON summary (its last stdout line starting with {"run_id")."""
    lines = [line for line in log.splitlines() if line.startswith('{"run_id"')]
    return json.loads(lines[-1]) if lines else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--new-share", type=float, default=0.01)
    parser.add_argument("--tasks", default="scnm_ner")
    parser.add_argument("--config", default=str(REPO / "conf" / "smoke.yaml"))
    parser.add_argument("--cycles", type=int, default=2, help="first run + night pairs, each in a fresh warehouse")
    args = parser.parse_args()

    sentences = livedoor_sentences(REPO / "data" / "sample" / "text")
    new = max(1, round(args.articles * args.new_share))
    times: dict[str, list[float]] = {"first": [], "night": []}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="giellm-cold-") as tmp:
        for n in range(args.cycles):
            source, warehouse = Path(tmp) / f"in{n}", Path(tmp) / f"wh{n}"
            write_articles(source, 0, args.articles, sentences, random.Random(0))
            command = job_command(Path(args.config), source, warehouse, "--tasks", args.tasks)
            if n == 0:
                print(f"command: {shlex.join(command)}", flush=True)
            for kind in ("first", "night"):
                if kind == "night":
                    write_articles(source, args.articles, new, sentences, random.Random(1))
                outcome = run(command, Path(tmp) / f"{n}-{kind}.log", timeout=1800)
                result = summary_line(outcome.log)
                if outcome.returncode != 0 or result.get("status") != "succeeded":
                    failures += 1
                    print(f"cycle {n} {kind}: exit {outcome.returncode}\n{outcome.log[-3000:]}", file=sys.stderr)
                    continue
                times[kind].append(outcome.seconds)
                print(f"cycle {n} {kind:5s}: {outcome.seconds:6.1f}s wall, job {result.get('wall_seconds')}s, "
                      f"{result.get('articles_processed')} processed of {result.get('articles_in')}", flush=True)

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else float("nan")

    def spread(values: list[float]) -> str:
        return f"{min(values):.1f}-{max(values):.1f}" if values else "nan"

    print(f"first_s={mean(times['first']):.1f} first_range_s={spread(times['first'])} "
          f"night_s={mean(times['night']):.1f} night_range_s={spread(times['night'])} runs={args.cycles} "
          f"articles={args.articles} new={new} tasks={args.tasks} failures={failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
