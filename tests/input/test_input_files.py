"""Every input file and line that is present ends as exactly one accepted or rejected record.

Real Spark (binaryFile) over folders mixing good and bad files; what binaryFile itself does with
each kind of file is described in giellm_batch/input/input/files.py.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from giellm_batch.config.job_config import InputSettings
from giellm_batch.input.files import hadoop_path
from giellm_batch.input.reading import read_articles
from tests.conftest import ARTICLES, SAMPLE, argv, articles_dir, table

LIMIT = 50_000  # bytes; the sample articles are a few kB


def records(spark, path: Path, fmt: str, **kwargs) -> dict[str, tuple[str | None, str | None]]:
    """record_key -> (article_id, reject_reason), checking that no key occurs twice."""
    rows = read_articles(spark, InputSettings(path=str(path), format=fmt), **kwargs).collect()
    counts = Counter(r["record_key"] for r in rows)
    assert [k for k, n in counts.items() if n > 1] == []
    return {r["record_key"]: (r["article_id"], r["reject_reason"]) for r in rows}


def key(path: Path) -> str:
    return f"file:{path}"


def test_every_livedoor_file_present_is_one_record_whatever_spark_does_with_it(spark, tmp_path):
    folder = tmp_path / "in" / "topic-news"
    folder.mkdir(parents=True)
    article = next(SAMPLE.rglob(ARTICLES[0])).read_bytes()
    files = {
        "good.txt": article, "sp ace%20#x+y.txt": article, "empty.txt": b"", "e mpty%41.txt": b"",
        "bad.txt": b"u\nd\nt\n\xff\xfe broken", "short.txt": b"u\nd\n", "vanished.txt": article,
        "big.txt": article + "。本文".encode() * (LIMIT // 9), "_metadata.txt": article,
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    hidden = {".hidden.txt": article, "_partial.txt": article, "LICENSE.txt": b"license"}
    for name, content in hidden.items():
        (folder / name).write_bytes(content)
    (folder / "_temporary").mkdir()
    (folder / "_temporary" / "inner.txt").write_bytes(article)

    df = read_articles(spark, InputSettings(path=str(tmp_path / "in"), format="livedoor"), max_file_bytes=LIMIT)
    (folder / "vanished.txt").unlink()  # listed when the DataFrame was made, gone when it runs
    rows = df.collect()
    got = {r["record_key"]: (r["article_id"], r["reject_reason"]) for r in rows}

    assert len(rows) == len(got) == len(files)  # hidden names, LICENSE.txt and _temporary/ are not input
    assert set(got) == {key(folder / name) for name in files}
    reasons = {name: got[key(folder / name)][1] for name in files}
    assert reasons["good.txt"] is None and reasons["sp ace%20#x+y.txt"] is None
    assert got[key(folder / "sp ace%20#x+y.txt")][0] == "sp ace%20#x+y"
    assert reasons["empty.txt"] == reasons["e mpty%41.txt"] == "empty file"
    assert got[key(folder / "e mpty%41.txt")][0] == "e mpty%41"  # the unread file's id, like a read one's
    assert reasons["bad.txt"].startswith("undecodable bytes: not UTF-8")
    assert reasons["short.txt"].startswith("not a Livedoor article")
    assert reasons["vanished.txt"] == "file listed but not read by Spark: it vanished before it could be read"
    assert reasons["big.txt"] == f"file too large: {len(files['big.txt'])} bytes, the limit is {LIMIT}"
    assert reasons["_metadata.txt"].startswith("file listed but not read by Spark")


def test_every_jsonl_line_present_is_one_record(spark, tmp_path):
    good = {"id": "g1", "title": "見出し", "body": "東京で会議が開かれた。"}
    lines = [
        json.dumps(good, ensure_ascii=False).encode(),                 # 1 accepted
        b'{"id": "n1", "body": 123}',                                   # 2 wrong type
        b'{"id": "n2", "body": "x", "title": ["a"]}',                   # 3 wrong type
        b'{"id": {"x": 1}, "body": "x"}',                               # 4 wrong type (id)
        b"[1, 2]",                                                      # 5 not an object
        b"[" * 50_000 + b"]" * 50_000,                                  # 6 nested too deeply
        b"",                                                            # 7 blank: not a record
        b'{"id": "u", "body": "\xff"}',                                 # 8 undecodable
        b'{"id": 7, "body": "\xe6\x9c\xac\xe6\x96\x87"}',               # 9 accepted, id "7"
        b'{"id": "s", "body": "\\ud800"}',                              # 10 lone surrogate
    ]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "b.json").write_bytes(json.dumps({**good, "id": "g2"}).encode())
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.jsonl").write_bytes(b"\n \n")
    got = records(spark, tmp_path, "jsonl")

    a = key(tmp_path / "a.jsonl")
    expected = {f"{a}:{n}" for n in (1, 2, 3, 4, 5, 6, 8, 9, 10)} | {
        key(tmp_path / "b.json") + ":1", key(tmp_path / "empty.jsonl"), key(tmp_path / "blank.jsonl")}
    assert set(got) == expected
    assert {k: v[0] for k, v in got.items() if v[1] is None} == {f"{a}:1": "g1", f"{a}:9": "7",
                                                                  key(tmp_path / "b.json") + ":1": "g2"}
    assert got[f"{a}:2"][1] == "field 'body' must be a string, got int"
    assert got[f"{a}:3"][1] == "field 'title' must be a string, got list"
    assert got[f"{a}:4"][1] == "field 'id' must be a string or an integer, got dict"
    assert got[f"{a}:5"][1] == "line 5 is not a JSON object"
    assert got[f"{a}:6"][1] == "invalid JSON on line 6: nested too deeply"
    assert got[f"{a}:8"][1].startswith("undecodable bytes") and "(line 8)" in got[f"{a}:8"][1]
    assert got[f"{a}:10"][1].startswith("field 'body' is not valid Unicode")
    assert got[key(tmp_path / "empty.jsonl")][1] == "empty file"
    assert got[key(tmp_path / "blank.jsonl")][1] == "no JSON lines: the file holds only whitespace"


def test_table_columns_of_the_wrong_type_are_rejected_not_cast_into_text(spark, tmp_path):
    rows = [(1, "東京で会議が開かれた。", None), (2, "大阪で雨。", ["a", "b"])]
    spark.createDataFrame(rows, "id long, body string, title array<string>").write.parquet(str(tmp_path / "t"))
    got = {r["article_id"]: (r["title"], r["reject_reason"])
           for r in read_articles(spark, InputSettings(path=str(tmp_path / "t"), format="parquet")).collect()}
    assert got == {"1": (None, None), "2": (None, "field 'title' must be a string, got array<string>")}


def test_listed_file_uris_map_to_the_path_spelling_of_read_files():
    assert hadoop_path("file:///tmp/a/sp%20ace%2520%23x+y%3F.txt") == "file:/tmp/a/sp ace%20#x+y?.txt"
    assert hadoop_path("hdfs://nn:8020/data/a%09b.txt") == "hdfs://nn:8020/data/a\tb.txt"


@pytest.mark.slow  # one job run (~30 s)
def test_a_job_counts_every_file_present_and_quarantines_the_unreadable(spark, tmp_path):
    source = articles_dir(tmp_path, ARTICLES[:2])
    folder = source / "topic-news"
    (folder / "empty.txt").write_bytes(b"")
    (folder / "bad.txt").write_bytes(b"u\nd\nt\n\xff")
    shutil.copy(folder / ARTICLES[0], folder / ".hidden.txt")  # hidden: not input
    from giellm_batch.run import job

    assert job.main(argv(source, tmp_path / "wh")) == 0
    (run,) = table(spark, tmp_path / "wh", "runs").collect()
    assert (run["articles_in"], run["articles_processed"], run["articles_quarantined"]) == (4, 2, 2)
    quarantine = {Path(r["record_key"]).name: (r["stage"], r["reason"])
                  for r in table(spark, tmp_path / "wh", "quarantine").collect()}
    assert quarantine["empty.txt"] == ("read", "empty file")
    assert quarantine["bad.txt"][1].startswith("undecodable bytes")


def test_the_bundled_sample_reads_as_thirty_accepted_articles_without_its_licenses(spark):
    got = records(spark, SAMPLE, "livedoor")
    assert len(got) == 30 and all(reason is None for _id, reason in got.values())
    assert not any(k.endswith("/LICENSE.txt") for k in got)


def test_decoding_partitions_fill_the_slots_and_grow_with_the_files_only():
    from giellm_batch.input.files import FILES_PER_DECODE_PARTITION, decode_partitions

    assert decode_partitions(0, 2) == 2 and decode_partitions(2020, 2) == 2  # not one per ~30 small files
    assert decode_partitions(10 * FILES_PER_DECODE_PARTITION + 1, 2) == 11
    assert decode_partitions(5000, 64) == 64  # a cluster's slots all get work


def test_a_list_of_local_files_is_listed_on_the_driver_and_the_setting_restored(spark, tmp_path):
    from giellm_batch.input.files import FileRules, binary_files

    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for n in range(40):  # more than Spark's 32 paths, past which it would list them in a Spark job
        (folder / f"a{n}.txt").write_bytes(b"x")
        paths.append(f"file:{folder}/a{n}.txt")
    setting = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    before = spark.conf.get(setting)
    spark.sparkContext.setJobGroup("listing-probe", "files named to the reader")
    try:
        files = binary_files(spark, paths[:39], FileRules.for_format("livedoor"))
        assert spark.sparkContext.statusTracker().getJobIdsForGroup("listing-probe") == []  # no listing job
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert spark.conf.get(setting) == before
    assert sorted(r["path"] for r in files.select("path").collect()) == sorted(paths[:39])
