"""The extraction plan: what the prompt, generation and parse steps need to know, built once on
the driver from the job's config and shipped to executors (plain, picklable data)."""

from __future__ import annotations

from dataclasses import dataclass, field

from giellm_batch.config.job_config import JobConfig
from giellm_batch.engine.vllm_engine import EngineSpec
from giellm_batch.giellm.prompts import build_prompt
from giellm_batch.giellm.tasks import PromptProfile, TaskSpec
from giellm_batch.isolation.process import IsolationLimits


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
    span_boundaries: str = "morphemes"  # grounded decoding: morphemes | noun_phrases | characters (settings)
    prompts_per_partition: int = 4000  # engine calls per generation-stage partition (ExecutionSettings)
    identity: str = ""  # what makes two equal prompts give equal outputs (model, decoding, dtype...)
    dedup: bool = True
    gpus_per_engine: int = 0
    gpu_resource_name: str = "gpu"
    fault: str = ""  # faults.POINTS; tests only
    # Bounds on one record's work; each batch of per-record work runs in a child process (isolation/process.py).
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


def extraction_plan(config: JobConfig, fault: str = "") -> ExtractionPlan:
    """The plan of a job with this config (`fault`: an injected fault point, tests only)."""
    eng, ex = config.engine, config.execution
    spec = EngineSpec(
        model=config.model.path, max_model_len=eng.max_model_len, dtype=eng.dtype,
        kv_cache_memory_bytes=eng.kv_cache_memory_bytes, gpu_memory_utilization=eng.gpu_memory_utilization,
        tensor_parallel_size=eng.tensor_parallel_size, max_num_seqs=eng.max_num_seqs,
        enable_prefix_caching=eng.enable_prefix_caching, enforce_eager=eng.enforce_eager, seed=eng.seed,
        quantization=eng.quantization, adapter=config.model.adapter, max_lora_rank=config.model.max_lora_rank,
    )
    return ExtractionPlan(
        engine=spec, tasks=tuple(config.selected_tasks()), profiles=dict(config.task_registry.profiles),
        max_new_tokens=eng.max_new_tokens, decoding=eng.decoding, max_items=eng.max_items,
        max_span_chars=eng.max_span_chars, batch_size=eng.batch_size, span_boundaries=eng.span_boundaries,
        fault=fault,
        # Everything besides the prompt that decides the engine's answer: the dedup cache key.
        identity=f"{config.pipeline_hash()}|{eng.dtype}|{eng.quantization}|{eng.seed}",
        dedup=ex.dedup, prompts_per_partition=ex.prompts_per_partition, gpus_per_engine=ex.gpus_per_engine,
        gpu_resource_name=ex.gpu_resource_name,
        isolation=ex.isolation(),
    )
