"""Japanese sentence splitting with character offsets, quote-aware, using fugashi for morphology.

Rules, in order of precedence:
- a line break always ends a sentence (Livedoor bodies put one paragraph per line);
- 。！？!? end a sentence only outside quotes/brackets (「勝ててうれしい。次も頑張る」と語った。
  is one sentence); runs of terminators (！？) stay together;
- a sentence longer than `max_sentence_chars` is split at a morpheme boundary (fugashi),
  preferring the last 、 before the limit, so no text is ever cut mid-word or dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_TERMINATORS = set("。！？!?")
_OPENERS = {"「": "」", "『": "』", "（": "）", "(": ")", "“": "”", "【": "】", "《": "》"}
_CLOSERS = set(_OPENERS.values())
_MAX_QUOTE_CHARS = 400  # a quote longer than this is taken as unbalanced and stops protecting 。


@dataclass(frozen=True)
class Sentence:
    index: int
    text: str
    char_start: int  # offset of text[0] in the article body
    char_end: int  # exclusive
    n_morphemes: int


class Segmenter:
    """Splits article bodies; holds one fugashi Tagger (built once per Python worker)."""

    def __init__(self, max_sentence_chars: int = 300, min_sentence_chars: int = 2) -> None:
        import fugashi  # heavy-ish: loads the MeCab dictionary; only on the executor

        self._tagger: Any = fugashi.Tagger()
        self.max_chars = max_sentence_chars
        self.min_chars = min_sentence_chars

    def morphemes(self, text: str) -> list[tuple[int, int, str, str]]:
        """(start, end, surface, pos1) for each morpheme, offsets into `text`."""
        out: list[tuple[int, int, str, str]] = []
        pos = 0
        for word in self._tagger(text):
            start = text.find(word.surface, pos)
            if start < 0:  # MeCab normalised something; fall back to contiguous offsets
                start = pos
            end = start + len(word.surface)
            out.append((start, end, word.surface, str(getattr(word.feature, "pos1", "") or "")))
            pos = end
        return out

    def split(self, body: str) -> list[Sentence]:
        sentences: list[Sentence] = []
        for start, end in _rule_spans(body):
            for s, e in self._limit_length(body, start, end):
                text = body[s:e]
                if len(text) < self.min_chars or not any(ch.isalnum() for ch in text):
                    continue
                sentences.append(Sentence(len(sentences), text, s, e, len(self._tagger(text))))
        return sentences

    def _limit_length(self, body: str, start: int, end: int) -> list[tuple[int, int]]:
        if end - start <= self.max_chars:
            return [(start, end)]
        pieces: list[tuple[int, int]] = []
        morphs = self.morphemes(body[start:end])
        piece_start = 0
        best_comma = best_any = 0
        for m_start, m_end, surface, _pos in morphs:
            if m_end - piece_start > self.max_chars:
                cut = best_comma or best_any or m_start
                if cut <= piece_start:  # a single morpheme longer than the limit: keep it whole
                    cut = m_end
                pieces.append((start + piece_start, start + cut))
                piece_start, best_comma, best_any = cut, 0, 0
            if m_end > piece_start:
                best_any = m_end if m_end - piece_start <= self.max_chars else best_any
                if surface in ("、", "，", ","):
                    best_comma = m_end
        if piece_start < end - start:
            pieces.append((start + piece_start, end))
        return [(s, e) for s, e in (_strip(body, s, e) for s, e in pieces) if e > s]


def _strip(body: str, start: int, end: int) -> tuple[int, int]:
    while start < end and body[start].isspace():
        start += 1
    while end > start and body[end - 1].isspace():
        end -= 1
    return start, end


def _rule_spans(body: str) -> list[tuple[int, int]]:
    """Sentence spans by punctuation/quote rules, before the length limit."""
    spans: list[tuple[int, int]] = []
    stack: list[str] = []
    quote_start = 0
    start = 0
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch in "\r\n":
            spans.append(_strip(body, start, i))
            stack.clear()
            start = i + 1
        elif ch in _OPENERS:
            if not stack:
                quote_start = i
            stack.append(_OPENERS[ch])
        elif ch in _CLOSERS:
            if stack and stack[-1] == ch:
                stack.pop()
        elif ch in _TERMINATORS and (not stack or i - quote_start > _MAX_QUOTE_CHARS):
            while i + 1 < n and (body[i + 1] in _TERMINATORS or body[i + 1] in _CLOSERS):
                i += 1
            spans.append(_strip(body, start, i + 1))
            stack.clear()
            start = i + 1
        i += 1
    spans.append(_strip(body, start, n))
    return [(s, e) for s, e in spans if e > s]


_SEGMENTERS: dict[tuple[int, int], Segmenter] = {}


def segmentation_step(max_sentence_chars: int, min_sentence_chars: int) -> Any:
    """mapInPandas function: accepted article rows (article_id, body) -> schemas.SENTENCE rows."""

    def run(batches: Any) -> Any:
        import pandas as pd

        key = (max_sentence_chars, min_sentence_chars)
        segmenter = _SEGMENTERS.get(key) or _SEGMENTERS.setdefault(key, Segmenter(*key))
        columns = ["article_id", "sentence_idx", "text", "char_start", "char_end", "n_morphemes"]
        for batch in batches:
            rows = [
                (article_id, s.index, s.text, s.char_start, s.char_end, s.n_morphemes)
                for article_id, body in zip(batch["article_id"], batch["body"], strict=True)
                for s in segmenter.split(body)
            ]
            yield pd.DataFrame(rows, columns=columns)

    return run
