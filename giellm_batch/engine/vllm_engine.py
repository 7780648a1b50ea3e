"""Executor-side vLLM engine: built once per Python worker, reused across partitions and Spark tasks.

Nothing here runs on the driver except `EngineSpec` construction; `vllm` is imported only inside
`get_engine`, on the executor. Errors are captured per prompt where possible: a failing batch is
bisected so one bad prompt costs one `error` row, not the partition. An engine that cannot start
is fatal and fails the Spark task (Spark retries it), because every row after it would fail too.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("giellm_batch.engine.vllm_engine")

_ENGINES: dict[str, WorkerEngine] = {}  # one engine per worker process, keyed by its settings
_REQUEST_IDS = itertools.count()


@dataclass(frozen=True)
class EngineSpec:
    """Picklable engine settings, built on the driver from the job config."""

    model: str
    max_model_len: int
    dtype: str
    kv_cache_memory_bytes: int
    gpu_memory_utilization: float
    tensor_parallel_size: int
    max_num_seqs: int
    enable_prefix_caching: bool
    enforce_eager: bool
    seed: int
    quantization: str
    log_stats: bool = False  # vLLM metrics (prefix-cache hits...) for LLM.get_metrics(); benchmarks only
    adapter: str = ""  # LoRA adapter served on top of `model` (unmerged); "" = none
    max_lora_rank: int = 16

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class WorkerEngine:
    """A worker's engine and where it was placed."""

    llm: Any
    gpus: tuple[str, ...]  # addresses CUDA_VISIBLE_DEVICES held when it was built; () on CPU
    engine_id: str  # host:pid of the worker process that owns it
    starts: int = 1  # engines this worker process has built, any settings, this one included (1 = reuse works)
    lora: Any = None  # the vllm LoRARequest every prompt is generated with, when an adapter is served
    tokenizer_copy: Any = None  # private_tokenizer: for threads other than the engine's


@dataclass(frozen=True)
class Generation:
    text: str | None
    finish_reason: str | None  # "stop" | "length" | None when the prompt failed
    n_tokens: int
    error: str | None = None


def get_engine(spec: EngineSpec, gpus: tuple[str, ...] = ()) -> WorkerEngine:
    """The worker's engine for `spec`, built on first use and pinned to `gpus` (the Spark task's GPUs)."""
    key = spec.key()
    cached = _ENGINES.get(key)
    if cached is not None:
        if gpus and cached.gpus != gpus:
            # CUDA cannot be re-pinned inside a process: happens only if one executor owns several
            # GPUs and shares Python workers between them. Give each executor one GPU (docker/README.md).
            log.warning("Spark task was assigned GPUs %s but this worker's engine is pinned to %s", gpus, cached.gpus)
        return cached
    from giellm_batch.engine.placement import pin

    pin(gpus)
    # In-process engine core: vLLM's multiprocessing would fork inside a Spark Python worker.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    from vllm import LLM

    kwargs: dict[str, Any] = {
        "model": spec.model,
        "tokenizer": spec.model,
        "max_model_len": spec.max_model_len,
        "dtype": spec.dtype,
        "tensor_parallel_size": spec.tensor_parallel_size,
        "max_num_seqs": spec.max_num_seqs,
        "enable_prefix_caching": spec.enable_prefix_caching,
        "enforce_eager": spec.enforce_eager,
        "seed": spec.seed,
        "disable_log_stats": not spec.log_stats,
    }
    if spec.kv_cache_memory_bytes:
        kwargs["kv_cache_memory_bytes"] = spec.kv_cache_memory_bytes
    else:
        kwargs["gpu_memory_utilization"] = spec.gpu_memory_utilization
    if spec.quantization:
        kwargs["quantization"] = spec.quantization
    lora = None
    if spec.adapter:
        from vllm.lora.request import LoRARequest

        kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=spec.max_lora_rank)
        lora = LoRARequest(os.path.basename(spec.adapter.rstrip("/")), 1, spec.adapter)
    started = time.monotonic()
    engine = WorkerEngine(LLM(**kwargs), gpus, f"{socket.gethostname()}:{os.getpid()}", lora=lora)
    engine.starts = sum(1 for e in _ENGINES.values() if e.engine_id == engine.engine_id) + 1
    _ENGINES[key] = engine
    log.warning("engine %s for %s ready in %.1fs on %s", engine.engine_id, spec.model, time.monotonic() - started,
                f"GPUs {','.join(gpus)}" if gpus else "CPU")
    return engine


def sampling_params(max_new_tokens: int, regex: str | None = None, grammar: str | None = None) -> Any:
    """Greedy decoding bounded by max_new_tokens, optionally constrained by a regex or an EBNF grammar."""
    from vllm import SamplingParams

    if regex is None and grammar is None:
        return SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
    from vllm.sampling_params import StructuredOutputsParams

    constraint = StructuredOutputsParams(regex=regex) if regex is not None else StructuredOutputsParams(grammar=grammar)
    return SamplingParams(temperature=0.0, max_tokens=max_new_tokens, structured_outputs=constraint)


