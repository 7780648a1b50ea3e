"""The warehouse lock on a real S3 server, raced by separate OS processes (each its own JVM and S3A
client): exactly one winner per round, also when they race to take over a dead holder's lock; a
holder killed with SIGKILL is taken over after the heartbeat bound (another host) or at once (this
host, dead pid); a live holder never is."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from giellm_batch.resilience.lock_race import RacerPool
from giellm_batch.storage import storage_for
from giellm_batch.warehouse import locking

RACERS = 4
BOUND = 8.0  # seconds without a heartbeat before a holder on another host counts as dead (beat: BOUND / 6)


@pytest.fixture(scope="module")
def pool(s3, tmp_path_factory):
    """RACERS worker processes for the module (their JVMs start once: ~20-60 s on a loaded machine)."""
    racers = RacerPool(tmp_path_factory.mktemp("lock-race"), s3.object_store(), s3.url("lock-race"), s3.env())
    racers.start(RACERS)
    yield racers
    racers.stop()


def fresh(s3) -> str:
    return s3.url("lock-race", uuid.uuid4().hex)


def dead_lock(spark, warehouse: str) -> None:
    """A lock record of a run on another host whose heartbeat stopped five minutes ago."""
    old = (datetime.now(UTC) - timedelta(seconds=300)).isoformat()
    record = {"run_id": "run-dead", "holder": "elsewhere:1", "host": "elsewhere", "pid": 1, "acquired_at": old,
              "heartbeat_at": old}
    path = f"{warehouse}/_lock/LOCK"
    storage_for(spark, path).write_bytes(path, json.dumps(record).encode())


def check_round(spark, pool, warehouse: str, race, racers: list[int]) -> None:
    """Exactly one winner, holding the lock; the others refused; attempts in flight together."""
    try:
        holder = locking.read_holder(spark, warehouse)
    finally:
        pool.release(race.seq)
    assert not race.errors, race.errors
    assert len(race.winners) == 1 and race.locked == sorted(set(racers) - set(race.winners)), race.outcomes
    assert race.most_in_flight >= 2, f"no two attempts overlapped (starts {race.spread_ms:.0f} ms apart)"
    assert holder is not None and holder["run_id"] == race.outcomes[race.winners[0]]["run_id"]


@pytest.mark.slow
def test_racing_processes_on_s3_get_exactly_one_winner_every_round(spark, s3, pool):
    pool.start(RACERS)  # a test that ran before may have killed some
    racers = pool.alive()[:RACERS]
    for _round in range(4):
        warehouse = fresh(s3)
        race = pool.race(warehouse, racers)
        check_round(spark, pool, warehouse, race, racers)
        assert race.outcomes[race.winners[0]]["taken_over"] is None


@pytest.mark.slow
def test_racing_processes_taking_over_the_same_dead_lock_on_s3_get_exactly_one_winner(spark, s3, pool):
    pool.start(RACERS)
    racers = pool.alive()[:RACERS]
    for _round in range(4):
        warehouse = fresh(s3)
        dead_lock(spark, warehouse)
        race = pool.race(warehouse, racers)
        check_round(spark, pool, warehouse, race, racers)
        assert race.outcomes[race.winners[0]]["taken_over"]["run_id"] == "run-dead"
        names = {e.name for e in storage_for(spark, warehouse).list_folder(f"{warehouse}/_lock")}
        assert not [n for n in names if n.startswith("takeover-")], names  # claims removed once done


@pytest.mark.slow
def test_a_killed_holder_on_another_host_is_taken_over_after_the_bound_and_never_while_alive(spark, s3, pool):
    pool.start(1)
    holder = pool.alive()[-1]
    warehouse = fresh(s3)
    seq = pool.command([holder], warehouse, stale_after=BOUND, pretend_host="another-host", lead=0.1)
    won = pool.results(seq, [holder])
    assert won.winners == [holder], won.outcomes
    # Alive: refused for three bounds (its heartbeat keeps it fresh however long it holds the lock).
    until = time.monotonic() + 3 * BOUND
    while time.monotonic() < until:
        with pytest.raises(locking.WarehouseLocked, match="another-host"):
            locking.acquire(spark, warehouse, "run-probe", stale_after_seconds=BOUND)
        time.sleep(BOUND / 4)
    pool.kill(holder)
    killed_at = time.monotonic()
    with pytest.raises(locking.WarehouseLocked):  # its last heartbeat is fresh: it may be alive elsewhere
        locking.acquire(spark, warehouse, "run-too-early", stale_after_seconds=BOUND)
    lease = None
    while lease is None and time.monotonic() - killed_at < 4 * BOUND:
        try:
            lease = locking.acquire(spark, warehouse, "run-after", stale_after_seconds=BOUND)
        except locking.WarehouseLocked:
            time.sleep(0.25)
    waited = time.monotonic() - killed_at
    assert lease is not None, "the dead holder's lock was never taken over"
    try:
        assert lease.taken_over is not None and lease.taken_over["run_id"] == won.outcomes[holder]["run_id"]
        assert "heartbeat is" in lease.taken_over["dead_because"]
        # Taken over no sooner than the bound less one heartbeat interval, and not much later.
        assert BOUND * 5 / 6 - 0.5 <= waited <= BOUND + 6.0, waited
        names = {e.name for e in storage_for(spark, warehouse).list_folder(f"{warehouse}/_lock")}
        assert names == {"LOCK"}, names  # the dead holder's heartbeat and the claim are gone
    finally:
        lease.release()


@pytest.mark.slow
def test_a_killed_holder_on_this_host_is_taken_over_at_once(spark, s3, pool):
    pool.start(1)
    holder = pool.alive()[-1]
    warehouse = fresh(s3)
    seq = pool.command([holder], warehouse, lead=0.1)  # the default bound: 120 s
    won = pool.results(seq, [holder])
    assert won.winners == [holder], won.outcomes
    with pytest.raises(locking.WarehouseLocked):
        locking.acquire(spark, warehouse, "run-probe")
    pool.kill(holder)
    lease = locking.acquire(spark, warehouse, "run-retry")
    try:
        assert lease.taken_over is not None and "no longer exists" in lease.taken_over["dead_because"]
    finally:
        lease.release()
