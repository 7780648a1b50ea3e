"""Typed, validated job configuration, loaded once from YAML on the driver.

Every setting lives in a frozen dataclass with a documented field. `load_config` turns a YAML file
into a `JobConfig`, rejecting unknown keys (with a "did you mean" hint), wrong types and values
that cannot work (missing model directory, unknown task) *before* Spark starts, so a config
mistake never leaves half-written tables behind.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from giellm_batch.tasks import TaskRegistry, load_task_registry

InputFormat = Literal["livedoor", "jsonl", "parquet", "delta"]
INPUT_FORMATS: tuple[str, ...] = typing.get_args(InputFormat)


class ConfigError(ValueError):
    """A configuration problem; the message lists every problem and how to fix it."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


@dataclass(frozen=True)
class SparkSettings:
    """How the driver builds its SparkSession (ignored where spark-submit already set a value)."""

    master: str = "local[*]"  # used only when spark-submit gave no --master
    app_name: str = "giellm-batch"
    shuffle_partitions: int = 8  # small default: sample-sized data; raise on clusters
    conf: dict[str, str] = field(default_factory=dict)  # extra spark.* settings, passed through


@dataclass(frozen=True)
class ColumnMapping:
    """Input column names (jsonl/parquet/delta); the Livedoor reader fills them itself."""

    id: str = "id"
    body: str = "body"
    title: str = "title"
    url: str = "url"
    published_at: str = "published_at"
    category: str = "category"


@dataclass(frozen=True)
class InputSettings:
    """Where the articles come from."""

    path: str = ""  # file, directory or Delta table path; relative paths resolve against the config file
    format: InputFormat = "livedoor"
    columns: ColumnMapping = field(default_factory=ColumnMapping)


@dataclass(frozen=True)
class OutputSettings:
    """Where the Delta tables go: one directory per table under `warehouse`."""

    warehouse: str = "warehouse"
    # A run refreshes its warehouse lock's heartbeat while it runs; a lock whose heartbeat is older
    # than this is a dead run's and is taken over by the next run (see locking.py).
    lock_stale_seconds: float = 120.0


@dataclass(frozen=True)
class ModelSettings:
    """Which checkpoint vLLM loads."""

    path: str = ""  # local HF directory, or a hub id when source == "hub"
    source: Literal["local", "hub"] = "local"
    name: str = ""  # recorded as model_id in the tables; defaults to the directory name
    revision: str = ""  # recorded for provenance (hub revision or your own version tag)
    # A LoRA adapter folder (`giellm-batch finetune` with method: lora) that vLLM serves on top of
    # `path` without merging; empty = the base model alone. Its folder name joins the model_id.
    adapter: str = ""
    max_lora_rank: int = 16  # vLLM's LoRA slot size: at least the adapter's r


@dataclass(frozen=True)
class EngineSettings:
    """vLLM engine and decoding settings. Decoding is always greedy."""

    max_new_tokens: int = 128  # hard bound per output; hitting it marks the parse `partial`
    max_model_len: int = 1024  # context length given to vLLM; longer prompts are quarantined
    dtype: str = "auto"  # "bfloat16"/"float16" on GPU; "auto" lets vLLM pick (bf16/fp32 on CPU)
    kv_cache_memory_bytes: int = 0  # explicit KV-cache size; 0 = use gpu_memory_utilization
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    max_num_seqs: int = 256
    enable_prefix_caching: bool = True  # the sentence leads every prompt, so tasks share a prefix
    enforce_eager: bool = False  # skip graph compilation: ~3 s engine start on CPU instead of ~25 s
    constrained_decoding: bool = True  # regex-constrain outputs to the task's grammar
    max_items: int = 4  # most items the constraint allows per output
    max_span_chars: int = 24  # longest span (characters) the constraint allows
    batch_size: int = 512  # prompts handed to one engine.generate() call
    seed: int = 0
    quantization: str = ""  # e.g. "awq"; empty = none


@dataclass(frozen=True)
class SegmentationSettings:
    """Sentence splitting."""

    max_sentence_chars: int = 300  # longer sentences are split at a morpheme boundary, never cut
    min_sentence_chars: int = 2  # shorter fragments (stray punctuation) are dropped from prompts


@dataclass(frozen=True)
class ExecutionSettings:
    """How the inference stage is placed on the cluster and fed."""

    # GPUs each inference task asks for through a stage-level ResourceProfile; its engine is pinned
    # to the addresses Spark assigns (TaskContext.resources()). 0 = CPU engines, no GPU request.
    gpus_per_engine: int = 0
    cpus_per_engine: int = 1  # CPU cores each inference task reserves (with gpus_per_engine > 0)
    gpu_resource_name: str = "gpu"  # the resource name your executors' GPU discovery script reports
    # Inference partition size in prompts: smaller gives steadier progress and load balance across
    # engines, larger fewer tasks. The engine is cached per worker, so many partitions cost little.
    prompts_per_partition: int = 4000
    dedup: bool = True  # send each distinct prompt to the engine once; reuse outputs across runs (prompt_cache)
    progress_interval_seconds: float = 30.0  # how often the driver logs prompts done, prompts/s and ETA


