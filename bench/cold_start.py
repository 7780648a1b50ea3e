"""Cold runs as cron starts them: the README's spark-submit command, with and without the driver's JVM options.

Each cycle copies N generated Livedoor-layout articles (bench/nightly.py's generator, seeded) into a
fresh folder and warehouse, runs `spark-submit jobs/extract.py` once over them (a first run), adds
1 % new articles and runs the same command again (a night). Every run is a new JVM and new Python
workers, so start-up, class loading and JIT warm-up are paid each time, as in production; the
in-process benches (nightly.py, throughput.py) reuse one warm session and do not see them.
Cycles alternate between the README's driver options (`giellm-batch driver-java-options`: JIT options
and the class archive, jvm_archive.py) and a baseline, in the order A B B A: `--baseline jvm-defaults`
(no driver options at all) or `--baseline no-archive` (the JIT options without the class archive).
Last line is machine-readable.

    python bench/cold_start.py [--articles 200] [--tasks scnm_ner] [--config conf/smoke.yaml] [--cycles 4]
                               [--baseline jvm-defaults|no-archive]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from nightly import write_articles  # noqa: E402

from giellm_batch.resilience.chaos import job_command, run  # noqa: E402
from giellm_batch.spark.session import DRIVER_JAVA_OPTIONS, driver_java_options  # noqa: E402
from giellm_batch.text.segmentation import livedoor_sentences  # noqa: E402

BASELINES = {"jvm-defaults": None, "no-archive": DRIVER_JAVA_OPTIONS}


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
    parser.add_argument("--cycles", type=int, default=4, help="first run + night pairs, modes alternating A B B A")
    parser.add_argument("--baseline", choices=sorted(BASELINES), default="jvm-defaults",
                        help="what the driver options are compared with")
    args = parser.parse_args()
    modes = {"driver options": driver_java_options(), "baseline": BASELINES[args.baseline]}
    if modes["driver options"] == modes["baseline"]:
        parser.error(f"--baseline {args.baseline} equals the driver options here ({modes['baseline']}): "
                     "build the class archive first (giellm-batch jvm-archive)")

    sentences = livedoor_sentences(REPO / "data" / "sample" / "text")
    new = max(1, round(args.articles * args.new_share))
    order = [("driver options", "baseline", "baseline", "driver options")[n % 4] for n in range(args.cycles)]
    times: dict[str, dict[str, list[float]]] = {mode: {"first": [], "night": []} for mode in modes}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="giellm-cold-") as tmp:
        for n, mode in enumerate(order):
            source, warehouse = Path(tmp) / f"in{n}", Path(tmp) / f"wh{n}"
            write_articles(source, 0, args.articles, sentences, random.Random(0))
            command = job_command(Path(args.config), source, warehouse, "--tasks", args.tasks,
                                  java_options=modes[mode])
            for kind in ("first", "night"):
                if kind == "night":
                    write_articles(source, args.articles, new, sentences, random.Random(1))
                outcome = run(command, Path(tmp) / f"{n}-{kind}.log", timeout=1800)
                result = summary_line(outcome.log)
                if outcome.returncode != 0 or result.get("status") != "succeeded":
                    failures += 1
                    print(f"{mode}, {kind}: exit {outcome.returncode}\n{outcome.log[-3000:]}", file=sys.stderr)
                    continue
                times[mode][kind].append(outcome.seconds)
                print(f"cycle {n} {mode:14s} {kind:5s}: {outcome.seconds:6.1f}s wall, job "
                      f"{result.get('wall_seconds')}s, {result.get('articles_processed')} processed of "
                      f"{result.get('articles_in')}", flush=True)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    first = {mode: mean(t["first"]) for mode, t in times.items()}
    night = {mode: mean(t["night"]) for mode, t in times.items()}
    print(f"driver options: {modes['driver options']}\nbaseline ({args.baseline}): {modes['baseline']}")
    print(f"first_s={first['driver options']:.1f} first_baseline_s={first['baseline']:.1f} "
          f"night_s={night['driver options']:.1f} night_baseline_s={night['baseline']:.1f} "
          f"night_ratio={night['driver options'] / night['baseline']:.3f} baseline={args.baseline} "
          f"articles={args.articles} new={new} tasks={args.tasks} failures={failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
