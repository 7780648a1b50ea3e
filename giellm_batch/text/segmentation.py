"""Japanese sentence splitting with character offsets, quote-aware, using fugashi for morphology.

Rules, in order of precedence:
- a line break always ends a sentence (Livedoor bodies put one paragraph per line);
- 。！？!? end a sentence only outside quotes/brackets (「勝ててうれしい。次も頑張る」と語った。
  is one sentence); runs of terminators (！？) stay together;
- a sentence longer than `max_sentence_chars` is split at a morpheme boundary (fugashi),
  preferring the last 、 before the limit, so no text is ever cut mid-word or dropped;
- MeCab never sees more than `mecab_max_chars` characters at once: longer text is tagged in
  windows cut at the last space or punctuation before the bound (a hard cut if there is none),
  offsets kept exact. MeCab (fugashi 1.x, unidic-lite) segfaults on one call of
  ~190,000 characters of one Latin letter, ~400,000 of "x y ", ~530,000 of one kanji; 20,000
  (the default) is far below every one of them and above any real sentence or paragraph;
- an article body longer than `max_article_chars` is quarantined whole, reason naming the bound;
- a sentence whose prompt would not fit the model context (`PromptBudget`) is split again at the
  morpheme boundary nearest its middle (a 、 if one is near) until every prompt fits; a single
  morpheme that still does not fit makes the article a quarantine case. Nothing is truncated.

The segmentation step (steps/segment.py) turns any other exception while segmenting one article
into a quarantine case (reason "segmentation: <type>: <message>"), never a failed run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_TERMINATORS = set("。！？!?")
_OPENERS = {"「": "」", "『": "』", "（": "）", "(": ")", "“": "”", "【": "】", "《": "》"}
_CLOSERS = set(_OPENERS.values())
_MAX_QUOTE_CHARS = 400  # a quote longer than this is taken as unbalanced and stops protecting 。
MECAB_MAX_CHARS = 20_000  # characters per MeCab call (the module docstring gives MeCab's crash limits)
_WINDOW_CUTS = set(" \t\u3000、。，,.！？!?」』）)")


@dataclass(frozen=True)
class Sentence:
    index: int
    text: str
    char_start: int  # offset of text[0] in the article body
    char_end: int  # exclusive
    n_morphemes: int


class Segmenter:
    """Splits article bodies; holds one fugashi Tagger (built once per Python worker)."""

    def __init__(self, max_sentence_chars: int = 300, min_sentence_chars: int = 2,
                 mecab_max_chars: int = MECAB_MAX_CHARS) -> None:
        import fugashi  # heavy-ish: loads the MeCab dictionary; only on the executor

        self._tagger: Any = fugashi.Tagger()
        self.max_chars = max_sentence_chars
        self.min_chars = min_sentence_chars
        self.mecab_max_chars = mecab_max_chars

    def _tag(self, text: str) -> list[tuple[str, str, str]]:
        """(surface, pos1, pos2) per morpheme, MeCab called on at most `mecab_max_chars` at a time."""
        # MeCab reads C strings: it stops at the first NUL, and everything after it would get no
        # morphemes. A space keeps the length, so offsets still hold.
        text = text.replace("\x00", " ")
        out: list[tuple[str, str, str]] = []
        for start, end in _windows(text, self.mecab_max_chars):
            # Copied out at once: a node belongs to MeCab's lattice, which the next call reuses.
            out.extend((w.surface, str(getattr(w.feature, "pos1", "") or ""),
                        str(getattr(w.feature, "pos2", "") or "")) for w in self._tagger(text[start:end]))
        return out

    def morphemes(self, text: str) -> list[tuple[int, int, str, str]]:
        """(start, end, surface, pos1) for each morpheme, offsets into `text`."""
        return [(start, end, surface, pos1) for start, end, surface, pos1, _ in self.tagged(text)]

    def tagged(self, text: str) -> list[tuple[int, int, str, str, str]]:
        """(start, end, surface, pos1, pos2) for each morpheme, offsets into `text`."""
        out: list[tuple[int, int, str, str, str]] = []
        pos = 0
        for surface, pos1, pos2 in self._tag(text):
            start = text.find(surface, pos)
            if start < 0:  # MeCab normalised something; fall back to contiguous offsets
                start = pos
            end = start + len(surface)
            out.append((start, end, surface, pos1, pos2))
            pos = end
        return out

    def split(self, body: str, overflow: Callable[[str], int] | None = None) -> list[Sentence]:
        """Sentences of `body`. `overflow(text)` > 0 (the prompt's token count) means "too long for
        the model": such a sentence is split further; raises TooLongForModel if it cannot be."""
        sentences: list[Sentence] = []
        for start, end in _rule_spans(body):
            if end - start < self.min_chars or not _has_text(body[start:end]):
                continue
            for s, e in self._limit_length(body, start, end):
                for fs, fe in self._fit(body, s, e, overflow) if overflow else [(s, e)]:
                    piece = body[fs:fe]
                    # A split keeps every piece with text, however short (dropping it would lose
                    # text), and drops pieces of punctuation or control characters only.
                    if _has_text(piece):
                        sentences.append(Sentence(len(sentences), piece, fs, fe, len(self._tag(piece))))
        return sentences

    def _fit(self, body: str, start: int, end: int, overflow: Callable[[str], int]) -> list[tuple[int, int]]:
        tokens = overflow(body[start:end])
        if not tokens:
            return [(start, end)]
        morphs = self.morphemes(body[start:end])
        cuts = [m_end for _s, m_end, _surface, _pos in morphs[:-1]]
        if not cuts:
            raise TooLongForModel(
                f"sentence at characters {start}-{end} needs {tokens} prompt tokens, more than the model "
                "context allows (engine.max_model_len - engine.max_new_tokens), and is a single morpheme")
        middle = (end - start) / 2
        commas = [m_end for _s, m_end, surface, _pos in morphs[:-1] if surface in ("、", "，", ",")]
        near_commas = [c for c in commas if abs(c - middle) <= (end - start) / 4]
        cut = min(near_commas or cuts, key=lambda c: abs(c - middle))
        pieces = [_strip(body, start, start + cut), _strip(body, start + cut, end)]
        return [fit for s, e in pieces if e > s for fit in self._fit(body, s, e, overflow)]

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


def _windows(text: str, bound: int) -> list[tuple[int, int]]:
    """Spans of at most `bound` characters covering `text`, each cut after the last space or
    punctuation in its second half where there is one."""
    spans: list[tuple[int, int]] = []
    start, n = 0, len(text)
    while n - start > bound:
        end = start + bound
        cut = next((i + 1 for i in range(end - 1, start + bound // 2, -1) if text[i] in _WINDOW_CUTS), end)
        spans.append((start, cut))
        start = cut
    spans.append((start, n))
    return spans


def _has_text(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


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


class TooLongForModel(ValueError):
    """A piece of text whose prompt cannot be made to fit the model context by splitting."""


@dataclass(frozen=True)
class PromptBudget:
    """Picklable: which tokenizer counts prompt tokens, the limit, and what follows the text.

    Every GIELLM/OIELLM prompt is the sentence followed by a task-specific suffix, so a sentence
    fits when `sentence + suffix` fits for every selected task's suffix.
    """

    tokenizer_path: str
    max_prompt_tokens: int
    suffixes: tuple[str, ...]

    def counter(self) -> Callable[[str], int]:
        """overflow(text): 0 when every prompt fits, else the largest prompt's token count."""
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path)
        limit = self.max_prompt_tokens

        def overflow(text: str) -> int:
            # Byte-level BPE and byte-fallback SentencePiece make at most one token per UTF-8 byte
            # (+ a few specials): short prompts need no tokenizer call.
            if max(len((text + s).encode()) for s in self.suffixes) + 16 <= limit:
                return 0
            worst = max(len(tokenizer.encode(text + s)) for s in self.suffixes)
            return worst if worst > limit else 0

        return overflow


# Per-worker caches. Only module-level functions touch them: Spark pickles the step's closure by
# value, globals it names included, and a fugashi Tagger cannot be pickled.
_SEGMENTERS: dict[tuple[int, int, int], Segmenter] = {}


def worker_segmenter(max_sentence_chars: int = 300, min_sentence_chars: int = 2,
                     mecab_max_chars: int = MECAB_MAX_CHARS) -> Segmenter:
    """This worker's Segmenter for these settings, built once: a fugashi Tagger is never freed
    (each keeps ~6 MB for good), so building one per partition or call leaks."""
    key = (max_sentence_chars, min_sentence_chars, mecab_max_chars)
    return _SEGMENTERS.get(key) or _SEGMENTERS.setdefault(key, Segmenter(*key))


@functools.lru_cache(maxsize=1024)
def morpheme_boundaries(text: str) -> tuple[int, ...]:
    """Offsets in `text` where a morpheme starts or ends (this worker's Segmenter; cached, since a
    sentence's tasks ask for the same one in a row). Grounded decoding's word boundaries."""
    return tuple(sorted({b for start, end, _, _ in worker_segmenter().morphemes(text) for b in (start, end)}))


# Morphemes that make up a noun phrase (UniDic pos1). A name is a run of them: 東京|都|千代田|区.
NOUN_PHRASE_POS = frozenset({"名詞", "接頭辞", "接尾辞"})


@functools.lru_cache(maxsize=1024)
def noun_phrase_edges(text: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(morpheme boundaries, where a span may start, where it may end) for grounded decoding's
    `noun_phrases`: a span starts where a maximal run of noun-phrase morphemes starts, and ends where
    one ends or before a suffix that closes it (山田|さん, 山田|氏). On the real-text TEST gold 82.8 %
    of spans start and end there (79.0 % at run edges alone), on the synthetic held-out 80.5 %
    (73.1 %). Ending after any proper noun as well reached 86.7 % / 96.0 % but lost 8 points of
    real-text F1 (docs/quality.md)."""
    morphemes = worker_segmenter().tagged(text)
    nouny = [pos1 in NOUN_PHRASE_POS for _, _, _, pos1, _ in morphemes]
    last = len(morphemes) - 1
    starts = tuple(m[0] for i, m in enumerate(morphemes) if nouny[i] and (i == 0 or not nouny[i - 1]))
    ends = tuple(sorted({m[1] for i, m in enumerate(morphemes) if nouny[i] and (
        i == last or not nouny[i + 1] or morphemes[i + 1][3] == "接尾辞")}))
    # From the same tagging (MeCab once per sentence on the generation path), as morpheme_boundaries.
    return tuple(sorted({b for m in morphemes for b in (m[0], m[1])})), starts, ends
