"""The inference step: sentences in, one parsed extraction row per (sentence, task) out.

`ExtractionPlan` is built on the driver (plain, picklable data); `extraction_step(plan)` returns
the function Spark runs in `mapInPandas` on executors. There, the worker's cached engine is
fetched once, prompts are accumulated across Arrow batches into engine-sized batches, and the
prompts of one sentence are kept next to each other (the sentence is the shared prompt prefix).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.constraints import task_regex
from giellm_batch.engine import EngineSpec, Generation, count_prompt_tokens, generate, get_engine, sampling_params
from giellm_batch.faults import check_in_task
from giellm_batch.grounding import ground_items, items_to_json
from giellm_batch.parsing import parse_output
from giellm_batch.prompts import build_prompt
from giellm_batch.tasks import PromptProfile, TaskSpec

log = logging.getLogger("giellm_batch.inference")
REQUIRED_COLUMNS = ("article_id", "sentence_idx", "text", "char_start")


@dataclass(frozen=True)
class ExtractionPlan:
    engine: EngineSpec
    tasks: tuple[TaskSpec, ...]
    profiles: dict[str, PromptProfile]
    max_new_tokens: int
    constrained: bool
    max_items: int
    max_span_chars: int
    batch_size: int
    fault: str = ""  # faults.POINTS; tests only

    @property
    def max_prompt_tokens(self) -> int:
        return self.engine.max_model_len - self.max_new_tokens


@dataclass(frozen=True)
class _Request:
    article_id: str
    sentence_idx: int
    sentence: str
    sentence_start: int
    task: TaskSpec
    prompt: str


def extraction_step(plan: ExtractionPlan) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function: SENTENCE rows -> EXTRACTION_STAGE rows."""

    by_name = {task.name: task for task in plan.tasks}

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        check_in_task(plan.fault)
        worker = _Worker(plan)
        pending: list[_Request] = []
        for batch in batches:
            missing = [c for c in REQUIRED_COLUMNS if c not in batch.columns]
            if missing:
                raise KeyError(f"inference step needs columns {missing}; got {list(batch.columns)}")
            # An optional `task` column picks one task per row (evaluation); otherwise every task runs.
            row_tasks = batch["task"] if "task" in batch.columns else [None] * len(batch)
            for article_id, idx, text, start, only in zip(
                batch["article_id"], batch["sentence_idx"], batch["text"], batch["char_start"], row_tasks,
                strict=True,
            ):
                for task in ([by_name[only]] if only else plan.tasks):  # a sentence's prompts stay adjacent
                    prompt = build_prompt(task, plan.profiles[task.profile], text)
                    pending.append(_Request(article_id, int(idx), text, int(start), task, prompt))
            while len(pending) >= plan.batch_size:
                yield worker.process(pending[: plan.batch_size])
                pending = pending[plan.batch_size:]
        if pending:
            yield worker.process(pending)

    return run


class _Worker:
    """Per-partition state around the worker's cached engine."""

    def __init__(self, plan: ExtractionPlan) -> None:
        self.plan = plan
        self.engine: Any = None
        self.params: dict[str, Any] = {}
        self.segmenter: Any = None
        self._morphemes: tuple[str, list[Any]] = ("", [])  # last sentence's: its prompts are adjacent

    def morphemes(self, sentence: str) -> list[Any]:
        if self._morphemes[0] != sentence:
            if self.segmenter is None:
                from giellm_batch.segmentation import Segmenter

                self.segmenter = Segmenter()
            self._morphemes = (sentence, self.segmenter.morphemes(sentence))
        return self._morphemes[1]

    def _ensure_engine(self) -> None:
        if self.engine is not None:
            return
        self.engine = get_engine(self.plan.engine)
        for task in self.plan.tasks:
            profile = self.plan.profiles[task.profile]
            regex = (task_regex(task, profile, self.plan.max_items, self.plan.max_span_chars)
                     if self.plan.constrained else None)
            self.params[task.name] = sampling_params(self.plan.max_new_tokens, regex)

    def process(self, requests: list[_Request]) -> pd.DataFrame:
        self._ensure_engine()
        started = time.monotonic()
        lengths = count_prompt_tokens(self.engine, [r.prompt for r in requests])
        runnable = [i for i, n in enumerate(lengths) if n <= self.plan.max_prompt_tokens]
        generated = generate(
            self.engine,
            [requests[i].prompt for i in runnable],
            [self.params[requests[i].task.name] for i in runnable],
        )
        results: dict[int, Generation] = dict(zip(runnable, generated, strict=True))
        rows = []
        for i, request in enumerate(requests):
            gen = results.get(i) or Generation(
                None, None, 0,
                f"prompt has {lengths[i]} tokens; the limit is {self.plan.max_prompt_tokens} "
                "(engine.max_model_len - engine.max_new_tokens)",
            )
            rows.append(self._row(request, gen))
        elapsed = time.monotonic() - started
        log.warning("engine batch: %d prompts in %.2fs (%.0f prompts/s)", len(requests), elapsed,
                    len(requests) / max(elapsed, 1e-9))
        return pd.DataFrame(rows, columns=schemas.EXTRACTION_STAGE.fieldNames())

    def _row(self, request: _Request, gen: Generation) -> dict[str, Any]:
        task = request.task
        base = {"article_id": request.article_id, "sentence_idx": request.sentence_idx, "task": task.name,
                "prompt": request.prompt, "raw_output": gen.text, "finish_reason": gen.finish_reason,
                "n_output_tokens": gen.n_tokens, "error": gen.error}
        if gen.error is not None:
            return {**base, "parse_status": "error", "text_label": None, "text_label_known": None,
                    "flags": ["engine_error"], "n_items": 0, "items_json": "[]"}
        parsed = parse_output(gen.text, task, self.plan.profiles[task.profile], sentence=request.sentence,
                              truncated=gen.finish_reason == "length")
        morphemes = self.morphemes(request.sentence) if parsed.items else None
        items = ground_items(parsed, task, request.sentence, request.sentence_start, morphemes)
        return {**base, "parse_status": parsed.status, "text_label": parsed.text_label,
                "text_label_known": parsed.text_label_known, "flags": list(parsed.flags),
                "n_items": len(items), "items_json": items_to_json(items)}
