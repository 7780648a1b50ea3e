"""The inference steps: sentences -> prompt requests -> engine generations (-> parsing, extraction.py).

`ExtractionPlan` is built on the driver (plain, picklable data). The step functions it feeds run
in `mapInPandas` on executors:

- `prompt_step`: one request per sentence x task, with the key that identifies its engine call
  (`prompt_key`: equal prompts share one call when deduplication is on) and `sentence_key`
  (sorting by it keeps a sentence's prompts adjacent, so the engine's prefix cache shares the
  sentence, which leads every GIELLM prompt).
- `generation_step`: distinct prompts in, engine outputs out. The worker's cached engine is
  fetched once per task, pinned to the task's GPU; prompts are accumulated across Arrow batches
  into engine-sized batches; one failing prompt costs one `error` row.
- `extraction_step`: the three steps composed in memory, for callers without Spark stages
  (evaluation, benchmarks, tests).
"""

from __future__ import annotations

import hashlib
import logging
import numbers
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.constraints import task_regex
from giellm_batch.engine import Generation, generate, get_engine, sampling_params, tokenize
from giellm_batch.failures import FATAL, failure
from giellm_batch.faults import check_in_task
from giellm_batch.grounded import task_grammar
from giellm_batch.prompts import build_prompt
from giellm_batch.steps import ExtractionPlan, PandasStep, require_columns

log = logging.getLogger("giellm_batch.inference")
SENTENCE_COLUMNS = ("article_id", "sentence_idx", "text")
GENERATION_INPUT_COLUMNS = ("prompt_key", "task", "prompt")
def _digest(*parts: object) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:32]


