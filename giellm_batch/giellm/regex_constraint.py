"""Structured-output constraints (regex decoding): one regex per task that only admits parseable outputs.

vLLM's structured outputs (xgrammar backend) mask every token that would leave the regex, so
even a random-weight model produces `ok` parses. By default nothing caps the number of items or
a span's length (a cap would silently cut correct extractions): `max_new_tokens` bounds the
output and a cut one is `partial`. Optional bounds (`max_items`, `max_span_chars` > 0) make the
output fit `worst_case_tokens`. Grounded decoding (spans restricted to the sentence) is `grammar.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

from giellm_batch.giellm.tasks import PromptProfile, TaskSpec

_META = set(".^$*+?{}[]\\|()/-")
# Characters that would make a span ambiguous to the parser (separators, brackets, newlines).
SPAN_FORBIDDEN = ":;：；\n\r‹<>＜＞/"
OPEN_LABEL_CHARS = 12
OPEN_TEXT_LABEL_CHARS = 16


def _escape(text: str) -> str:
    # Own escaping: re.escape also escapes spaces and non-ASCII, which xgrammar need not accept.
    return "".join(f"\\{c}" if c in _META else c for c in text)


def _alternatives(words: Sequence[str]) -> str:
    return "(" + "|".join(_escape(w) for w in words) + ")"


def repeat(min_count: int, max_count: int) -> str:
    """Regex/EBNF repetition suffix; max_count 0 = unbounded."""
    if not max_count:
        return "*" if min_count == 0 else "+"
    return f"{{{min_count},{max_count}}}"


def _free_text(max_chars: int) -> str:
    forbidden = "".join("\\n" if c == "\n" else "\\r" if c == "\r" else _escape(c) for c in SPAN_FORBIDDEN)
    return f"[^{forbidden}]{repeat(1, max_chars)}"


def task_regex(task: TaskSpec, profile: PromptProfile, max_items: int, max_span_chars: int) -> str:
    """Regex for every output this task may produce under regex decoding (0 = unbounded)."""
    text_label = _alternatives(task.text_labels) if task.text_labels else _free_text(OPEN_TEXT_LABEL_CHARS)
    item_label = _alternatives(task.item_labels) if task.item_labels else _free_text(OPEN_LABEL_CHARS)
    span = _free_text(max_span_chars)
    fields = [item_label if name == task.label_field else span for name in task.fields]
    item = _escape(profile.item_open) + _escape(profile.item_sep).join(fields)
    # ":無い" (no_item_marker): how some checkpoints say "nothing found"; the parser accepts it.
    nothing = _escape(profile.item_open + profile.no_item_marker)
    if task.item_kind == "pair":
        items = f"(({item}){repeat(0, max_items)}|{nothing})"
    else:
        items = f"(({item}){repeat(1, max_items)}{_escape(profile.item_open)}|{nothing})?"
    if profile.name == "oiellm":
        return f"{text_label}/{_escape(task.iw)}/{items}"
    head = f"{_escape(profile.label_open)}{text_label}{_escape(profile.label_close)}{_escape(task.iw)}"
    return head + items


def worst_case_tokens(task: TaskSpec, profile: PromptProfile, max_items: int, max_span_chars: int) -> int | None:
    """Upper bound on new tokens for a bounded regex output (a byte-level token holds >= 1 byte);
    None when the output is unbounded (either bound 0)."""
    if not max_items or not max_span_chars:
        return None

    def longest(words: Sequence[str], open_chars: int) -> int:
        return max((len(w.encode()) for w in words), default=open_chars * 4)

    label_bytes = longest(task.item_labels, OPEN_LABEL_CHARS)
    span_bytes = max_span_chars * 4
    item_bytes = len(profile.item_open.encode()) + sum(
        label_bytes if name == task.label_field else span_bytes for name in task.fields
    ) + len(profile.item_sep.encode()) * (len(task.fields) - 1)
    head = longest(task.text_labels, OPEN_TEXT_LABEL_CHARS) + len(task.iw.encode()) + 6
    return head + max_items * item_bytes + 2  # closing ':' and EOS
