"""Locate extracted spans in the source: character offsets into the article body.

A span is searched in its sentence (the model only saw that sentence); offsets are then shifted
by the sentence's start so they index the article body. A span that is not in the text is kept
with `grounded = false` and null offsets: a hallucinated entity is worth seeing, not dropping.
When the same span occurs twice, the occurrence after the previous item's match is preferred,
so repeated names in one sentence map to successive mentions.
"""

from __future__ import annotations

import json
from typing import Any

from giellm_batch.parsing import ParseResult
from giellm_batch.tasks import TaskSpec


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


def ground_items(result: ParseResult, task: TaskSpec, sentence: str, sentence_start: int) -> list[dict[str, Any]]:
    """Items as dicts matching schemas.ITEMS, with article-level offsets."""
    items: list[dict[str, Any]] = []
    cursor = 0
    for idx, item in enumerate(result.items):
        spans = []
        for name, value in zip(task.fields, item.fields, strict=True):
            if name == task.label_field:
                continue
            found = locate(value, sentence, cursor)
            if found is not None:
                cursor = found[0]
            spans.append({
                "role": name,
                "text": value,
                "char_start": None if found is None else sentence_start + found[0],
                "char_end": None if found is None else sentence_start + found[1],
                "grounded": found is not None,
            })
        items.append({"item_idx": idx, "label": item.label, "label_known": item.label_known, "spans": spans})
    return items


def items_to_json(items: list[dict[str, Any]]) -> str:
    return json.dumps(items, ensure_ascii=False)
