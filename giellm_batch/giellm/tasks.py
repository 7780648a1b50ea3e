"""The task registry: which GIELLM subtasks exist and how each one is prompted and parsed.

A task is data, not code: its prompt profile, Instruction Word, candidate text labels, the
shape of its items (pair / triple / quadruple, with named fields) and the table its items land
in. Defaults for the paper's subtasks live in `giellm_batch/giellm/tasks.yaml` (shipped with the package;
`conf/tasks.yaml` links to it); users point `task_registry` at their own copy to override them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ITEM_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    # kind: (default field names in output order, the field that holds the word-level label)
    "pair": (("label", "span"), "label"),
    "triple": (("head", "relation", "tail"), "relation"),
    # The paper does not print the quadruple's field order: keep it a setting (see tasks.yaml).
    "quadruple": (("event_type", "trigger", "argument", "time"), "event_type"),
}
RECORD_TABLES = ("entities", "relations", "events", "sentiment_words")
PROFILES = ("giellm", "oiellm")


@dataclass(frozen=True)
class PromptProfile:
    """Spelling of one prompt/output family (GIELLM or OIELLM)."""

    name: str
    separator: str  # between text, label list and IW (GIELLM: newline, unconfirmed; OIELLM: "/")
    label_open: str = "‹"  # U+2039 as in the model cards
    label_close: str = ">"
    item_open: str = ":"
    item_sep: str = ";"
    no_item_marker: str = "無い"  # older SLG variants write this when nothing was found


@dataclass(frozen=True)
class TaskSpec:
    """One extraction task."""

    name: str
    profile: str  # key into TaskRegistry.profiles
    iw: str  # Instruction Word appended to the prompt and echoed in the output
    text_labels: tuple[str, ...]  # candidate text-level labels (empty = open-domain)
    item_kind: str  # pair | triple | quadruple
    fields: tuple[str, ...]  # item field names in output order
    label_field: str  # the field holding the word-level label
    item_labels: tuple[str, ...]  # allowed word-level labels (empty = open)
    records: str  # table the items land in: entities | relations | events | sentiment_words
    pos: tuple[str, ...] = ()  # expected part of speech of spans (SCPOS), e.g. ("名詞",)
    description: str = ""
    # Grounded decoding: where this task's spans may start and end (morphemes | noun_phrases | characters);
    # "" = the job's engine.span_boundaries.
    span_boundaries: str = ""

    @property
    def span_fields(self) -> tuple[str, ...]:
        return tuple(f for f in self.fields if f != self.label_field)


@dataclass(frozen=True)
class TaskRegistry:
    profiles: dict[str, PromptProfile]
    tasks: dict[str, TaskSpec]


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def _task_from_yaml(name: str, raw: Any, profiles: dict[str, PromptProfile]) -> TaskSpec:
    where = f"tasks.{name}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping")
    allowed = {"profile", "iw", "text_labels", "item_kind", "fields", "label_field", "item_labels",
               "records", "pos", "description", "span_boundaries"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
    profile = raw.get("profile", "giellm")
    if profile not in profiles:
        raise ValueError(f"{where}.profile: '{profile}' is not one of {sorted(profiles)}")
    kind = raw.get("item_kind", "pair")
    if kind not in ITEM_KINDS:
        raise ValueError(f"{where}.item_kind: '{kind}' is not one of {list(ITEM_KINDS)}")
    default_fields, default_label = ITEM_KINDS[kind]
    fields = _strings(raw.get("fields"), f"{where}.fields") or default_fields
    if len(fields) != len(default_fields):
        raise ValueError(f"{where}.fields: a {kind} has {len(default_fields)} fields, got {len(fields)}")
    label_field = raw.get("label_field", default_label)
    if label_field not in fields:
        raise ValueError(f"{where}.label_field: '{label_field}' is not one of the fields {list(fields)}")
    records = raw.get("records", "entities")
    if records not in RECORD_TABLES:
        raise ValueError(f"{where}.records: '{records}' is not one of {list(RECORD_TABLES)}")
    boundaries = raw.get("span_boundaries", "")
    if boundaries not in ("", "morphemes", "noun_phrases", "characters"):
        raise ValueError(f"{where}.span_boundaries: '{boundaries}' is not one of "
                         "['morphemes', 'noun_phrases', 'characters']")
    iw = raw.get("iw")
    if not isinstance(iw, str) or not iw:
        raise ValueError(f"{where}.iw: set the Instruction Word")
    return TaskSpec(
        name=name,
        profile=profile,
        iw=iw,
        text_labels=_strings(raw.get("text_labels"), f"{where}.text_labels"),
        item_kind=kind,
        fields=fields,
        label_field=label_field,
        item_labels=_strings(raw.get("item_labels"), f"{where}.item_labels"),
        records=records,
        pos=_strings(raw.get("pos"), f"{where}.pos"),
        description=str(raw.get("description", "")),
        span_boundaries=boundaries,
    )


def load_task_registry(path: Path) -> TaskRegistry:
    """Read and validate a task registry YAML file; raises ValueError saying what to fix."""
    if not path.is_file():
        raise ValueError(f"task registry file not found: {path}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), dict):
        raise ValueError(f"{path.name}: expected a mapping with a 'tasks' section")
    profiles: dict[str, PromptProfile] = {
        "giellm": PromptProfile(name="giellm", separator="\n"),
        "oiellm": PromptProfile(name="oiellm", separator="/"),
    }
    for name, values in (raw.get("profiles") or {}).items():
        if name not in PROFILES or not isinstance(values, dict):
            raise ValueError(f"profiles.{name}: profiles are {list(PROFILES)}, each a mapping")
        try:
            profiles[name] = PromptProfile(**{**profiles[name].__dict__, **values, "name": name})
        except TypeError as exc:
            raise ValueError(f"profiles.{name}: {exc}") from exc
    tasks = {name: _task_from_yaml(str(name), spec, profiles) for name, spec in raw["tasks"].items()}
    return TaskRegistry(profiles=profiles, tasks=tasks)


# Shipped inside the package, so the CLI finds it from any folder; conf/tasks.yaml links to it.
DEFAULT_REGISTRY = str(Path(__file__).with_name("tasks.yaml"))


def registry_or_exit(path: str | None) -> TaskRegistry:
    """The registry at `path` (default: the packaged tasks.yaml) for a CLI command, or exit with the reason."""
    try:
        return load_task_registry(Path(path or DEFAULT_REGISTRY))
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
