"""Entity scores on real text, one implementation for the real-text bench, its tests and any
checkpoint compared with it.

An answer is a list of (label, span) items for one sentence. Exact-span matching, as multisets (a
name written twice and found twice counts twice):
- untyped: the span strings alone;
- typed: (label, span);
- organisations merged: typed with the organisation labels folded into one (the commonest
  confusion between 法人名, 政治的組織名 and その他の組織名 is not a question of where a name is);
- WL: typed matches / gold items (the paper's word-level score);
- per-type recall, the share of predicted spans of 1-2 characters and of items an answer repeated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Item = tuple[str, str]  # (label, span)


@dataclass
class Match:
    gold: int = 0
    predicted: int = 0
    matched: int = 0

    def add(self, gold: Counter[object], predicted: Counter[object]) -> None:
        self.gold += sum(gold.values())
        self.predicted += sum(predicted.values())
        self.matched += sum((gold & predicted).values())

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class EntityScores:
    untyped: Match = field(default_factory=Match)
    typed: Match = field(default_factory=Match)
    merged: Match = field(default_factory=Match)
    by_type: dict[str, Match] = field(default_factory=dict)
    short_spans: int = 0  # predicted spans of 1-2 characters
    repeated: int = 0  # items an answer repeated beyond what its sentence holds (dropped by the parser)
    sentences: int = 0

    @property
    def wl(self) -> float:
        return self.typed.recall

    @property
    def short_share(self) -> float:
        return self.short_spans / self.typed.predicted if self.typed.predicted else 0.0

    @property
    def repeated_share(self) -> float:
        written = self.typed.predicted + self.repeated
        return self.repeated / written if written else 0.0

    def row(self) -> dict[str, float]:
        return {"f1": self.untyped.f1, "typed_f1": self.typed.f1, "org_merged_f1": self.merged.f1,
                "precision": self.untyped.precision, "recall": self.untyped.recall, "wl": self.wl,
                "short_share": self.short_share, "repeated_share": self.repeated_share}


def score_entities(gold: Sequence[Iterable[Item]], predicted: Sequence[Iterable[Item]],
                   merge: Mapping[str, str] | None = None, repeated: Sequence[int] | None = None) -> EntityScores:
    """Scores of `predicted` answers against `gold`, sentence by sentence (same order and length).
    `merge` maps labels that count as one for the merged score; `repeated` the items each answer
    repeated (the parser's `repeated_items:N` flag)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold answers but {len(predicted)} predicted")
    fold: Callable[[str], str] = (lambda label: merge.get(label, label)) if merge else (lambda label: label)
    scores = EntityScores(sentences=len(gold), repeated=sum(repeated or ()))
    for gold_items, predicted_items in zip(gold, predicted, strict=True):
        g, p = list(gold_items), list(predicted_items)
        scores.untyped.add(Counter(s for _, s in g), Counter(s for _, s in p))
        scores.typed.add(Counter(g), Counter(p))
        scores.merged.add(Counter((fold(label), s) for label, s in g), Counter((fold(label), s) for label, s in p))
        for label in {label for label, _ in g} | {label for label, _ in p}:
            scores.by_type.setdefault(label, Match()).add(
                Counter(s for lab, s in g if lab == label), Counter(s for lab, s in p if lab == label))
        scores.short_spans += sum(1 for _, s in p if len(s) <= 2)
    return scores
