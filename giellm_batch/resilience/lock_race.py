"""Separate OS processes racing for one warehouse lock, each through its own JVM and store client.

Threads in one JVM share one S3A client and one HTTP connection pool; runs on different machines
do not, so the lock's guarantee (exactly one holder) is tested with processes. A `RacerPool` starts
`count` workers (`python -m giellm_batch.resilience.lock_race ...`: a local[1] Spark session with
S3A, warmed by one conditional create of its own) and drives them through files in a control folder,
which needs no sockets and survives a worker killed with SIGKILL:

    ready-<i>              worker i is up (its pid)
    cmd-<seq>.json         command seq: which workers, the warehouse, the start time, the bound
    result-<seq>-<i>.json  worker i's outcome: won / locked / error, and when its attempt ran
    release-<seq>          the winner of command seq releases its lock
    stop                   every worker exits

Workers read a command as soon as it appears and then sleep until its `start_at` (wall clock, ~2 s
ahead): all attempts start within a few milliseconds, well inside the ~10-50 ms an S3 create takes,
so the creates really overlap (each result carries its start and end times; `Race.most_in_flight`).
A winner holds its lease (heartbeat running) until told to release it, so a later attempt can never
legitimately win the same round. `pretend_host` makes a worker's lock record name another host:
only the heartbeat-age rule can then free it (a dead pid on this host is freed at once).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from giellm_batch.config.settings import ObjectStoreSettings

REPO = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.01


@dataclass
class Race:
    """The outcomes of one command, by worker index."""

    outcomes: dict[int, dict[str, Any]]
    seq: int = -1  # the command's number (RacerPool.release)

    @property
    def winners(self) -> list[int]:
        return sorted(i for i, o in self.outcomes.items() if o["outcome"] == "won")

    @property
    def locked(self) -> list[int]:
        return sorted(i for i, o in self.outcomes.items() if o["outcome"] == "locked")

    @property
    def errors(self) -> dict[int, str]:
        return {i: str(o.get("detail")) for i, o in self.outcomes.items() if o["outcome"] == "error"}

    @property
    def most_in_flight(self) -> int:
        """The most attempts in flight at one moment: 2 or more means creates really raced (a loaded
        machine can wake a worker tens of milliseconds late, after the winner's create returned)."""
        events = sorted([(o["started"], 1) for o in self.outcomes.values()]
                        + [(o["ended"], -1) for o in self.outcomes.values()], key=lambda e: (e[0], e[1]))
        most = current = 0
        for _, step in events:  # an end sorts before a start at the same instant: touching is not overlapping
            current += step
            most = max(most, current)
        return most

    @property
    def spread_ms(self) -> float:
        """Milliseconds between the first and the last attempt's start."""
        starts = [o["started"] for o in self.outcomes.values()]
        return (max(starts) - min(starts)) * 1000


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Whole or not at all: a reader polling for `path` never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data), encoding="utf-8")
    os.replace(partial, path)


