"""Entities in real prose: the embedded model against GiNZA and a dictionary, side by side on the
TEST pages of Stockmark's Wikipedia NER data (data/ner-wikipedia, the NER half of the paper's SCNM).

Systems, each scored on the same TEST sentences (giellm_batch/giellm/span_scores.py):
  mini-real       models/giellm-mini: the embedded model (recipe conf/finetune.yaml, real TRAIN pages mixed in)
  mini-synthetic  the same recipe without the real sentences (trained here when missing: ~10 min)
  ginza           ja_ginza 5.x, its OntoNotes labels mapped to ours (wikipedia_ner.GINZA_TYPES); a bench
                  extra (`pip install -e .[realtext]`), never on the job's path; skipped when missing
  dictionary      every TRAIN entity string with its commonest type, longest match left to right
Models run through the path users run: the job's prompt builder, vLLM with grounded decoding
(`--boundaries`: morphemes, the default, and/or characters), the job's parser.

    python bench/realtext.py [--limit 0] [--boundaries morphemes,characters] [--examples 10]
    python bench/realtext.py --paper [--model PATH]   # Table 3's split: 1,000 train / 4,343 test

`--paper` scores on the paper's 4,343 test sentences (`giellm-batch wikipedia-ner --paper-split`)
and prints WL beside GIELLM-13B's SCNM WL. Without --model it first trains the embedded recipe on
that split's 1,000 sentences plus the synthetic pairs (models/giellm-mini-paper-<steps>); a model
named must have been trained on those 1,000 (any checkpoint: GIELLM-13B-jpllm fine-tuned on a GPU
with conf/finetune-gpu.yaml included).

Last line: real_test_f1=... real_test_typed_f1=... synthetic_only_f1=... ginza_f1=... dict_f1=...
train_wall_s=...  (untyped exact-span F1 on TEST unless named typed; train_wall_s: the embedded
model's training time from its card)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

from giellm_batch.config.job_config import load_config  # noqa: E402
from giellm_batch.giellm.parsing import parse_output  # noqa: E402
from giellm_batch.giellm.span_scores import EntityScores, score_entities  # noqa: E402
from giellm_batch.spark.session import build_spark  # noqa: E402
from giellm_batch.steps.chain import extract_frame  # noqa: E402
from giellm_batch.steps.plan import extraction_plan  # noqa: E402
from giellm_batch.training import wikipedia_ner as wiki  # noqa: E402

TASK = "scnm_ner"
PAPER_SCNM_WL = 62.95  # GIELLM-13B-jpllm, SCNM, WL (the paper's Table 4)
MERGE = {label: "組織" for label in wiki.ORGANISATIONS}


def dictionary_baseline(train: list[dict[str, Any]], texts: list[str]) -> list[list[tuple[str, str]]]:
    types: dict[str, Counter[str]] = {}
    for record in train:
        for entity in record["entities"]:
            start, end = entity["span"]
            types.setdefault(record["text"][start:end], Counter())[entity["label"]] += 1
    names = {name: counts.most_common(1)[0][0] for name, counts in types.items()}
    longest = max(map(len, names), default=0)
    out = []
    for text in texts:
        found, i = [], 0
        while i < len(text):
            for n in range(min(longest, len(text) - i), 0, -1):
                if text[i:i + n] in names:
                    found.append((names[text[i:i + n]], text[i:i + n]))
                    i += n
                    break
            else:
                i += 1
        out.append(found)
    return out


def ginza(texts: list[str]) -> tuple[list[list[tuple[str, str]]], float] | None:
    try:
        import spacy
        from ginza import ENE_ONTONOTES_MAPPING

        nlp = spacy.load("ja_ginza")
    except (ImportError, OSError):
        return None

    def ours(label: str) -> str | None:  # GiNZA 5.3 labels are Extended Named Entity types
        return wiki.GINZA_TYPES.get(ENE_ONTONOTES_MAPPING.get(label, "OTHERS"))

    started = time.monotonic()
    out = [[(label, e.text) for e in nlp(text).ents if (label := ours(e.label_))] for text in texts]
    return out, time.monotonic() - started


def model_answers(config: Any, model: Path, texts: list[str], boundaries: str) -> tuple[list[Any], float]:
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, path=str(model), name=model.name),
                                 tasks=(TASK,))
    plan = extraction_plan(config)  # the boundaries asked for, whatever the task registry says
    plan = dataclasses.replace(plan, span_boundaries=boundaries, tasks=tuple(
        dataclasses.replace(t, span_boundaries=boundaries) for t in plan.tasks))
    frame = pd.DataFrame({"article_id": [str(i) for i in range(len(texts))], "sentence_idx": 0, "text": texts,
                          "char_start": 0, "task": TASK})
    started = time.monotonic()
    out = extract_frame(plan, build_spark(config.spark), frame)
    seconds = time.monotonic() - started
    raw = dict(zip(out["article_id"].astype(int), out["raw_output"], strict=True))
    task, profile = config.task_registry.tasks[TASK], config.task_registry.profiles["giellm"]
    return [parse_output(raw.get(i), task, profile, sentence=text) for i, text in enumerate(texts)], seconds


def items(parsed: Any, task: Any) -> list[tuple[str, str]]:
    """(label, span) of each parsed item."""
    span = next(k for k, name in enumerate(task.fields) if name != task.label_field)
    return [(item.label, item.fields[span]) for item in parsed.items]


def repeated(parsed: Any) -> int:
    return next((int(f.split(":")[1]) for f in parsed.flags if f.startswith("repeated_items:")), 0)


def synthetic_only_model(path: Path) -> Path:
    """The embedded recipe trained on the synthetic pairs alone (built once, ~10 min on 2 cores)."""
    if (path / "giellm_training.json").is_file():
        return path
    from giellm_batch.training.finetune import finetune
    from giellm_batch.training.finetune_config import load_finetune_config

    pairs = REPO / "data" / "train" / "pairs" / "train.jsonl"
    synthetic = path.parent / f".{path.name}-train.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with pairs.open(encoding="utf-8") as source, synthetic.open("w", encoding="utf-8") as sink:
        sink.writelines(line for line in source if not json.loads(line)["group"].startswith("wiki-"))
    finetune(load_finetune_config(REPO / "conf" / "finetune.yaml", {
        "output_dir": str(path), "data": {"train": str(synthetic)},
        "base_model": {"path": str(path.parent / f"{path.name}-base")}}))
    return path


def paper_model(path: Path, steps: int) -> Path:
    """The embedded recipe trained on the paper's 1,000 TRAIN sentences (Table 3) plus the synthetic
    pairs, built once per step count (the full recipe: ~20 min on 2 cores)."""
    if (path / "giellm_training.json").is_file():
        return path
    from giellm_batch.giellm.tasks import load_task_registry
    from giellm_batch.training.examples import build_pairs, write_jsonl
    from giellm_batch.training.finetune import finetune
    from giellm_batch.training.finetune_config import load_finetune_config

    registry = load_task_registry(REPO / "conf" / "tasks.yaml")
    real = [json.dumps(r, ensure_ascii=False) for r in wiki.paper_split(wiki.load_source()) if r["split"] == "train"]
    pairs = [p.as_json() for p in build_pairs(real, registry, (TASK,)).pairs]
    synthetic = REPO / "data" / "train" / "pairs" / "train.jsonl"
    with synthetic.open(encoding="utf-8") as source:
        pairs += [row for line in source if not (row := json.loads(line))["group"].startswith("wiki-")]
    train = path.parent / f".{path.name}-train.jsonl"
    write_jsonl(train, pairs)
    finetune(load_finetune_config(REPO / "conf" / "finetune.yaml", {
        "output_dir": str(path), "data": {"train": str(train)}, "train": {"max_steps": steps},
        "base_model": {"path": str(path.parent / f"{path.name}-base")}}))
    return path


def print_row(name: str, s: EntityScores, seconds: float) -> None:
    r = s.row()
    kinds = " ".join(f"{label}={100 * m.recall:.0f}" for label, m in sorted(s.by_type.items()) if m.gold)
    print(f"{name:<26} {100 * r['f1']:6.1f} {100 * r['typed_f1']:6.1f} {100 * r['org_merged_f1']:6.1f} "
          f"{100 * r['precision']:6.1f} {100 * r['recall']:6.1f} {100 * r['wl']:6.1f} {100 * r['short_share']:6.1f} "
          f"{100 * r['repeated_share']:6.1f} {seconds:7.1f}  {kinds}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "conf" / "local.yaml"))
    parser.add_argument("--model", default="", help="checkpoint to score (default: models/giellm-mini)")
    parser.add_argument("--synthetic-model", default=str(REPO / "models" / "giellm-mini-synthetic"),
                        help="the recipe without real sentences (trained here when missing); 'none' skips it")
    parser.add_argument("--boundaries", default="morphemes,characters", help="grounded span boundaries to compare")
    parser.add_argument("--limit", type=int, default=0, help="first N TEST sentences (0 = all)")
    parser.add_argument("--paper", action="store_true",
                        help="the paper's split (1,000 train / 4,343 test); without --model, trains the recipe on it")
    parser.add_argument("--paper-steps", type=int, default=800, help="--paper's training steps (%(default)s)")
    parser.add_argument("--examples", type=int, default=0, help="print N TEST sentences with each answer")
    args = parser.parse_args()

    rows = wiki.load_source()
    records = list(wiki.paper_split(rows) if args.paper else wiki.records(rows))
    train = [r for r in records if r["split"] == "train"]
    test = [r for r in records if r["split"] == "test"][: args.limit or None]
    texts = [r["text"] for r in test]
    gold = [[(e["label"], r["text"][e["span"][0]:e["span"][1]]) for e in r["entities"]] for r in test]
    config = load_config(args.config)
    split = "paper split" if args.paper else "page split"
    print(f"TEST: {len(test)} sentences, {sum(map(len, gold))} entities ({split})")
    print(f"{'system':<26} {'F1':>6} {'typed':>6} {'orgs1':>6} {'P':>6} {'R':>6} {'WL':>6} {'<=2ch':>6} "
          f"{'rep':>6} {'secs':>7}  recall by type")
    results: dict[str, EntityScores] = {}
    answers: dict[str, list[list[tuple[str, str]]]] = {}
    model = Path(args.model) if args.model else REPO / "models" / "giellm-mini"
    if args.paper and not args.model:
        model = paper_model(REPO / "models" / f"giellm-mini-paper-{args.paper_steps}", args.paper_steps)
    systems = [(f"mini-real/{b}", model, b) for b in args.boundaries.split(",")]
    if args.synthetic_model != "none" and not args.paper:
        systems.append(("mini-synthetic/" + args.boundaries.split(",")[0], Path(args.synthetic_model),
                        args.boundaries.split(",")[0]))
    for name, checkpoint, boundaries in systems:
        if name.startswith("mini-synthetic"):
            checkpoint = synthetic_only_model(checkpoint)
        parsed, seconds = model_answers(config, checkpoint, texts, boundaries)
        answers[name] = [items(p, config.task_registry.tasks[TASK]) for p in parsed]
        results[name] = score_entities(gold, answers[name], MERGE, [repeated(p) for p in parsed])
        print_row(name, results[name], seconds)
    found = ginza(texts)
    if found is not None:
        answers["ginza"], seconds = found
        results["ginza"] = score_entities(gold, answers["ginza"], MERGE)
        print_row("ginza", results["ginza"], seconds)
    else:
        print("ginza: not installed (pip install -e '.[realtext]'), skipped")
    started = time.monotonic()
    answers["dictionary"] = dictionary_baseline(train, texts)
    results["dictionary"] = score_entities(gold, answers["dictionary"], MERGE)
    print_row("dictionary", results["dictionary"], time.monotonic() - started)
    for i in range(min(args.examples, len(test))):
        print(f"\n{texts[i]}\n  gold: {gold[i]}")
        for name in answers:
            print(f"  {name}: {answers[name][i]}")
    main_name = systems[0][0]
    if args.paper:
        print(f"\npaper setting: WL {100 * results[main_name].wl:.2f} (GIELLM-13B SCNM WL {PAPER_SCNM_WL})")
    card = model / "giellm_training.json"
    wall = json.loads(card.read_text(encoding="utf-8")).get("seconds", float("nan")) if card.is_file() else float("nan")
    synthetic = next((v for k, v in results.items() if k.startswith("mini-synthetic")), None)
    nan = float("nan")
    print(f"real_test_f1={results[main_name].untyped.f1:.4f} real_test_typed_f1={results[main_name].typed.f1:.4f} "
          f"synthetic_only_f1={synthetic.untyped.f1 if synthetic else nan:.4f} "
          f"ginza_f1={results['ginza'].untyped.f1 if 'ginza' in results else nan:.4f} "
          f"dict_f1={results['dictionary'].untyped.f1:.4f} train_wall_s={wall}")


if __name__ == "__main__":
    main()
