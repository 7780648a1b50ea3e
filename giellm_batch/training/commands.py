"""CLI subcommands of the training subsystem: `synth-data`, `training-data`, `finetune`."""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
from pathlib import Path
from typing import Any

from giellm_batch.config.job_config import ConfigError

DEFAULT_TASKS = ("scnm_ner", "tcree_re", "tcree_ee", "scpos_n")


def cmd_synth_data(args: argparse.Namespace) -> int:
    from giellm_batch.training.examples import write_jsonl
    from giellm_batch.training.synthetic import generate

    count = write_jsonl(Path(args.out), generate(args.train, args.heldout, seed=args.seed,
                                                 heldout_share=args.heldout_entity_share))
    print(f"wrote {count} annotated records to {args.out} ({args.train} train, {args.heldout} held-out; "
          f"held-out records use only held-out entity names)")
    return 0


def cmd_wikipedia_ner(args: argparse.Namespace) -> int:
    from giellm_batch.training import wikipedia_ner as wiki
    from giellm_batch.training.examples import write_jsonl

    rows = wiki.load_source(Path(args.source) if args.source else wiki.DATA)
    records = list(wiki.paper_split(rows, args.seed) if args.paper_split else wiki.records(rows))
    write_jsonl(Path(args.out), records)
    counts = collections.Counter(r["split"] for r in records)
    entities = collections.Counter(r["split"] for r in records for _ in r["entities"])
    print(json.dumps({"records": len(records), "by_split": dict(sorted(counts.items())),
                      "entities_by_split": dict(sorted(entities.items())), "out": args.out}, ensure_ascii=False))
    return 0


def cmd_training_data(args: argparse.Namespace) -> int:
    from giellm_batch.giellm.tasks import registry_or_exit
    from giellm_batch.training.examples import build_pairs, write_jsonl

    registry = registry_or_exit(args.registry)
    tasks = tuple(args.task) or DEFAULT_TASKS
    unknown = [t for t in tasks if t not in registry.tasks]
    if unknown:
        print(f"error: unknown task(s) {', '.join(unknown)}; known: {', '.join(sorted(registry.tasks))}",
              file=sys.stderr)
        return 2
    lines: list[str] = []
    for path in args.records:
        try:
            lines.extend(Path(path).read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            return 2
    report = build_pairs(lines, registry, tasks, args.heldout_share)
    for problem in report.rejected[:20]:
        print(f"rejected {problem}", file=sys.stderr)
    out = Path(args.out_dir)
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for split in ("train", "heldout", *sorted({p.split for p in report.pairs} - {"train", "heldout"})):
        rows = [p.as_json() for p in report.pairs if p.split == split]
        counts.update((split, r["task"]) for r in rows)
        write_jsonl(out / f"{split}.jsonl", rows)
    print(json.dumps({"pairs": len(report.pairs), "rejected": len(report.rejected),
                      "by_split_task": {f"{s}/{t}": n for (s, t), n in sorted(counts.items())}},
                     ensure_ascii=False))
    return 0 if report.pairs else 1


def cmd_finetune(args: argparse.Namespace) -> int:
    from giellm_batch.training.finetune_config import load_finetune_config

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "accelerate", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    overrides: dict[str, Any] = {}
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    try:
        config = load_finetune_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from giellm_batch.training.finetune import finetune

    card = finetune(config, force=args.force)
    print(json.dumps({k: card[k] for k in ("name", "method", "steps", "train_loss", "heldout_loss", "seconds")},
                     ensure_ascii=False))
    print(f"model ready: {config.output_dir}")
    return 0


def add_commands(sub: Any) -> None:
    synth = sub.add_parser("synth-data", help="generate the labelled synthetic news corpus (annotated records)")
    synth.add_argument("--out", required=True, help="annotated records JSONL to write")
    synth.add_argument("--train", type=int, default=6000, help="records over train entity names (%(default)s)")
    synth.add_argument("--heldout", type=int, default=600, help="records over held-out names (%(default)s)")
    synth.add_argument("--heldout-entity-share", type=float, default=0.2,
                       help="share of each name list reserved for held-out records (%(default)s)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=cmd_synth_data)

    wiki = sub.add_parser("wikipedia-ner", help="Stockmark's Wikipedia NER data (SCNM's entities) -> annotated "
                          "records, split by page", description="Converts data/ner-wikipedia/ner.json "
                          "(CC-BY-SA 3.0) into annotated records for training-data: TEST is 20 %% of pages "
                          "by a hash of the page id, or with --paper-split 1,000 train / 4,343 test sentences.")
    wiki.add_argument("--out", required=True, help="annotated records JSONL to write")
    wiki.add_argument("--source", default=None, help="ner.json (default: the copy under data/ner-wikipedia)")
    wiki.add_argument("--paper-split", action="store_true", help="the paper's Table 3 sizes instead of the page split")
    wiki.add_argument("--seed", type=int, default=0, help="--paper-split's draw (%(default)s)")
    wiki.set_defaults(func=cmd_wikipedia_ner)

    data = sub.add_parser("training-data", help="annotated records (or ready pairs) -> train/heldout GIELLM pairs")
    data.add_argument("records", nargs="+", help="JSONL: span-annotated records or {task, input, output} pairs")
    data.add_argument("--out-dir", required=True,
                      help="writes train.jsonl, heldout.jsonl and one <split>.jsonl per other split here")
    data.add_argument("--task", action="append", default=[],
                      help=f"task to build pairs for (repeatable; default {' '.join(DEFAULT_TASKS)})")
    data.add_argument("--heldout-share", type=float, default=0.1,
                      help="records without a 'split' field: share held out, by article id (%(default)s)")
    data.add_argument("--registry", default=None, help="task registry YAML (default: the packaged conf/tasks.yaml)")
    data.set_defaults(func=cmd_training_data)

    tune = sub.add_parser("finetune", help="mixed-task fine-tuning (full or LoRA) from a YAML config",
                          description="Train a causal LM on GIELLM pairs of several tasks at once. Resumes "
                          "from the last checkpoint after a kill; a rerun with unchanged config and data "
                          "does nothing. Exit 2 on a config mistake, before anything is loaded.")
    tune.add_argument("--config", default="conf/finetune.yaml")
    tune.add_argument("--output-dir", help="override output_dir")
    tune.add_argument("--force", action="store_true", help="train even if the output is up to date")
    tune.set_defaults(func=cmd_finetune)
