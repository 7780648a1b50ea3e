"""giellm_batch.storage: both implementations on a local folder (Hadoop's through the test session's
driver JVM), the same contract, and the choice between them."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from py4j.protocol import Py4JJavaError

from giellm_batch.storage import HadoopStorage, PosixStorage, Storage, local_path, storage_for

ALL_BYTES = bytes(range(256)) * 3  # every byte value: nothing may be decoded or cut on the way


@pytest.fixture(params=["posix", "posix-uri", "hadoop"])
def store(request, tmp_path) -> tuple[Storage, str]:
    """(an implementation, the root folder spelled as its callers spell it)."""
    if request.param == "hadoop":
        return HadoopStorage(request.getfixturevalue("spark")), f"file:{tmp_path}"
    return PosixStorage(), f"file://{tmp_path}" if request.param == "posix-uri" else str(tmp_path)


def test_a_written_file_reads_back_whole_and_a_rewrite_replaces_it(store, tmp_path):
    storage, root = store
    path = f"{root}/new/folder/file.bin"  # its folders do not exist yet
    storage.write_bytes(path, ALL_BYTES)
    assert (tmp_path / "new" / "folder" / "file.bin").read_bytes() == ALL_BYTES
    assert storage.read_bytes(path) == ALL_BYTES
    storage.write_bytes(path, b"shorter")
    assert storage.read_bytes(path) == b"shorter"
    status = storage.status(path)
    assert (status.name, status.size, status.is_dir) == ("file.bin", 7, False)
    assert abs(status.modified - time.time()) < 60
    assert storage.status(f"{root}/new").is_dir
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(f"{root}/new/absent")
    with pytest.raises(FileNotFoundError):
        storage.status(f"{root}/new/absent")


def test_of_two_exclusive_creates_exactly_the_first_wins_and_keeps_its_content(store, tmp_path):
    storage, root = store
    assert storage.create_exclusive(f"{root}/_lock/LOCK", b"first")
    assert not storage.create_exclusive(f"{root}/_lock/LOCK", b"second")
    assert (tmp_path / "_lock" / "LOCK").read_bytes() == b"first"
    assert [p.name for p in (tmp_path / "_lock").iterdir() if not p.name.endswith(".crc")] == ["LOCK"]


def test_an_exclusive_create_that_fails_for_another_reason_raises(store, tmp_path):
    storage, root = store
    (tmp_path / "plain").write_bytes(b"a file where a folder should be")
    with pytest.raises((OSError, Py4JJavaError)):  # not False: nobody holds that path
        storage.create_exclusive(f"{root}/plain/LOCK", b"x")
    assert (tmp_path / "plain").read_bytes() == b"a file where a folder should be"


def test_posix_exclusive_create_has_one_winner_among_racing_threads(tmp_path):
    # Hadoop's local file system checks, then creates (two can win): storage_for never uses it for local
    # paths, so only the POSIX implementation races here.
    storage = PosixStorage()
    for attempt in range(20):
        path = str(tmp_path / f"race-{attempt}")
        start = threading.Barrier(8)
        won: list[int] = []

        def create(me: int, path: str = path, start: threading.Barrier = start, won: list[int] = won) -> None:
            start.wait()
            if storage.create_exclusive(path, str(me).encode()):
                won.append(me)

        threads = [threading.Thread(target=create, args=(me,)) for me in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, f"attempt {attempt}: winners {won}"
        assert Path(path).read_bytes() == str(won[0]).encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"race-{i}" for i in range(20))  # no temp left


def test_delete_removes_a_folder_with_everything_under_it_and_nothing_else(store, tmp_path):
    storage, root = store
    for name in ("run-1/step/part-0", "run-1/step/part-1", "run-1/top", "run-2/keep"):
        storage.write_bytes(f"{root}/_staging/{name}", b"x")
    assert storage.delete(f"{root}/_staging/run-1")
    assert not storage.exists(f"{root}/_staging/run-1")
    assert not (tmp_path / "_staging" / "run-1").exists()
    assert (tmp_path / "_staging" / "run-2" / "keep").read_bytes() == b"x"
    assert not storage.delete(f"{root}/_staging/run-1")  # nothing there any more
    assert storage.delete(f"{root}/_staging/run-2/keep")  # a single file
    assert os.listdir(tmp_path / "_staging" / "run-2") == []


def test_a_folder_lists_its_entries_and_an_absent_one_lists_empty(store, tmp_path):
    storage, root = store
    storage.write_bytes(f"{root}/log/00000000000000000000.json", b"{}\n")
    storage.write_bytes(f"{root}/log/_last_checkpoint", b"12345")
    storage.write_bytes(f"{root}/log/sub/inner", b"")
    listed = {entry.name: entry for entry in storage.list_folder(f"{root}/log")}
    assert sorted(listed) == ["00000000000000000000.json", "_last_checkpoint", "sub"]
    assert [listed[n].size for n in ("00000000000000000000.json", "_last_checkpoint")] == [3, 5]
    assert [listed[n].is_dir for n in sorted(listed)] == [False, False, True]
    assert storage.read_bytes(listed["_last_checkpoint"].path) == b"12345"  # an entry's path goes back in
    assert storage.list_folder(f"{root}/absent") == []
    assert [e.name for e in storage.list_folder(f"{root}/log/_last_checkpoint")] == ["_last_checkpoint"]


def test_a_folder_written_through_hadoop_lists_the_same_through_both(spark, tmp_path):
    hadoop, posix = HadoopStorage(spark), PosixStorage()
    for name in ("a.json", "b.json"):
        hadoop.write_bytes(f"{tmp_path}/{name}", b"{}")
    assert (tmp_path / ".a.json.crc").exists()  # Hadoop's checksum side file
    assert sorted(e.name for e in posix.list_folder(str(tmp_path))) == ["a.json", "b.json"]
    assert sorted(e.name for e in hadoop.list_folder(str(tmp_path))) == ["a.json", "b.json"]
    # A rewrite through POSIX drops the side file: a stale checksum would fail Hadoop's next read.
    posix.write_bytes(f"{tmp_path}/a.json", b'{"changed": true}')
    assert hadoop.read_bytes(f"{tmp_path}/a.json") == b'{"changed": true}'
    posix.delete(f"{tmp_path}/b.json")
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_rename_moves_a_folder_into_a_new_parent_and_never_over_an_existing_target(store, tmp_path):
    storage, root = store
    storage.write_bytes(f"{root}/sentences/_delta_log/.tmp", b"torn")
    storage.rename(f"{root}/sentences", f"{root}/_trash/sentences-1")
    assert not storage.exists(f"{root}/sentences")
    assert (tmp_path / "_trash" / "sentences-1" / "_delta_log" / ".tmp").read_bytes() == b"torn"
    storage.write_bytes(f"{root}/other/x", b"y")
    with pytest.raises(OSError):
        storage.rename(f"{root}/other", f"{root}/_trash")
    assert (tmp_path / "other" / "x").exists()


def test_local_paths_go_to_posix_and_other_schemes_to_hadoop(spark):
    for path in ("/data/wh", "wh/relative", "file:/data/wh", "file:///data/wh", "/data/a:b"):
        assert isinstance(storage_for(spark, path), PosixStorage), path
    for path in ("hdfs://nn:8020/wh", "hdfs:/wh", "s3a://bucket/wh"):
        assert isinstance(storage_for(spark, path), HadoopStorage), path
    assert isinstance(storage_for(None, "/data/wh"), PosixStorage)
    with pytest.raises(ValueError, match="Spark session"):
        storage_for(None, "s3a://bucket/wh")
    assert [local_path(p) for p in ("file:/a/b%20c", "file:///a/b", "/a/b")] == ["/a/b%20c", "/a/b", "/a/b"]
