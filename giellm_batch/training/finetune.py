"""`giellm-batch finetune`: mixed-task GIELLM fine-tuning with transformers' Trainer (full or LoRA).

As in the paper, one model learns every configured task at once: each example is the task's
GIELLM prompt followed by its gold output, examples of all tasks shuffled together, loss on the
output tokens only. Checkpoints go to `<output_dir>/checkpoints`; a rerun after a kill resumes
from the last one. The finished model (or adapter) is written to `output_dir` atomically with a
training card (`giellm_training.json`); a rerun with the same config and data is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from giellm_batch.training.examples import read_pairs
from giellm_batch.training.finetune_config import FinetuneConfig
from giellm_batch.training.tiny_model import swap_in_directory as _swap_in

log = logging.getLogger("giellm_batch.finetune")
CARD = "giellm_training.json"
CARD_FORMAT = 1


def _digest(config: FinetuneConfig) -> str:
    """What the trained weights depend on: settings, the training data's bytes and this recipe's code
    (a changed recipe must not be answered from the cache)."""
    settings = {k: v for k, v in asdict(config).items() if k not in ("task_registry", "output_dir", "name")}
    settings["train"].pop("threads", None)  # speed only
    # Paths by name only: the data's bytes are hashed below, and a clone elsewhere (another user's
    # checkout, CI) must find the weights kept in the repository up to date.
    for section, key in (("base_model", "path"), ("base_model", "tokenizer_corpus"), ("data", "train"),
                         ("data", "heldout")):
        settings[section][key] = Path(settings[section][key]).name
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in (config.data.train, config.data.heldout):
        if path:
            digest.update(Path(path).read_bytes())
    digest.update(Path(__file__).read_bytes())
    registry = config.task_registry
    if registry is not None:
        tasks = {n: {k: v for k, v in asdict(t).items() if k != "span_boundaries"}  # decoding only
                 for n, t in registry.tasks.items()}
        digest.update(json.dumps(tasks, sort_keys=True).encode())
    return digest.hexdigest()


def _card_matches(folder: Path, digest: str) -> bool:
    try:
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(card, dict) and card.get("format") == CARD_FORMAT and card.get("digest") == digest


def is_up_to_date(config: FinetuneConfig) -> bool:
    return _card_matches(Path(config.output_dir), _digest(config))


def cache_dir() -> Path:
    """Trained models by digest, shared by every clone on this machine (GIELLM_BATCH_CACHE overrides)."""
    root = os.environ.get("GIELLM_BATCH_CACHE") or Path.home() / ".cache" / "giellm-batch"
    return Path(root) / "trained-models"


def _from_cache(config: FinetuneConfig) -> bool:
    """Copy an identical earlier build (same digest) into output_dir; True if there was one."""
    cached = cache_dir() / _digest(config)
    if not _card_matches(cached, _digest(config)):
        return False
    out = Path(config.output_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=_parent(out)))
    shutil.copytree(cached, tmp, dirs_exist_ok=True)
    _swap_in(tmp, out)
    return True


def _to_cache(config: FinetuneConfig) -> None:
    cached = cache_dir() / _digest(config)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_parent(cached)))
        shutil.copytree(config.output_dir, tmp, dirs_exist_ok=True)
        _swap_in(tmp, cached)
    except OSError as exc:  # a read-only home must not fail a finished training
        log.warning("could not cache the trained model in %s: %s", cached, exc)


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent


def load_examples(config: FinetuneConfig, path: str, limit: int = 0) -> list[dict[str, str]]:
    """Pairs of the configured tasks (all tasks in the file when none are configured)."""
    registry = config.task_registry
    assert registry is not None
    wanted = set(config.data.tasks)
    rows = [r for r in read_pairs(Path(path)) if not wanted or r.get("task") in wanted]
    unknown = sorted({str(r.get("task")) for r in rows if r.get("task") not in registry.tasks})
    if unknown:
        raise ValueError(f"{path}: tasks not in the registry: {', '.join(unknown)}")
    return rows[:limit] if limit else rows


def tokenize_examples(rows: list[dict[str, Any]], tokenizer: Any,
                      config: FinetuneConfig) -> tuple[list[dict[str, list[int]]], int]:
    """(examples, dropped). input_ids = prompt + output + EOS; labels mask the prompt (-100), and the
    text label of a pair marked `text_label_known: false` (a placeholder: public NER data has no
    sentence class), so the model is not taught to answer every real sentence with it. Examples
    longer than train.max_length are dropped and counted (the card reports the count)."""
    from giellm_batch.giellm.prompts import build_prompt

    registry = config.task_registry
    assert registry is not None
    out, dropped = [], 0
    for row in rows:
        task = registry.tasks[row["task"]]
        profile = registry.profiles[task.profile]
        prompt = build_prompt(task, profile, row["input"])
        prompt_ids = tokenizer(prompt)["input_ids"]  # as the engine sees it (with BOS)
        output_ids = [*tokenizer(row["output"], add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
        ids = prompt_ids + output_ids
        if len(ids) > config.train.max_length:
            dropped += 1
            continue
        labels = list(output_ids)
        if row.get("text_label_known") is False:
            hidden = _label_tokens(row["output"], profile, output_ids, tokenizer)
            labels = [-100] * hidden + output_ids[hidden:]
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * len(prompt_ids) + labels})
    if dropped:
        log.warning("dropped %d of %d examples longer than train.max_length=%d tokens", dropped, len(rows),
                    config.train.max_length)
    return out, dropped


def _label_tokens(output: str, profile: Any, output_ids: list[int], tokenizer: Any) -> int:
    """How many leading tokens of `output_ids` spell the text label (`‹社会>`, or `社会/` for OIELLM);
    0 when the tokenizer merges across the label's end (then nothing is masked)."""
    close = profile.label_close if profile.name != "oiellm" else "/"
    head = output[:output.index(close) + len(close)] if close in output else ""
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"] if head else []
    return len(head_ids) if output_ids[:len(head_ids)] == head_ids else 0


