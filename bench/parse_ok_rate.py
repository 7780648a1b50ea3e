"""Parse-ok rate with and without (regex-)constrained decoding, on the same prompts and the same engine.

Builds >= N prompts from the bundled sample articles (sentences, titles and clauses, deduplicated)
across every task in the registry, runs them through the job's own inference step (prompt ->
vLLM -> parser, the function Spark calls in mapInPandas) once constrained and once not, and
prints the rate of `ok` parses per task. Last line is machine-readable.

    python bench/parse_ok_rate.py [--config conf/smoke.yaml] [--prompts 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import time
from pathlib import Path

import pandas as pd

from giellm_batch.config.job_config import load_config
from giellm_batch.input.decoding import decode_livedoor_file
from giellm_batch.spark.session import build_spark
from giellm_batch.steps.chain import extract_frame
from giellm_batch.steps.plan import extraction_plan
from giellm_batch.text.segmentation import Segmenter


def sample_texts(sample_dir: Path, segmenter: Segmenter) -> list[str]:
    """Distinct Japanese texts: every sentence, title and 、-clause of the sample articles."""
    texts: dict[str, None] = {}
    for path in sorted(sample_dir.rglob("*.txt")):
        if path.name == "LICENSE.txt":
            continue
        row = decode_livedoor_file(str(path), path.read_bytes())
        texts[row["title"]] = None
        for sentence in segmenter.split(row["body"]):
            texts[sentence.text] = None
            for clause in re.split(r"(?<=、)", sentence.text):
                if len(clause) >= 8:
                    texts[clause] = None
    return list(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="conf/smoke.yaml")
    parser.add_argument("--prompts", type=int, default=2000, help="minimum number of prompts per mode")
    args = parser.parse_args()

    config = load_config(args.config)
    config = dataclasses.replace(config, tasks=tuple(config.task_registry.tasks))
    texts = sample_texts(Path(config.input.path), Segmenter(config.segmentation.max_sentence_chars))
    needed = math.ceil(args.prompts / len(config.tasks))
    if len(texts) < needed:
        raise SystemExit(f"only {len(texts)} distinct texts in the sample; need {needed}")
    texts = texts[:needed]
    sentences = pd.DataFrame({"article_id": [f"t{i}" for i in range(len(texts))], "sentence_idx": 0,
                              "text": texts, "char_start": 0})
    print(f"{len(texts)} texts x {len(config.tasks)} tasks = {len(texts) * len(config.tasks)} prompts per mode")
    rates = {}
    for constrained in (True, False):
        plan = dataclasses.replace(extraction_plan(config), decoding="regex" if constrained else "free")
        started = time.monotonic()
        out = extract_frame(plan, build_spark(config.spark), sentences)
        elapsed = time.monotonic() - started
        mode = "constrained" if constrained else "unconstrained"
        rates[mode] = float((out["parse_status"] == "ok").mean())
        print(f"\n{mode}: {len(out)} prompts in {elapsed:.1f}s, ok rate {rates[mode]:.4f}")
        table = out.groupby(["task", "parse_status"]).size().unstack(fill_value=0)
        print(table.to_string())
    print(f"\nok_rate_constrained={rates['constrained']:.4f} ok_rate_unconstrained={rates['unconstrained']:.4f} "
          f"prompts={len(texts) * len(config.tasks)}")


if __name__ == "__main__":
    main()