@dataclass(frozen=True)
class JobConfig:
    """Everything one run needs; built by `load_config`."""

    source: str  # the YAML file this came from
    spark: SparkSettings
    input: InputSettings
    output: OutputSettings
    model: ModelSettings
    engine: EngineSettings
    segmentation: SegmentationSettings
    tasks: tuple[str, ...]  # task names to run, from the registry
    task_registry: TaskRegistry
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)

    @property
    def model_id(self) -> str:
        base = self.model.name or Path(self.model.path).name
        return f"{base}+{Path(self.model.adapter).name}" if self.model.adapter else base

    def selected_tasks(self) -> list[Any]:
        return [self.task_registry.tasks[name] for name in self.tasks]

    def task_hash(self) -> str:
        """Prompt profiles + the selected task definitions (IW, labels, item shape)."""
        return _digest({
            "tasks": [dataclasses.asdict(t) for t in self.selected_tasks()],
            "profiles": {k: dataclasses.asdict(v) for k, v in self.task_registry.profiles.items()},
        })

    def decoding_hash(self) -> str:
        """Decoding and segmentation settings that change what the model is asked and may answer."""
        eng = self.engine
        return _digest({
            "decoding": [eng.max_new_tokens, eng.constrained_decoding, eng.max_items, eng.max_span_chars],
            "segmentation": dataclasses.asdict(self.segmentation),
        })

    def pipeline_hash(self) -> str:
        """Identifies what produced a result: model + task definitions + decoding.

        Results carry it so a rerun with the same pipeline skips finished articles, while a
        different model or prompt version is kept side by side.
        """
        return _digest([self.model_id, self.model.revision, self.task_hash(), self.decoding_hash()])


def _digest(payload: Any) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


_SECTIONS: dict[str, type] = {
    "spark": SparkSettings,
    "input": InputSettings,
    "output": OutputSettings,
    "model": ModelSettings,
    "engine": EngineSettings,
    "segmentation": SegmentationSettings,
    "execution": ExecutionSettings,
}
_TOP_KEYS = (*_SECTIONS, "tasks", "task_registry")


def _unknown_key(key: str, allowed: typing.Iterable[str], where: str) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
    return f"{where}: unknown key '{key}'{hint}"


def _check_value(value: Any, annotation: Any, where: str) -> list[str]:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        return [] if value in allowed else [f"{where}: '{value}' is not one of {list(allowed)}"]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping, got {type(value).__name__}"]
        return []
    if annotation is bool:
        return [] if isinstance(value, bool) else [f"{where}: expected true/false, got {value!r}"]
    if annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected an integer, got {value!r}"]
    if annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a number, got {value!r}"]
    if annotation is str:
        return [] if isinstance(value, str) else [f"{where}: expected a string, got {value!r}"]
    return []


