"""Loading the job configuration: YAML -> typed, validated `JobConfig`, once, on the driver.

The settings themselves (one dataclass per section, documented fields) are in `settings.py` and
re-exported here. `load_config` rejects unknown keys (with a "did you mean" hint), wrong types and
values that cannot work (missing model directory, unknown task) *before* Spark starts, so a
config mistake never leaves half-written tables behind.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from giellm_batch.config.settings import (
    INPUT_FORMATS,
    MANIFEST_BY_STORE,
    ColumnMapping,
    ConfigError,
    EngineSettings,
    ExecutionSettings,
    InputFormat,
    InputSettings,
    JobConfig,
    ModelSettings,
    MonitoringSettings,
    ObjectStoreSettings,
    OutputSettings,
    SegmentationSettings,
    SparkSettings,
)
from giellm_batch.giellm.tasks import TaskRegistry, load_task_registry

__all__ = [
    "INPUT_FORMATS", "ColumnMapping", "ConfigError", "EngineSettings", "ExecutionSettings", "InputFormat",
    "InputSettings", "JobConfig", "ModelSettings", "MonitoringSettings", "ObjectStoreSettings",
    "OutputSettings", "SegmentationSettings", "SparkSettings",
    "load_config",
]


_SECTIONS: dict[str, type] = {
    "spark": SparkSettings,
    "input": InputSettings,
    "output": OutputSettings,
    "model": ModelSettings,
    "engine": EngineSettings,
    "segmentation": SegmentationSettings,
    "execution": ExecutionSettings,
    "monitoring": MonitoringSettings,
    "object_store": ObjectStoreSettings,
}
_TOP_KEYS = (*_SECTIONS, "tasks", "task_registry")
# Keys of earlier versions, with what replaces them (an old config fails with this, not "unknown").
_REMOVED_KEYS = {
    "engine.constrained_decoding": "use engine.decoding: grounded (default) | regex | free "
                                   "(constrained_decoding: true was regex, false was free)",
}


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
        if f"{where}.{key}" in _REMOVED_KEYS:
            problems.append(f"{where}.{key}: no longer a setting; {_REMOVED_KEYS[f'{where}.{key}']}")
            continue
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
    mon: MonitoringSettings = sections["monitoring"]
    if mon.drift_window < 0 or mon.min_prompts < 0:
        problems.append("monitoring.drift_window / min_prompts: must be >= 0 (drift_window 0 = no drift checks)")
    for name in ("max_ok_rate_drop", "max_quarantine_share_rise", "max_items_change", "max_label_divergence",
                 "max_ungrounded_share_rise"):
        if getattr(mon, name) < 0:
            problems.append(f"monitoring.{name}: must be >= 0")
    if inp.skip_finished_files_from < -1 and inp.skip_finished_files_from != MANIFEST_BY_STORE:
        problems.append("input.skip_finished_files_from: must be >= 0 (files; 0 = always skip finished files) "
                        f"or -1 (never), or left out (by the input's store), got {inp.skip_finished_files_from}")
    # The value in effect, decided once here (input path resolved): runs and reports show what applied.
    inp = dataclasses.replace(inp, skip_finished_files_from=inp.manifest_from())
    problems.extend(_check_object_store(sections["object_store"], inp.path, out.warehouse))
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
        monitoring=sections["monitoring"],
        object_store=sections["object_store"],
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
    for name in ("max_new_tokens", "max_model_len", "max_num_seqs", "batch_size", "tensor_parallel_size"):
        if getattr(engine, name) < 1:
            problems.append(f"engine.{name}: must be at least 1")
    for name in ("max_items", "max_span_chars"):
        if getattr(engine, name) < 0:
            problems.append(f"engine.{name}: must be >= 0 (0 = no bound)")
    if engine.kv_cache_memory_bytes < 0:
        problems.append("engine.kv_cache_memory_bytes: must be >= 0 (0 = use gpu_memory_utilization)")
    if not 0 < engine.gpu_memory_utilization <= 1:
        problems.append("engine.gpu_memory_utilization: must be in (0, 1]")
    if engine.max_new_tokens >= engine.max_model_len:
        problems.append("engine.max_new_tokens: must be smaller than engine.max_model_len")
    if seg.max_sentence_chars < 20:
        problems.append("segmentation.max_sentence_chars: must be at least 20")
    if seg.max_article_chars < 0:
        problems.append("segmentation.max_article_chars: must be 0 (no bound) or more")
    if not 1_000 <= seg.mecab_max_chars <= 100_000:
        problems.append("segmentation.mecab_max_chars: must be between 1,000 and 100,000 (MeCab crashes on one "
                        "call of ~190,000 characters of some inputs)")
    return problems


def _check_execution(ex: ExecutionSettings, engine: EngineSettings) -> list[str]:
    problems: list[str] = []
    if ex.gpus_per_engine < 0:
        problems.append("execution.gpus_per_engine: must be >= 0 (0 = CPU engines)")
    elif ex.gpus_per_engine and ex.gpus_per_engine != engine.tensor_parallel_size:
        problems.append(
            f"execution.gpus_per_engine ({ex.gpus_per_engine}) must equal engine.tensor_parallel_size "
            f"({engine.tensor_parallel_size}): one engine spans exactly the GPUs its Spark task is given"
        )
    if ex.cpus_per_engine < 1:
        problems.append("execution.cpus_per_engine: must be at least 1")
    if ex.prompts_per_partition < 1:
        problems.append("execution.prompts_per_partition: must be at least 1")
    if ex.driver_staging_max_chars < 0:
        problems.append("execution.driver_staging_max_chars: must be 0 (always stage files) or more")
    if ex.progress_interval_seconds <= 0:
        problems.append("execution.progress_interval_seconds: must be > 0")
    if ex.record_timeout_seconds <= 0:
        problems.append("execution.record_timeout_seconds: must be > 0")
    if ex.record_memory_bytes < (64 << 20):
        problems.append("execution.record_memory_bytes: must be at least 67108864 (64 MiB)")
    if not ex.gpu_resource_name:
        problems.append("execution.gpu_resource_name: set the Spark resource name of your GPUs (usually 'gpu')")
    return problems


def _check_object_store(store: ObjectStoreSettings, *paths: str) -> list[str]:
    problems: list[str] = []
    if store.endpoint and not store.endpoint.startswith(("http://", "https://")):
        problems.append(f"object_store.endpoint: give a URL with its scheme, e.g. http://{store.endpoint} "
                        f"(got '{store.endpoint}')")
    for path in paths:
        scheme = path.partition("://")[0].lower() if "://" in path else ""
        if scheme == "s3n" or (scheme == "s3" and store.hadoop_aws == "auto"):
            problems.append(f"{path}: use s3a://{path.partition('://')[2]} (Hadoop's S3A connector, which this "
                            "project sets up); on EMR, where s3:// is EMRFS, set object_store.hadoop_aws: provided")
    return problems
