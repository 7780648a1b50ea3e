"""Job throughput through Spark vs. the same vLLM engine run standalone on the same prompts, and
the job's cost split into a fixed part (per run) and a marginal part (per prompt).

Generates a corpus from the bundled sample articles (sentences made distinct with a numbered
prefix; a controlled share of sentence slots repeats an earlier sentence, like wire copy), then in
one process, back to back on this machine:

1. standalone: the engine the job uses (same settings, built by the same code), called directly
   on the job's full prompt list in the job's order (a sentence's prompts adjacent);
2. the job with deduplication off (every prompt reaches an engine: the pipeline's own cost) on a
   small corpus (`--small-share` of the prompts) and on the full one;
3. the job with deduplication on (repeats answered once) on the full corpus.

Job runs use warm engines (a small warm-up run builds them first, as a nightly job on a
long-lived cluster would have them) and fresh warehouses whose tables are created before the
timed run (once per warehouse; printed apart). Figures (last line):

- ratio: job prompts/s (dedup off, full corpus, whole run_job wall time: read, split, infer,
  parse, write, record, report) divided by standalone prompts/s;
- fixed_s: the intercept of job wall time over prompts (the two dedup-off runs): what a run costs
  before its first prompt;
- marginal_ms_per_prompt_core: the slope of the core time not spent inside an engine
  ((wall x task slots - summed engine seconds), in core-milliseconds) per added prompt;
- engine_idle_share: share of the generation stage (first engine task start to last answer)
  during which an engine was not working on requests (full dedup-off run);
- dedup_saved: share of prompts answered without an engine call in run 3.

- isolation_overhead (with --isolation-ab): the full dedup-off run's wall time with per-record
  isolation (isolation.py, the default) over the same run without it, minus 1.

    python bench/throughput.py [--prompts 20000] [--small-share 0.2] [--repeat-share 0.3]
                               [--config conf/smoke.yaml] [--isolation-ab]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from sample_text import livedoor_sentences

from giellm_batch.run.driver import RunOptions, run_job
from giellm_batch.run.job import config_from_args
from giellm_batch.spark.session import build_spark
from giellm_batch.steps.plan import extraction_plan
from giellm_batch.warehouse import tables

SENTENCES_PER_ARTICLE = 5
CREATE_SECONDS: list[float] = []  # creating each fresh warehouse's tables (once per warehouse)


def corpus(n_sentences: int, repeat_share: float, base: list[str], rng: random.Random) -> list[str]:
    """Sentence slots; each slot repeats an earlier sentence with probability `repeat_share`."""
    slots: list[str] = []
    fresh = 0
    for _ in range(n_sentences):
        if slots and rng.random() < repeat_share:
            slots.append(rng.choice(slots))
        else:
            slots.append(f"【{fresh}】{base[fresh % len(base)]}")
            fresh += 1
    return slots


def write_jsonl(path: Path, slots: list[str]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(0, len(slots), SENTENCES_PER_ARTICLE):
            body = "\n".join(slots[i:i + SENTENCES_PER_ARTICLE])
            out.write(json.dumps({"id": f"bench-{i}", "title": "bench", "body": body,
                                  "published_at": f"2025-05-{1 + (i // 50) % 28:02d}T09:00:00+0900"},
                                 ensure_ascii=False) + "\n")


def standalone(config: Any, slots: list[str]) -> dict[str, float]:
    """The job's engine, called directly on the job's prompt list (dedup off: every prompt)."""
    from giellm_batch.engine.vllm_engine import generate, get_engine, tokenize
    from giellm_batch.steps.generate import request_sampling_params
    from giellm_batch.steps.prompt import PromptStep

    plan = dataclasses.replace(extraction_plan(config), dedup=False)
    frame = pd.DataFrame({"article_id": [f"a{i}" for i in range(len(slots))], "sentence_idx": 0, "text": slots})
    requests = PromptStep(plan).run_local(frame)
    engine = get_engine(dataclasses.replace(plan.engine, log_stats=True))
    params = request_sampling_params(plan)  # the job's own decoding settings
    every = [params(t, p) for t, p in zip(requests["task"], requests["prompt"], strict=True)]
    # warm-up, like the job's warm engines
    generate(engine.llm, tokenize(engine.llm, list(requests["prompt"][:64])), every[:64])
    hits_before, queries_before = _prefix_cache(engine.llm)
    started = time.monotonic()
    token_ids = tokenize(engine.llm, list(requests["prompt"]))
    out = generate(engine.llm, token_ids, every)
    seconds = time.monotonic() - started
    hits, queries = _prefix_cache(engine.llm)
    assert len(out) == len(requests) and all(g.error is None for g in out)
    return {"prompts": float(len(requests)), "seconds": seconds,
            "prefix_hit_rate": (hits - hits_before) / max(queries - queries_before, 1.0)}


def _prefix_cache(llm: Any) -> tuple[float, float]:
    values = {m.name: getattr(m, "value", 0.0) for m in llm.get_metrics()}
    return float(values.get("vllm:prefix_cache_hits", 0.0)), float(values.get("vllm:prefix_cache_queries", 0.0))


def job_run(config_path: str, source: Path, warehouse: Path, dedup: bool, spark: Any, *extra: str) -> Any:
    # Every job run stages its step outputs as files, the small one too: the fixed and marginal
    # figures are the intercept and slope of one code path (a run of up to
    # execution.driver_staging_max_chars characters would otherwise hold them in the driver).
    ns = argparse.Namespace(config=config_path, output=str(warehouse), input=str(source), input_format="jsonl",
                            model=None, tasks=None, settings=[f"execution.dedup={str(dedup).lower()}",
                                                              "execution.driver_staging_max_chars=0", *extra])
    config = config_from_args(ns)
    # Tables are created once per warehouse, not per run: outside the timed part (reported apart).
    started = time.monotonic()
    tables.ensure_all_tables(spark, str(warehouse))
    CREATE_SECONDS.append(time.monotonic() - started)
    started = time.monotonic()
    summary = run_job(config, spark, RunOptions())
    summary.wall_seconds = time.monotonic() - started  # the whole call: record and report included
    assert summary.status == "succeeded", summary.error
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=20000, help="prompts in the corpus (sentences x tasks)")
    parser.add_argument("--small-share", type=float, default=0.2, help="size of the small corpus, as a share")
    parser.add_argument("--repeat-share", type=float, default=0.3, help="share of repeated sentence slots")
    parser.add_argument("--config", default="conf/smoke.yaml")
    parser.add_argument("--isolation-ab", action="store_true",
                        help="also run the full dedup-off job with execution.isolate_records=false, right after the "
                             "same run with it on, and print isolation_overhead (wall time share it adds)")
    args = parser.parse_args()

    ns = argparse.Namespace(config=args.config, output=None, input=None, input_format=None, model=None, tasks=None,
                            settings=[])
    config = config_from_args(ns)
    n_tasks = len(config.tasks)
    slots = corpus(-(-args.prompts // n_tasks), args.repeat_share, livedoor_sentences(Path(config.input.path)),
                   random.Random(0))
    small = slots[: max(SENTENCES_PER_ARTICLE, round(len(slots) * args.small_share))]
    print(f"corpus: {len(slots)} sentences x {n_tasks} tasks = {len(slots) * n_tasks} prompts, "
          f"{len(set(slots))} distinct sentences ({1 - len(set(slots)) / len(slots):.1%} repeated slots); "
          f"small corpus {len(small) * n_tasks} prompts", flush=True)

    alone = standalone(config, slots)
    alone_rate = alone["prompts"] / alone["seconds"]
    print(f"standalone engine: {alone['prompts']:.0f} prompts in {alone['seconds']:.1f}s = {alone_rate:.1f} prompts/s, "
          f"prefix-cache hit rate {alone['prefix_hit_rate']:.1%}", flush=True)

    spark = build_spark(dataclasses.replace(config.spark, master="local[2]"))
    n_slots = spark.sparkContext.defaultParallelism
    with tempfile.TemporaryDirectory(prefix="giellm-throughput-") as tmp:
        runs = {}
        for name, part in (("warm", slots[:40]), ("small", small), ("full", slots)):
            write_jsonl(Path(tmp) / f"{name}.jsonl", part)
        job_run(args.config, Path(tmp) / "warm.jsonl", Path(tmp) / "wh-warm", False, spark)  # builds the engines
        runs["job, dedup off, small"] = lo = job_run(args.config, Path(tmp) / "small.jsonl", Path(tmp) / "wh-small",
                                                     False, spark)
        runs["job, dedup off"] = off = job_run(args.config, Path(tmp) / "full.jsonl", Path(tmp) / "wh-off", False,
                                               spark)
        if args.isolation_ab:
            runs["job, dedup off, records not isolated"] = bare = job_run(
                args.config, Path(tmp) / "full.jsonl", Path(tmp) / "wh-bare", False, spark,
                "execution.isolate_records=false")
        runs["job, dedup on"] = on = job_run(args.config, Path(tmp) / "full.jsonl", Path(tmp) / "wh-on", True, spark)
    spark.stop()

    def outside_engines(run: Any) -> float:  # core-seconds not spent inside an engine
        return run.wall_seconds * n_slots - run.engine_seconds

    for name, run in runs.items():
        print(f"{name}: {run.prompts} prompts, {run.engine_calls} engine calls, {run.wall_seconds:.1f}s wall "
              f"({run.prompts / run.wall_seconds:.1f} prompts/s), generation stage {run.inference_seconds:.1f}s, "
              f"engines generating {run.engine_seconds:.1f}s over {run.engines} engines, idle share "
              f"{run.engine_idle_share:.3f}", flush=True)
        print(f"  where the time went (s): {run.step_seconds_json}")
    added = off.prompts - lo.prompts
    wall_per_prompt = (off.wall_seconds - lo.wall_seconds) / added
    fixed = lo.wall_seconds - lo.prompts * wall_per_prompt
    marginal_ms = (outside_engines(off) - outside_engines(lo)) * 1000 / added
    ratio = (off.prompts / off.wall_seconds) / alone_rate
    saved = on.dedup_hits / on.prompts
    overhead_ms = outside_engines(off) * 1000 / off.prompts
    print(f"job cost = {fixed:.1f}s + {wall_per_prompt * 1000:.2f}ms x prompts (wall); outside the engines "
          f"{overhead_ms:.3f} core-ms per prompt at {off.prompts} prompts, {marginal_ms:.3f} per added prompt; "
          f"{n_slots} task slots")
    print(f"creating a warehouse's tables (once per warehouse, not in the figures above): "
          f"{sum(CREATE_SECONDS[1:]) / max(len(CREATE_SECONDS) - 1, 1):.1f}s")
    print(f"job (dedup on) vs standalone: {(on.prompts / on.wall_seconds) / alone_rate:.3f}x")
    isolation = (f" isolation_overhead={(off.wall_seconds - bare.wall_seconds) / bare.wall_seconds:.3f}"
                 if args.isolation_ab else "")
    print(f"ratio={ratio:.3f} fixed_s={fixed:.2f} marginal_ms_per_prompt_core={marginal_ms:.3f} "
          f"engine_idle_share={off.engine_idle_share:.3f} dedup_saved={saved:.3f}{isolation}")


if __name__ == "__main__":
    main()
