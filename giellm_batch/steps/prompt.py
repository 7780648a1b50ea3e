"""The prompt step: sentences -> GIELLM prompt requests, keyed for deduplication."""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.giellm.prompts import build_prompt
from giellm_batch.isolation.failures import FATAL, failure
from giellm_batch.isolation.faults import poison_check
from giellm_batch.isolation.process import Poisoned, map_isolated
from giellm_batch.steps.base import BatchStep
from giellm_batch.steps.plan import ExtractionPlan

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:32]


class PromptStep(BatchStep):
    """Sentences -> prompt requests: one per sentence x task (every task of the plan, or the row's
    own `task` where the frame has that column: evaluation). Each request carries the key of its
    engine call (`prompt_key`: equal prompts share one call when deduplication is on) and
    `sentence_key` (sorting by it keeps a sentence's prompts adjacent, so the engine's prefix cache
    shares the sentence, which leads every GIELLM prompt)."""

    name = "prompt"
    needs = ("article_id", "sentence_idx", "text")
    optional = ("task",)

    def __init__(self, plan: ExtractionPlan) -> None:
        self.plan = plan

    @property
    def yields(self) -> StructType:
        return schemas.PROMPT_REQUEST

    def batches(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        plan = self.plan
        for batch in batches:
            row_tasks = batch["task"] if "task" in batch.columns else [None] * len(batch)
            sentences = list(zip(batch["article_id"], batch["sentence_idx"], batch["text"], row_tasks, strict=True))
            rows = []
            # Each batch's prompts are built in an isolated child process (isolation.process).
            for sentence, out in zip(sentences, map_isolated(sentences, lambda s: prompt_requests(plan, *s),
                                                             plan.isolation), strict=True):
                if isinstance(out, Poisoned):
                    article_id, idx, _text, only = sentence
                    out = [_failed_request(plan, article_id, idx, str(only), out.reason("prompt"))]
                rows.extend(out)
            yield pd.DataFrame(rows, columns=self.yields.fieldNames())


def prompt_requests(plan: ExtractionPlan, article_id: Any, idx: Any, text: Any,
                    only: Any = None) -> list[tuple[Any, ...]]:
    """PROMPT_REQUEST rows of one sentence. Never raises for the sentence's sake: a prompt that
    cannot be built becomes a request with `error` ("prompt: TypeError: ...") and a key of its own,
    which the pipeline answers with an `error` extraction row instead of an engine call."""
    try:
        poison_check("prompt", text)
        tasks = [plan.task(only)] if only else list(plan.tasks)
        sentence_key = _digest(text)  # once per sentence: all its tasks share it
    except FATAL:
        raise
    except Exception as exc:
        return [_failed_request(plan, article_id, idx, str(only), failure("prompt", exc))]
    rows = []
    for task in tasks:
        try:
            prompt = build_prompt(task, plan.profiles[task.profile], text)
            key = (_digest(plan.identity, task.name, prompt) if plan.dedup
                   else _digest(plan.identity, task.name, article_id, idx))
            rows.append((article_id, int(idx), task.name, key, sentence_key, prompt, None))
        except FATAL:
            raise
        except Exception as exc:
            rows.append(_failed_request(plan, article_id, idx, task.name, failure("prompt", exc)))
    return rows


def _failed_request(plan: ExtractionPlan, article_id: Any, idx: Any, task: str, error: str) -> tuple[Any, ...]:
    """A request row that carries its error; its key is its own, so deduplication never merges it."""
    number = int(idx) if isinstance(idx, numbers.Integral) else None
    return (article_id, number, task, _digest(plan.identity, "error", task, article_id, idx), None, None, error)
