"""Stockmark's Japanese Wikipedia NER data set (the NER half of the paper's SCNM data) as annotated
records for `training-data`, with a deterministic page-level split.

The data (`data/ner-wikipedia/ner.json`, version 2.0: 5,343 sentences, 13,185 entities) is CC-BY-SA
3.0, Stockmark Inc., from github.com/stockmarkteam/ner-wikipedia-dataset; the repository's own
licence does not cover it (data/ner-wikipedia/README.md). Each source record is
`{curid, text, entities: [{name, span: [start, end], type}]}`.

Rules:
- Split by Wikipedia page: a sentence is TEST when `int(sha1(curid), 16) % 10 < 2` (1,109 sentences,
  2,745 entities), else TRAIN (4,234 / 10,440). All of a page's sentences land on one side.
- The paper's setting (Table 3): 1,000 TRAIN and 4,343 TEST sentences, drawn with a seed
  (`paper_split`), for comparing a checkpoint with GIELLM-13B's SCNM figures.
- SCNM's sentence labels (社会 ... 自然) are not public: a record names `scnm` in
  `text_label_unknown`, so its pairs carry a placeholder label that training does not learn
  (finetune.tokenize_examples masks it) and scoring does not count.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data" / "ner-wikipedia" / "ner.json"
SPLITS = ("train", "test")

# The data set's entity types -> our scnm_ner item labels. They are the same eight strings (the
# paper's SCNM uses this data set); the map is the one place that says so.
SOURCE_TYPES: dict[str, str] = {t: t for t in (
    "人名", "法人名", "政治的組織名", "その他の組織名", "地名", "施設名", "製品名", "イベント名")}

# OntoNotes entity labels -> ours, for the real-text bench's GiNZA baseline (ja_ginza 5.3 tags
# Extended Named Entity types; GiNZA's own ENE_ONTONOTES_MAPPING takes them to OntoNotes first).
# Labels not listed (DATE, MONEY, NORP, ...) have no counterpart and are dropped. ORG cannot tell a
# company from a party or a club: it maps to 法人名 (the commonest organisation type in the data).
GINZA_TYPES: dict[str, str] = {
    "PERSON": "人名", "ORG": "法人名", "GPE": "地名", "LOC": "地名", "FAC": "施設名",
    "PRODUCT": "製品名", "WORK_OF_ART": "製品名", "EVENT": "イベント名",
}
# The three organisation labels, merged for the "organisations as one type" score.
ORGANISATIONS = frozenset({"法人名", "政治的組織名", "その他の組織名"})


def page_split(curid: str) -> str:
    """'test' for 20 % of Wikipedia pages (by a hash of the page id), 'train' for the rest."""
    return "test" if int(hashlib.sha1(str(curid).encode("utf-8")).hexdigest(), 16) % 10 < 2 else "train"


def load_source(path: Path = DATA) -> list[dict[str, Any]]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of sentences")
    return rows


def to_record(row: dict[str, Any], n: int, split: str) -> dict[str, Any]:
    """One source sentence -> one annotated record (the format examples.pairs_from_record reads)."""
    text = row["text"]
    entities = []
    for entity in row.get("entities") or []:
        start, end = entity["span"]
        if text[start:end] != entity["name"]:
            raise ValueError(f"sentence {n} (page {row['curid']}): span {entity['span']} is "
                             f"{text[start:end]!r}, not {entity['name']!r}")
        entities.append({"label": SOURCE_TYPES[entity["type"]], "span": [start, end]})
    return {"id": f"wiki-{row['curid']}-{n}", "article_id": f"wiki-{row['curid']}", "split": split,
            "text": text, "text_labels": {}, "text_label_unknown": ["scnm"], "entities": entities}


def records(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every sentence as a record, split by page (page_split)."""
    for n, row in enumerate(rows):
        yield to_record(row, n, page_split(row["curid"]))


def paper_split(rows: list[dict[str, Any]], seed: int = 0, train: int = 1000) -> Iterator[dict[str, Any]]:
    """Table 3's sizes: `train` sentences drawn with `seed` for training, every other one for test
    (5,343 - 1,000 = 4,343). Sentence-level, as the paper's counts are."""
    chosen = set(random.Random(seed).sample(range(len(rows)), train))
    for n, row in enumerate(rows):
        yield to_record(row, n, "train" if n in chosen else "test")
