"""The warehouse lock: one live holder, heartbeats, automatic takeover of dead holders."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from giellm_batch.run import job
from giellm_batch.warehouse import locking
from tests.conftest import ARTICLES, argv, articles_dir, table


def lock_record(warehouse) -> dict:
    return json.loads((warehouse / "_lock" / "LOCK").read_text(encoding="utf-8"))


def write_lock(warehouse, **fields) -> None:
    (warehouse / "_lock").mkdir(parents=True, exist_ok=True)
    (warehouse / "_lock" / "LOCK").write_text(json.dumps(fields), encoding="utf-8")


def test_a_live_holder_is_refused_and_named_and_only_its_owner_releases(spark, tmp_path):
    warehouse = str(tmp_path / "wh")
    lease = locking.acquire(spark, warehouse, "run-a")
    with pytest.raises(locking.WarehouseLocked, match="locked by run run-a"):
        locking.acquire(spark, warehouse, "run-b")
    locking.release(spark, warehouse, "run-b")  # not the holder: no effect
    with pytest.raises(locking.WarehouseLocked):
        locking.acquire(spark, warehouse, "run-b")
    lease.release()
    locking.acquire(spark, warehouse, "run-c").release()


def test_the_heartbeat_keeps_a_long_holder_alive_past_the_bound(spark, tmp_path):
    lease = locking.acquire(spark, str(tmp_path), "run-long", stale_after_seconds=1.0)
    try:
        time.sleep(3.0)  # three bounds: without heartbeats the lock would look dead
        seen_from_elsewhere = {**locking.read_holder(spark, str(tmp_path)), "host": "another-host"}  # no pid check
        assert locking.why_dead(seen_from_elsewhere, 1.0) is None
        with pytest.raises(locking.WarehouseLocked):
            locking.acquire(spark, str(tmp_path), "run-next", stale_after_seconds=1.0)
        lease.check()
    finally:
        lease.release()
    assert not (tmp_path / "_lock").exists() or list((tmp_path / "_lock").iterdir()) == []


def test_a_stale_heartbeat_from_another_host_is_taken_over(spark, tmp_path):
    old = (datetime.now(UTC) - timedelta(seconds=300)).isoformat()
    write_lock(tmp_path, run_id="run-dead", holder="elsewhere:1", host="elsewhere", pid=1, acquired_at=old,
               heartbeat_at=old)
    lease = locking.acquire(spark, str(tmp_path), "run-new", stale_after_seconds=120)
    assert lease.taken_over is not None and lease.taken_over["run_id"] == "run-dead"
    assert "heartbeat is 300s old" in lease.taken_over["dead_because"]
    lease.release()


def test_a_fresh_lock_of_a_process_that_died_on_this_host_is_taken_over_at_once(spark, tmp_path):
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(child.stdout)  # that process has exited
    now = datetime.now(UTC).isoformat()
    write_lock(tmp_path, run_id="run-killed", holder=f"{socket.gethostname()}:{pid}", host=socket.gethostname(),
               boot_id=locking._boot_id(), pid=pid, pid_start="1", acquired_at=now, heartbeat_at=now)
    lease = locking.acquire(spark, str(tmp_path), "run-retry")
    assert lease.taken_over is not None and "no longer exists" in lease.taken_over["dead_because"]
    lease.release()


def test_an_unreadable_lock_goes_stale_by_its_file_age(spark, tmp_path):
    (tmp_path / "_lock").mkdir()
    (tmp_path / "_lock" / "LOCK").write_bytes(b"")  # e.g. an older version killed mid-write
    with pytest.raises(locking.WarehouseLocked):
        locking.acquire(spark, str(tmp_path), "run-a", stale_after_seconds=60)
    time.sleep(1.2)
    locking.acquire(spark, str(tmp_path), "run-b", stale_after_seconds=1.0).release()


def test_a_holder_that_lost_its_lock_stops_before_writing(spark, tmp_path):
    lease = locking.acquire(spark, str(tmp_path), "run-paused", stale_after_seconds=0.6)
    write_lock(tmp_path, run_id="run-other", holder="elsewhere:2", host="elsewhere",
               acquired_at=datetime.now(UTC).isoformat(), heartbeat_at=datetime.now(UTC).isoformat())
    time.sleep(0.5)  # at least one heartbeat
    with pytest.raises(locking.LockLost, match="now held by run-other"):
        lease.check()
    lease.release()
    assert lock_record(tmp_path)["run_id"] == "run-other"  # not ours: left alone


def test_a_job_longer_than_the_bound_keeps_its_lock_and_a_dead_job_is_recorded_lost(spark, tmp_path):
    source = articles_dir(tmp_path, ARTICLES[:2])
    warehouse = tmp_path / "wh"
    short_bound = ("--set", "output.lock_stale_seconds=1")
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    write_lock(warehouse, run_id="run-crashed", holder="elsewhere:7", host="elsewhere", pid=7, acquired_at=old,
               heartbeat_at=old)
    codes: list[int] = []
    first = threading.Thread(target=lambda: codes.append(job.main(argv(source, warehouse, *short_bound))))
    first.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not (warehouse / "_lock" / "LOCK").exists()
                                           or lock_record(warehouse)["run_id"] == "run-crashed"):
        time.sleep(0.1)
    time.sleep(3.0)  # the first run now holds the lock longer than three bounds
    assert first.is_alive(), f"the job ended too soon to test its heartbeat (exit codes {codes})"
    assert job.main(argv(source, warehouse, *short_bound)) == 3
    first.join()
    assert codes == [0]
    runs = {r["run_id"]: r for r in table(spark, warehouse, "runs").collect()}
    assert runs["run-crashed"]["status"] == "failed" and runs["run-crashed"]["error"].startswith("lost: ")
    assert [r["status"] for k, r in runs.items() if k != "run-crashed"] == ["succeeded"]


def dead_lock(warehouse) -> None:
    """A lock of a run on another host whose heartbeat stopped five minutes ago."""
    old = (datetime.now(UTC) - timedelta(seconds=300)).isoformat()
    write_lock(warehouse, run_id="run-dead", holder="elsewhere:1", host="elsewhere", pid=1, acquired_at=old,
               heartbeat_at=old)


def test_of_two_runs_taking_over_the_same_dead_lock_only_one_deletes_it(spark, tmp_path, monkeypatch):
    """The interleaving that let two takers both hold the lock: both read the dead record, A deletes
    it and creates its own, then B (still sure the record is the dead one) deletes A's and creates
    its own. Here the second deleter is held back until A's lock is in place."""
    dead_lock(tmp_path)
    deleting = threading.Barrier(2, timeout=3)
    lock_file = tmp_path / "_lock" / "LOCK"
    original = locking._LockFile.delete

    def delete(self, path=None):
        if path is None:  # a delete of LOCK itself: a takeover
            try:
                turn = deleting.wait()  # both takers got here: neither had deleted yet
            except threading.BrokenBarrierError:
                turn = 0  # only one taker got here
            if turn == 1:  # the second waits for the first's lock, then deletes it (the bug)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and "run-dead" in lock_file.read_text(errors="replace"):
                    time.sleep(0.01)
        original(self) if path is None else original(self, path)

    monkeypatch.setattr(locking._LockFile, "delete", delete)
    results: dict[str, object] = {}

    def taker(name: str) -> None:
        try:
            results[name] = locking.acquire(spark, str(tmp_path), name)
        except locking.WarehouseLocked as exc:
            results[name] = exc

    threads = [threading.Thread(target=taker, args=(name,)) for name in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    leases = [r for r in results.values() if isinstance(r, locking.Lease)]
    assert len(leases) == 1, results
    assert isinstance(next(r for r in results.values() if not isinstance(r, locking.Lease)), locking.WarehouseLocked)
    assert lock_record(tmp_path)["run_id"] == leases[0].run_id
    leases[0].release()
    assert sorted(p.name for p in (tmp_path / "_lock").iterdir()) == []  # no claim, heartbeat or lock left


def test_racing_takers_of_a_dead_lock_end_with_exactly_one_holder(spark, tmp_path):
    for round_ in range(5):
        warehouse = tmp_path / f"wh{round_}"
        dead_lock(warehouse)
        start = threading.Barrier(6)
        results: dict[int, object] = {}

        def taker(index: int, warehouse=warehouse, start=start, results=results) -> None:
            start.wait()
            try:
                results[index] = locking.acquire(spark, str(warehouse), f"run-{index}")
            except locking.WarehouseLocked as exc:
                results[index] = exc

        threads = [threading.Thread(target=taker, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        leases = [r for r in results.values() if isinstance(r, locking.Lease)]
        assert len(results) == 6 and len(leases) == 1, results
        assert lock_record(warehouse)["run_id"] == leases[0].run_id
        leases[0].release()


def test_a_late_heartbeat_of_a_paused_holder_never_overwrites_the_new_holders_lock(spark, tmp_path):
    """The holder read its own record, then paused past the bound; another run took the lock over;
    the holder's heartbeat then lands. It must not put the old record back."""
    lease = locking.acquire(spark, str(tmp_path), "run-paused", stale_after_seconds=60)
    own = (tmp_path / "_lock" / "LOCK").read_bytes()
    write_lock(tmp_path, run_id="run-taker", holder="elsewhere:3", host="elsewhere",
               acquired_at=datetime.now(UTC).isoformat(), heartbeat_at=datetime.now(UTC).isoformat())
    lease.lock.read = lambda path=None: own if path is None else None  # the read from before the takeover
    lease.refresh()
    assert lock_record(tmp_path)["run_id"] == "run-taker"
    del lease.lock.read
    lease.refresh()  # the next beat finds the lock gone
    with pytest.raises(locking.LockLost):
        lease.check()
    lease.release()
    assert lock_record(tmp_path)["run_id"] == "run-taker"


def test_a_taker_that_died_mid_takeover_does_not_block_the_lock_for_good(spark, tmp_path):
    dead_lock(tmp_path)
    raw = (tmp_path / "_lock" / "LOCK").read_bytes()
    lock = locking._LockFile(spark, str(tmp_path))
    old = (datetime.now(UTC) - timedelta(seconds=300)).isoformat()
    assert lock.create(json.dumps({"run_id": "run-dead-taker", "acquired_at": old, "heartbeat_at": old}).encode(),
                       lock.claim_path(raw, 0))
    lease = locking.acquire(spark, str(tmp_path), "run-next")
    assert lease.taken_over is not None and lease.taken_over["run_id"] == "run-dead"
    lease.release()
    # a fresh claim, though, means another run is taking over right now: stop as if locked
    dead_lock(tmp_path)
    raw = (tmp_path / "_lock" / "LOCK").read_bytes()
    now = datetime.now(UTC).isoformat()
    assert lock.create(json.dumps({"run_id": "run-taking", "acquired_at": now, "heartbeat_at": now}).encode(),
                       lock.claim_path(raw, 0))
    with pytest.raises(locking.WarehouseLocked, match="being taken over"):
        locking.acquire(spark, str(tmp_path), "run-late")
