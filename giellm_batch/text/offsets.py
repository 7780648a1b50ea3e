"""Locate extracted spans in the source: character offsets into the article body.

A span is searched in its sentence (the model only saw that sentence); offsets are then shifted
by the sentence's start so they index the article body. A span that is not in the text is kept
with `grounded = false` and null offsets: a hallucinated entity is worth seeing, not dropping.
When the same span occurs twice, the occurrence after the previous item's match is preferred,
so repeated names in one sentence map to successive mentions.

Under grounded decoding (giellm/grammar.py) every span is a substring of its sentence and keeps its
exact offsets. Otherwise, with the sentence's morphemes (fugashi), a span that cuts a word is snapped outward to the
morpheme boundaries (`snapped = true`; the offsets then cover the whole words, the text stays
what the model wrote), and for tasks with an expected part of speech (SCPOS) the span's head
morpheme is checked: `pos` is its UniDic POS, `pos_ok` whether it is one the task expects.
"""

from __future__ import annotations

import json
from typing import Any

from giellm_batch.giellm.parsing import ParseResult
from giellm_batch.giellm.tasks import TaskSpec
from giellm_batch.text.entity_keys import span_key

Morpheme = tuple[int, int, str, str]  # start, end, surface, pos1 (offsets into the sentence)
_NOT_HEAD = {"補助記号", "記号", "空白", "助詞", "助動詞"}


def snap(start: int, end: int, morphemes: list[Morpheme]) -> tuple[int, int]:
    """Widen [start, end) so that it neither starts nor ends inside a morpheme."""
    for m_start, m_end, _surface, _pos in morphemes:
        if m_start < start < m_end:
            start = m_start
        if m_start < end < m_end:
            end = m_end
    return start, end


def head_pos(start: int, end: int, morphemes: list[Morpheme]) -> str | None:
    """POS of the last content morpheme inside [start, end) (Japanese phrases are head-final); of the
    morphemes it overlaps when it lies inside one word (an unsnapped span)."""
    inside = ([m for m in morphemes if m[0] >= start and m[1] <= end]
              or [m for m in morphemes if m[0] < end and m[1] > start])
    content = [m for m in inside if m[3] not in _NOT_HEAD] or inside
    return content[-1][3] if content else None


def locate(span: str, sentence: str, start_at: int = 0) -> tuple[int, int] | None:
    """(start, end) of `span` in `sentence`, searching from `start_at` first, else from 0."""
    if not span:
        return None
    idx = sentence.find(span, start_at)
    if idx < 0 and start_at:
        idx = sentence.find(span)
    if idx < 0:
        stripped = span.strip(" 　「」『』")
        if stripped and stripped != span:
            return locate(stripped, sentence, start_at)
        return None
    return idx, idx + len(span)


def ground_items(
    result: ParseResult,
    task: TaskSpec,
    sentence: str,
    sentence_start: int,
    morphemes: list[Morpheme] | None = None,
    snap_spans: bool = True,
) -> list[dict[str, Any]]:
    """Items as dicts matching schemas.ITEMS, with article-level offsets.

    `snap_spans=False` keeps offsets exactly at the span (grounded decoding: the model chose the
    substring, so its boundaries are the answer, and `span == body[char_start:char_end]` holds)."""
    items: list[dict[str, Any]] = []
    cursor = 0
    for idx, item in enumerate(result.items):
        spans = []
        for name, value in zip(task.fields, item.fields, strict=True):
            if name == task.label_field:
                continue
            found = locate(value, sentence, cursor)
            span: dict[str, Any] = {"role": name, "text": value, "char_start": None, "char_end": None,
                                    "grounded": found is not None, "snapped": False, "pos": None, "pos_ok": None,
                                    "key": span_key(value)}
            if found is not None:
                cursor = found[0]
                start, end = snap(*found, morphemes) if morphemes and snap_spans else found
                span.update(char_start=sentence_start + start, char_end=sentence_start + end,
                            snapped=(start, end) != found)
                if task.pos and morphemes:
                    span["pos"] = head_pos(start, end, morphemes)
                    span["pos_ok"] = span["pos"] in task.pos
            spans.append(span)
        items.append({"item_idx": idx, "label": item.label, "label_known": item.label_known, "spans": spans})
    return items


def items_to_json(items: list[dict[str, Any]]) -> str:
    return json.dumps(items, ensure_ascii=False)
