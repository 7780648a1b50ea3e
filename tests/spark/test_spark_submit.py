"""The one spark-submit command (giellm_batch/spark/submit.py) and `giellm-batch spark-submit` / `submit-args`."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from giellm_batch.cli import main
from giellm_batch.spark.session import DRIVER_JAVA_OPTIONS, delta_maven_coordinate
from giellm_batch.spark.submit import spark_submit_command
from tests.conftest import REPO


def test_the_command_carries_delta_the_driver_options_and_the_job_with_its_arguments_last_in_order():
    command = spark_submit_command("jobs/extract.py", ["--config", "conf/local.yaml", "--tasks", "scnm_ner"],
                                   master="local[2]", conf={"spark.ui.enabled": "false"},
                                   options=["--deploy-mode", "client"])
    assert Path(command[0]).name == "spark-submit"
    assert command[1:3] == ["--master", "local[2]"]
    assert command[command.index("--packages") + 1] == delta_maven_coordinate()
    assert command[command.index("--driver-java-options") + 1] == DRIVER_JAVA_OPTIONS
    assert command[command.index("--conf") + 1] == "spark.ui.enabled=false"
    # the caller's options follow the project's (spark-submit keeps an option's last value), the job ends it
    assert command.index("--deploy-mode") > command.index("--driver-java-options")
    assert command[-5:] == ["jobs/extract.py", "--config", "conf/local.yaml", "--tasks", "scnm_ner"]
    # no master given: spark-submit's own (spark-defaults.conf, else local[*]); a cluster URI stays as it is
    plain = spark_submit_command("local:///opt/giellm-batch/jobs/extract.py")
    assert "--master" not in plain and plain[-1] == "local:///opt/giellm-batch/jobs/extract.py"


def printed(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["submit-args", *argv]) == 0
    return shlex.split(capsys.readouterr().out)


def test_submit_args_splits_spark_submit_options_from_the_job_at_the_double_dash(capsys):
    assert printed(capsys, "--master", "yarn", "--deploy-mode", "client", "--conf", "a=b=c", "--",
                   "jobs/evaluate.py", "pairs.jsonl", "--config", "x.yaml") == spark_submit_command(
        "jobs/evaluate.py", ["pairs.jsonl", "--config", "x.yaml"], master="yarn", conf={"a": "b=c"},
        options=["--deploy-mode", "client"])
    # without a script after `--` the job is jobs/extract.py (here: the repository's, from its root)
    assert printed(capsys, "--", "--config", "conf/local.yaml")[-3:] == ["jobs/extract.py", "--config",
                                                                        "conf/local.yaml"]
    with pytest.raises(SystemExit):  # a job script before `--` would be taken for a spark-submit option
        main(["submit-args", "jobs/extract.py", "--config", "conf/local.yaml"])


@pytest.mark.slow
def test_spark_submit_runs_the_job_with_delta_and_the_driver_options_and_returns_its_exit_status(tmp_path):
    job = tmp_path / "job.py"
    job.write_text(
        "import json, sys\n"
        "from giellm_batch.config.job_config import SparkSettings\n"
        "from giellm_batch.spark.session import build_spark\n"
        "spark = build_spark(SparkSettings(app_name='submit-test'))  # raises without the Delta jars\n"
        "jvm = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())\n"
        "print(json.dumps({'argv': sys.argv[1:], 'master': spark.sparkContext.master, 'jvm': jvm}))\n"
        "spark.stop()\n"
        "sys.exit(3)\n", encoding="utf-8")
    done = subprocess.run([str(Path(sys.executable).parent / "giellm-batch"), "spark-submit", "--master", "local[1]",
                           "--conf", "spark.ui.enabled=false", "--", str(job), "a", "b c"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 3, done.stderr[-3000:]  # the job's own status (nightly.sh's drift exit is 4)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["argv"], result["master"]) == (["a", "b c"], "local[1]")
    assert set(DRIVER_JAVA_OPTIONS.split()) <= set(result["jvm"]), result["jvm"]  # the driver JVM's own arguments
    assert not list((REPO / "giellm_batch").rglob("*.jar"))  # nothing built into the package
