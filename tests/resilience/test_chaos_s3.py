"""Kill the real spark-submit job on an S3 warehouse (input on S3 too) mid-run, rerun it plainly,
compare its tables with a clean run on local disk; a dead run's staging objects are removed by the
next run, and no multipart upload is left open."""

from __future__ import annotations

import time
import uuid

import pytest

from giellm_batch.resilience.chaos import (
    differences,
    job_command,
    pending_uploads,
    run,
    staged_runs,
    table_contents,
    upload_folder,
)
from tests.conftest import CONFIG, MANIFEST_ALWAYS


@pytest.mark.slow
def test_kills_on_an_s3_warehouse_then_a_plain_rerun_equals_a_clean_local_run(spark, s3, tmp_path, clean_run):
    source, _, clean_warehouse = clean_run
    root = s3.url("chaos", uuid.uuid4().hex)
    inputs, warehouse = f"{root}/in", f"{root}/wh"
    assert upload_folder(spark, source, inputs) == 3  # the clean run's articles, same layout
    command = job_command(CONFIG, inputs, warehouse, "--tasks", "scnm_ner", *MANIFEST_ALWAYS,
                          object_store=s3.object_store())
    # 1. the first run dies right after staging its input (objects under _staging/<run_id>)
    first = run(command, tmp_path / "kill1.log", kill_on="staged input in", timeout=900, env=s3.env())
    assert first.killed_at.startswith("log line"), first.log[-3000:]
    dead = staged_runs(spark, warehouse)
    assert len(dead) == 1, dead
    # 2. the retry dies inside the result writes (after the first table's append)
    second = run(command, tmp_path / "kill2.log", kill_on="sentences: appended", timeout=900, env=s3.env())
    assert second.killed_at.startswith("log line"), second.log[-3000:]
    left = staged_runs(spark, warehouse)
    assert left and not left & dead, (dead, left)  # the first run's staging went when the second began
    # 3. a plain rerun: no unlock, nothing deleted by hand
    third = run(command, tmp_path / "rerun.log", timeout=900, env=s3.env())
    assert third.returncode == 0, third.log[-3000:]
    assert staged_runs(spark, warehouse) == set(), "a dead run's (or its own) staging objects were left"
    # Every object here is far below S3A's multipart threshold (128 MB): one PUT each, sent whole at
    # close, so a killed writer leaves no open upload (bench/objectstore.py reports the same).
    assert pending_uploads(spark, root) == []
    local = table_contents(spark, clean_warehouse, input_roots=[f"file:{source}", str(source)],
                           ignore=["file_modified_at"])
    on_s3 = table_contents(spark, warehouse, input_roots=[inputs], ignore=["file_modified_at"])
    assert sum(map(len, on_s3.values())) > 0
    assert differences(local, on_s3) == []
    runs = spark.read.format("delta").load(f"{warehouse}/runs").collect()
    lost = [r for r in runs if r["status"] == "failed"]
    assert len(lost) == 2 and all(r["error"].startswith("lost: ") for r in lost), [r["error"] for r in lost]
    assert [r["status"] for r in runs if r["status"] != "failed"] == ["succeeded"]


def test_pending_uploads_sees_the_open_upload_of_an_unfinished_large_write(spark, s3):
    """What `pending_uploads == []` above rests on: a file over S3A's multipart threshold (set to its
    5 MB minimum here) is sent in parts as it is written; until its close completes the upload (or an
    abort ends it) the store holds an open upload, which the probe lists."""
    jvm = spark._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration(spark._jsc.hadoopConfiguration())
    for key, value in (("fs.s3a.multipart.size", "5M"), ("fs.s3a.multipart.threshold", "5M"),
                       ("fs.s3a.impl.disable.cache", "true")):  # a FileSystem of its own, with these settings
        conf.set(key, value)
    root = s3.url("uploads", uuid.uuid4().hex)
    target = jvm.org.apache.hadoop.fs.Path(f"{root}/big.bin")
    fs = target.getFileSystem(conf)
    try:
        stream = fs.create(target, True)
        for _ in range(6):  # 6 MB: the first 5 MB block fills and its part upload begins
            stream.write(bytearray(1024 * 1024))
        deadline = time.monotonic() + 60
        found = pending_uploads(spark, root)
        while not found and time.monotonic() < deadline:
            time.sleep(0.5)
            found = pending_uploads(spark, root)
        assert len(found) == 1 and "big.bin" in found[0], found
        stream.abort()  # what a writer that is not killed does on failure (S3A's Abortable)
        assert pending_uploads(spark, root) == []
    finally:
        fs.close()
