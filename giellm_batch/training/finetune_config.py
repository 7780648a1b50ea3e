"""Typed, validated fine-tuning configuration (`conf/finetune.yaml`), loaded once before training.

Same rules as the job's config: unknown keys fail with a "did you mean", wrong types and values
that cannot work fail with what to fix, all before any model is loaded or file written.
Relative paths resolve against the YAML file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from giellm_batch.config.job_config import ConfigError, _build_section, _resolve
from giellm_batch.giellm.tasks import TaskRegistry, load_task_registry


@dataclass(frozen=True)
class BaseModelSettings:
    """The model training starts from."""

    path: str = ""  # a local HF model directory (a checkpoint such as GIELLM-13B-jpllm, or a base built by `init`)
    # When true and `path` holds no model yet, build a fresh random LLaMA there first, with a
    # one-token-per-character tokenizer over the training texts (the embedded tiny model's recipe);
    # a base built that way earlier with other settings below is rebuilt.
    init_if_missing: bool = False
    hidden_size: int = 256  # only for init: width (must be num_heads x 64 on vLLM CPU)
    num_layers: int = 4  # only for init
    num_heads: int = 4  # only for init
    intermediate_size: int = 768  # only for init
    vocab_size: int = 4000  # only for init: upper bound, one token per frequent character
    tokenizer_corpus: str = ""  # only for init: extra folder of *.txt whose characters the vocabulary covers
    tie_embeddings: bool = False  # only for init: output layer shares the input embedding (copies sooner)


@dataclass(frozen=True)
class DataSettings:
    """Training pairs: JSONL with task / input / output (what `giellm-batch training-data` writes)."""

    train: str = ""  # pairs to train on
    heldout: str = ""  # pairs to report the held-out loss on (optional)
    tasks: tuple[str, ...] = ()  # train on these tasks of the file; empty = every task in it (mixed, as the paper)
    max_examples: int = 0  # use at most this many training pairs (0 = all), for quick runs


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapter (peft) for large checkpoints; ignored when method is "full"."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation. Loss is on the output tokens only (the prompt is context)."""

    max_steps: int = 1000
    batch_size: int = 32  # per device
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    seed: int = 0  # data order and initialisation; fixed so a build is reproducible
    save_steps: int = 200  # checkpoint every N steps (a killed run resumes from the last one)
    save_total_limit: int = 2
    logging_steps: int = 25  # progress line (step, loss, ETA) every N steps
    max_length: int = 256  # longer examples are dropped (counted in the log), never cut
    bf16: bool = False  # GPU recipe: bfloat16 mixed precision
    gradient_checkpointing: bool = False  # GPU recipe: trade compute for memory on 13B
    threads: int = 0  # torch CPU threads (0 = torch's default)
    # Extra "repeat the sentence" examples, as a share of the pairs: teaches a model trained from
    # scratch to copy spans from its input (see finetune.copy_examples). 0 for pretrained checkpoints.
    copy_share: float = 0.0
    # Weights as written: float32, or float16 (half the size: the embedded model is kept in the
    # repository, under 10 MB). Training itself runs in float32 (or bf16 with `bf16`).
    save_dtype: Literal["float32", "float16"] = "float32"


@dataclass(frozen=True)
class FinetuneConfig:
    base_model: BaseModelSettings
    data: DataSettings
    train: TrainSettings
    lora: LoraSettings
    output_dir: str  # the trained model (method full) or adapter (method lora); checkpoints in <output_dir>/checkpoints
    method: Literal["full", "lora"] = "full"
    name: str = ""  # recorded in the model directory's training card
    task_registry: TaskRegistry | None = None


_SECTIONS: dict[str, type] = {"base_model": BaseModelSettings, "data": DataSettings, "train": TrainSettings,
                              "lora": LoraSettings}
_TOP = (*_SECTIONS, "output_dir", "method", "name", "task_registry")


