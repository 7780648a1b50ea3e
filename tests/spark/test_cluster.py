"""The job on a real Spark standalone cluster: a master and two workers on 127.0.0.1, each worker
owning one (fake) GPU reported by a discovery script, the job submitted with `spark-submit`.

The engines run on CPU (no GPU here), but scheduling is Spark's own: the inference stage asks for
one GPU per task through its ResourceProfile, and each engine pins itself to the address its task
was given. The run must equal a `local[*]` run of the same input.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, argv, contents, table

PYSPARK_BIN = Path(sys.executable).parent
DISCOVERY = """#!/usr/bin/env bash
# Fake GPU discovery for tests: each worker reports the one address in FAKE_GPU_ADDRESS.
echo "{\\"name\\": \\"gpu\\", \\"addresses\\": [\\"${FAKE_GPU_ADDRESS}\\"]}"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spark_home() -> str:
    import pyspark

    return os.path.dirname(pyspark.__file__)


def _env(**extra: str) -> dict[str, str]:
    # spark-class/spark-submit find Spark and Python through `python3` on PATH: make it the venv's.
    return {**os.environ, "PATH": f"{PYSPARK_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "SPARK_HOME": _spark_home(), "SPARK_LOCAL_IP": "127.0.0.1", **extra}


def _wait_for_workers(log: Path, n: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count("Registering worker") >= n:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{n} workers did not register with the master:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory) -> Iterator[str]:
    """spark://127.0.0.1:PORT of a master with two 1-core workers, GPU '0' and GPU '1'. Always stopped."""
    root = tmp_path_factory.mktemp("cluster")
    script = root / "gpus.sh"
    script.write_text(DISCOVERY)
    script.chmod(0o755)
    spark_class = str(Path(_spark_home()) / "bin" / "spark-class")
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: Path, **env: str) -> None:
        # own process group: stopping it also stops the executors and Python workers it started
        procs.append(subprocess.Popen([spark_class, *args], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                      env=_env(**env), cwd=root, start_new_session=True))

    try:
        start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
               "--webui-port", str(_free_port())], root / "master.log")
        for address in ("0", "1"):
            conf = root / f"worker{address}.conf"
            conf.write_text(f"spark.worker.resource.gpu.amount 1\nspark.worker.resource.gpu.discoveryScript {script}\n")
            start(["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1", "--memory", "3g",
                   "--webui-port", str(_free_port()), "--work-dir", str(root / f"work{address}"),
                   "--properties-file", str(conf), url], root / f"worker{address}.log", FAKE_GPU_ADDRESS=address)
        _wait_for_workers(root / "master.log", 2)
        yield url
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_cluster_run_pins_one_engine_per_gpu_and_equals_a_local_run(spark, standalone_cluster, clean_run, tmp_path):
    from giellm_batch.spark.submit import spark_submit_command

    source, local_contents, _ = clean_run  # the same input and tasks, run in-process on local[2,2]
    cluster_wh = tmp_path / "cluster-wh"
    submit = spark_submit_command(
        REPO / "jobs" / "extract.py",
        # small partitions: each engine answers several Spark tasks, so reuse is visible
        argv(source, cluster_wh, "--set", "execution.gpus_per_engine=1", "--set", "execution.prompts_per_partition=6"),
        master=standalone_cluster,
        conf={"spark.executor.cores": "1", "spark.executor.memory": "1g", "spark.executor.resource.gpu.amount": "1"},
    )
    result = subprocess.run(submit, capture_output=True, text=True, timeout=480, cwd=tmp_path, env=_env())
    errors = [line for line in result.stderr.splitlines() if "Exception" in line or "Error" in line]
    assert result.returncode == 0, "\n".join(errors[:5]) + result.stderr[-2000:]
    assert '"status": "succeeded"' in result.stdout

    (run,) = table(spark, cluster_wh, "runs").collect()
    engines = json.loads(run["engines_json"])
    # one engine per worker, each pinned to the GPU Spark gave its tasks and never to another one
    assert sorted(e["engine_gpus"] for e in engines) == [["0"], ["1"]], engines
    assert all(e["task_gpus"] == e["engine_gpus"] for e in engines), engines
    # built once per worker and reused across the partitions (Spark tasks) it answered
    assert all(e["starts"] == 1 for e in engines), engines
    assert sum(e["spark_tasks"] for e in engines) > len(engines)
    assert sum(e["prompts"] for e in engines) == run["engine_calls"] > 0

    assert contents(spark, cluster_wh) == local_contents
