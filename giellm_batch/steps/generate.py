"""The generation step: distinct prompts -> engine answers, on the worker's warm engine.

The worker's cached engine is fetched once per Spark task, pinned to the Spark task's GPU, and fed
continuously across Arrow batches (requests are added while earlier ones generate); one failing
prompt costs one `error` row. Decoding is constrained as `ExtractionPlan.decoding` says.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.engine.vllm_engine import ContinuousFeed, Generation, get_engine, private_tokenizer, sampling_params
from giellm_batch.giellm.grammar import task_grammar
from giellm_batch.giellm.regex_constraint import task_regex
from giellm_batch.isolation.failures import FATAL, failure
from giellm_batch.isolation.faults import check_in_spark_task, poison_check
from giellm_batch.isolation.process import Poisoned, map_isolated
from giellm_batch.steps.base import BatchStep
from giellm_batch.steps.plan import ExtractionPlan
from giellm_batch.text.segmentation import morpheme_boundaries, noun_phrase_edges

if TYPE_CHECKING:
    from pyspark.accumulators import Accumulator
    from pyspark.sql.types import StructType

log = logging.getLogger("giellm_batch.steps.generate")
GENERATION_INPUT_COLUMNS = ("prompt_key", "task", "prompt")


def request_sampling_params(plan: ExtractionPlan) -> Callable[[str, str], Any]:
    """(task name, prompt) -> vLLM SamplingParams, greedy, constrained as `plan.decoding` says.

    Regex and free decoding share one object per task. Grounded decoding builds a grammar per
    prompt from the sentence that leads it (`request_grammar`)."""
    grammar_of, params_of = request_grammar(plan), constrained_params(plan)
    return lambda task, prompt: params_of(task, grammar_of(task, prompt))


def request_grammar(plan: ExtractionPlan) -> Callable[[str, str], str | None]:
    """(task name, prompt) -> the prompt's own grammar (grounded decoding: the prompt minus the
    task's fixed suffix is its sentence), or None where decoding has one constraint per task.
    Plain text in, text out: it runs in the isolated child (isolation/process.py)."""
    if plan.decoding != "grounded":
        return lambda task, prompt: None
    suffixes = dict(zip((t.name for t in plan.tasks), plan.prompt_suffixes(), strict=True))
    modes = {t.name: t.span_boundaries or plan.span_boundaries for t in plan.tasks}

    def grounded(task_name: str, prompt: str) -> str:
        task, suffix = plan.task(task_name), suffixes[task_name]
        if not prompt.endswith(suffix):
            raise ValueError(f"prompt does not end with task {task_name}'s suffix; cannot find its sentence")
        sentence = prompt[: len(prompt) - len(suffix)]
        profile, mode = plan.profiles[task.profile], modes[task_name]
        if mode == "noun_phrases":
            return task_grammar(task, profile, sentence, plan.max_items, *noun_phrase_edges(sentence))
        bounds = morpheme_boundaries(sentence) if mode == "morphemes" else None
        return task_grammar(task, profile, sentence, plan.max_items, bounds)

    return grounded


def constrained_params(plan: ExtractionPlan) -> Callable[[str, str | None], Any]:
    """(task name, the request's grammar or None) -> SamplingParams; regex and free decoding share
    one object per task."""
    per_task = {task.name: sampling_params(plan.max_new_tokens, regex=task_regex(
        task, plan.profiles[task.profile], plan.max_items, plan.max_span_chars)
        if plan.decoding == "regex" else None) for task in plan.tasks}

    def params(task: str, grammar: str | None) -> Any:
        return per_task[task] if grammar is None else sampling_params(plan.max_new_tokens, grammar=grammar)

    return params


class GenerateStep(BatchStep):
    """Distinct prompts (prompt_key, task, prompt) -> GENERATION rows.

    The engine never waits for Python: a producer thread reads the Arrow batches and prepares
    slices of `batch_size` requests (tokens, decoding constraints) while the engine steps; a
    prepared slice is added whenever no more than `max_num_seqs` requests are in flight, so the
    scheduler always has work waiting; answers are emitted as they finish. `progress` is an
    optional Spark accumulator counting answered prompts (the driver's progress log)."""

    name = "generate"
    needs = GENERATION_INPUT_COLUMNS

    def __init__(self, plan: ExtractionPlan, progress: Accumulator[int] | None = None) -> None:
        self.plan = plan
        self.progress = progress

    @property
    def yields(self) -> StructType:
        return schemas.GENERATION

    def batches(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        plan, progress = self.plan, self.progress
        check_in_spark_task(plan.fault)
        first = next((batch for batch in batches if len(batch)), None)
        if first is None:  # an empty partition: no engine to build (in a new worker that is seconds)
            return
        batches = itertools.chain([first], batches)
        worker = _GenerationWorker(plan)
        feed = worker.feed  # the engine is built (or fetched) before the producer needs its tokenizer
        producer = _SliceProducer(batches, worker.prepare, plan.batch_size)
        finished = False
        try:
            while True:
                while not finished and len(feed) <= plan.engine.max_num_seqs:
                    prepared = producer.next(wait=len(feed) == 0)  # wait only with nothing in flight
                    if prepared is producer.NOT_YET:
                        break
                    if prepared is None:
                        finished = True
                    else:
                        worker.submit(prepared)
                if len(feed):
                    worker.step()
                elif finished:
                    break
                if worker.ready >= plan.batch_size:
                    yield worker.take(progress)
            if worker.ready:
                yield worker.take(progress)
        finally:
            producer.stop()
            worker.close()
        worker.log_totals()


class _SliceProducer:
    """A daemon thread that reads the Spark task's Arrow batches and prepares slices of requests into a
    small bounded queue (two slices ahead): the engine steps meanwhile instead of waiting for Arrow
    reads, tokenization and grammar building. Its errors are raised in the consumer."""

    _END = object()
    # Class attributes, not module globals: a closure shipped to an executor carries copies of the
    # module globals it names (cloudpickle pickles them by value), so a module-level sentinel
    # compared by identity there would never match the one this class returns.
    NOT_YET = object()  # next(): nothing prepared yet

    def __init__(self, batches: Iterator[pd.DataFrame], prepare: Callable[[pd.DataFrame], list[Any]],
                 slice_size: int, depth: int = 2) -> None:
        import queue
        import threading

        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(batches, prepare, slice_size), daemon=True,
                                        name="giellm-prepare")
        self._thread.start()

    def _produce(self, batches: Iterator[pd.DataFrame], prepare: Callable[[pd.DataFrame], list[Any]],
                 slice_size: int) -> None:
        try:
            for batch in batches:
                for start in range(0, len(batch), slice_size):
                    if not self._put(prepare(batch.iloc[start:start + slice_size])):
                        return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, which raises it in the Spark task
            self._put(exc)

    def _put(self, item: Any) -> bool:
        import queue

        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self, wait: bool) -> Any:
        """The next prepared slice, None after the last, or NOT_YET (only when not waiting)."""
        import queue

        try:
            item = self._queue.get(block=wait)
        except queue.Empty:
            return self.NOT_YET
        if item is self._END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        self._stopped.set()


class _GenerationWorker:
    """Per-Spark-task state around the worker's cached engine: requests in flight, answers not yet emitted."""

    def __init__(self, plan: ExtractionPlan) -> None:
        from giellm_batch.engine.placement import assigned_gpus, spark_task_id

        self.plan = plan
        self.gpus = assigned_gpus(plan.gpu_resource_name) if plan.gpus_per_engine else ()
        self.spark_task_id = spark_task_id()
        self.spark_task_started_at = time.time()
        self._feed: Any = None
        self.engine: Any = None
        self.tokenizer: Any = None
        self.grammar: Callable[[str, str], str | None] = request_grammar(plan)
        self.params: Callable[[str, str | None], Any] = lambda task, grammar: None  # set with the engine (imports vLLM)
        self.answers: list[tuple[tuple[str, int], Generation]] = []  # ((prompt_key, prompt tokens), answer)
        self.prompts = 0
        self.emitted_busy = 0.0  # engine seconds already attributed to emitted rows

    @property
    def feed(self) -> Any:
        if self._feed is None:
            self.engine = get_engine(self.plan.engine, self.gpus)
            self.params = constrained_params(self.plan)
            self.tokenizer = private_tokenizer(self.engine)
            self._feed = ContinuousFeed(self.engine.llm, self.engine.lora)
        return self._feed

    @property
    def ready(self) -> int:
        return len(self.answers)

    def prepare(self, batch: pd.DataFrame) -> list[tuple[tuple[str, int], list[int], Any, Generation | None]]:
        """(tag, token ids, sampling params, error answer) per request of one slice; runs in the
        producer thread, so it tokenizes with the worker's private tokenizer copy (a fast tokenizer
        used from two threads at once can fail), never the engine's. The per-request native work
        (tokenizer, grammar building) runs in an isolated child process (isolation/process.py); only
        plain data (token ids, grammar text) comes back, and the sampling params are built here."""
        requests = list(zip(batch["prompt_key"], batch["task"], batch["prompt"], strict=True))
        out: list[tuple[tuple[str, int], list[int], Any, Generation | None]] = []
        for (key, task, _prompt), done in zip(requests, map_isolated(requests, self._prepare_one, self.plan.isolation),
                                              strict=True):
            if isinstance(done, Poisoned):
                out.append(((str(key), 0), [], None, Generation(None, None, 0, done.reason("generate"))))
                continue
            ids, grammar, error = done
            tag = (str(key), len(ids))
            if error is None:
                try:
                    out.append((tag, ids, self.params(str(task), grammar), None))
                    continue
                except FATAL:
                    raise
                except Exception as exc:
                    error = failure("decoding", exc)
            out.append((tag, ids, None, Generation(None, None, 0, error)))
        return out

    def _prepare_one(self, request: tuple[Any, Any, Any]) -> tuple[list[int], str | None, str | None]:
        """(token ids, grammar or None, error or None) of one request."""
        _key, task, prompt = request
        poison_check("generate", prompt)
        ids = list(self.tokenizer.encode(prompt))
        if len(ids) > self.plan.max_prompt_tokens:
            # Segmentation splits sentences to fit the context; this only guards direct callers.
            return ids, None, (f"prompt has {len(ids)} tokens; the limit is {self.plan.max_prompt_tokens} "
                               "(engine.max_model_len - engine.max_new_tokens)")
        try:
            grammar = self.grammar(str(task), str(prompt))
            if grammar is not None:
                # Parsed here once (cheap) so that a grammar xgrammar's parser would crash or hang on
                # fails in this child, not later in the engine; the engine parses and compiles it again.
                import xgrammar

                xgrammar.Grammar.from_ebnf(grammar)
            return ids, grammar, None
        except FATAL:
            raise
        except Exception as exc:  # a prompt whose constraint cannot be built fails alone
            return ids, None, failure("decoding", exc)

    def submit(self, prepared: list[tuple[tuple[str, int], list[int], Any, Generation | None]]) -> None:
        """Queue one prepared slice; a request that cannot run is answered with its error at once."""
        for tag, ids, params, error in prepared:
            answer = error if error is not None else self.feed.add(tag, ids, params)
            if answer is not None:
                self.answers.append((tag, answer))

    def step(self) -> None:
        self.answers.extend(self.feed.step())

    def take(self, progress: Accumulator[int] | None) -> pd.DataFrame:
        """GENERATION rows of the answers so far; the engine time since the last take is shared out
        over them (engine_ms), and every row carries the Spark task's start and this emit's wall clock
        (the driver derives the stage's span and the engines' idle share from them)."""
        busy = self.feed.busy_seconds - self.emitted_busy
        self.emitted_busy = self.feed.busy_seconds
        per_prompt_ms = 1000 * busy / max(len(self.answers), 1)
        gpus, pinned = ",".join(self.gpus) or None, ",".join(self.engine.gpus) or None
        now = time.time()
        rows = [(key, gen.text, gen.finish_reason, n_prompt, gen.n_tokens, gen.error, self.engine.engine_id, gpus,
                 pinned, self.spark_task_id, self.engine.starts, per_prompt_ms, self.spark_task_started_at, now)
                for (key, n_prompt), gen in self.answers]
        self.prompts += len(rows)
        if progress is not None:
            progress.add(len(rows))
        log.info("engine %s: %d answers, %.2fs inside the engine", self.engine.engine_id, len(rows), busy)
        self.answers = []
        return pd.DataFrame(rows, columns=schemas.GENERATION.fieldNames())

    def close(self) -> None:
        if self._feed is not None:
            self._feed.close()

    def log_totals(self) -> None:
        if self.prompts:
            busy = self.feed.busy_seconds
            spark_task_seconds = time.time() - self.spark_task_started_at
            log.warning("engine %s (%s): %d prompts in %.1fs, %.0f prompts/s, idle %.1f%% of the Spark task",
                        self.engine.engine_id,
                        f"GPUs {','.join(self.engine.gpus)}" if self.engine.gpus else "CPU", self.prompts, busy,
                        self.prompts / max(busy, 1e-9), 100 * (1 - busy / max(spark_task_seconds, 1e-9)))
