"""Decoding modes compared on the same held-out prompts: quality, groundedness and speed.

Every default task's held-out pairs (`data/train/pairs/heldout.jsonl`, entities never seen in
training) go through the job's own in-memory extraction step (prompt -> vLLM -> parser -> grounding)
once per decoding mode, on the trained embedded model (models/giellm-mini) and on the same
architecture with random weights (models/giellm-mini-base):

  free          no constraint
  regex-capped  the regex as it was before uncapping (at most 6 items, spans of at most 16 chars)
  regex         the task regex, uncapped (default before grounded decoding)
  grounded      one grammar per prompt: spans can only be substrings of the sentence (the default)

Reported per mode: parse-ok rate, share of emitted spans found in their sentence, entity span F1
(scnm_ner), mean TL / WL / ALL over the tasks (the paper's metrics, evaluation.score), and the
generation-stage time relative to free decoding on the same model.

    python bench/decoding.py [--random-limit 60] [--limit 0]

Last line: ok_grounded=... grounded_share=... f1_unconstrained=... f1_regex=... f1_grounded=...
slowdown_grounded=...  (trained model; slowdown = grounded seconds / free seconds)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

from giellm_batch.config.job_config import load_config  # noqa: E402
from giellm_batch.giellm.metrics import load_labelled, score  # noqa: E402
from giellm_batch.spark.session import build_spark  # noqa: E402
from giellm_batch.steps.chain import extract_frame  # noqa: E402
from giellm_batch.steps.plan import extraction_plan  # noqa: E402

MODES = {"free": ("free", 0, 0), "regex-capped": ("regex", 6, 16), "regex": ("regex", 0, 0),
         "grounded": ("grounded", 0, 0)}
TASKS = ("scnm_ner", "tcree_re", "tcree_ee", "scpos_n")


def held_out(config: Any, limit: int) -> list[Any]:
    records = load_labelled(REPO / "data" / "train" / "pairs" / "heldout.jsonl", config.task_registry).records
    if not limit:
        return records
    per_task: dict[str, int] = {}
    kept = []
    for r in records:
        per_task[r.task] = per_task.get(r.task, 0) + 1
        if per_task[r.task] <= limit:
            kept.append(r)
    return kept


def run_mode(config: Any, records: list[Any], mode: str) -> dict[str, Any]:
    decoding, max_items, max_span_chars = MODES[mode]
    plan = dataclasses.replace(extraction_plan(config), decoding=decoding, max_items=max_items,
                               max_span_chars=max_span_chars)
    frame = pd.DataFrame({"article_id": [str(r.line) for r in records], "sentence_idx": 0,
                          "text": [r.text for r in records], "char_start": 0, "task": [r.task for r in records]})
    started = time.monotonic()
    out = extract_frame(plan, build_spark(config.spark), frame)
    seconds = time.monotonic() - started
    by_line: dict[int, Any] = {int(a): row for a, row in zip(out["article_id"], out.itertuples(index=False),
                                                                strict=True)}
    rows = [by_line[r.line] for r in records]
    scores = {k: v.as_dict() for k, v in score(records, [r.raw_output for r in rows], config.task_registry,
                                                [r.finish_reason == "length" for r in rows]).items()}
    spans = [s for r in rows for item in json.loads(r.items_json or "[]") for s in item["spans"]]
    mean = {k: sum(scores[t][k] or 0.0 for t in scores) / len(scores) for k in ("tl_accuracy", "wl_accuracy",
                                                                                "all_accuracy")}
    return {"seconds": seconds, "ok": sum(r.parse_status == "ok" for r in rows) / len(rows),
            "grounded": sum(s["grounded"] for s in spans) / len(spans) if spans else float("nan"),
            "spans": len(spans), "f1": scores.get("scnm_ner", {}).get("f1") or 0.0, **mean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "conf" / "local.yaml"))
    parser.add_argument("--limit", type=int, default=0, help="held-out pairs per task for the trained model (0 = all)")
    parser.add_argument("--random-limit", type=int, default=60,
                        help="pairs per task for the random model (its outputs run to max_new_tokens: slow)")
    args = parser.parse_args()
    base = load_config(args.config)
    base = dataclasses.replace(base, tasks=TASKS)
    models = {"trained": (REPO / "models" / "giellm-mini", args.limit),
              "random": (REPO / "models" / "giellm-mini-base", args.random_limit)}
    results: dict[tuple[str, str], dict[str, Any]] = {}
    print(f"{'model':<8} {'mode':<13} {'n':>5} {'ok %':>6} {'grounded %':>10} {'spans':>6} {'NER F1 %':>8} "
          f"{'TL %':>6} {'WL %':>6} {'ALL %':>6} {'gen s':>7} {'x free':>6}")
    for name, (path, limit) in models.items():
        config = dataclasses.replace(base, model=dataclasses.replace(base.model, path=str(path), name=path.name))
        records = held_out(config, limit)
        run_mode(config, records[:8], "free")  # engine start and warm-up outside the timings
        for mode in MODES:
            r = results[name, mode] = run_mode(config, records, mode)
            slowdown = r["seconds"] / results[name, "free"]["seconds"]
            print(f"{name:<8} {mode:<13} {len(records):>5} {100 * r['ok']:6.1f} {100 * r['grounded']:10.1f} "
                  f"{r['spans']:>6} {100 * r['f1']:8.1f} {100 * r['tl_accuracy']:6.1f} {100 * r['wl_accuracy']:6.1f} "
                  f"{100 * r['all_accuracy']:6.1f} {r['seconds']:7.1f} {slowdown:6.2f}", flush=True)
    t = {mode: results["trained", mode] for mode in MODES}
    print(f"ok_grounded={t['grounded']['ok']:.4f} grounded_share={t['grounded']['grounded']:.4f} "
          f"f1_unconstrained={t['free']['f1']:.4f} f1_regex={t['regex']['f1']:.4f} "
          f"f1_grounded={t['grounded']['f1']:.4f} "
          f"slowdown_grounded={t['grounded']['seconds'] / t['free']['seconds']:.2f}")


if __name__ == "__main__":
    main()
