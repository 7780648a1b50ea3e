"""Where the inference stage runs: GPU requests on the driver, GPU pinning on the executor.

Driver side, `inference_profile` builds the stage-level `ResourceProfile` that makes only the
inference stage ask for GPUs (reading, splitting, parsing and writing stay CPU-only Spark tasks). It is a
task-only profile, which Spark supports on standalone, YARN and Kubernetes without dynamic
allocation; executors must be started with GPUs (`spark.executor.resource.gpu.amount` plus a
discovery script, see docker/README.md).

Executor side, `assigned_gpus` reads the addresses Spark gave the running Spark task and `pin` exports
them as CUDA_VISIBLE_DEVICES before the engine is built, so an engine only ever sees its GPU.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.resource import ResourceProfile

log = logging.getLogger("giellm_batch.engine.placement")


def inference_profile(gpus_per_engine: int, cpus_per_engine: int, resource_name: str) -> ResourceProfile | None:
    """ResourceProfile for the inference stage; None (the default profile) for CPU engines."""
    if gpus_per_engine <= 0:
        return None
    from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

    requests = TaskResourceRequests().cpus(cpus_per_engine).resource(resource_name, gpus_per_engine)
    return ResourceProfileBuilder().require(requests).build


def assigned_gpus(resource_name: str) -> tuple[str, ...]:
    """GPU addresses Spark assigned to the running Spark task; () outside one or without GPUs."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        return ()
    info = context.resources().get(resource_name)
    return tuple(info.addresses) if info is not None else ()


def pin(addresses: tuple[str, ...]) -> None:
    """Make only `addresses` visible to CUDA in this process (before any CUDA initialisation)."""
    if addresses:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(addresses)


def spark_task_id() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return int(context.taskAttemptId()) if context is not None else -1
