"""Config mistakes fail before Spark starts, with a message that says what to fix, and write nothing."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def run_extract(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "jobs" / "extract.py"), *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def bad_config(tmp_path: Path, model: str, tasks: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(f"""
input: {{path: {REPO}/data/sample/text}}
model: {{path: {model}}}
task_registry: {REPO}/conf/tasks.yaml
tasks: [{tasks}]
""", encoding="utf-8")
    return path


def test_missing_model_path_fails_fast_and_writes_nothing(tmp_path):
    out = tmp_path / "wh"
    result = run_extract("--config", str(bad_config(tmp_path, "/no/such/model", "scnm_ner")), "--output", str(out))
    assert result.returncode == 2
    assert "model.path: no model at /no/such/model" in result.stderr
    assert "JAVA_GATEWAY" not in result.stderr and "SparkContext" not in result.stderr
    assert not out.exists()


def test_unknown_task_fails_fast_and_lists_known_tasks(tmp_path, tiny_model):
    out = tmp_path / "wh"
    result = run_extract("--config", str(bad_config(tmp_path, str(tiny_model), "scnm_ner, ner_v2")),
                         "--output", str(out))
    assert result.returncode == 2
    assert "unknown task 'ner_v2'" in result.stderr and "scnm_ner" in result.stderr
    assert not out.exists()


def test_help_describes_the_job():
    result = run_extract("--help")
    assert result.returncode == 0 and "--config" in result.stdout and "Delta tables" in result.stdout


def test_cli_prompt_parse_and_tasks():
    cli = [sys.executable, "-m", "giellm_batch.cli"]
    prompt = subprocess.run([*cli, "prompt", "--task", "scnm_ner", "山田太郎は東京に住む。"],
                            capture_output=True, text=True, cwd=REPO, check=True)
    assert prompt.stdout == "山田太郎は東京に住む。\n‹社会>‹文芸>‹学問>‹技術>‹自然>\n固有表現抽出\n"
    output = "‹社会>固有表現抽出:人名;山田太郎:地名;東京"
    parsed = subprocess.run([*cli, "parse", "--task", "scnm_ner", "--text", "山田太郎は東京に住む。", output],
                            capture_output=True, text=True, cwd=REPO, check=True)
    assert '"char_start": 5' in parsed.stdout and '"status": "ok"' in parsed.stdout
    oiellm = subprocess.run([*cli, "parse", "--task", "oiellm_ner", "--text", "AがBに行った。",
                             "Travel/NER/:Person;A:Location;B"], capture_output=True, text=True, cwd=REPO, check=True)
    assert '"text_label": "Travel"' in oiellm.stdout and '"char_start": 2' in oiellm.stdout
    tasks = subprocess.run([*cli, "tasks"], capture_output=True, text=True, cwd=REPO, check=True)
    assert "tcree_ee" in tasks.stdout and "oiellm_ner" in tasks.stdout


def test_the_driver_java_options_of_the_submit_command_are_accepted_by_this_jvm():
    # `giellm-batch spark-submit` (the Makefile, scripts/nightly.sh, the README) passes them to every
    # spark-submit: an option this JDK refused would stop every run before it starts.
    from giellm_batch.spark.submit import java_executable

    printed = shlex.split(subprocess.run([str(Path(sys.executable).parent / "giellm-batch"), "submit-args", "--"],
                                         capture_output=True, text=True, timeout=60, check=True).stdout)
    options = printed[printed.index("--driver-java-options") + 1].split()
    assert "-XX:TieredStopAtLevel=1" in options
    java = subprocess.run([java_executable() or "java", *options, "-XX:+PrintFlagsFinal", "-version"],
                          capture_output=True, text=True, timeout=60)
    assert java.returncode == 0, java.stderr
    # C1 alone gives a 48 MB code cache by default, which a long run filled ("Out of space in CodeCache",
    # the JVM died); the options must give at least tiered HotSpot's 240 MB.
    code_cache = re.search(r"\bReservedCodeCacheSize\s+=\s+(\d+)", java.stdout)
    assert code_cache, java.stdout[-2000:]
    assert int(code_cache.group(1)) >= 240 * 1024 * 1024
