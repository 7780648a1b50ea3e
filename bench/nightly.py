"""Nightly cost: first full run over N articles vs. the next night's run after 1 % new articles.

Generates N distinct Livedoor-layout articles by recombining the sample articles' sentences
(seeded), runs the job once over all of them (recording the file manifest, manifest.py), adds 1 %
new articles, and runs the next night twice from that same state, on two copies of the
warehouse: skipping the finished files unread (the manifest) and reading every file, twice each
in the order A B B A. Prints the wall times side by side (same machine, same Spark session, back
to back) and the means; `nightly_s` is the night the job's default takes at this size (the manifest from
`input.skip_finished_files_from` files on). Last line is machine-readable.

    python bench/nightly.py [--articles 2000] [--tasks scnm_ner] [--config conf/smoke.yaml]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from sample_text import livedoor_sentences

from giellm_batch.config.job_config import JobConfig, load_config
from giellm_batch.monitoring.runs import RunSummary
from giellm_batch.run.driver import RunOptions, run_job
from giellm_batch.run.job import config_from_args
from giellm_batch.spark.session import build_spark


def write_articles(root: Path, start: int, count: int, sentences: list[str], rng: random.Random) -> None:
    folder = root / "synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(start, start + count):
        body = "\n".join("".join(rng.sample(sentences, 2)) for _ in range(rng.randint(2, 4)))
        day = 1 + n % 28
        (folder / f"synthetic-{n:07d}.txt").write_text(
            f"http://news.example.jp/{n}/\n2025-04-{day:02d}T09:00:00+0900\n記事{n}\n{body}\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--new-share", type=float, default=0.01)
    parser.add_argument("--tasks", default="scnm_ner")
    parser.add_argument("--config", default="conf/smoke.yaml")
    args = parser.parse_args()

    rng = random.Random(0)
    base = load_config(args.config)
    sentences = livedoor_sentences(Path(base.input.path))
    with tempfile.TemporaryDirectory(prefix="giellm-nightly-") as tmp:
        source, warehouse = Path(tmp) / "in", Path(tmp) / "wh"
        write_articles(source, 0, args.articles, sentences, rng)

        def config_with(manifest_from: int, output: Path) -> JobConfig:
            ns = argparse.Namespace(config=args.config, output=str(output), input=str(source),
                                    input_format="livedoor", model=None, tasks=args.tasks,
                                    settings=[f"input.skip_finished_files_from={manifest_from}"])
            return config_from_args(ns)

        config = config_with(0, warehouse)
        spark = build_spark(config.spark)
        started = time.monotonic()
        first = run_job(config, spark, RunOptions())
        first_s = time.monotonic() - started
        new = max(1, round(args.articles * args.new_share))
        write_articles(source, args.articles, new, sentences, rng)
        # The same night four times from the same state, in the order A B B A: the night right after
        # the big first run pays for the JVM's clean-up, and neither mode should get that alone.
        nights: dict[str, list[tuple[RunSummary, float]]] = {"manifest": [], "all files": []}
        for n, label in enumerate(("manifest", "all files", "all files", "manifest")):
            copy = Path(tmp) / f"wh-night{n}"
            shutil.copytree(warehouse, copy)
            started = time.monotonic()
            second = run_job(config_with(0 if label == "manifest" else -1, copy), spark, RunOptions())
            nights[label].append((second, time.monotonic() - started))
            shutil.rmtree(copy)
        default = "manifest" if args.articles + new >= base.input.skip_finished_files_from >= 0 else "all files"
        print(f"\nfirst run : {first.articles_processed} articles, {first.prompts} prompts, {first_s:.1f}s")
        print(f"where the time went (s), first run: {first.step_seconds_json}, record + report "
              f"{first_s - first.wall_seconds:.1f}")
        for label, runs in nights.items():
            for second, second_s in runs:
                print(f"next night, {label}: {second.articles_processed} new of {second.articles_in}, "
                      f"{second.prompts} prompts, {second_s:.1f}s ({second.articles_skipped} skipped, "
                      f"{second.files_skipped} files unread)")
                print(f"  where the time went (s): {second.step_seconds_json}, record + report "
                      f"{second_s - second.wall_seconds:.1f}")
        mean = {label: sum(s for _, s in runs) / len(runs) for label, runs in nights.items()}
        nightly_s = mean[default]
        print(f"first_s={first_s:.1f} nightly_s={nightly_s:.1f} ratio={nightly_s / first_s:.3f} "
              f"nightly_manifest_s={mean['manifest']:.1f} nightly_all_files_s={mean['all files']:.1f} "
              f"default={default.replace(' ', '_')} articles={args.articles} new={new} tasks={args.tasks}")


if __name__ == "__main__":
    main()
