"""`giellm-batch doctor` on an s3a:// warehouse: every s3-* check passes against the local S3 server,
and a wrong secret or a stopped endpoint gives FAIL lines that say what to fix.

The passing and the wrong-secret runs are subprocesses: each starts its own JVM, so the S3A
credentials it reads from its environment are its own and the shared test session is not touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from giellm_batch.storage import storage_for
from giellm_batch.tools import local_s3
from giellm_batch.tools.doctor import run_checks
from tests.conftest import REPO
from tests.tools.test_sql_engines import s3_config

CLI = shutil.which("giellm-batch") or str(REPO / ".venv" / "bin" / "giellm-batch")
S3_CHECKS = ("s3-reach", "s3-jars", "s3-auth", "s3-write", "s3-lock")


def doctor(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "doctor", "--config", str(config)], capture_output=True, text=True, timeout=600,
                          cwd=config.parent, env={**os.environ, **env})


def lines_of(output: str, name: str) -> list[str]:
    """The check's line and, for a failure, its fix line."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line[5:].split(" ", 1)[0] == name:
            return lines[index:index + 2]
    raise AssertionError(f"no {name} line in:\n{output}")


def test_doctor_passes_every_s3_check_against_the_server_and_leaves_nothing(spark, s3, tiny_model, tmp_path):
    warehouse = s3.url("doctor", uuid.uuid4().hex)
    done = doctor(s3_config(tmp_path, warehouse, s3.endpoint), **s3.env())
    assert done.returncode == 0, done.stdout + done.stderr
    for name in S3_CHECKS:
        assert lines_of(done.stdout, name)[0].startswith("ok  "), done.stdout
    assert "signed request for " + warehouse in done.stdout
    assert "the first create wins, the second is refused" in done.stdout
    assert done.stdout.splitlines()[-1] == "13/13 checks passed"
    assert storage_for(spark, warehouse).list_folder(warehouse) == []  # the probes were deleted
    assert s3.secret_key not in done.stdout + done.stderr


def test_a_wrong_secret_fails_the_signed_request_with_a_fix(s3, tiny_model, tmp_path):
    wrong = "not-the-" + s3.secret_key
    done = doctor(s3_config(tmp_path, s3.url("doctor", uuid.uuid4().hex), s3.endpoint),
                  **{**s3.env(), "AWS_SECRET_ACCESS_KEY": wrong})
    assert done.returncode == 1
    assert lines_of(done.stdout, "s3-reach")[0].startswith("ok  ")
    auth, fix = lines_of(done.stdout, "s3-auth")
    assert auth.startswith("FAIL s3-auth") and "refused" in auth and "403" in auth, auth
    assert fix.strip().startswith("fix: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    for name in ("s3-write", "s3-lock"):
        assert lines_of(done.stdout, name)[0].startswith(f"FAIL {name}"), done.stdout
    assert done.stdout.splitlines()[-1].endswith("failed: s3-auth, s3-write, s3-lock")
    assert wrong not in done.stdout + done.stderr


def test_a_stopped_endpoint_fails_at_once_and_nothing_else_is_tried(tiny_model, tmp_path):
    endpoint = f"http://127.0.0.1:{local_s3.free_port()}"  # nothing listens there
    lines: list[str] = []
    assert run_checks(str(s3_config(tmp_path, "s3a://giellm/doctor", endpoint)), lines.append) == 1
    output = "\n".join(lines)
    reach, fix = lines_of(output, "s3-reach")
    assert reach.startswith(f"FAIL s3-reach   {endpoint}: no answer"), reach
    assert "object_store.endpoint" in fix
    assert lines_of(output, "s3-jars")[0].startswith("ok  ")
    for name in ("s3-auth", "s3-write", "s3-lock"):
        assert lines_of(output, name)[0] == f"FAIL {name:<10} not checked: needs s3-reach and s3-jars"
    assert lines[-1] == "9/13 checks passed; failed: s3-reach, s3-auth, s3-write, s3-lock"
