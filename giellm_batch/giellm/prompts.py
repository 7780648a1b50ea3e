"""GIELLM / OIELLM prompt building and output rendering, byte for byte as the checkpoints expect.

GIELLM prompt:  ``{text}{sep}‹L1>‹L2>...{sep}{IW}``
GIELLM output:  ``‹{label}>{IW}:{label};{span}:...`` (triples/quadruples close with a ``:``)
OIELLM prompt:  ``{text}/{IW}``
OIELLM output:  ``{label}/{IW}/:{label};{span}...``

`render_output` is the inverse of the parser; tests use it to round-trip, and the evaluation
uses it to turn gold records into gold strings.
"""

from __future__ import annotations

from collections.abc import Sequence

from giellm_batch.giellm.tasks import PromptProfile, TaskSpec


def build_prompt(task: TaskSpec, profile: PromptProfile, text: str) -> str:
    """The exact model input for one sentence and task."""
    if profile.name == "oiellm":
        return f"{text}{profile.separator}{task.iw}"
    labels = "".join(f"{profile.label_open}{label}{profile.label_close}" for label in task.text_labels)
    return profile.separator.join((text, labels, task.iw))


def render_output(
    task: TaskSpec,
    profile: PromptProfile,
    text_label: str,
    items: Sequence[Sequence[str]],
) -> str:
    """The output string a well-behaved model produces for these items (fields in task order)."""
    body = "".join(profile.item_open + profile.item_sep.join(fields) for fields in items)
    if items and task.item_kind != "pair":
        body += profile.item_open  # the paper closes triples/quadruples with ':'
    if profile.name == "oiellm":
        return f"{text_label}/{task.iw}/{body}"
    return f"{profile.label_open}{text_label}{profile.label_close}{task.iw}{body}"
