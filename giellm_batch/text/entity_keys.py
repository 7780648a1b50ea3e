"""Normalised keys for spans, so analytics count one entity once however it was written.

News text writes the same name in several forms: half-width katakana (ｿﾌﾄﾊﾞﾝｸ) next to full-width
(ソフトバンク), full-width Latin and digits (ＡＢＣ１２３), stray spaces ("山田 太郎"), mixed case
(SoftBank / SOFTBANK). The key is Unicode NFKC (width and compatibility forms folded), case-folded,
with whitespace removed between non-Latin characters and collapsed to one space between Latin
words. The surface form stays in the table next to it; the key is only for grouping and joins.
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def _spaced(ch: str) -> bool:
    """Does a space next to `ch` separate words? Yes for Latin, Greek, Cyrillic... (narrow letters and
    digits, accented ones included); no for CJK and kana, which are written without spaces."""
    return ch.isalnum() and unicodedata.east_asian_width(ch) not in ("W", "F")


def span_key(text: str | None) -> str | None:
    """The grouping key of a span (None stays None)."""
    if text is None:
        return None
    folded = unicodedata.normalize("NFKC", text).casefold()
    parts = _SPACES.split(folded.strip())
    out = parts[0] if parts else ""
    for part in parts[1:]:
        # keep one space only where it separates two Latin words ("new york"), not inside Japanese
        joiner = " " if out and part and _spaced(out[-1]) and _spaced(part[0]) else ""
        out += joiner + part
    return out
