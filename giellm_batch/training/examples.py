"""Span-annotated records -> GIELLM prompt/output pairs, checked by a round trip through the parser.

Annotated record (one JSON object per line):

    {"id": "a1", "split": "train", "text": "山田太郎は東京に住む。",
     "text_labels": {"scnm": "社会", "tcree_re": "スポーツ"},
     "entities": [{"label": "人名", "span": [0, 4]}, {"label": "地名", "span": [5, 7]}],
     "relations": [{"head": [0, 4], "relation": "出身", "tail": [5, 7]}],
     "events": [{"event_type": "試合", "trigger": [..], "argument": [..], "time": [..]}],
     "sentiment_words": [{"label": "ポジティブ", "span": [..], "pos": "名詞"}]}

A record whose items are gold but whose text label is not known (public NER data has no SCNM
sentence class) names the task or family in `"text_label_unknown": ["scnm"]`: its pair renders the
task's first text label as a placeholder and is marked `text_label_known: false`, so training does
not learn the placeholder (finetune.tokenize_examples) and scoring does not count it.

A task gets a pair when the record has its text label, keyed by the task name or its family (the
name up to the first "_": `scnm`, `tcree`, `scpos`). Its items come from the list the registry's
`records` names; each item maps the task's field names to a label (the label field) or a span,
given as [start, end] character offsets into `text` (or as the span string itself). Sentiment
words whose `pos` is not in the task's `pos` are left out of that task. Every pair is rendered with
the project's own `build_prompt` / `render_output` and must parse back to the same label and items
(a pair that does not is rejected with the reason), so training and serving share one format.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from giellm_batch.giellm.parsing import parse_output
from giellm_batch.giellm.prompts import render_output
from giellm_batch.giellm.tasks import TaskRegistry, TaskSpec


@dataclass(frozen=True)
class Pair:
    """One training / evaluation example in the JSONL format `giellm-batch evaluate` reads."""

    task: str
    input: str  # the sentence (the prompt is built from it and the task)
    output: str  # the gold GIELLM output string
    group: str  # the article / record id, kept together in one split
    split: str
    text_label_known: bool = True  # False: the output's text label is a placeholder

    def as_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"task": self.task, "input": self.input, "output": self.output, "group": self.group,
                               "split": self.split}
        if not self.text_label_known:
            row["text_label_known"] = False
        return row


class RecordError(ValueError):
    """A record or one of its items cannot become a training pair."""


def _span(value: Any, text: str, where: str) -> str:
    if isinstance(value, str) and value:
        if value not in text:
            raise RecordError(f"{where}: span {value!r} is not in the text")
        return value
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                            for v in value)):
        start, end = value
        if not 0 <= start < end <= len(text):
            raise RecordError(f"{where}: offsets {value} outside the text (length {len(text)})")
        return text[start:end]
    raise RecordError(f"{where}: a span must be [start, end] offsets or a non-empty string, got {value!r}")


def _items(record: dict[str, Any], task: TaskSpec, text: str) -> list[tuple[str, ...]]:
    raw = record.get(task.records) or []
    if not isinstance(raw, list):
        raise RecordError(f"'{task.records}' must be a list")
    items = []
    for n, item in enumerate(raw):
        where = f"{task.records}[{n}]"
        if not isinstance(item, dict):
            raise RecordError(f"{where}: not an object")
        if task.pos and "pos" in item and item["pos"] not in task.pos:
            continue
        fields = []
        for name in task.fields:
            if name not in item:
                raise RecordError(f"{where}: missing field '{name}' (task {task.name} needs {list(task.fields)})")
            if name == task.label_field:
                if not isinstance(item[name], str) or not item[name]:
                    raise RecordError(f"{where}.{name}: a label must be a non-empty string")
                fields.append(item[name])
            else:
                fields.append(_span(item[name], text, f"{where}.{name}"))
        items.append(tuple(fields))
    return items


def text_label_for(record: dict[str, Any], task: TaskSpec) -> str | None:
    labels = record.get("text_labels") or {}
    if not isinstance(labels, dict):
        raise RecordError("'text_labels' must be an object of task (or family) -> label")
    label = labels.get(task.name, labels.get(task.name.split("_")[0]))
    if label is not None and not isinstance(label, str):
        raise RecordError(f"text label for {task.name} must be a string")
    return label


def pairs_from_record(record: dict[str, Any], registry: TaskRegistry, tasks: Iterable[str],
                      heldout_share: float = 0.1) -> list[Pair]:
    """Every pair this record gives for `tasks`; raises RecordError with the reason otherwise."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise RecordError("'text' must be a non-empty string")
    group = str(record.get("article_id", record.get("id", text)))
    split = record.get("split") or split_of(group, heldout_share)
    unknown = record.get("text_label_unknown") or []
    if not isinstance(unknown, list):
        raise RecordError("'text_label_unknown' must be a list of tasks or families")
    pairs = []
    for name in tasks:
        task = registry.tasks[name]
        label = text_label_for(record, task)
        known = label is not None
        if label is None and (name in unknown or name.split("_")[0] in unknown):
            label = task.text_labels[0] if task.text_labels else "-"
        if label is None:
            continue
        profile = registry.profiles[task.profile]
        items = _items(record, task, text)
        output = render_output(task, profile, label, items)
        parsed = parse_output(output, task, profile, sentence=text, drop_repeats=False)
        if parsed.status != "ok" or parsed.text_label != label or [i.fields for i in parsed.items] != items:
            raise RecordError(f"{name}: rendered output {output!r} does not parse back "
                              f"(status {parsed.status}, flags {list(parsed.flags)})")
        pairs.append(Pair(name, text, output, group, str(split), known))
    return pairs


