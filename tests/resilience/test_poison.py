"""One record must never stop a run: a record that segfaults, hangs or exhausts memory in any
per-record stage (read, segment, prompt, generate, parse), and a real 3-million-character article,
are quarantined with the right stage; every other article's rows equal a clean run's; a rerun is a
no-op that does not meet the poison again. Real Spark, Delta, fugashi and vLLM; the faults are real
signals, sleeps and allocations (faults.poison_check, armed by conftest's GIELLM_TEST_POISON=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from giellm_batch.isolation.faults import POISON_STAGES
from giellm_batch.isolation.process import POISON_KINDS
from giellm_batch.resilience.poison import add_poison, compare, snapshot, write_input
from giellm_batch.run import job
from tests.conftest import SAMPLE, argv, table

LIMITS = ("--set", "execution.record_timeout_seconds=3", "--set", "execution.record_memory_bytes=536870912")


@pytest.mark.slow
def test_poisoned_records_are_quarantined_and_the_rest_equals_a_clean_run(spark, tmp_path):
    Path(os.environ["GIELLM_TEST_POISON_LOG"]).write_text("")
    clean = write_input(tmp_path / "in", SAMPLE, 3)
    assert job.main(argv(clean.folder, tmp_path / "clean-wh", *LIMITS)) == 0
    poisoned = add_poison(clean)  # the same folder: rows name their files
    assert job.main(argv(poisoned.folder, tmp_path / "wh", *LIMITS)) == 0

    result = compare(spark, tmp_path / "clean-wh", tmp_path / "wh", poisoned)
    assert result["wrong"] == [] and result["quarantined"] == len(poisoned.expected_stage) == 16, result
    reasons = {r["article_id"]: r["reason"] for r in table(spark, tmp_path / "wh", "quarantine").collect()}
    assert reasons["poison-segment-crash"] == "crash: segmentation: the process died of signal SIGSEGV"
    assert reasons["poison-generate-crash"] == "crash: generate: the process died of signal SIGSEGV"
    assert reasons["poison-generate-timeout"].startswith("timeout: generate: no result within 3 s")
    assert reasons["poison-parse-memory"].startswith("memory: parse: MemoryError: needed more than 512 MiB")
    assert reasons["poison-read-crash"].startswith("crash: read: ")
    assert "segmentation.max_article_chars" in reasons["poison-giant"]
    (run,) = table(spark, tmp_path / "wh", "runs").collect()
    assert run["status"] == "succeeded"
    assert (run["articles_in"], run["articles_processed"], run["articles_quarantined"]) == (19, 3, 16)

    # Each poison record met its fault twice (in its batch, then alone), nothing else met one.
    acted = Path(os.environ["GIELLM_TEST_POISON_LOG"]).read_text().splitlines()
    assert sorted(set(acted)) == sorted(f"{s} {k}" for s in POISON_STAGES for k in POISON_KINDS)
    assert all(acted.count(line) == 2 for line in set(acted)), acted

    before = snapshot(spark, tmp_path / "wh")
    # A rerun through the file manifest skips every file unread (all are finished) ...
    assert job.main(argv(poisoned.folder, tmp_path / "wh", *LIMITS)) == 0
    # ... and one that reads every file again meets no poison: records isolated while decoding are
    # rejected as before without being decoded, isolated articles are skipped, the giant article is
    # quarantined again by its bound (cheap, before MeCab).
    assert job.main(argv(poisoned.folder, tmp_path / "wh", *LIMITS, "--set", "input.skip_finished_files_from=-1")) == 0
    assert snapshot(spark, tmp_path / "wh") == before
    assert Path(os.environ["GIELLM_TEST_POISON_LOG"]).read_text().splitlines() == acted
    manifest_rerun, full_rerun = table(spark, tmp_path / "wh", "runs").orderBy("started_at").collect()[-2:]
    assert (manifest_rerun["articles_processed"], manifest_rerun["articles_skipped"]) == (0, 19)
    assert (full_rerun["articles_processed"], full_rerun["articles_skipped"], full_rerun["articles_quarantined"],
            full_rerun["articles_in"]) == (0, 15, 4, 19)
