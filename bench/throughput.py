"""Job throughput through Spark vs. the same vLLM engine run standalone on the same prompts.

Generates a corpus from the bundled sample articles (sentences made distinct with a numbered
prefix; a controlled share of sentence slots repeats an earlier sentence, like wire copy), then in
one process, back to back on this machine:

1. standalone: the engine the job uses (same settings, built by the same code), called directly
   on the job's full prompt list in the job's order (a sentence's prompts adjacent);
2. the job with deduplication off (every prompt reaches an engine: the pipeline's own cost);
3. the job with deduplication on (repeats answered once).

Both job runs use warm engines (a small warm-up run builds them first, as a nightly job on a
long-lived cluster would have them) and fresh warehouses. Figures:

- ratio: job prompts/s (dedup off, whole run_job wall time: read, split, infer, parse, write)
  divided by standalone prompts/s;
- overhead_ms_per_prompt_core: core time not spent inside engine.generate, per prompt:
  (job wall x task slots - summed engine generate seconds) / prompts;
- dedup_saved: share of prompts answered without an engine call in run 3.

    python bench/throughput.py [--prompts 20000] [--repeat-share 0.3] [--config conf/smoke.yaml]
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

from giellm_batch.job import config_from_args
from giellm_batch.pipeline import RunOptions, extraction_plan, run_job
from giellm_batch.segmentation import livedoor_sentences
from giellm_batch.spark_session import build_spark

SENTENCES_PER_ARTICLE = 5


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
    from giellm_batch.engine import generate, get_engine, tokenize
    from giellm_batch.inference import prompt_step, request_sampling_params

    plan = dataclasses.replace(extraction_plan(config), dedup=False)
    frame = pd.DataFrame({"article_id": [f"a{i}" for i in range(len(slots))], "sentence_idx": 0, "text": slots})
    requests = pd.concat(list(prompt_step(plan)(iter([frame]))), ignore_index=True)
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


def job_run(config_path: str, source: Path, warehouse: Path, dedup: bool, spark: Any) -> Any:
    ns = argparse.Namespace(config=config_path, output=str(warehouse), input=str(source), input_format="jsonl",
                            model=None, tasks=None, settings=[f"execution.dedup={str(dedup).lower()}"])
    config = config_from_args(ns)
    started = time.monotonic()
    summary = run_job(config, spark, RunOptions())
    summary.wall_seconds = time.monotonic() - started
    assert summary.status == "succeeded", summary.error
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=20000, help="prompts in the corpus (sentences x tasks)")
    parser.add_argument("--repeat-share", type=float, default=0.3, help="share of repeated sentence slots")
    parser.add_argument("--config", default="conf/smoke.yaml")
    args = parser.parse_args()

    ns = argparse.Namespace(config=args.config, output=None, input=None, input_format=None, model=None, tasks=None,
                            settings=[])
    config = config_from_args(ns)
    n_tasks = len(config.tasks)
    slots = corpus(-(-args.prompts // n_tasks), args.repeat_share, livedoor_sentences(Path(config.input.path)),
                   random.Random(0))
    print(f"corpus: {len(slots)} sentences x {n_tasks} tasks = {len(slots) * n_tasks} prompts, "
          f"{len(set(slots))} distinct sentences ({1 - len(set(slots)) / len(slots):.1%} repeated slots)", flush=True)

    alone = standalone(config, slots)
    alone_rate = alone["prompts"] / alone["seconds"]
    print(f"standalone engine: {alone['prompts']:.0f} prompts in {alone['seconds']:.1f}s = {alone_rate:.1f} prompts/s, "
          f"prefix-cache hit rate {alone['prefix_hit_rate']:.1%}", flush=True)

    spark = build_spark(dataclasses.replace(config.spark, master="local[2]"))
    slots_n = spark.sparkContext.defaultParallelism
    with tempfile.TemporaryDirectory(prefix="giellm-throughput-") as tmp:
        source = Path(tmp) / "corpus.jsonl"
        write_jsonl(source, slots)
        warm = Path(tmp) / "warm.jsonl"
        write_jsonl(warm, slots[:40])
        job_run(args.config, warm, Path(tmp) / "wh-warm", False, spark)  # builds each worker's engine once

        off = job_run(args.config, source, Path(tmp) / "wh-off", False, spark)
        on = job_run(args.config, source, Path(tmp) / "wh-on", True, spark)
    spark.stop()

    ratio = (off.prompts / off.wall_seconds) / alone_rate
    overhead_ms = (off.wall_seconds * slots_n - off.engine_seconds) * 1000 / off.prompts
    fixed = off.wall_seconds - off.inference_seconds
    saved = on.dedup_hits / on.prompts
    for name, run in (("job, dedup off", off), ("job, dedup on", on)):
        print(f"{name}: {run.prompts} prompts, {run.engine_calls} engine calls, {run.wall_seconds:.1f}s wall "
              f"({run.prompts / run.wall_seconds:.1f} prompts/s), inference stage {run.inference_seconds:.1f}s, "
              f"engines generating {run.engine_seconds:.1f}s over {run.engines} engines", flush=True)
    print(f"job (dedup off) outside the inference stage: {fixed:.1f}s (read, split, prompts, parse, Delta writes)")
    inside = off.inference_seconds * slots_n - off.engine_seconds
    print(f"overhead split: outside the inference stage {fixed * slots_n * 1000 / off.prompts:.3f} ms/prompt/core, "
          f"inside it (tokenize, Arrow, engines idle at the stage's end) {inside * 1000 / off.prompts:.3f} "
          f"ms/prompt/core; {slots_n} task slots")
    print(f"job (dedup on) vs standalone: {(on.prompts / on.wall_seconds) / alone_rate:.3f}x")
    print(f"ratio={ratio:.3f} overhead_ms_per_prompt_core={overhead_ms:.3f} dedup_saved={saved:.3f}")


if __name__ == "__main__":
    main()
