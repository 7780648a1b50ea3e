"""Nightly cost: first full run over N articles vs. the next night's run after 1 % new articles.

Generates N distinct Livedoor-layout articles by recombining the sample articles' sentences
(seeded), runs the job once over all of them, adds 1 % new articles, runs again on the same
warehouse, and prints both wall times side by side (same machine, same Spark session, back to
back). Last line is machine-readable.

    python bench/nightly.py [--articles 2000] [--tasks scnm_ner] [--config conf/smoke.yaml]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from giellm_batch.config import load_config
from giellm_batch.job import config_from_args
from giellm_batch.pipeline import RunOptions, run_job
from giellm_batch.segmentation import livedoor_sentences
from giellm_batch.spark_session import build_spark


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
        ns = argparse.Namespace(config=args.config, output=str(warehouse), input=str(source), input_format="livedoor",
                                model=None, tasks=args.tasks, settings=[])
        config = config_from_args(ns)
        spark = build_spark(config.spark)
        started = time.monotonic()
        first = run_job(config, spark, RunOptions())
        first_s = time.monotonic() - started
        new = max(1, round(args.articles * args.new_share))
        write_articles(source, args.articles, new, sentences, rng)
        started = time.monotonic()
        second = run_job(config, spark, RunOptions())
        second_s = time.monotonic() - started
        print(f"\nfirst run : {first.articles_processed} articles, {first.prompts} prompts, {first_s:.1f}s")
        print(f"next night: {second.articles_processed} new of {second.articles_in}, {second.prompts} prompts, "
              f"{second_s:.1f}s ({second.articles_skipped} skipped, {second.files_skipped} files unread)")
        print(f"where the time went (s), first run: {first.step_seconds_json}, record + report "
              f"{first_s - first.wall_seconds:.1f}")
        print(f"where the time went (s), next night: {second.step_seconds_json}, record + report "
              f"{second_s - second.wall_seconds:.1f}")
        print(f"first_s={first_s:.1f} nightly_s={second_s:.1f} ratio={second_s / first_s:.3f} "
              f"articles={args.articles} new={new} tasks={args.tasks}")


if __name__ == "__main__":
    main()