class RacerPool:
    """Worker processes, each with its own JVM reaching `store`; the caller's environment must hold
    the store's credentials (S3A reads them there) or `env` adds them."""

    def __init__(self, control: Path, store: ObjectStoreSettings, root: str, env: dict[str, str] | None = None) -> None:
        self.control, self.store, self.root = control, store, root
        self.env = {**os.environ, **(env or {})}
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self._seq = 0
        control.mkdir(parents=True, exist_ok=True)

    def start(self, count: int, timeout: float = 600) -> None:
        """Start workers until `count` are alive; wait until each answers ready."""
        alive = [i for i, proc in self.workers.items() if proc.poll() is None]
        new = list(range(max(self.workers, default=-1) + 1, max(self.workers, default=-1) + 1 + count - len(alive)))
        for index in new:
            command = [sys.executable, "-m", "giellm_batch.resilience.lock_race", "--control", str(self.control),
                       "--index", str(index), "--root", self.root, "--endpoint", self.store.endpoint,
                       "--region", self.store.region, *(["--path-style"] if self.store.path_style else [])]
            with (self.control / f"worker-{index}.log").open("wb") as log:
                self.workers[index] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                                       cwd=REPO, start_new_session=True)
        deadline = time.monotonic() + timeout
        for index in new:
            while not (self.control / f"ready-{index}").exists():
                if self.workers[index].poll() is not None or time.monotonic() > deadline:
                    log_text = (self.control / f"worker-{index}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"lock racer {index} did not start:\n{log_text}")
                time.sleep(0.1)

    def alive(self) -> list[int]:
        return sorted(i for i, proc in self.workers.items() if proc.poll() is None)

    def command(self, workers: Iterable[int], warehouse: str, *, stale_after: float = 120.0,
                pretend_host: str | None = None, lead: float = 2.0) -> int:
        """Have `workers` try to acquire `warehouse`'s lock, all at `lead` seconds from now; the seq."""
        seq, self._seq = self._seq, self._seq + 1
        _write_json(self.control / f"cmd-{seq}.json", {
            "workers": sorted(workers), "warehouse": warehouse, "start_at": time.time() + lead,
            "stale_after": stale_after, "pretend_host": pretend_host})
        return seq

    def results(self, seq: int, workers: Iterable[int], timeout: float = 120) -> Race:
        """The outcomes of command `seq`; a worker that died or did not answer in time is an error."""
        outcomes: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        for index in workers:
            path = self.control / f"result-{seq}-{index}.json"
            while not path.exists() and self.workers[index].poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            outcomes[index] = (json.loads(path.read_text(encoding="utf-8")) if path.exists() else
                               {"outcome": "error", "detail": "no answer", "started": 0.0, "ended": 0.0})
        return Race(outcomes)

    def release(self, seq: int) -> None:
        (self.control / f"release-{seq}").write_text("", encoding="utf-8")

    def race(self, warehouse: str, workers: Iterable[int] | None = None, **options: Any) -> Race:
        """One round: the workers race and the outcomes are collected; the winner holds the lock
        until `release(race.seq)`, so the caller can look at it first."""
        chosen = list(self.alive() if workers is None else workers)
        seq = self.command(chosen, warehouse, **options)
        outcome = self.results(seq, chosen)
        outcome.seq = seq
        return outcome

    def kill(self, index: int) -> None:
        """SIGKILL worker `index` (its JVM is its child, in its session: killed with it)."""
        proc = self.workers[index]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        (self.control / "stop").write_text("", encoding="utf-8")
        for index, proc in self.workers.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(index)


def _attempt(spark: Any, command: dict[str, Any], run_id: str) -> tuple[dict[str, Any], Any]:
    """One acquire as `command` says: (its outcome, the lease when won)."""
    from giellm_batch.warehouse import locking

    real_hostname = socket.gethostname
    if command.get("pretend_host"):
        # Only the lock record's host changes (the record is written inside acquire); the heartbeat
        # thread reads no host name, so the lease works as it would on that host.
        socket.gethostname = lambda: str(command["pretend_host"])
    started = time.time()
    lease = None
    try:
        lease = locking.acquire(spark, command["warehouse"], run_id, command["stale_after"])
        outcome: dict[str, Any] = {"outcome": "won", "taken_over": lease.taken_over}
    except locking.WarehouseLocked as exc:
        outcome = {"outcome": "locked", "detail": str(exc)}
    except Exception as exc:  # reported to the coordinator, which fails the round
        outcome = {"outcome": "error", "detail": f"{type(exc).__name__}: {exc}"}
    finally:
        socket.gethostname = real_hostname
    return {**outcome, "run_id": run_id, "started": started, "ended": time.time()}, lease


def worker(control: Path, index: int, root: str, store: ObjectStoreSettings) -> int:
    from giellm_batch.config.job_config import SparkSettings
    from giellm_batch.spark.session import build_spark
    from giellm_batch.storage import storage_for

    spark = build_spark(SparkSettings(master="local[1]", app_name=f"lock-racer-{index}",
                                      conf={"spark.ui.enabled": "false"}), object_store=store)
    # The first create of a JVM loads S3A's classes and opens its connection (a second or more):
    # done here, or the first round would be decided by who warmed up fastest.
    warm = f"{root.rstrip('/')}/_warmup/{index}-{os.getpid()}"
    storage = storage_for(spark, warm)
    storage.create_exclusive(warm, b"warm")
    storage.delete(warm)
    (control / f"ready-{index}").write_text(str(os.getpid()), encoding="utf-8")
    held: dict[int, Any] = {}
    seq = 0
    while not (control / "stop").exists():
        for done in [s for s in held if (control / f"release-{s}").exists()]:
            held.pop(done).release()
        path = control / f"cmd-{seq}.json"
        if not path.exists():
            time.sleep(POLL_SECONDS)
            continue
        command = json.loads(path.read_text(encoding="utf-8"))
        if index in command["workers"]:
            time.sleep(max(0.0, command["start_at"] - time.time()))
            outcome, lease = _attempt(spark, command, f"racer{index}-cmd{seq}")
            if lease is not None:
                held[seq] = lease
            _write_json(control / f"result-{seq}-{index}.json", outcome)
        seq += 1
    for lease in held.values():
        lease.release()
    spark.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one lock-racing worker (see the module's docstring)")
    parser.add_argument("--control", type=Path, required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--root", required=True, help="a folder on the store for the worker's warm-up")
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--region", default="")
    parser.add_argument("--path-style", action="store_true")
    args = parser.parse_args(argv)
    store = ObjectStoreSettings(endpoint=args.endpoint, region=args.region, path_style=args.path_style)
    return worker(args.control, args.index, args.root, store)


if __name__ == "__main__":
    raise SystemExit(main())