def split_of(group: str, heldout_share: float) -> str:
    """Stable split by group (article) id: all of an article's sentences land on one side."""
    digest = int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:8], "big")
    return "heldout" if digest / 2**64 < heldout_share else "train"


@dataclass
class BuildReport:
    pairs: list[Pair]
    rejected: list[str]  # "line N: reason"


def build_pairs(lines: Iterable[str], registry: TaskRegistry, tasks: Iterable[str],
                heldout_share: float = 0.1) -> BuildReport:
    """Annotated records or ready pairs ({input, output, task}), one JSON object per line."""
    tasks = tuple(tasks)
    report = BuildReport([], [])
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise RecordError("not a JSON object")
            if "output" in record and "input" in record:
                report.pairs.extend(_ready_pair(record, registry, tasks, heldout_share))
            else:
                report.pairs.extend(pairs_from_record(record, registry, tasks, heldout_share))
        except RecordError as exc:
            report.rejected.append(f"line {number}: {exc}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # malformed JSON or field shapes
            report.rejected.append(f"line {number}: {type(exc).__name__}: {exc}")
    return report


def _ready_pair(record: dict[str, Any], registry: TaskRegistry, tasks: tuple[str, ...],
                heldout_share: float) -> list[Pair]:
    from giellm_batch.giellm.metrics import strip_prompt

    name, text, output = record.get("task"), record["input"], record["output"]
    if not isinstance(name, str) or name not in registry.tasks:
        raise RecordError(f"unknown task {name!r}")
    if name not in tasks:
        return []
    if not isinstance(text, str) or not isinstance(output, str) or not text.strip():
        raise RecordError("'input' and 'output' must be strings")
    task = registry.tasks[name]
    text = strip_prompt(text, task, registry)
    if parse_output(output, task, registry.profiles[task.profile], sentence=text).status != "ok":
        raise RecordError(f"{name}: output {output!r} does not parse as a well-formed GIELLM output")
    group = str(record.get("group", record.get("article_id", text)))
    return [Pair(name, text, output, group, str(record.get("split") or split_of(group, heldout_share)))]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_pairs(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
