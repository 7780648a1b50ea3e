"""The paper's evaluation (GIELLM §4.1): TL, WL and ALL accuracy per task, plus parse-status counts.

- TL accuracy: predicted text label == gold text label; correct / sequences.
- WL accuracy: items (label+span pairs; whole triples/quadruples) matched between prediction and
  gold, as multisets; matches / gold items. Extra predicted items do not lower WL (as in the paper).
- ALL accuracy: sequences whose TL is correct and whose WL is 100 %. For a gold sequence with no
  items the paper is silent; we count its WL as 100 % only when nothing was predicted.
- Item precision / recall / F1 (not in the paper): exact (label, span) matches over predicted /
  gold items; recall equals WL accuracy. For NER this is the usual entity span F1.

Labelled records are JSON lines, a JSON list, or CSV, each with the input text, the gold output
string and the task (per record, or one task for the file). A record that cannot be used is
reported with its line number, skipped, and counted.

A record marked `"text_label_known": false` (real NER sentences without a public SCNM class: the
gold carries a placeholder) is left out of TL, and its ALL needs only a perfect WL.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from giellm_batch.giellm.parsing import ParseResult, parse_output
from giellm_batch.giellm.prompts import build_prompt
from giellm_batch.giellm.tasks import TaskRegistry, TaskSpec


@dataclass(frozen=True)
class LabelledRecord:
    line: int
    task: str
    text: str
    gold: str
    prediction: str | None = None  # for score-only mode
    text_label_known: bool = True  # False: the gold's text label is a placeholder (not scored)


@dataclass
class TaskScore:
    task: str
    sequences: int = 0
    tl_correct: int = 0
    tl_sequences: int = 0  # sequences whose gold text label is known
    gold_items: int = 0
    matched_items: int = 0
    extra_items: int = 0
    all_correct: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, gold: ParseResult, predicted: ParseResult, text_label_known: bool = True) -> None:
        self.sequences += 1
        self.tl_sequences += text_label_known
        self.statuses[predicted.status] += 1
        tl_ok = predicted.text_label is not None and predicted.text_label == gold.text_label
        gold_items = Counter(item.fields for item in gold.items)
        pred_items = Counter(item.fields for item in predicted.items)
        matched = sum((gold_items & pred_items).values())
        tl_ok = tl_ok and text_label_known
        self.tl_correct += tl_ok
        self.gold_items += sum(gold_items.values())
        self.matched_items += matched
        self.extra_items += sum((pred_items - gold_items).values())
        wl_perfect = matched == sum(gold_items.values()) and (bool(gold_items) or not pred_items)
        self.all_correct += (tl_ok or not text_label_known) and wl_perfect

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["statuses"] = dict(self.statuses)
        out["tl_accuracy"] = self.tl_correct / self.tl_sequences if self.tl_sequences else None
        out["wl_accuracy"] = self.matched_items / self.gold_items if self.gold_items else None
        out["all_accuracy"] = self.all_correct / self.sequences if self.sequences else None
        predicted = self.matched_items + self.extra_items
        out["precision"] = self.matched_items / predicted if predicted else None
        out["recall"] = out["wl_accuracy"]
        p, r = out["precision"] or 0.0, out["recall"] or 0.0
        out["f1"] = 2 * p * r / (p + r) if p + r else (None if out["precision"] is None and r == 0 else 0.0)
        return out


@dataclass
class LoadReport:
    records: list[LabelledRecord]
    skipped: list[str]  # "line N: reason"


def _rows(path: Path) -> Iterable[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8", errors="strict")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        for number, row in enumerate(reader, start=2):  # line 1 is the header
            yield number, row
    elif path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        for number, row in enumerate(json.loads(text), start=1):
            yield number, row
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"invalid JSON: {exc.msg}"


def load_labelled(
    path: Path,
    registry: TaskRegistry,
    *,
    task: str | None = None,
    text_field: str = "input",
    gold_field: str = "output",
    task_field: str = "task",
    prediction_field: str | None = None,
) -> LoadReport:
    """Read a labelled file; bad records are reported by line number and skipped."""
    records: list[LabelledRecord] = []
    skipped: list[str] = []
    for number, row in _rows(path):
        if not isinstance(row, dict):
            skipped.append(f"line {number}: {row if isinstance(row, str) else 'not an object'}")
            continue
        name = row.get(task_field) or task
        if name not in registry.tasks:
            skipped.append(f"line {number}: unknown task {name!r}")
            continue
        text, gold = row.get(text_field), row.get(gold_field)
        if not isinstance(text, str) or not text.strip() or not isinstance(gold, str):
            skipped.append(f"line {number}: needs string fields '{text_field}' and '{gold_field}'")
            continue
        prediction = row.get(prediction_field) if prediction_field else None
        if prediction_field and not isinstance(prediction, str):
            skipped.append(f"line {number}: needs a string field '{prediction_field}'")
            continue
        spec = registry.tasks[name]
        records.append(LabelledRecord(number, name, strip_prompt(text, spec, registry), gold, prediction,
                                      row.get("text_label_known") is not False))
    return LoadReport(records, skipped)


def strip_prompt(text: str, task: TaskSpec, registry: TaskRegistry) -> str:
    """Datasets often store the full prompt as input; keep only the text part."""
    suffix = build_prompt(task, registry.profiles[task.profile], "")
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text


def score(records: list[LabelledRecord], predictions: list[str | None], registry: TaskRegistry,
          truncated: list[bool] | None = None) -> dict[str, TaskScore]:
    """TL/WL/ALL per task, parsing gold and prediction with the same parser."""
    scores: dict[str, TaskScore] = {}
    for i, (record, predicted) in enumerate(zip(records, predictions, strict=True)):
        spec = registry.tasks[record.task]
        profile = registry.profiles[spec.profile]
        gold = parse_output(record.gold, spec, profile, sentence=record.text, drop_repeats=False)
        pred = parse_output(predicted, spec, profile, sentence=record.text,
                            truncated=bool(truncated and truncated[i]))
        scores.setdefault(record.task, TaskScore(record.task)).add(gold, pred, record.text_label_known)
    return scores


def format_table(scores: dict[str, TaskScore], skipped: int) -> str:
    lines = [f"{'task':<12} {'n':>6} {'TL %':>7} {'WL %':>7} {'ALL %':>7} {'P %':>7} {'F1 %':>7}  parse status"]
    for name in sorted(scores):
        d = scores[name].as_dict()
        pct = ["   n/a" if d[k] is None else f"{100 * d[k]:7.2f}" for k in ("tl_accuracy", "wl_accuracy",
                                                                           "all_accuracy", "precision", "f1")]
        statuses = " ".join(f"{k}={v}" for k, v in sorted(d["statuses"].items()))
        lines.append(f"{name:<12} {d['sequences']:>6} {' '.join(pct)}  {statuses}")
    lines.append(f"skipped records: {skipped}")
    return "\n".join(lines)
