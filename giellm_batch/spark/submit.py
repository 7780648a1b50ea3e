"""The one spark-submit command for a job script, and where its programs are found.

`spark-submit jobs/extract.py --config conf/local.yaml` is the plain form (the job then needs the
Delta jars from `--packages "$(giellm-batch delta-package)"`). `spark_submit_command` adds what every
run of this project passes, and `make run`, `scripts/nightly.sh`, the chaos harness, the benches and
`giellm-batch spark-submit` / `giellm-batch submit-args` all take their command from it:

    spark-submit [--master M] --packages <delta> --driver-java-options <JIT> [--conf K=V ...]
                 [options ...] JOB [JOB ARGS ...]

`options` (e.g. nightly.sh's SPARK_SUBMIT_ARGS) come after the project's own, so an option given
again there wins (spark-submit keeps the last value), `--packages` and `--driver-java-options`
included: they then replace the project's.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from giellm_batch.spark import object_store
from giellm_batch.spark.session import DRIVER_JAVA_OPTIONS, delta_maven_coordinate

DEFAULT_JOB = "jobs/extract.py"


def spark_submit_command(job: str | Path, job_args: Sequence[str] = (), *, master: str | None = None,
                         conf: Mapping[str, str] | None = None, options: Sequence[str] = ()) -> list[str]:
    """The argument list (program first) that runs `job` with `job_args` under spark-submit.

    `master`: None leaves it to spark-submit (spark-defaults.conf's spark.master, else local[*]).
    `job` is passed as given, so a cluster URI (`local:///opt/giellm-batch/jobs/extract.py`) stays one.
    A job that reaches s3a:// paths (`needs_s3a_jars`) also gets hadoop-aws (object_store.py)."""
    packages = [delta_maven_coordinate()]
    s3a_conf: dict[str, str] = {}
    if needs_s3a_jars(job_args):
        packages.append(object_store.hadoop_aws_coordinate())
        s3a_conf["spark.jars.excludes"] = object_store.JAR_EXCLUDES
    return [
        spark_submit_executable(),
        *(["--master", master] if master else []),
        "--packages", ",".join(packages),
        # C1-only JIT and a full-size code cache: shorter cold runs (session.DRIVER_JAVA_OPTIONS).
        "--driver-java-options", DRIVER_JAVA_OPTIONS,
        *[arg for key, value in {**s3a_conf, **(conf or {})}.items() for arg in ("--conf", f"{key}={value}")],
        *options,
        str(job),
        *job_args,
    ]


def needs_s3a_jars(job_args: Sequence[str]) -> bool:
    """Does the job reach s3a:// paths with S3A's jars left to this project? Read off its arguments
    (`--input s3a://...`) and the YAML its `--config` names (input.path, output.warehouse,
    object_store.hadoop_aws); a config that cannot be read counts as no (the job reports it)."""
    import yaml

    args = list(job_args)
    raw: dict[str, Any] = {}
    for flag in ("--config", "-c"):
        if flag in args[:-1]:
            try:
                loaded = yaml.safe_load(Path(args[args.index(flag) + 1]).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                loaded = None
            raw = loaded if isinstance(loaded, dict) else {}
    section = raw.get("object_store")
    if isinstance(section, dict) and section.get("hadoop_aws") == "provided":
        return False
    paths = [str((raw.get(name) or {}).get(key, "")) for name, key in (("input", "path"), ("output", "warehouse"))
             if isinstance(raw.get(name), dict)]
    return object_store.uses_s3a([*args, *paths])


def spark_submit_executable() -> str:
    """pip's spark-submit beside this interpreter (the venv's), else the one on PATH (a Spark
    distribution's), else the bare name (the exec then fails with "not found")."""
    beside = Path(sys.executable).parent / "spark-submit"  # not resolved: the venv's python is a link
    return str(beside) if beside.exists() else shutil.which("spark-submit") or "spark-submit"


def submit_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with this interpreter's folder first on PATH:
    spark-submit starts the driver's Python as `python3` from PATH, which must be the venv's."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join(filter(None, (str(Path(sys.executable).parent), env.get("PATH"))))
    return env


def java_executable() -> str | None:
    """The `java` spark-submit starts, found as Spark's launcher (bin/spark-class) finds it:
    $JAVA_HOME/bin/java when JAVA_HOME is set, else `java` on PATH; None when neither exists."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        return str(java) if java.exists() else None
    return shutil.which("java")


def default_job() -> str:
    """jobs/extract.py of the current folder, else of the checkout this package runs from."""
    if Path(DEFAULT_JOB).is_file():
        return DEFAULT_JOB
    checkout = Path(__file__).resolve().parents[2] / DEFAULT_JOB
    return str(checkout) if checkout.is_file() else DEFAULT_JOB


def exec_spark_submit(command: Sequence[str]) -> None:
    """Replace this process with `command` (signals and exit status then are spark-submit's own)."""
    try:
        os.execve(command[0], list(command), submit_environment())
    except OSError as exc:
        raise SystemExit(f"error: cannot run {command[0]}: {exc.strerror} (is pyspark installed in this "
                         "environment, or a Spark distribution's bin/ on PATH?)") from exc
