"""The installed CLI works from any folder, and `doctor` names what is missing with a fix."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from giellm_batch.tools.doctor import check_java, run_checks
from tests.conftest import CONFIG, REPO

CLI = shutil.which("giellm-batch") or str(REPO / ".venv" / "bin" / "giellm-batch")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_cli_needs_no_repository_folder(tmp_path):
    tasks = cli("tasks", cwd=tmp_path)
    assert tasks.returncode == 0, tasks.stderr
    assert "scnm_ner" in tasks.stdout and "固有表現抽出" in tasks.stdout
    prompt = cli("prompt", "--task", "scnm_ner", "山田太郎は東京に住む。", cwd=tmp_path)
    assert prompt.stdout.splitlines() == ["山田太郎は東京に住む。", "‹社会>‹文芸>‹学問>‹技術>‹自然>", "固有表現抽出"]


def test_doctor_passes_here_and_names_each_failure_with_a_fix(tiny_model, tmp_path, monkeypatch):
    lines: list[str] = []
    assert run_checks(str(CONFIG), lines.append) == 0, lines
    assert lines[-1] == "8/8 checks passed"
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.read_text(encoding="utf-8").replace("../models/tiny-giellm", "/no/such/model")
                   .replace("../", f"{REPO}/")
                   .replace("task_registry: tasks.yaml", f"task_registry: {REPO}/conf/tasks.yaml"), encoding="utf-8")
    lines.clear()
    assert run_checks(str(bad), lines.append) == 1
    text = "\n".join(lines)
    assert "FAIL model      /no/such/model has no config.json" in text
    assert "fix: `make trained-model`" in text
    assert lines[-1].endswith("failed: model")
    bad.write_text("engine: {decoding: beam}\n", encoding="utf-8")
    lines.clear()
    assert run_checks(str(bad), lines.append) == 1
    assert any(line.startswith("FAIL config") and "'beam' is not one of" in line for line in lines)
    # Java is looked for where spark-submit looks: a JAVA_HOME without bin/java fails even with java on PATH
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    java = check_java()
    assert not java.ok and java.detail == f"JAVA_HOME={tmp_path} has no bin/java", java
