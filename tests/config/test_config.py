from pathlib import Path

import pytest

from giellm_batch.config.job_config import ConfigError, load_config
from tests.conftest import CONFIG, REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(text.replace("REPO", str(REPO)), encoding="utf-8")
    return path


def test_local_config_loads_and_resolves_paths_against_its_folder(tiny_model):
    config = load_config(CONFIG)
    assert config.input.path == str(REPO / "data" / "sample" / "text")
    assert config.model.path == str(REPO / "models" / "tiny-giellm")
    assert config.output.warehouse == str(REPO / "warehouse")
    assert config.tasks[0] == "scnm_ner"
    assert len(config.pipeline_hash()) == 16


def test_overrides_win_over_the_file(tiny_model, tmp_path):
    config = load_config(CONFIG, overrides={"output": {"warehouse": str(tmp_path)}})
    assert config.output.warehouse == str(tmp_path)


def test_every_problem_is_listed_with_a_fix(tmp_path):
    path = write(tmp_path, """
input: {path: REPO/data/sample/text, format: csv}
model: {path: /nonexistent/model}
engine: {max_new_token: 10, batch_size: 0, constrained_decoding: true, decoding: beam, max_items: -1}
task_registry: REPO/conf/tasks.yaml
tasks: [scnm_ner, no_such_task]
""")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "input.format: 'csv' is not one of" in message
    assert "model.path: no model at /nonexistent/model" in message
    assert "build-tiny-model" in message
    assert "engine: unknown key 'max_new_token'; did you mean 'max_new_tokens'?" in message
    assert "engine.batch_size: must be at least 1" in message
    assert "engine.constrained_decoding: no longer a setting; use engine.decoding: grounded" in message
    assert "engine.decoding: 'beam' is not one of ['grounded', 'regex', 'free']" in message
    assert "engine.max_items: must be >= 0 (0 = no bound)" in message
    assert "unknown task 'no_such_task'" in message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "tasks: [a\n"))


def test_pipeline_hash_changes_with_tasks_and_model(tiny_model, tmp_path):
    base = load_config(CONFIG)
    other = load_config(CONFIG, overrides={"model": {"name": "other-model"}})
    assert base.pipeline_hash() != other.pipeline_hash()
    assert base.pipeline_hash() == load_config(CONFIG).pipeline_hash()


def test_execution_settings_are_validated_with_what_to_fix(tmp_path, tiny_model):
    path = write(tmp_path, """
input: {path: REPO/data/sample/text}
model: {path: REPO/models/tiny-giellm}
engine: {tensor_parallel_size: 2}
execution: {gpus_per_engine: 1, prompts_per_partition: 0, dedupe: false, driver_staging_max_chars: -1,
            record_timeout_seconds: 0, record_memory_bytes: 1000}
segmentation: {mecab_max_chars: 500000, max_article_chars: -1}
task_registry: REPO/conf/tasks.yaml
tasks: [scnm_ner]
""")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "execution.gpus_per_engine (1) must equal engine.tensor_parallel_size (2)" in message
    assert "execution.prompts_per_partition: must be at least 1" in message
    assert "unknown key 'dedupe'; did you mean 'dedup'?" in message
    assert "execution.driver_staging_max_chars: must be 0 (always stage files) or more" in message
    assert "execution.record_timeout_seconds: must be > 0" in message
    assert "execution.record_memory_bytes: must be at least 67108864 (64 MiB)" in message
    assert "segmentation.mecab_max_chars: must be between 1,000 and 100,000" in message
    assert "segmentation.max_article_chars: must be 0 (no bound) or more" in message


def test_the_bounds_do_not_change_the_pipeline_hash(tiny_model):
    """They decide what is quarantined, not what a processed article yields (docs/isolation.md)."""
    base = load_config(CONFIG)
    bounded = load_config(CONFIG, overrides={"segmentation": {"max_article_chars": 1000, "mecab_max_chars": 5000},
                                             "execution": {"record_timeout_seconds": 5.0}})
    assert base.pipeline_hash() == bounded.pipeline_hash()
    assert base.pipeline_hash() != load_config(CONFIG, overrides={"segmentation": {"max_sentence_chars": 100}}
                                               ).pipeline_hash()


def test_set_flag_overrides_one_value_and_is_validated(tiny_model):
    import argparse

    from giellm_batch.run.job import add_run_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    smoke = ["--config", str(CONFIG)]  # the default config names the trained model, which tests do not build
    config = config_from_args(parser.parse_args([*smoke, "--set", "execution.dedup=false",
                                                 "--set", "engine.batch_size=64"]))
    assert (config.execution.dedup, config.engine.batch_size) == (False, 64)
    with pytest.raises(ConfigError, match="expected true/false"):
        config_from_args(parser.parse_args([*smoke, "--set", "execution.dedup=maybe"]))
    with pytest.raises(ConfigError, match=r"expected SECTION\.KEY=VALUE"):
        config_from_args(parser.parse_args([*smoke, "--set", "dedup"]))


def test_gpu_cluster_config_is_valid_apart_from_paths_that_exist_only_on_the_cluster():
    config = load_config(REPO / "conf" / "gpu-cluster.yaml", check_paths=False)
    assert (config.execution.gpus_per_engine, config.engine.tensor_parallel_size) == (1, 1)
    assert config.engine.kv_cache_memory_bytes == 0 and config.engine.gpu_memory_utilization == 0.9
