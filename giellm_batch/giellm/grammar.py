"""Grounded decoding: one grammar per prompt in which every span can only be a substring of the
prompt's sentence, so a span is never invented and its offsets are exact.

The substrings of a sentence are the words of its suffix automaton (every state accepting): at most
2n states and 3n transitions for n characters, built in O(n). Each state becomes one grammar
rule, each transition one alternative, so the grammar grows linearly with the sentence. Labels
stay the task's closed sets (text labels: the candidate list). Characters that would make a span
ambiguous to the parser (separators, brackets, newlines) are not followed, so a span never
contains one; the parts of the sentence between them remain reachable.

With word boundaries (`boundaries`: the sentence's morpheme boundaries, from the caller) the
automaton is built over the pieces between boundaries instead of single characters, so a span can
only start and end where a word does: a name is never cut inside a word. The grammar then also
has fewer states (one per piece, not per character). `starts` / `ends` narrow that further (e.g.
to the edges of noun phrases): a piece carries whether a span may start or end with it.

The grammar is xgrammar EBNF, handed to vLLM's structured outputs per request
(`StructuredOutputsParams(grammar=...)`). A sentence's span rules are built once and shared by
its tasks (`SpanRules` is cached on the sentence text).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from giellm_batch.giellm.regex_constraint import OPEN_LABEL_CHARS, OPEN_TEXT_LABEL_CHARS, SPAN_FORBIDDEN, repeat
from giellm_batch.giellm.tasks import PromptProfile, TaskSpec


def suffix_automaton(text: str) -> list[dict[str, int]]:
    """Transitions of the suffix automaton of `text` (state 0 is the start); every path from the
    start spells a substring and every substring has exactly one path."""
    return _automaton(text)[0]


def _automaton(text: Sequence[Any]) -> tuple[list[dict[Any, int]], list[int]]:
    """(transitions, length of each state's longest string); a transition always leads to a longer state.
    `text` is a sequence of symbols: the characters of a string, or the pieces between word boundaries."""
    trans: list[dict[Any, int]] = [{}]
    link, length = [-1], [0]
    last = 0
    for ch in text:
        cur = len(trans)
        trans.append({})
        length.append(length[last] + 1)
        link.append(0)
        p = last
        while p != -1 and ch not in trans[p]:
            trans[p][ch] = cur
            p = link[p]
        if p != -1:
            q = trans[p][ch]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(trans)
                trans.append(dict(trans[q]))
                length.append(length[p] + 1)
                link.append(link[q])
                while p != -1 and trans[p].get(ch) == q:
                    trans[p][ch] = clone
                    p = link[p]
                link[q] = clone
                link[cur] = clone
        last = cur
    return trans, length


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class SpanRules:
    """EBNF rules whose start symbol `span` derives exactly the non-empty allowed substrings."""

    rules: str
    n_starts: int  # 0: no character of the sentence can start a span (empty, or separators only)


Piece = tuple[str, bool, bool]  # (text, a span may start with it, a span may end with it)


def pieces(sentence: str, boundaries: Sequence[int] | None, starts: Sequence[int] | None = None,
           ends: Sequence[int] | None = None) -> list[Piece]:
    """The sentence cut at `boundaries` (offsets; 0 and the end are implied), or its characters;
    a piece may start a span when its start is in `starts`, end one when its end is in `ends`
    (None: everywhere). The flags are part of the symbol, so equal text at a place where a span may
    not start is another symbol."""
    if boundaries is None:
        return [(ch, True, True) for ch in sentence]
    cuts = sorted({0, len(sentence), *(b for b in boundaries if 0 < b < len(sentence))})
    first, last = set(starts if starts is not None else cuts), set(ends if ends is not None else cuts)
    return [(sentence[a:b], a in first, b in last) for a, b in itertools.pairwise(cuts)]


@lru_cache(maxsize=4096)
def span_rules(sentence: str, boundaries: tuple[int, ...] | None = None, starts: tuple[int, ...] | None = None,
               ends: tuple[int, ...] | None = None) -> SpanRules:
    """The span grammar of one sentence (cached: the sentence's tasks share it); with `boundaries`,
    spans start and end only there, and with `starts` / `ends` only at those of them.

    A span neither starts nor ends with whitespace (the parser strips it, so such a span could not
    be read back as written); whitespace inside a span ("iPhone 15 Pro") is kept. A piece holding a
    separator is never followed."""
    trans, length = _automaton(pieces(sentence, boundaries, starts, ends))
    # All transitions into a suffix-automaton state carry the same symbol: the state's last one.
    last: list[Piece] = [("", False, False)] * len(trans)
    for edges in trans:
        for piece, target in edges.items():
            last[target] = piece
    ends_ok = [can_end and not text[-1].isspace() for text, _, can_end in last]
    blocked = {piece for edges in trans for piece in edges if any(c in SPAN_FORBIDDEN for c in piece[0])}
    viable = [False] * len(trans)  # some allowed path from here ends on a non-space character
    for state in sorted(range(len(trans)), key=lambda s: -length[s]):  # targets are always longer
        viable[state] = (state != 0 and ends_ok[state]) or any(
            viable[t] for ch, t in trans[state].items() if ch not in blocked)
    names: dict[int, str] = {}
    order: list[int] = []

    def name(state: int) -> str:
        if state not in names:
            names[state] = f"g{len(names)}"
            order.append(state)
        return names[state]

    def alternatives(state: int) -> list[str]:
        alts = []
        for ch, target in sorted(trans[state].items()):
            if ch in blocked or not viable[target] or (state == 0 and (ch[0][0].isspace() or not ch[1])):
                continue
            has_more = any(viable[t] for c, t in trans[target].items() if c not in blocked)
            alts.append(f"{_literal(ch[0])} {name(target)}" if has_more else _literal(ch[0]))
        return alts

    start = alternatives(0)
    if not start:  # nothing groundable: task_grammar then admits no items at all
        return SpanRules("", 0)
    lines = [f"span ::= {' | '.join(start)}"]
    i = 0
    while i < len(order):
        state = order[i]
        optional = "?" if ends_ok[state] else ""  # a span may stop here unless it would end on a space
        lines.append(f"{names[state]} ::= ({' | '.join(alternatives(state))}){optional}")
        i += 1
    return SpanRules("\n".join(lines), len(start))


def _choice(words: Sequence[str], open_chars: int) -> str:
    if words:
        return "(" + " | ".join(_literal(w) for w in words) + ")"
    forbidden = "".join("\\n" if c == "\n" else "\\r" if c == "\r" else ("\\" + c if c in "]\\^-" else c)
                        for c in SPAN_FORBIDDEN)
    return f"[^{forbidden}]" + "{1," + str(open_chars) + "}"


def task_grammar(task: TaskSpec, profile: PromptProfile, sentence: str, max_items: int = 0,
                 boundaries: tuple[int, ...] | None = None, starts: tuple[int, ...] | None = None,
                 ends: tuple[int, ...] | None = None) -> str:
    """xgrammar EBNF for every output this task may produce about `sentence`, spans grounded (and
    starting and ending only at `boundaries` when given: span_rules).

    max_items 0 = no cap on the number of items: `max_new_tokens` bounds the output (a cut output
    is `partial`)."""
    fields = [("label" if name == task.label_field else "span") for name in task.fields]
    item = f"{_literal(profile.item_open)} " + f" {_literal(profile.item_sep)} ".join(fields)
    rules = span_rules(sentence, boundaries, starts, ends)
    # ":無い" (no_item_marker) is how some checkpoints say "nothing found"; the parser accepts it.
    nothing = f"{_literal(profile.item_open)} {_literal(profile.no_item_marker)}"
    if not rules.n_starts:
        items = f'"" | {nothing}'
    elif task.item_kind == "pair":
        items = f"(item){repeat(0, max_items)} | {nothing}"
    else:
        items = f"((item){repeat(1, max_items)} {_literal(profile.item_open)})? | {nothing}"
    text_label = _choice(task.text_labels, OPEN_TEXT_LABEL_CHARS)
    if profile.name == "oiellm":
        root = f'root ::= {text_label} "/" {_literal(task.iw)} "/" items'
    else:
        root = (f"root ::= {_literal(profile.label_open)} {text_label} {_literal(profile.label_close)} "
                f"{_literal(task.iw)} items")
    lines = [root, f"items ::= {items}"]
    if rules.n_starts:
        lines += [f"item ::= {item}", f"label ::= {_choice(task.item_labels, OPEN_LABEL_CHARS)}", rules.rules]
    return "\n".join(lines)
