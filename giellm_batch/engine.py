"""Executor-side vLLM engine: built once per Python worker, reused across partitions and tasks.

Nothing here runs on the driver except `EngineSpec` construction; `vllm` is imported only inside
`get_engine`, on the executor. Errors are captured per prompt where possible: a failing batch is
bisected so one bad prompt costs one `error` row, not the partition. An engine that cannot start
is fatal and fails the task (Spark retries it), because every row after it would fail too.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("giellm_batch.engine")

_ENGINES: dict[str, WorkerEngine] = {}  # one engine per worker process, keyed by its settings


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


@dataclass(frozen=True)
class Generation:
    text: str | None
    finish_reason: str | None  # "stop" | "length" | None when the prompt failed
    n_tokens: int
    error: str | None = None


def get_engine(spec: EngineSpec, gpus: tuple[str, ...] = ()) -> WorkerEngine:
    """The worker's engine for `spec`, built on first use and pinned to `gpus` (the task's GPUs)."""
    key = spec.key()
    cached = _ENGINES.get(key)
    if cached is not None:
        if gpus and cached.gpus != gpus:
            # CUDA cannot be re-pinned inside a process: happens only if one executor owns several
            # GPUs and shares Python workers between them. Give each executor one GPU (docker/README.md).
            log.warning("task was assigned GPUs %s but this worker's engine is pinned to %s", gpus, cached.gpus)
        return cached
    from giellm_batch.placement import pin

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


def _is_fatal(exc: BaseException) -> bool:
    # A dead engine fails every later prompt too: let Spark retry the task on a fresh worker.
    return type(exc).__name__ in {"EngineDeadError", "MemoryError"} or isinstance(exc, MemoryError)
