"""Extraction quality on the held-out split: trained model vs random model vs a trivial baseline,
and (in miniature, as in the paper) the same small model trained on the task mix vs on NER alone.

Every score comes from `giellm-batch evaluate` (the paper's TL / WL / ALL, plus item precision and
F1), run as a subprocess on the held-out pairs (`data/train/pairs/heldout.jsonl`: records whose
entities never occur in training). The models:

  trained   models/giellm-mini, built by `make trained-model` (conf/finetune.yaml), reused if built
  random    models/giellm-mini-base: the same architecture and tokenizer with its initial random weights
  baseline  the majority text label of each task in the training pairs, no items (score-only)
  mixed / single   two models trained with conf/finetune.yaml for --mini-steps steps from the same
                   random base (models/giellm-mini-base), on all default tasks vs on scnm_ner alone,
                   scored on scnm_ner

    python bench/quality.py [--mini-steps 300] [--skip-mini]

Last line: ner_f1_trained=... ner_f1_random=... tl_trained=... mixed_minus_single_ner_f1=...
(tl_trained: mean TL accuracy over the default tasks.)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO / "data" / "train" / "pairs"
TASKS = ("scnm_ner", "tcree_re", "tcree_ee", "scpos_n")
CLI = [sys.executable, "-m", "giellm_batch.cli"]


def run(cmd: list[str]) -> str:
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "ERROR"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}")
    return done.stdout


def evaluate(labelled: Path, work: Path, name: str, model: Path | None) -> dict[str, Any]:
    out = work / f"{name}.json"
    cmd = [*CLI, "evaluate", str(labelled), "--config", "conf/local.yaml", "--output", str(work / "warehouse"),
           "--json-out", str(out)]
    cmd += ["--model", str(model)] if model else ["--score-only"]
    started = time.monotonic()
    print(run(cmd).split("report:")[0].rstrip())
    print(f"({name}: {time.monotonic() - started:.0f}s)\n")
    tasks: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))["tasks"]
    return tasks


def baseline_file(work: Path) -> Path:
    """Held-out pairs with a `prediction`: the task's majority training text label, no items."""
    from giellm_batch.giellm.prompts import render_output
    from giellm_batch.giellm.tasks import load_task_registry

    registry = load_task_registry(REPO / "conf" / "tasks.yaml")
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in (PAIRS / "train.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        task = registry.tasks[row["task"]]
        label = row["output"][len(registry.profiles[task.profile].label_open):].split(">", 1)[0]
        counts[row["task"]][label] += 1
    out = work / "baseline.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        for line in (PAIRS / "heldout.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            task = registry.tasks[row["task"]]
            majority = counts[row["task"]].most_common(1)[0][0]
            row["prediction"] = render_output(task, registry.profiles[task.profile], majority, [])
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out


def only_task(work: Path, task: str) -> Path:
    out = work / f"heldout-{task}.jsonl"
    rows = [line for line in (PAIRS / "heldout.jsonl").read_text(encoding="utf-8").splitlines()
            if json.loads(line)["task"] == task]
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def train_mini(work: Path, name: str, tasks: tuple[str, ...], steps: int) -> Path:
    """A model trained with conf/finetune.yaml's recipe for `steps` steps on `tasks` (from the same base)."""
    from giellm_batch.training.finetune import finetune
    from giellm_batch.training.finetune_config import load_finetune_config

    out = work / name
    config = load_finetune_config(REPO / "conf" / "finetune.yaml", {
        "output_dir": str(out), "data": {"tasks": list(tasks)},
        "train": {"max_steps": steps, "save_steps": steps}})
    started = time.monotonic()
    card = finetune(config)
    print(f"trained {name} ({', '.join(tasks)}): {card['steps']} steps, train loss {card['train_loss']:.4f}, "
          f"{time.monotonic() - started:.0f}s")
    return out


def row(name: str, scores: dict[str, Any]) -> str:
    cells = []
    for task in TASKS:
        d = scores.get(task)
        if d is None:
            cells.append(f"{'-':>29}")
            continue
        pct = ["  n/a" if d[k] is None else f"{100 * d[k]:5.1f}" for k in ("tl_accuracy", "wl_accuracy",
                                                                         "all_accuracy", "f1")]
        cells.append(" ".join(f"{p:>6}" for p in pct))
    return f"{name:<10} " + " | ".join(cells)


def f1(scores: dict[str, Any], task: str = "scnm_ner") -> float:
    return float(scores[task]["f1"] or 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mini-steps", type=int, default=300, help="training steps of the mixed/single pair")
    parser.add_argument("--skip-mini", action="store_true", help="skip the mixed vs single-task experiment")
    parser.add_argument("--only-mini", action="store_true",
                        help="only the mixed vs single-task experiment (last line: mixed_minus_single_ner_f1)")
    args = parser.parse_args()
    trained, random_base = REPO / "models" / "giellm-mini", REPO / "models" / "giellm-mini-base"
    if not (trained / "giellm_training.json").is_file():
        raise SystemExit("the trained model is missing: run `make trained-model` first")
    with tempfile.TemporaryDirectory(prefix="giellm-quality-") as tmp:
        work = Path(tmp)
        heldout = PAIRS / "heldout.jsonl"
        results = {} if args.only_mini else {
            "trained": evaluate(heldout, work, "trained", trained),
            "random": evaluate(heldout, work, "random", random_base),
            "baseline": evaluate(baseline_file(work), work, "baseline", None)}
        delta = float("nan")
        if not args.skip_mini:
            ner = only_task(work, "scnm_ner")
            mixed = train_mini(work, "mixed", TASKS, args.mini_steps)
            single = train_mini(work, "single", ("scnm_ner",), args.mini_steps)
            results["mixed"] = evaluate(ner, work, "mixed", mixed)
            results["single"] = evaluate(ner, work, "single", single)
            delta = f1(results["mixed"]) - f1(results["single"])
    header = " | ".join(f"{t:^27}" for t in TASKS)
    print(f"{'':<10} {header}\n{'model':<10} " + " | ".join(["    TL     WL    ALL     F1"] * len(TASKS)))
    for name, scores in results.items():
        print(row(name, scores))
    if args.only_mini:
        print(f"mixed_minus_single_ner_f1={delta:.4f}")
        return 0
    tl = sum(results["trained"][t]["tl_accuracy"] for t in TASKS) / len(TASKS)
    print(f"ner_f1_trained={f1(results['trained']):.4f} ner_f1_random={f1(results['random']):.4f} "
          f"tl_trained={tl:.4f} mixed_minus_single_ner_f1={delta:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
