"""The vocabulary every extraction step shares: the plan built on the driver, the step type,
and the check a step makes on the columns it is given.

Its own module so that the prompt, generation and parse steps (inference.py, extraction.py) can
all use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from giellm_batch.engine.vllm_engine import EngineSpec
from giellm_batch.giellm.prompts import build_prompt
from giellm_batch.giellm.tasks import PromptProfile, TaskSpec
from giellm_batch.isolation.process import IsolationLimits

PandasStep = Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]


@dataclass(frozen=True)
class ExtractionPlan:
    engine: EngineSpec
    tasks: tuple[TaskSpec, ...]
    profiles: dict[str, PromptProfile]
    max_new_tokens: int
    decoding: str  # grounded | regex | free (settings.EngineSettings.decoding)
    max_items: int  # 0 = no bound
    max_span_chars: int  # 0 = no bound
    batch_size: int
    identity: str = ""  # what makes two equal prompts give equal outputs (model, decoding, dtype...)
    dedup: bool = True
    gpus_per_engine: int = 0
    gpu_resource_name: str = "gpu"
    fault: str = ""  # faults.POINTS; tests only
    # Bounds on one record's work; each batch of per-record work runs in a child process (isolation.py).
    isolation: IsolationLimits = field(default_factory=IsolationLimits)

    @property
    def max_prompt_tokens(self) -> int:
        return self.engine.max_model_len - self.max_new_tokens

    def task(self, name: str) -> TaskSpec:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"task '{name}' is not in this plan ({[t.name for t in self.tasks]})")

    def prompt_suffixes(self) -> tuple[str, ...]:
        """What follows the sentence in each task's prompt (the sentence always comes first)."""
        return tuple(build_prompt(t, self.profiles[t.profile], "") for t in self.tasks)


def require_columns(batch: pd.DataFrame, needed: tuple[str, ...], step: str) -> None:
    missing = [c for c in needed if c not in batch.columns]
    if missing:
        raise KeyError(f"{step} needs columns {missing}; got {list(batch.columns)}")
