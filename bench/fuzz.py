"""Coverage-guided fuzzing (atheris, i.e. libFuzzer) of every per-record step of the job.

    nice .venv/bin/python bench/fuzz.py --runs 100000 [--seed 1] [--crash-dir bench/fuzz-crashes]

The four targets of bench/fuzz_targets.py (livedoor and jsonl: raw bytes as one input file;
article: bytes as `body \\xff model-output`; output: bytes as `sentence \\xff model-output`; both
decoded as UTF-8 with replacement) each run in their own process (libFuzzer fuzzes one function
per process) for an equal share of --runs inputs, starting from seeds made of the bundled sample
articles. The giellm_batch modules are instrumented, so inputs that reach new code are kept and
mutated further. An input whose target raises ("escaped": that record would fail its Spark task
and then the run) or breaks a promise about its outcome ("violation") is written to --crash-dir
(with its traceback in a .txt beside it) and fuzzing goes on; a libFuzzer crash, hang (-timeout)
or memory blow-up ends that target and counts as escaped. Per-target lines, then the last line:

    inputs=N targets=4 escaped=0 violations=0 accepted=A rejected=R
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("livedoor", "jsonl", "article", "long_article", "output")
INSTRUMENTED = ("giellm_batch.input.decoding", "giellm_batch.text.segmentation", "giellm_batch.steps.generate",
                "giellm_batch.steps.parse", "giellm_batch.giellm.parsing", "giellm_batch.text.offsets",
                "giellm_batch.giellm.prompts", "giellm_batch.isolation.failures")
SEP = b"\xff"  # never part of UTF-8: splits an input into its two strings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000, help="inputs in total, shared by the targets")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-len", type=int, default=2048, help="longest input, in bytes")
    parser.add_argument("--crash-dir", type=Path, default=REPO / "bench" / "fuzz-crashes")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--target", help=argparse.SUPPRESS)  # internal: run one target in this process
    parser.add_argument("--corpus", help=argparse.SUPPRESS)  # internal: that target's working corpus
    args = parser.parse_args()
    if args.target:
        fuzz_one(args.target, args.runs, args.seed, args.max_len, args.crash_dir, Path(args.corpus))
    else:
        fuzz_all(args)


def fuzz_all(args: argparse.Namespace) -> None:
    names = [t for t in args.targets.split(",") if t]
    totals: Counter[str] = Counter()
    started = time.monotonic()
    for i, name in enumerate(names):
        runs = args.runs // len(names) + (1 if i < args.runs % len(names) else 0)
        stats = _run_child(name, runs, args)
        totals.update(stats)
        print(f"target={name} " + " ".join(f"{k}={stats[k]}" for k in ("inputs", "escaped", "violations",
                                                                      "accepted", "rejected", "seconds")), flush=True)
    print(f"seconds={time.monotonic() - started:.0f} crash_dir={args.crash_dir}")
    print(f"inputs={totals['inputs']} targets={len(names)} escaped={totals['escaped']} "
          f"violations={totals['violations']} accepted={totals['accepted']} rejected={totals['rejected']}")


def _run_child(name: str, runs: int, args: argparse.Namespace) -> Counter[str]:
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as corpus:  # libFuzzer adds what it finds
        command = [sys.executable, str(Path(__file__).resolve()), "--target", name, "--runs", str(runs),
                   "--seed", str(args.seed), "--max-len", str(args.max_len), "--crash-dir", str(args.crash_dir),
                   "--corpus", corpus]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    last = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not last:  # libFuzzer stopped the target: a crash, a hang or out of memory
        sys.stderr.write(f"target {name} ended with exit code {done.returncode}:\n{done.stderr[-4000:]}\n")
        return Counter({"escaped": 1})
    return Counter(json.loads(last[-1]))


def fuzz_one(name: str, runs: int, seed: int, max_len: int, crash_dir: Path, corpus: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        for module in INSTRUMENTED:
            __import__(module)
    target = _target(name)
    stats: Counter[str] = Counter()
    started = time.monotonic()

    def one_input(data: bytes) -> None:
        stats["inputs"] += 1
        try:
            accepted, rejected = target(data)
            stats["accepted"] += accepted
            stats["rejected"] += rejected
        except MemoryError:
            raise
        except Exception as exc:
            kind = "violations" if type(exc).__name__ == "Violation" else "escaped"
            stats[kind] += 1
            _save(crash_dir, name, kind, data, exc)
        if stats["inputs"] >= runs:  # libFuzzer never returns from Fuzz(): report and leave here
            print(json.dumps({**stats, "seconds": round(time.monotonic() - started)}), flush=True)
            os._exit(0)

    for i, seed_input in enumerate(seeds(name)):
        (corpus / f"seed-{i}").write_bytes(seed_input[:max_len])
    crash_dir.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], f"-seed={seed}", f"-max_len={max_len}", "-timeout=60", "-rss_limit_mb=4096",
                   f"-artifact_prefix={crash_dir}/{name}-", str(corpus)], one_input)
    atheris.Fuzz()


def _target(name: str) -> Callable[[bytes], tuple[int, int]]:
    import fuzz_targets as ft

    def split(data: bytes) -> tuple[str, str]:
        first, _sep, second = data.partition(SEP)
        return first.decode("utf-8", "replace"), second.decode("utf-8", "replace")

    targets: dict[str, Callable[[bytes], tuple[int, int]]] = {
        "livedoor": ft.check_livedoor,
        "jsonl": ft.check_jsonl,
        "article": lambda data: ft.check_article(*split(data)),
        "long_article": lambda data: ft.check_long_article(data.decode("utf-8", "replace")),
        "output": lambda data: ft.check_output(*split(data)),
    }
    return targets[name]


def _save(crash_dir: Path, name: str, kind: str, data: bytes, exc: BaseException) -> None:
    crash_dir.mkdir(parents=True, exist_ok=True)
    path = crash_dir / f"{name}-{kind}-{hashlib.sha1(data).hexdigest()[:12]}"
    if not path.exists():
        path.write_bytes(data)
        path.with_suffix(".txt").write_text("".join(traceback.format_exception(exc)))


def seeds(name: str) -> list[bytes]:
    """Starting inputs: the sample articles in each target's input shape, plus known awkward cases."""
    import fuzz_targets as ft

    files = sorted(p for p in (REPO / "data" / "sample" / "text").rglob("*.txt") if p.name != "LICENSE.txt")
    raw = [p.read_bytes() for p in files[:8]]
    bodies = [ft.decode_livedoor_file(str(p), data)["body"] or "" for p, data in zip(files, raw, strict=False)]
    if name == "livedoor":
        return [*raw, b"", b"\xef\xbb\xbfu\r\nd\r\nt\r\n\xe6\x9c\xac", b"u\nd\nt\n\xff\xfe"]
    if name == "jsonl":
        lines = [json.dumps({"id": f"a{i}", "title": "t", "body": b[:200]}, ensure_ascii=False).encode()
                 for i, b in enumerate(bodies)]
        return [b"\n".join(lines), b'{"id": 1, "body": "x"}\n\n{"id": true}', b"[" * 3000,
                b'{"id": "a", "body": "\\ud800"}\n{"id": {"x": 1}, "body": ["y"]}', b"1" * 5000, b" \n \r\n"]
    answer = "‹社会>固有表現抽出:人名;山田:地名;東京"
    if name == "long_article":  # the shapes measured to crash one whole MeCab call (docs/isolation.md)
        return [b"a", b"x y ", "長".encode(), "あ".encode(), *(b[:200].encode() for b in bodies[:3])]
    if name == "article":
        awkward = [("a" * 90).encode(), ("「" * 50 + "。\n" * 3).encode() + SEP]
        return [b[:400].encode() + SEP + answer.encode() for b in bodies] + awkward
    sentences = [b.split("。")[0][:60] for b in bodies]
    return [s.encode() + SEP + ft.rendered_output(t.name, s, s).encode()
            for s in sentences for t in ft.plan().tasks[:3]] + [answer.encode()]


if __name__ == "__main__":
    main()