def load_finetune_config(path: str | Path, overrides: dict[str, Any] | None = None) -> FinetuneConfig:
    source = Path(path)
    problems: list[str] = []
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(source), [f"cannot read the file: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(str(source), ["the file must hold a mapping of sections"])
    for key, value in (overrides or {}).items():  # a section's keys merge into the file's section
        merged = isinstance(value, dict) and isinstance(raw.get(key), dict)
        raw[key] = {**raw[key], **value} if merged else value
    from giellm_batch.config.job_config import _unknown_key

    problems.extend(_unknown_key(str(k), _TOP, "top level") for k in raw if k not in _TOP)
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        data = dict(raw.get(name) or {}) if isinstance(raw.get(name) or {}, dict) else raw.get(name)
        tuples = {k: data.pop(k) for k in ("tasks", "target_modules") if isinstance(data, dict) and k in data}
        sections[name] = _build_section(cls, data, name, problems)
        for key, value in tuples.items():
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"{name}.{key}: expected a list of strings, got {value!r}")
            else:
                sections[name] = replace(sections[name], **{key: tuple(value)})
    base = source.parent.resolve()
    method = raw.get("method", "full")
    if method not in ("full", "lora"):
        problems.append(f"method: '{method}' is not one of ['full', 'lora']")
    output_dir = _resolve(base, str(raw.get("output_dir") or ""))
    if not output_dir:
        problems.append("output_dir: required (where the trained model or adapter is written)")
    registry_path = Path(_resolve(base, str(raw.get("task_registry") or "tasks.yaml")))
    registry = None
    try:
        registry = load_task_registry(registry_path)
    except (OSError, ValueError) as exc:
        problems.append(f"task_registry: {exc}")
    model = sections["base_model"]
    model = replace(model, path=_resolve(base, model.path), tokenizer_corpus=_resolve(base, model.tokenizer_corpus))
    data = sections["data"]
    data = replace(data, train=_resolve(base, data.train), heldout=_resolve(base, data.heldout))
    problems.extend(_check(model, data, sections["train"], sections["lora"], registry))
    if problems:
        raise ConfigError(str(source), problems)
    return FinetuneConfig(base_model=model, data=data, train=sections["train"], lora=sections["lora"],
                          output_dir=output_dir, method=method, name=str(raw.get("name") or Path(output_dir).name),
                          task_registry=registry)


def _check(model: BaseModelSettings, data: DataSettings, train: TrainSettings, lora: LoraSettings,
           registry: TaskRegistry | None) -> list[str]:
    problems = []
    if not model.path:
        problems.append("base_model.path: required (a local model directory, or a folder to build one in "
                        "with init_if_missing: true)")
    elif not (Path(model.path) / "config.json").is_file() and not model.init_if_missing:
        problems.append(f"base_model.path: no model at {model.path} (no config.json); point it at a local "
                        "checkpoint or set base_model.init_if_missing: true")
    if model.init_if_missing and model.hidden_size % model.num_heads:
        problems.append("base_model.hidden_size must be a multiple of num_heads")
    if not data.train:
        problems.append("data.train: required (pairs JSONL from `giellm-batch training-data`)")
    elif not Path(data.train).is_file():
        problems.append(f"data.train: file not found: {data.train}")
    if data.heldout and not Path(data.heldout).is_file():
        problems.append(f"data.heldout: file not found: {data.heldout}")
    if registry is not None:
        problems.extend(f"data.tasks: unknown task '{t}'; known: {', '.join(sorted(registry.tasks))}"
                        for t in data.tasks if t not in registry.tasks)
    positive = {"train.max_steps": train.max_steps, "train.batch_size": train.batch_size,
                "train.gradient_accumulation_steps": train.gradient_accumulation_steps,
                "train.save_steps": train.save_steps, "train.logging_steps": train.logging_steps,
                "train.max_length": train.max_length, "lora.r": lora.r}
    problems.extend(f"{k}: must be > 0, got {v}" for k, v in positive.items() if v <= 0)
    if not 0 < train.learning_rate < 1:
        problems.append(f"train.learning_rate: must be in (0, 1), got {train.learning_rate}")
    if not 0 <= train.copy_share <= 1:
        problems.append(f"train.copy_share: must be in [0, 1], got {train.copy_share}")
    if not 0 <= lora.dropout < 1:
        problems.append(f"lora.dropout: must be in [0, 1), got {lora.dropout}")
    return problems
