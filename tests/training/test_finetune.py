"""`giellm-batch finetune`: config fails fast, loss falls, a killed run resumes, the model serves in the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from giellm_batch.config.job_config import ConfigError
from giellm_batch.training.examples import build_pairs, write_jsonl
from giellm_batch.training.finetune_config import load_finetune_config
from giellm_batch.training.synthetic import generate
from tests.conftest import CONFIG, REPO

TASKS = ["scnm_ner", "tcree_re", "tcree_ee", "scpos_n"]


def write_config(tmp_path: Path, pairs: Path, **train) -> Path:
    settings = {"max_steps": 40, "batch_size": 8, "learning_rate": 0.003, "warmup_steps": 2, "save_steps": 20,
                "logging_steps": 5, "threads": 2, **train}
    config = {
        "name": "test-mini", "method": "full", "output_dir": str(tmp_path / "model"),
        "task_registry": str(REPO / "conf" / "tasks.yaml"),
        "base_model": {"path": str(tmp_path / "base"), "init_if_missing": True, "hidden_size": 128,
                       "num_heads": 2, "num_layers": 2, "intermediate_size": 256, "vocab_size": 800},
        "data": {"train": str(pairs / "train.jsonl"), "tasks": TASKS},
        "train": settings,
    }
    path = tmp_path / "finetune.yaml"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return path


@pytest.fixture(autouse=True)
def own_model_cache(tmp_path, monkeypatch):
    """A trained-model cache of this test's own: the machine's cache (keyed by config, data and code,
    not by paths) may hold the same tiny model from an earlier run, and these tests must train."""
    monkeypatch.setenv("GIELLM_BATCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, registry) -> Path:
    out = tmp_path_factory.mktemp("pairs")
    records = [json.dumps(r, ensure_ascii=False) for r in generate(300, 0, seed=5)]
    report = build_pairs(records, registry, TASKS)
    write_jsonl(out / "train.jsonl", (p.as_json() for p in report.pairs))
    return out


def finetune_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giellm_batch.cli", "finetune", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_config_mistakes_fail_before_training_with_what_to_fix(tmp_path, pairs):
    path = write_config(tmp_path, pairs)
    config = json.loads(path.read_text(encoding="utf-8"))
    config["train"]["learning_rat"] = 0.1
    config["train"]["batch_size"] = 0
    config["data"]["tasks"] = ["scnm_ner", "ner_v2"]
    config["methd"] = "lora"
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_finetune_config(path)
    message = str(err.value)
    assert "train: unknown key 'learning_rat'; did you mean 'learning_rate'?" in message
    assert "train.batch_size: must be > 0, got 0" in message
    assert "data.tasks: unknown task 'ner_v2'" in message
    assert "top level: unknown key 'methd'; did you mean 'method'?" in message
    result = finetune_cli("--config", str(path))
    assert result.returncode == 2 and "learning_rat" in result.stderr
    assert not (tmp_path / "model").exists() and not (tmp_path / "base").exists()


def test_loss_falls_and_the_model_serves_in_the_extraction_job(tmp_path, pairs, spark):
    from giellm_batch.run import job

    path = write_config(tmp_path, pairs)
    result = finetune_cli("--config", str(path))
    assert result.returncode == 0, result.stderr[-2000:]
    card = json.loads((tmp_path / "model" / "giellm_training.json").read_text(encoding="utf-8"))
    losses = [loss for _, loss in card["losses"]]
    assert card["steps"] == 40 and len(losses) == 8
    assert losses[-1] < 0.5 * losses[0], losses
    assert "step 40/40 loss" in result.stderr  # the progress line
    # a rerun with the same config and data trains nothing
    again = finetune_cli("--config", str(path))
    assert again.returncode == 0 and "is up to date" in again.stderr

    source = tmp_path / "articles.jsonl"
    source.write_text(json.dumps({"id": "a1", "body": "山田太郎はさくら電機の社長だ。東京で新製品を発表した。",
                                  "title": "発表", "published_at": "2025-03-01T10:00:00+09:00"},
                                 ensure_ascii=False) + "\n", encoding="utf-8")
    warehouse = tmp_path / "wh"
    argv = ["--config", str(CONFIG), "--input", str(source), "--input-format", "jsonl", "--output", str(warehouse),
            "--tasks", "scnm_ner", "--model", str(tmp_path / "model")]
    assert job.main(argv) == 0
    runs = spark.read.format("delta").load(str(warehouse / "runs")).collect()
    assert runs[0]["model_id"] == "model" and runs[0]["status"] == "succeeded"
    rows = spark.read.format("delta").load(str(warehouse / "extractions")).collect()
    assert len(rows) == 2 and {r["parse_status"] for r in rows} <= {"ok", "partial"}


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, pairs):
    path = write_config(tmp_path, pairs, max_steps=60, save_steps=10, logging_steps=10)
    checkpoints = tmp_path / ".model.checkpoints"
    process = subprocess.Popen([sys.executable, "-m", "giellm_batch.cli", "finetune", "--config", str(path)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("checkpoint-*/trainer_state.json")) and time.monotonic() < deadline:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert list(checkpoints.glob("checkpoint-*")), "no checkpoint was written before the kill"
    assert not (tmp_path / "model").exists()
    result = finetune_cli("--config", str(path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming from" in result.stderr
    card = json.loads((tmp_path / "model" / "giellm_training.json").read_text(encoding="utf-8"))
    assert card["steps"] == 60 and card["resumed_from"]
    assert not checkpoints.exists()  # cleaned once the model is in place


def test_a_lora_adapter_trains_and_is_served_unmerged_by_the_job(tmp_path, pairs, spark):
    from giellm_batch.run import job

    path = write_config(tmp_path, pairs, max_steps=20, learning_rate=0.01)
    config = json.loads(path.read_text(encoding="utf-8"))
    config["method"] = "lora"
    config["lora"] = {"r": 8, "alpha": 16}
    path.write_text(json.dumps(config), encoding="utf-8")
    result = finetune_cli("--config", str(path))
    assert result.returncode == 0, result.stderr[-2000:]
    adapter = tmp_path / "model"
    assert (adapter / "adapter_config.json").is_file() and not (adapter / "model.safetensors").exists()
    card = json.loads((adapter / "giellm_training.json").read_text(encoding="utf-8"))
    assert card["method"] == "lora" and card["losses"][-1][1] < card["losses"][0][1]

    source = tmp_path / "articles.jsonl"
    source.write_text(json.dumps({"id": "a1", "body": "山田太郎はさくら電機の社長だ。", "title": "t",
                                  "published_at": "2025-03-01T10:00:00+09:00"}, ensure_ascii=False) + "\n",
                      encoding="utf-8")
    warehouse = tmp_path / "wh"
    assert job.main(["--config", str(CONFIG), "--input", str(source), "--input-format", "jsonl", "--output",
                     str(warehouse), "--tasks", "scnm_ner", "--model", str(tmp_path / "base"),
                     "--set", f"model.adapter={adapter}", "--set", "model.max_lora_rank=8"]) == 0
    run = spark.read.format("delta").load(str(warehouse / "runs")).collect()[0]
    assert run["model_id"] == "base+model" and run["status"] == "succeeded"
    assert spark.read.format("delta").load(str(warehouse / "extractions")).count() == 1


def test_the_gpu_recipe_is_a_valid_config_apart_from_its_checkpoint_path(tmp_path):
    # The base checkpoint is not on this machine: every other key must pass validation.
    with pytest.raises(ConfigError) as err:
        load_finetune_config(REPO / "conf" / "finetune-gpu.yaml")
    problems = err.value.problems
    assert all(p.startswith(("base_model.path", "data.train", "data.heldout")) for p in problems), problems
