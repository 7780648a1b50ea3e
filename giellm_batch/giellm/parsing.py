"""A total parser for GIELLM / OIELLM outputs: any string in, a ParseResult out, never an exception.

Status:
  ok       text label, IW echo and every item well formed, output not cut off
  partial  a text label was found but something is missing: cut at max_new_tokens, a malformed
           item, a missing IW echo. Whatever parsed is kept.
  invalid  no text label could be found; the raw output is still kept by the caller.

Spans may contain the separators themselves (times 18:30, ratios 3:1, URLs). Items are therefore
not split blindly: the body is cut at every ':' and the pieces are regrouped by a small dynamic
program that prefers well-formed items whose spans occur in the source sentence.

An answer does not repeat an item: an item is kept at most as often as its spans occur in the
sentence (a name written twice may be reported twice), further copies are dropped and flagged
`repeated_items:N`. Small models loop on their last item; the copies are never new information.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from giellm_batch.giellm.tasks import PromptProfile, TaskSpec

_FULLWIDTH = str.maketrans({"：": ":", "；": ";"})
_LABEL_RE = re.compile(r"\s*[‹<＜]([^>＞\n]{0,64})[>＞]")
_MAX_CHUNKS_PER_ITEM = 4  # how many ':'-pieces one item may swallow (e.g. a URL with a port)
_MAX_BODY_CHUNKS = 400  # bound the work on runaway outputs; the rest is flagged, not parsed


@dataclass(frozen=True)
class ParsedItem:
    fields: tuple[str, ...]  # in the task's field order
    label: str
    label_known: bool  # label is in the task's item_labels (always True for open label sets)


@dataclass(frozen=True)
class ParseResult:
    status: str  # ok | partial | invalid
    text_label: str | None
    text_label_known: bool
    items: tuple[ParsedItem, ...]
    flags: tuple[str, ...] = field(default=())


def parse_output(
    raw: str | None,
    task: TaskSpec,
    profile: PromptProfile,
    *,
    sentence: str = "",
    truncated: bool = False,
    drop_repeats: bool = True,
) -> ParseResult:
    """Parse one model output. `truncated` = generation stopped at max_new_tokens. `drop_repeats`
    False keeps every item as written (gold annotations are scored as they are)."""
    try:
        return _parse(raw or "", task, profile, sentence, truncated, drop_repeats)
    except Exception as exc:  # the parser must be total; a bug here must not kill a partition
        return ParseResult("invalid", None, False, (), (f"parser_error:{type(exc).__name__}",))


def _parse(raw: str, task: TaskSpec, profile: PromptProfile, sentence: str, truncated: bool,
           drop_repeats: bool = True) -> ParseResult:
    flags: list[str] = []
    split = _split_oiellm if profile.name == "oiellm" else _split_giellm
    head = split(raw, task.iw, flags)
    if head is None:
        return ParseResult("invalid", None, False, (), ("no_text_label", *flags))
    text_label, body = head
    label_known = not task.text_labels or text_label in task.text_labels
    if not label_known:
        flags.append("unknown_text_label")
    items, malformed = _parse_items(body, task, profile, sentence)
    items, repeated = _without_repeats(items, task, sentence) if drop_repeats else (items, 0)
    if repeated:
        flags.append(f"repeated_items:{repeated}")
    if malformed:
        flags.append(f"malformed_items:{malformed}")
    for item in items:
        if not item.label_known:
            flags.append("unknown_item_label")
            break
    if truncated:
        flags.append("truncated")
    structural = truncated or malformed or "iw_missing" in flags
    return ParseResult("partial" if structural else "ok", text_label, label_known, tuple(items), tuple(flags))


def _without_repeats(items: list[ParsedItem], task: TaskSpec, sentence: str) -> tuple[list[ParsedItem], int]:
    """(items with copies beyond what the sentence supports dropped, how many were dropped)."""
    seen: dict[tuple[str, ...], int] = {}
    kept = []
    for item in items:
        spans = [f for k, f in enumerate(item.fields) if task.fields[k] != task.label_field]
        allowed = max(1, min((sentence.count(f) for f in spans), default=1)) if sentence else 1
        seen[item.fields] = seen.get(item.fields, 0) + 1
        if seen[item.fields] <= allowed:
            kept.append(item)
    return kept, len(items) - len(kept)


def _split_giellm(raw: str, iw: str, flags: list[str]) -> tuple[str, str] | None:
    match = _LABEL_RE.match(raw)
    if match is None:
        return None
    rest = raw[match.end():]
    if rest.startswith(iw):
        return match.group(1).strip(), rest[len(iw):]
    flags.append("iw_missing")
    cut = min((i for i in (rest.find(":"), rest.find("：")) if i >= 0), default=len(rest))
    return match.group(1).strip(), rest[cut:]


def _split_oiellm(raw: str, iw: str, flags: list[str]) -> tuple[str, str] | None:
    marker = f"/{iw}/"
    idx = raw.find(marker)
    if idx > 0:
        return raw[:idx].strip(), raw[idx + len(marker):]
    label, sep, rest = raw.partition("/")
    if not sep or not label.strip():
        return None
    flags.append("iw_missing")
    cut = rest.find(":")
    return label.strip(), rest[cut:] if cut >= 0 else ""


def _parse_items(
    body: str, task: TaskSpec, profile: PromptProfile, sentence: str
) -> tuple[list[ParsedItem], int]:
    body = body.translate(_FULLWIDTH).strip()
    item_open = profile.item_open if len(profile.item_open) == 1 else ":"
    chunks = [c for c in body.split(item_open) if c.strip() and c.strip() != profile.no_item_marker]
    malformed = 0
    if len(chunks) > _MAX_BODY_CHUNKS:
        malformed += len(chunks) - _MAX_BODY_CHUNKS
        chunks = chunks[:_MAX_BODY_CHUNKS]
    best = _segment(chunks, task, profile.item_sep, sentence, item_open)
    items = [it for it in best if it is not None]
    return items, malformed + sum(1 for it in best if it is None)


def _segment(
    chunks: list[str], task: TaskSpec, item_sep: str, sentence: str, item_open: str
) -> list[ParsedItem | None]:
    """Best grouping of ':'-pieces into items (None = a piece that forms no item)."""
    n = len(chunks)
    score: list[float] = [0.0] * (n + 1)
    choice: list[tuple[int, ParsedItem | None]] = [(n, None)] * (n + 1)
    for i in range(n - 1, -1, -1):
        score[i], choice[i] = score[i + 1] - 5.0, (i + 1, None)  # drop one piece as malformed
        for j in range(i + 1, min(n, i + _MAX_CHUNKS_PER_ITEM) + 1):
            found = _best_fields(item_open.join(chunks[i:j]), task, item_sep, sentence, item_open)
            if found is not None and found[0] + score[j] > score[i]:
                score[i], choice[i] = found[0] + score[j], (j, found[1])
    out: list[ParsedItem | None] = []
    i = 0
    while i < n:
        nxt, item = choice[i]
        out.append(item)
        i = nxt
    return out


def _best_fields(
    text: str, task: TaskSpec, item_sep: str, sentence: str, item_open: str
) -> tuple[float, ParsedItem] | None:
    parts = text.split(item_sep)
    want = len(task.fields)
    if len(parts) < want or len(parts) > want + 3:
        return None
    best: tuple[float, ParsedItem] | None = None
    label_idx = task.fields.index(task.label_field)
    # Choose where the (want - 1) real separators are among the ';' positions.
    for cuts in itertools.combinations(range(1, len(parts)), want - 1):
        bounds = (0, *cuts, len(parts))
        fields = tuple(item_sep.join(parts[a:b]).strip() for a, b in itertools.pairwise(bounds))
        if any(not f for f in fields):
            continue
        label = fields[label_idx]
        known = not task.item_labels or label in task.item_labels
        grounded = sum(1 for k, f in enumerate(fields) if k != label_idx and sentence and f in sentence)
        value = 3.0 + (1.0 if known else 0.0) + 2.0 * grounded - 0.5 * (len(parts) - want)
        # A ':' inside a field is only believed when the source sentence contains that field.
        for f in fields:
            if item_open in f and not (sentence and f in sentence):
                value -= 6.0 * f.count(item_open)
        if best is None or value > best[0]:
            best = (value, ParsedItem(fields, label, known))
    return best
