"""The embedded model's weights are kept in the repository (models/giellm-mini): they must be what
conf/finetune.yaml's recipe gives on the data `make trained-model` builds, or `make run` would train
again on a fresh machine (~30 min on 2 cores) and the figures in docs/quality.md would describe
other weights. When this fails, retrain (`make trained-model`) and commit the new weights."""

from __future__ import annotations

import json
from pathlib import Path

from giellm_batch.training import wikipedia_ner as wiki
from giellm_batch.training.examples import build_pairs, write_jsonl
from giellm_batch.training.finetune import CARD, is_up_to_date
from giellm_batch.training.finetune_config import load_finetune_config
from giellm_batch.training.synthetic import generate

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "giellm-mini"
TASKS = ("scnm_ner", "tcree_re", "tcree_ee", "scpos_n")


def test_the_kept_weights_are_what_the_recipe_gives_on_todays_data(tmp_path, registry):
    # The Makefile's steps, with their defaults: synth-data, wikipedia-ner, training-data.
    lines = [json.dumps(r, ensure_ascii=False) for r in generate(6000, 600)]
    lines += [json.dumps(r, ensure_ascii=False) for r in wiki.records(wiki.load_source())]
    report = build_pairs(lines, registry, TASKS)
    assert not report.rejected
    for split in ("train", "heldout"):
        write_jsonl(tmp_path / f"{split}.jsonl", (p.as_json() for p in report.pairs if p.split == split))
    config = load_finetune_config(REPO / "conf" / "finetune.yaml", {
        "data": {"train": str(tmp_path / "train.jsonl"), "heldout": str(tmp_path / "heldout.jsonl")},
        "output_dir": str(MODEL)})
    card = json.loads((MODEL / CARD).read_text(encoding="utf-8"))
    assert is_up_to_date(config), f"models/giellm-mini was trained from other inputs (card {card['digest'][:12]})"
    weights = sum(p.stat().st_size for p in MODEL.glob("*.safetensors"))
    assert 0 < weights <= 10 * 2**20
    assert card["dropped_too_long"] < 10  # counted on the card: a few of 20,907 pairs at max_length 384