def private_tokenizer(engine: WorkerEngine) -> Any:
    """A copy of the engine's tokenizer for another thread (made once per engine): a fast
    tokenizer used from two threads at once can fail ("Already borrowed"), and vLLM detokenizes
    with its own copy while it steps."""
    if engine.tokenizer_copy is None:
        import copy

        engine.tokenizer_copy = copy.deepcopy(engine.llm.get_tokenizer())
    return engine.tokenizer_copy


def tokenize(engine: Any, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids as vLLM would compute them; handing these to `generate` avoids tokenizing twice."""
    tokenizer = engine.get_tokenizer()
    return [tokenizer.encode(p) for p in prompts]


def generate(engine: Any, prompts: Sequence[list[int]], params: Sequence[Any], lora: Any = None) -> list[Generation]:
    """Generate for every tokenized prompt; a failure is isolated to the prompts that cause it."""
    if not prompts:
        return []
    try:
        token_prompts = [{"prompt_token_ids": ids} for ids in prompts]
        outputs = engine.generate(token_prompts, list(params), use_tqdm=False, lora_request=lora)
    except Exception as exc:
        if _is_fatal(exc):
            raise
        if len(prompts) == 1:
            return [Generation(None, None, 0, f"{type(exc).__name__}: {exc}"[:500])]
        mid = len(prompts) // 2
        return generate(engine, prompts[:mid], params[:mid], lora) + generate(engine, prompts[mid:], params[mid:], lora)
    results = []
    for out in outputs:
        completion = out.outputs[0]
        results.append(Generation(completion.text, completion.finish_reason, len(completion.token_ids)))
    return results


class ContinuousFeed:
    """Feeds one engine request by request and steps it, so it never waits for Python.

    `LLM.generate()` per batch leaves an engine idle twice per call: while Python prepares the
    next batch, and through the call's tail, when ever fewer sequences are still decoding. Here the
    caller adds requests while earlier ones generate (vLLM's scheduler fills every slot a finished
    sequence frees: continuous batching, as serving engines do) and takes answers as they finish.
    A request the engine refuses fails alone at `add`; a step that fails (the failing request is
    unknown) hands every request in flight to `generate`, whose bisection isolates it.
    """

    def __init__(self, llm: Any, lora: Any = None) -> None:
        self.llm = llm
        self.lora = lora
        self._in_flight: dict[str, tuple[Any, list[int], Any]] = {}  # vLLM request id -> (tag, prompt, params)
        self.busy_seconds = 0.0  # inside the engine: adding requests and stepping

    def __len__(self) -> int:
        return len(self._in_flight)

    def add(self, tag: Any, token_ids: list[int], params: Any) -> Generation | None:
        """Queue one tokenized prompt; returns its error Generation if the engine refuses it."""
        started = time.monotonic()
        # Our own ids (vLLM reports outputs under the id it was given; generate() uses bare numbers).
        request_id = f"giellm-{next(_REQUEST_IDS)}"
        try:
            self.llm.llm_engine.add_request(request_id, {"prompt_token_ids": token_ids}, params,
                                            lora_request=self.lora)
        except Exception as exc:
            if _is_fatal(exc):
                raise
            return Generation(None, None, 0, f"{type(exc).__name__}: {exc}"[:500])
        finally:
            self.busy_seconds += time.monotonic() - started
        self._in_flight[request_id] = (tag, token_ids, params)
        return None

    def step(self) -> list[tuple[Any, Generation]]:
        """One engine step; (tag, answer) of the requests it finished."""
        started = time.monotonic()
        try:
            outputs = self.llm.llm_engine.step()
        except Exception as exc:
            if _is_fatal(exc):
                raise
            log.warning("engine step failed (%s: %s); answering its %d requests one batch at a time",
                        type(exc).__name__, exc, len(self._in_flight))
            return self._answer_in_flight_with_generate()
        finally:
            self.busy_seconds += time.monotonic() - started
        done = []
        for out in outputs:
            entry = self._in_flight.pop(out.request_id, None) if out.finished else None
            if entry is not None:  # ids not ours: requests another caller left in this engine
                completion = out.outputs[0]
                done.append((entry[0], Generation(completion.text, completion.finish_reason,
                                                  len(completion.token_ids))))
        return done

    def _answer_in_flight_with_generate(self) -> list[tuple[Any, Generation]]:
        # Called inside step(): its timing already counts this as engine time.
        entries = list(self._in_flight.values())
        self.close()
        answers = generate(self.llm, [e[1] for e in entries], [e[2] for e in entries], self.lora)
        return [(e[0], a) for e, a in zip(entries, answers, strict=True)]

    def close(self) -> None:
        """Abort what is still in flight (a Spark task that stops early must not leave work in the engine)."""
        if self._in_flight:
            self.llm.llm_engine.abort_request(list(self._in_flight))
            self._in_flight.clear()


def _is_fatal(exc: BaseException) -> bool:
    # A dead engine fails every later prompt too: let Spark retry the Spark task on a fresh worker.
    return type(exc).__name__ in {"EngineDeadError", "MemoryError"} or isinstance(exc, MemoryError)