def copy_examples(rows: list[dict[str, str]], tokenizer: Any, share: float, seed: int) -> list[dict[str, list[int]]]:
    """Auxiliary repeat-the-sentence examples (`<s>text\ntext</s>`, loss on the repeat).

    Why: extracting an unseen name means copying it from the input, and a small model trained
    from scratch must learn to copy (induction heads). Alone they do not teach the tiny model to
    copy names; tied embeddings do (docs/quality.md). Training only: nothing is served this way.
    """
    import random

    rng = random.Random(seed)
    texts = sorted({r["input"] for r in rows})
    out = []
    for text in rng.sample(texts, min(len(texts), int(share * len(rows)))):
        first = tokenizer(text + "\n")["input_ids"]
        again = [*tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
        out.append({"input_ids": first + again, "attention_mask": [1] * (len(first) + len(again)),
                    "labels": [-100] * len(first) + again})
    return out


def ensure_base_model(config: FinetuneConfig, texts: list[str]) -> None:
    """Build the random base model (char-level tokenizer) when asked. A base built earlier with other
    settings or over other texts (its marker's spec or texts digest differs) is rebuilt: a vocabulary
    built from other texts would turn the new characters into byte pieces it never trained."""
    base = config.base_model
    from giellm_batch.training.tiny_model import (
        TinyModelSpec,
        build_tiny_model,
        built_marker,
        read_corpus,
        texts_sha256,
    )

    marker = built_marker(Path(base.path))
    if not base.init_if_missing or ((Path(base.path) / "config.json").is_file() and marker is None):
        return  # a checkpoint of the user's: never overwritten

    corpus = [*texts, *(read_corpus([Path(base.tokenizer_corpus)]) if base.tokenizer_corpus else [])]
    spec = TinyModelSpec(vocab_size=base.vocab_size, hidden_size=base.hidden_size,
                         intermediate_size=base.intermediate_size, num_layers=base.num_layers,
                         num_heads=base.num_heads, seed=config.train.seed, char_level=True,
                         tie_embeddings=base.tie_embeddings)
    if marker is not None and marker.get("spec") == asdict(spec) and marker.get("texts_sha256") == texts_sha256(corpus):
        return  # same shape and the same vocabulary source: keep it
    build_tiny_model(Path(base.path), corpus, spec, force=True)
    log.info("random base model %s built (%s)", base.path, spec)


def _progress_callback() -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One log line per logging step: step, loss, learning rate, elapsed and ETA."""

        def __init__(self) -> None:
            self.started = time.monotonic()
            self.first_step: int | None = None
            self.losses: list[tuple[int, float]] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None,
                   **_: Any) -> None:
            if not logs or "loss" not in logs:
                return
            if self.first_step is None:
                self.first_step, self.started = state.global_step, time.monotonic()
                eta = "?"
            else:
                rate = (time.monotonic() - self.started) / max(1, state.global_step - self.first_step)
                eta = f"{rate * (state.max_steps - state.global_step):.0f}s"
            self.losses.append((state.global_step, float(logs["loss"])))
            log.info("step %d/%d loss %.4f lr %.2e eta %s", state.global_step, state.max_steps, logs["loss"],
                     logs.get("learning_rate", 0.0), eta)

    return Progress()


def _last_checkpoint(checkpoints: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None


def finetune(config: FinetuneConfig, force: bool = False) -> dict[str, Any]:
    """Train (or resume) and write the model; returns the training card."""
    if not force and (is_up_to_date(config) or _from_cache(config)):
        log.info("%s is up to date with this config and data: nothing to train", config.output_dir)
        card: dict[str, Any] = json.loads((Path(config.output_dir) / CARD).read_text(encoding="utf-8"))
        return card
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.trainer_callback import PrinterCallback

    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    set_seed(config.train.seed)
    rows = load_examples(config, config.data.train, config.data.max_examples)
    if not rows:
        raise ValueError(f"{config.data.train}: no training pairs for tasks {list(config.data.tasks) or 'any'}")
    # The vocabulary covers every sentence of the training file, whichever tasks this run trains.
    ensure_base_model(config, sorted({str(r.get("input", "")) for r in read_pairs(Path(config.data.train))}))
    tokenizer = AutoTokenizer.from_pretrained(config.base_model.path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    train, too_long = tokenize_examples(rows, tokenizer, config)
    if config.train.copy_share:
        train += copy_examples(rows, tokenizer, config.train.copy_share, config.train.seed)
    heldout = tokenize_examples(load_examples(config, config.data.heldout), tokenizer, config)[0] \
        if config.data.heldout else None
    model: Any = AutoModelForCausalLM.from_pretrained(config.base_model.path,
                                                 dtype=torch.bfloat16 if config.train.bf16 else torch.float32)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = config.lora
        model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                 target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    checkpoints = Path(config.output_dir).parent / f".{Path(config.output_dir).name}.checkpoints"
    t = config.train
    args = TrainingArguments(
        output_dir=str(checkpoints), max_steps=t.max_steps, per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size, gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate, warmup_steps=t.warmup_steps, weight_decay=t.weight_decay,
        lr_scheduler_type="cosine", seed=t.seed, data_seed=t.seed, save_steps=t.save_steps,
        save_total_limit=t.save_total_limit, logging_steps=t.logging_steps, report_to=[], bf16=t.bf16,
        gradient_checkpointing=t.gradient_checkpointing, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0, disable_tqdm=True, save_only_model=False,
    )
    progress = _progress_callback()
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=heldout,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
                      callbacks=[progress])
    trainer.remove_callback(PrinterCallback)  # our Progress line replaces its raw dict prints
    resume = _last_checkpoint(checkpoints)
    if resume:
        log.info("resuming from %s", resume)
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=resume)
    metrics = trainer.evaluate() if heldout else {}
    card = {
        "format": CARD_FORMAT, "digest": _digest(config), "name": config.name, "method": config.method,
        "base_model": config.base_model.path, "tasks": sorted({r["task"] for r in rows}),
        "train_examples": len(train), "dropped_too_long": too_long, "heldout_examples": len(heldout or []),
        "steps": result.global_step,
        "train_loss": result.training_loss, "heldout_loss": metrics.get("eval_loss"),
        "losses": progress.losses, "seconds": round(time.monotonic() - started, 1), "resumed_from": resume,
        "seed": t.seed, "config": {k: v for k, v in asdict(config).items() if k != "task_registry"},
    }
    out_dir = Path(config.output_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=_parent(out_dir)))
    if t.save_dtype == "float16" and config.method == "full":
        model = model.to(torch.float16)  # half the size on disk; engines load it in their own dtype
    model.save_pretrained(str(tmp))  # the peft wrapper saves only the adapter
    tokenizer.save_pretrained(str(tmp))
    (tmp / CARD).write_text(json.dumps(card, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    _swap_in(tmp, out_dir)
    _to_cache(config)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return card
