"""The real entry point as users run it: `spark-submit jobs/extract.py` in a subprocess (new JVM)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIG, REPO, SAMPLE


@pytest.mark.slow
def test_spark_submit_runs_the_job_end_to_end(tiny_model, tmp_path):
    from deltalake import DeltaTable

    from giellm_batch.spark_session import delta_maven_coordinate

    articles = tmp_path / "articles" / "sports-watch"
    articles.mkdir(parents=True)
    for path in sorted((SAMPLE / "sports-watch").glob("sports-watch-*.txt"))[:2]:
        shutil.copy(path, articles / path.name)
    warehouse = tmp_path / "wh"
    spark_submit = Path(sys.executable).with_name("spark-submit")
    # spark-submit locates Spark and the driver Python through `python3` on PATH: make it the venv's.
    env = {**os.environ, "PATH": f"{spark_submit.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(spark_submit), "--master", "local[2]", "--packages", delta_maven_coordinate(),
         str(REPO / "jobs" / "extract.py"), "--config", str(CONFIG), "--input", str(tmp_path / "articles"),
         "--output", str(warehouse)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"status": "succeeded"' in result.stdout
    assert DeltaTable(str(warehouse / "articles")).to_pyarrow_table().num_rows == 2
    sentences = DeltaTable(str(warehouse / "sentences")).to_pyarrow_table().num_rows
    assert DeltaTable(str(warehouse / "extractions")).to_pyarrow_table().num_rows == sentences * 4
    runs = DeltaTable(str(warehouse / "runs")).to_pyarrow_table().to_pylist()
    assert [(r["status"], r["articles_processed"]) for r in runs] == [("succeeded", 2)]
