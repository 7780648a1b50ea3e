"""The real NER data: the converter, its split, and how its pairs train (no Spark, no model)."""

from __future__ import annotations

import collections
import json

import pytest

from giellm_batch.giellm.parsing import parse_output
from giellm_batch.training import wikipedia_ner as wiki
from giellm_batch.training.examples import build_pairs


@pytest.fixture(scope="module")
def rows():
    return wiki.load_source()


def test_the_page_split_is_the_documented_one_and_keeps_pages_whole(rows):
    records = list(wiki.records(rows))
    counts = collections.Counter(r["split"] for r in records)
    entities = collections.Counter(r["split"] for r in records for _ in r["entities"])
    assert (counts["train"], counts["test"], entities["train"], entities["test"]) == (4234, 1109, 10440, 2745)
    sides = collections.defaultdict(set)
    for r in records:
        sides[r["article_id"]].add(r["split"])
    assert all(len(s) == 1 for s in sides.values())


def test_the_paper_split_has_table_3s_sizes_and_is_seeded(rows):
    first = [r["split"] for r in wiki.paper_split(rows, seed=0)]
    assert collections.Counter(first) == {"train": 1000, "test": 4343}
    assert first == [r["split"] for r in wiki.paper_split(rows, seed=0)]
    assert first != [r["split"] for r in wiki.paper_split(rows, seed=1)]


def test_every_source_type_is_one_of_the_tasks_item_labels(rows, registry):
    labels = set(registry.tasks["scnm_ner"].item_labels)
    assert {e["type"] for r in rows for e in r["entities"]} == set(wiki.SOURCE_TYPES) == labels
    assert set(wiki.GINZA_TYPES.values()) <= labels and labels >= wiki.ORGANISATIONS


def test_records_become_ner_pairs_with_an_unknown_text_label_and_nothing_is_rejected(rows, registry):
    lines = [json.dumps(r, ensure_ascii=False) for r in wiki.records(rows[:300])]
    report = build_pairs(lines, registry, ("scnm_ner", "tcree_re", "scpos_n"))
    assert not report.rejected and len(report.pairs) == 300  # scnm_ner only: no other task has items here
    assert all(p.task == "scnm_ner" and not p.text_label_known for p in report.pairs)
    assert all(p.as_json()["text_label_known"] is False for p in report.pairs)
    task, profile = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    parsed = [parse_output(p.output, task, profile, sentence=p.input, drop_repeats=False) for p in report.pairs]
    assert [len(p.items) for p in parsed] == [len(r["entities"]) for r in rows[:300]]


def test_a_span_that_does_not_spell_its_name_is_refused(rows):
    row = dict(rows[0], entities=[dict(rows[0]["entities"][0], name="違う名前")])
    with pytest.raises(ValueError, match="not '違う名前'"):
        wiki.to_record(row, 0, "train")
