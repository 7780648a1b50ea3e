"""isolation.map_isolated: real forked children that really segfault, hang and run out of memory."""

from __future__ import annotations

import ctypes
import os
import time

import pytest

from giellm_batch.isolation.process import IsolationLimits, Poisoned, is_poison_reason, map_isolated

LIMITS = IsolationLimits(record_timeout_seconds=2.0, record_memory_bytes=256 << 20)


def _work(item: str) -> str:
    if item == "segv":
        ctypes.string_at(0)
    if item == "abort":
        os.abort()
    if item == "hang":
        time.sleep(600)
    if item == "hog":
        hoard = [b"\x01" * (32 << 20) for _ in range(64)]  # 2 GiB, touched
        return str(len(hoard))
    if item == "raise":
        raise ValueError("bad record")
    return item.upper()


def test_a_segfault_beside_a_live_engine_is_named_as_such_and_does_not_hang(tiny_model) -> None:
    """The generation step forks beside a warm vLLM engine. Its libraries' crash handlers (torch,
    faulthandler) hung a forked child's segfault until the time bound here (reported as `timeout`)
    before the child reset them (isolation._default_fatal_signals)."""
    import dataclasses

    from giellm_batch.config.job_config import load_config
    from giellm_batch.engine.vllm_engine import get_engine
    from giellm_batch.run.driver import extraction_plan
    from tests.conftest import CONFIG

    config = load_config(CONFIG)
    get_engine(extraction_plan(dataclasses.replace(config, tasks=config.tasks[:1])).engine)  # cached per process
    started = time.monotonic()
    (out,) = map_isolated(["segv"], _work, LIMITS)
    assert isinstance(out, Poisoned) and out.detail == "the process died of signal SIGSEGV", out
    assert time.monotonic() - started < LIMITS.record_timeout_seconds


def test_clean_batch_matches_in_process_work() -> None:
    items = [f"r{i}" for i in range(300)]
    assert map_isolated(items, _work, LIMITS) == [_work(i) for i in items]


@pytest.mark.parametrize(("poison", "kind", "detail"), [
    ("segv", "crash", "the process died of signal SIGSEGV"),
    ("abort", "crash", "signal SIGABRT"),
    ("hang", "timeout", "no result within 2 s"),
    ("hog", "memory", "MemoryError"),
    ("raise", "crash", "ValueError: bad record"),
])
def test_one_poisoned_record_costs_only_itself(poison: str, kind: str, detail: str) -> None:
    items = ["a", "b", poison, "c", "d"]
    out = map_isolated(items, _work, LIMITS)
    assert out[:2] == ["A", "B"] and out[3:] == ["C", "D"]
    bad = out[2]
    assert isinstance(bad, Poisoned) and bad.kind == kind and detail in bad.detail, bad
    reason = bad.reason("segmentation")
    assert reason.startswith(f"{kind}: segmentation: ") and is_poison_reason(reason)


def test_several_poisoned_records_each_isolated() -> None:
    items = ["segv", "a", "hog", "b", "abort", "raise"]
    out = map_isolated(items, _work, LIMITS)
    assert [o.kind if isinstance(o, Poisoned) else o for o in out] == ["crash", "A", "memory", "B", "crash", "crash"]


def test_failure_from_accumulated_state_is_not_blamed_on_a_record() -> None:
    """A child that dies on its third record (whatever it is) must not poison that record: alone it passes."""
    calls = {"n": 0}

    def leaky(item: str) -> str:
        calls["n"] += 1  # per process: each child starts from the parent's 0
        if calls["n"] == 3:
            os.abort()
        return item

    items = [f"r{i}" for i in range(7)]
    assert map_isolated(items, leaky, LIMITS) == items


def test_the_worker_survives_and_disabled_isolation_works_in_process() -> None:
    pid = os.getpid()
    map_isolated(["segv"], _work, LIMITS)
    assert os.getpid() == pid
    assert map_isolated(["x"], _work, IsolationLimits(enabled=False)) == ["X"]
    with pytest.raises(ValueError, match="bad record"):
        map_isolated(["raise"], _work, IsolationLimits(enabled=False))


def test_a_hanging_child_dies_with_its_watcher(tmp_path) -> None:
    """A Spark worker killed mid-batch (task cancelled, executor lost) leaves no hanging child behind."""
    import signal
    import subprocess
    import sys

    pid_file = tmp_path / "child.pid"
    script = (
        "import os, time\n"
        "from giellm_batch.isolation.process import IsolationLimits, map_isolated\n"
        f"def work(x):\n    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n    time.sleep(600)\n"
        "map_isolated(['x'], work, IsolationLimits(record_timeout_seconds=600))\n")
    watcher = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    watcher.send_signal(signal.SIGKILL)
    watcher.wait()
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the child outlived its killed watcher"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
