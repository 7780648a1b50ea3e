"""giellm_batch.storage on a real S3 server (SeaweedFS on 127.0.0.1, through S3A in the test JVM):
the same contract as on a local disk, and create-if-absent atomic under a race."""

from __future__ import annotations

import threading
import uuid

import pytest

from giellm_batch.storage import HadoopStorage, storage_for
from tests.conftest import files_under

ALL_BYTES = bytes(range(256)) * 3


@pytest.fixture
def root(s3) -> str:
    """A fresh folder in the test bucket."""
    return s3.url("storage", uuid.uuid4().hex)


@pytest.fixture
def storage(spark, s3) -> HadoopStorage:
    chosen = storage_for(spark, s3.url("x"))
    assert isinstance(chosen, HadoopStorage)
    return chosen


def test_a_written_object_reads_back_whole_and_a_rewrite_replaces_it(storage, root):
    path = f"{root}/new/folder/file.bin"
    storage.write_bytes(path, ALL_BYTES)
    assert storage.read_bytes(path) == ALL_BYTES
    storage.write_bytes(path, b"shorter")
    assert storage.read_bytes(path) == b"shorter"
    status = storage.status(path)
    assert (status.name, status.size, status.is_dir) == ("file.bin", 7, False)
    assert storage.status(f"{root}/new").is_dir
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(f"{root}/new/absent")
    with pytest.raises(FileNotFoundError):
        storage.status(f"{root}/new/absent")


def test_an_object_deleted_or_replaced_between_open_and_read_reads_as_missing_or_anew(storage, root):
    """S3A opens lazily and pins the version it opened: a lock another run deletes or rewrites
    mid-read must read as absent or as its new content, never fail (a lock racer once got
    `IOException ... Status Code: 412` here)."""
    path = f"{root}/gone.json"
    storage.write_bytes(path, ALL_BYTES)
    fs, target = storage._resolve(path)
    stream = fs.open(target)
    fs.delete(target, False)
    with pytest.raises(FileNotFoundError):
        storage._read_open(stream, path)
    storage.write_bytes(path, b"first")
    stream = fs.open(target)
    storage.write_bytes(path, b"second")
    with pytest.raises(Exception) as changed:  # the stream is pinned to the first version
        storage._read_open(stream, path)
    assert storage._changed(changed.value), changed.value
    assert storage.read_bytes(path) == b"second"


def test_of_two_exclusive_creates_the_first_wins_and_keeps_its_content(storage, root):
    assert storage.create_exclusive(f"{root}/_lock/LOCK", b"first")
    assert not storage.create_exclusive(f"{root}/_lock/LOCK", b"second")
    assert storage.read_bytes(f"{root}/_lock/LOCK") == b"first"
    assert [entry.name for entry in storage.list_folder(f"{root}/_lock")] == ["LOCK"]


def test_exclusive_create_has_exactly_one_winner_among_racing_writers_every_time(storage, root):
    """The race the lock rests on, with the store deciding: plain S3A create(overwrite=false) lets
    several writers 'win' (last write wins); the conditional PUT lets exactly one."""
    for round_ in range(5):
        path = f"{root}/race-{round_}/LOCK"
        start = threading.Barrier(8)
        results: dict[int, bool] = {}

        def racer(index: int, path: str = path, start: threading.Barrier = start,
                  results: dict[int, bool] = results) -> None:
            start.wait()
            results[index] = storage.create_exclusive(path, f"writer {index}".encode())

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [i for i, won in results.items() if won]
        assert len(results) == 8 and len(winners) == 1, results
        assert storage.read_bytes(path) == f"writer {winners[0]}".encode()  # the winner's content stays


def test_delete_list_and_rename_of_folders(storage, root):
    for name in ("a/1", "a/2", "a/sub/3", "b/4"):
        storage.write_bytes(f"{root}/{name}", name.encode())
    assert sorted((e.name, e.is_dir) for e in storage.list_folder(f"{root}/a")) == [
        ("1", False), ("2", False), ("sub", True)]
    assert storage.list_folder(f"{root}/absent") == []
    storage.rename(f"{root}/a", f"{root}/moved/a")
    assert storage.read_bytes(f"{root}/moved/a/sub/3") == b"a/sub/3"
    # No object is left under the old name. (SeaweedFS's filer keeps real folders, so emptied ones
    # may still list; on AWS S3 an emptied prefix is gone. The job never relies on either.)
    assert files_under(storage, f"{root}/a") == []
    with pytest.raises(FileExistsError):
        storage.rename(f"{root}/b", f"{root}/moved/a")
    assert storage.delete(f"{root}/moved")
    assert files_under(storage, f"{root}/moved") == []
    assert storage.read_bytes(f"{root}/b/4") == b"b/4"
    assert not storage.delete(f"{root}/never-written")


def test_a_wrong_secret_is_refused_by_the_server(s3):
    """The server checks signatures (a mock that accepts anything would not test credentials)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{s3.endpoint}/{s3.bucket}/anything", method="GET",
                                     headers={"Authorization": "AWS4-HMAC-SHA256 Credential=giellm-local/20260101/"
                                              "us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
