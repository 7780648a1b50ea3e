"""Annotated records -> GIELLM pairs: every pair round-trips through the parser; bad records get a reason."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from giellm_batch.training.examples import build_pairs, pairs_from_record, split_of

TEXT = "山田太郎は東京で開かれた試合でさくら電機の代表として勝利した。"
RECORD = {
    "id": "a1", "text": TEXT,
    "text_labels": {"scnm": "社会", "tcree": "スポーツ", "scpos": "積極"},
    "entities": [{"label": "人名", "span": [0, 4]}, {"label": "地名", "span": [5, 7]},
                 {"label": "法人名", "span": "さくら電機"}],
    "relations": [{"head": [0, 4], "relation": "所属", "tail": [15, 20]}],
    "events": [{"event_type": "試合", "trigger": "試合", "argument": [0, 4], "time": "東京"}],
    "sentiment_words": [{"label": "ポジティブ", "span": "勝利", "pos": "名詞"},
                        {"label": "ポジティブ", "span": "開かれ", "pos": "動詞"}],
}
TASKS = ("scnm_ner", "tcree_re", "tcree_ee", "scpos_n")


def test_a_record_gives_one_pair_per_task_in_the_project_format(registry):
    pairs = {p.task: p for p in pairs_from_record(RECORD, registry, TASKS)}
    assert pairs["scnm_ner"].output == "‹社会>固有表現抽出:人名;山田太郎:地名;東京:法人名;さくら電機"
    assert pairs["tcree_re"].output == "‹スポーツ>Relation Extraction:山田太郎;所属;さくら電機:"
    assert pairs["tcree_ee"].output == "‹スポーツ>Event Extraction:試合;試合;山田太郎;東京:"
    # scpos_n keeps only nouns (the registry's pos for the task); the verb is left out
    assert pairs["scpos_n"].output == "‹積極>Sentiment Extraction Noun:ポジティブ;勝利"
    assert {p.input for p in pairs.values()} == {TEXT} and {p.group for p in pairs.values()} == {"a1"}


def test_tasks_without_a_text_label_are_skipped_not_guessed(registry):
    record = {**RECORD, "text_labels": {"scnm_ner": "技術"}}
    pairs = pairs_from_record(record, registry, TASKS)
    assert [(p.task, p.output.split(">")[0]) for p in pairs] == [("scnm_ner", "‹技術")]


def test_bad_records_are_rejected_by_line_with_the_reason(registry):
    lines = [
        json.dumps(RECORD, ensure_ascii=False),
        "{not json",
        json.dumps({**RECORD, "entities": [{"label": "人名", "span": [10, 99]}]}, ensure_ascii=False),
        json.dumps({**RECORD, "entities": [{"label": "人名", "span": "大阪"}]}, ensure_ascii=False),
        json.dumps({**RECORD, "relations": [{"head": [0, 4], "tail": [5, 7]}]}, ensure_ascii=False),
        json.dumps({**RECORD, "text": 42}),
        json.dumps({"task": "scnm_ner", "input": "山田は東京へ。", "output": "‹社会>固有表現抽出:人名;山田"},
                   ensure_ascii=False),
        json.dumps({"task": "scnm_ner", "input": "山田は東京へ。", "output": "garbage"}),
    ]
    report = build_pairs(lines, registry, TASKS)
    assert len(report.pairs) == 4 + 1  # the good record's four tasks and the ready pair
    reasons = dict(r.split(": ", 1) for r in report.rejected)
    assert set(reasons) == {"line 2", "line 3", "line 4", "line 5", "line 6", "line 8"}
    assert "outside the text" in reasons["line 3"]
    assert "is not in the text" in reasons["line 4"]
    assert "missing field 'relation'" in reasons["line 5"]
    assert "'text' must be a non-empty string" in reasons["line 6"]
    assert "does not parse" in reasons["line 8"]


def test_split_keeps_an_article_together_and_is_stable():
    assert split_of("article-7", 0.5) == split_of("article-7", 0.5)
    sides = {split_of(f"article-{i}", 0.2) for i in range(200)}
    assert sides == {"train", "heldout"}
    share = sum(split_of(f"article-{i}", 0.2) == "heldout" for i in range(2000)) / 2000
    assert 0.15 < share < 0.25


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=12)
record_keys = st.sampled_from(["text", "text_labels", "entities", "relations", "events", "sentiment_words", "split",
                               "id", "input", "output", "task"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(record_keys, json_values, max_size=7) | json_values, max_size=6))
def test_any_json_line_ends_as_pairs_or_a_rejection_never_an_exception(registry, rows):
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + ["{broken"]
    report = build_pairs(lines, registry, TASKS)
    assert len(report.rejected) <= len(lines)
    assert report.rejected[-1].startswith(f"line {len(lines)}: ")
    for pair in report.pairs:  # whatever was accepted round-trips
        assert pair.task in TASKS and pair.input.strip()