def _build_section(cls: type, data: Any, where: str, problems: list[str]) -> Any:
    """Build dataclass `cls` from a YAML mapping, collecting (not raising) problems."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping, got {type(data).__name__}")
        return cls()
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            problems.append(_unknown_key(str(key), names, where))
            continue
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
            kwargs[key] = _build_section(annotation, value, f"{where}.{key}", problems)
            continue
        if isinstance(annotation, types.UnionType):
            annotation = str
        errors = _check_value(value, annotation, f"{where}.{key}")
        if errors:
            problems.extend(errors)
            continue
        if annotation is float:
            value = float(value)
        if typing.get_origin(annotation) is dict:
            value = {str(k): str(v) for k, v in value.items()}
        kwargs[key] = value
    return cls(**kwargs)


def _resolve(base: Path, value: str) -> str:
    if not value or "://" in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def load_config(
    path: str | Path,
    *,
    overrides: dict[str, dict[str, Any]] | None = None,
    check_paths: bool = True,
) -> JobConfig:
    """Load and validate a job config. Raises ConfigError listing every problem found.

    `overrides` maps section -> {key: value} and wins over the file (used for CLI flags such as
    --output). Relative paths resolve against the directory holding the YAML file, so the job
    behaves the same from any working directory.
    """
    source = str(path)
    config_path = Path(path)
    if not config_path.is_file():
        raise ConfigError(source, [f"config file not found: {config_path} (pass --config PATH)"])
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the top level must be a mapping of sections"])
    for section, values in (overrides or {}).items():
        merged = dict(raw.get(section) or {})
        merged.update({k: v for k, v in values.items() if v is not None})
        raw[section] = merged

    problems: list[str] = [_unknown_key(str(k), _TOP_KEYS, "top level") for k in raw if k not in _TOP_KEYS]
    sections = {name: _build_section(cls, raw.get(name), name, problems) for name, cls in _SECTIONS.items()}
    base = config_path.parent.resolve()

    registry_file = raw.get("task_registry", "tasks.yaml")
    registry_path = Path(_resolve(base, str(registry_file)))
    registry: TaskRegistry | None = None
    try:
        registry = load_task_registry(registry_path)
    except ValueError as exc:
        problems.append(f"task_registry: {exc}")

    tasks_raw = raw.get("tasks")
    if not isinstance(tasks_raw, list) or not tasks_raw or not all(isinstance(t, str) for t in tasks_raw):
        problems.append("tasks: give a non-empty list of task names, e.g. [scnm_ner, tcree_re]")
        tasks: tuple[str, ...] = ()
    else:
        tasks = tuple(dict.fromkeys(tasks_raw))
        if registry is not None:
            for name in tasks:
                if name not in registry.tasks:
                    problems.append(
                        f"tasks: unknown task '{name}'; known tasks in {registry_path.name}: "
                        f"{', '.join(sorted(registry.tasks))}"
                    )

    inp: InputSettings = sections["input"]
    out: OutputSettings = sections["output"]
    model: ModelSettings = sections["model"]
    inp = dataclasses.replace(inp, path=_resolve(base, inp.path))
    out = dataclasses.replace(out, warehouse=_resolve(base, out.warehouse))
    if model.source == "local":
        model = dataclasses.replace(model, path=_resolve(base, model.path))
    model = dataclasses.replace(model, adapter=_resolve(base, model.adapter))
    problems.extend(_check_semantics(inp, model, sections["engine"], sections["segmentation"], check_paths))
    problems.extend(_check_execution(sections["execution"], sections["engine"]))
    if not out.lock_stale_seconds > 0:
        problems.append(f"output.lock_stale_seconds: must be > 0 (seconds), got {out.lock_stale_seconds}")

    if problems or registry is None:
        raise ConfigError(source, problems)
    return JobConfig(
        source=str(config_path.resolve()),
        spark=sections["spark"],
        input=inp,
        output=out,
        model=model,
        engine=sections["engine"],
        segmentation=sections["segmentation"],
        tasks=tasks,
        task_registry=registry,
        execution=sections["execution"],
    )


def _check_semantics(
    inp: InputSettings,
    model: ModelSettings,
    engine: EngineSettings,
    seg: SegmentationSettings,
    check_paths: bool,
) -> list[str]:
    problems: list[str] = []
    if not inp.path:
        problems.append("input.path: set the article file/directory/table to read")
    elif check_paths and "://" not in inp.path and not Path(inp.path).exists():
        problems.append(f"input.path: {inp.path} does not exist")
    if not model.path:
        problems.append("model.path: set the model directory (or a hub id with model.source: hub)")
    elif model.source == "local" and check_paths and not (Path(model.path) / "config.json").is_file():
        problems.append(
            f"model.path: no model at {model.path} (no config.json). Build the smoke-test model with "
            f"`giellm-batch build-tiny-model --out {model.path}` or point model.path at a checkpoint "
            "such as a local copy of ganchengguang/GIELLM-13B-jpllm"
        )
    if model.adapter and check_paths and not (Path(model.adapter) / "adapter_config.json").is_file():
        problems.append(f"model.adapter: no LoRA adapter at {model.adapter} (no adapter_config.json); train one "
                        "with `giellm-batch finetune` (method: lora) or leave model.adapter empty")
    for name in ("max_new_tokens", "max_model_len", "max_num_seqs", "batch_size", "max_items",
                 "max_span_chars", "tensor_parallel_size"):
        if getattr(engine, name) < 1:
            problems.append(f"engine.{name}: must be at least 1")
    if engine.kv_cache_memory_bytes < 0:
        problems.append("engine.kv_cache_memory_bytes: must be >= 0 (0 = use gpu_memory_utilization)")
    if not 0 < engine.gpu_memory_utilization <= 1:
        problems.append("engine.gpu_memory_utilization: must be in (0, 1]")
    if engine.max_new_tokens >= engine.max_model_len:
        problems.append("engine.max_new_tokens: must be smaller than engine.max_model_len")
    if seg.max_sentence_chars < 20:
        problems.append("segmentation.max_sentence_chars: must be at least 20")
    return problems


def _check_execution(ex: ExecutionSettings, engine: EngineSettings) -> list[str]:
    problems: list[str] = []
    if ex.gpus_per_engine < 0:
        problems.append("execution.gpus_per_engine: must be >= 0 (0 = CPU engines)")
    elif ex.gpus_per_engine and ex.gpus_per_engine != engine.tensor_parallel_size:
        problems.append(
            f"execution.gpus_per_engine ({ex.gpus_per_engine}) must equal engine.tensor_parallel_size "
            f"({engine.tensor_parallel_size}): one engine spans exactly the GPUs its task is given"
        )
    if ex.cpus_per_engine < 1:
        problems.append("execution.cpus_per_engine: must be at least 1")
    if ex.prompts_per_partition < 1:
        problems.append("execution.prompts_per_partition: must be at least 1")
    if ex.progress_interval_seconds <= 0:
        problems.append("execution.progress_interval_seconds: must be > 0")
    if not ex.gpu_resource_name:
        problems.append("execution.gpu_resource_name: set the Spark resource name of your GPUs (usually 'gpu')")
    return problems