def prompt_step(plan: ExtractionPlan) -> PandasStep:
    """mapInPandas function: SENTENCE rows -> PROMPT_REQUEST rows (every task, or the row's `task`)."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            require_columns(batch, SENTENCE_COLUMNS, "prompt step")
            # An optional `task` column picks one task per row (evaluation); otherwise every task runs.
            row_tasks = batch["task"] if "task" in batch.columns else [None] * len(batch)
            rows = []
            for article_id, idx, text, only in zip(batch["article_id"], batch["sentence_idx"], batch["text"],
                                                   row_tasks, strict=True):
                rows.extend(prompt_requests(plan, article_id, idx, text, only))
            yield pd.DataFrame(rows, columns=schemas.PROMPT_REQUEST.fieldNames())

    return run


def prompt_requests(plan: ExtractionPlan, article_id: Any, idx: Any, text: Any,
                    only: Any = None) -> list[tuple[Any, ...]]:
    """PROMPT_REQUEST rows of one sentence. Never raises for the sentence's sake: a prompt that
    cannot be built becomes a request with `error` ("prompt: TypeError: ...") and a key of its own,
    which the pipeline answers with an `error` extraction row instead of an engine call."""
    try:
        tasks = [plan.task(only)] if only else list(plan.tasks)
        sentence_key = _digest(text)  # once per sentence: all its tasks share it
    except FATAL:
        raise
    except Exception as exc:
        return [_failed_request(plan, article_id, idx, str(only), exc)]
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
            rows.append(_failed_request(plan, article_id, idx, task.name, exc))
    return rows


def _failed_request(plan: ExtractionPlan, article_id: Any, idx: Any, task: str, exc: Exception) -> tuple[Any, ...]:
    """A request row that carries its error; its key is its own, so deduplication never merges it."""
    number = int(idx) if isinstance(idx, numbers.Integral) else None
    return (article_id, number, task, _digest(plan.identity, "error", task, article_id, idx), None, None,
            failure("prompt", exc))


def request_sampling_params(plan: ExtractionPlan) -> Callable[[str, str], Any]:
    """(task name, prompt) -> vLLM SamplingParams, greedy, constrained as `plan.decoding` says.

    Regex and free decoding share one object per task. Grounded decoding builds a grammar per
    prompt from the sentence that leads it (the prompt minus the task's fixed suffix); the
    sentence's span rules are cached, so its other tasks reuse them."""
    if plan.decoding != "grounded":
        per_task = {task.name: sampling_params(plan.max_new_tokens, regex=task_regex(
            task, plan.profiles[task.profile], plan.max_items, plan.max_span_chars)
            if plan.decoding == "regex" else None) for task in plan.tasks}
        return lambda task, prompt: per_task[task]
    suffixes = dict(zip((t.name for t in plan.tasks), plan.prompt_suffixes(), strict=True))

    def grounded(task_name: str, prompt: str) -> Any:
        task, suffix = plan.task(task_name), suffixes[task_name]
        if not prompt.endswith(suffix):
            raise ValueError(f"prompt does not end with task {task_name}'s suffix; cannot find its sentence")
        sentence = prompt[: len(prompt) - len(suffix)]
        return sampling_params(plan.max_new_tokens, grammar=task_grammar(
            task, plan.profiles[task.profile], sentence, plan.max_items))

    return grounded


def generation_step(plan: ExtractionPlan, progress: Any = None) -> PandasStep:
    """mapInPandas function: distinct prompts (prompt_key, task, prompt) -> GENERATION rows.

    `progress` is an optional Spark accumulator that counts prompts answered (driver progress log).
    """

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        check_in_task(plan.fault)
        worker = _GenerationWorker(plan)
        pending: list[pd.DataFrame] = []
        n_pending = 0
        for batch in batches:
            require_columns(batch, GENERATION_INPUT_COLUMNS, "generation step")
            pending.append(batch)
            n_pending += len(batch)
            while n_pending >= plan.batch_size:
                joined = pd.concat(pending, ignore_index=True)
                head, rest = joined.iloc[: plan.batch_size], joined.iloc[plan.batch_size:]
                pending, n_pending = [rest], len(rest)
                yield worker.process(head, progress)
        if n_pending:
            yield worker.process(pd.concat(pending, ignore_index=True), progress)
        worker.log_totals()

    return run


class _GenerationWorker:
    """Per-task state around the worker's cached engine."""

    def __init__(self, plan: ExtractionPlan) -> None:
        from giellm_batch.placement import assigned_gpus, spark_task_id

        self.plan = plan
        self.gpus = assigned_gpus(plan.gpu_resource_name) if plan.gpus_per_engine else ()
        self.task_id = spark_task_id()
        self.engine: Any = None
        self.params: Callable[[str, str], Any] = lambda task, prompt: None  # set with the engine (imports vLLM)
        self.prompts = 0
        self.engine_seconds = 0.0

    def _ensure_engine(self) -> None:
        if self.engine is not None:
            return
        self.engine = get_engine(self.plan.engine, self.gpus)
        self.params = request_sampling_params(self.plan)

    def process(self, batch: pd.DataFrame, progress: Any) -> pd.DataFrame:
        self._ensure_engine()
        started = time.monotonic()
        token_ids = tokenize(self.engine.llm, list(batch["prompt"]))
        results: dict[int, Generation] = {}
        runnable, params = [], []
        for i, (task, prompt) in enumerate(zip(batch["task"], batch["prompt"], strict=True)):
            if len(token_ids[i]) > self.plan.max_prompt_tokens:
                continue
            try:
                params.append(self.params(str(task), str(prompt)))
                runnable.append(i)
            except FATAL:
                raise
            except Exception as exc:  # a prompt whose constraint cannot be built fails alone
                results[i] = Generation(None, None, 0, failure("decoding", exc))
        generated = generate(self.engine.llm, [token_ids[i] for i in runnable], params, self.engine.lora)
        results.update(zip(runnable, generated, strict=True))
        elapsed = time.monotonic() - started
        per_prompt_ms = 1000 * elapsed / max(len(batch), 1)
        gpus, pinned = ",".join(self.gpus) or None, ",".join(self.engine.gpus) or None
        rows = []
        for i, key in enumerate(batch["prompt_key"]):
            # Segmentation splits sentences to fit the context; this only guards direct callers.
            gen = results.get(i) or Generation(
                None, None, 0, f"prompt has {len(token_ids[i])} tokens; the limit is {self.plan.max_prompt_tokens} "
                "(engine.max_model_len - engine.max_new_tokens)")
            rows.append((key, gen.text, gen.finish_reason, len(token_ids[i]), gen.n_tokens, gen.error,
                         self.engine.engine_id, gpus, pinned, self.task_id, self.engine.starts, per_prompt_ms))
        self.prompts += len(batch)
        self.engine_seconds += elapsed
        if progress is not None:
            progress.add(len(batch))
        log.info("engine %s: %d prompts in %.2fs (%.0f prompts/s)", self.engine.engine_id, len(batch), elapsed,
                 len(batch) / max(elapsed, 1e-9))
        return pd.DataFrame(rows, columns=schemas.GENERATION.fieldNames())

    def log_totals(self) -> None:
        if self.prompts:
            log.warning("engine %s (%s): %d prompts in %.1fs, %.0f prompts/s", self.engine.engine_id,
                        f"GPUs {','.join(self.engine.gpus)}" if self.engine.gpus else "CPU", self.prompts,
                        self.engine_seconds, self.prompts / max(self.engine_seconds, 1e-9))
