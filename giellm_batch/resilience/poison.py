"""Poisoned input for the isolation checks (bench/poison.py and tests/resilience/test_poison.py).

`write_input` copies sample articles, `add_poison` adds one Livedoor article per (stage, kind) whose text
carries the test-only marker (faults.poison_check: with GIELLM_TEST_POISON=1 in the workers'
environment, that stage's per-record code segfaults, hangs or allocates without end on it), plus
one real pathological article: 3,000,000 characters of one kanji without punctuation, which
crashes MeCab if it ever reaches it whole. `compare` then checks a poisoned run's warehouse
against a clean run's: exactly the poison records quarantined with the expected stage, and every
other record's rows identical.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giellm_batch.isolation.faults import POISON_STAGES, poison_marker
from giellm_batch.isolation.process import POISON_KINDS
from giellm_batch.resilience.chaos import VOLATILE
from giellm_batch.schemas import TABLES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

GIANT_CHARS = 3_000_000
# Tables compared row for row with the clean run, restricted to the clean articles. Not compared:
# quarantine (checked on its own), prompt_cache (answers to the poisoned articles' other prompts
# are cached, rightly), input_files (it lists the poisoned files too), runs (one row per run).
COMPARED = tuple(name for name in TABLES if name not in ("quarantine", "prompt_cache", "input_files", "runs"))


@dataclass(frozen=True)
class PoisonedInput:
    folder: Path
    clean_ids: frozenset[str]
    expected_stage: dict[str, str]  # article id of each poison record -> the quarantine stage it must get


def write_input(folder: Path, sample: Path, count: int) -> PoisonedInput:
    """`count` sample articles (first by name) in Livedoor layout; no poison yet (`add_poison`), so
    a clean run can read the same paths first."""
    files = sorted(p for p in sample.rglob("*.txt") if p.name != "LICENSE.txt")[:count]
    for path in files:
        target = folder / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return PoisonedInput(folder, frozenset(p.stem for p in files), {})


def add_poison(clean: PoisonedInput) -> PoisonedInput:
    """One poison article per stage and kind, and the giant article, in `<folder>/poison/`."""
    poison = clean.folder / "poison"
    poison.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    for stage in POISON_STAGES:
        for kind in POISON_KINDS:
            article_id = f"poison-{stage}-{kind}"
            marker = poison_marker(stage, kind)
            title = marker if stage == "read" else "毒入りの記事"
            body = f"東京都で新しい会議が開かれた。{marker} を含む一文です。"
            _livedoor(poison / f"{article_id}.txt", article_id, title, body)
            expected[article_id] = kind
    _livedoor(poison / "poison-giant.txt", "poison-giant", "句読点のない長い記事", "長" * GIANT_CHARS)
    expected["poison-giant"] = "segmentation"
    return PoisonedInput(clean.folder, clean.clean_ids, expected)


def _livedoor(path: Path, article_id: str, title: str, body: str) -> None:
    path.write_text(f"https://example.com/{article_id}\n2025-05-01T09:00:00+0900\n{title}\n{body}\n", encoding="utf-8")


def table_rows(spark: SparkSession, warehouse: Path, name: str, article_ids: frozenset[str] | None = None) -> list[str]:
    """A table's rows as sorted strings, without the columns that name the writing run; only the
    rows of `article_ids` when given."""
    from pyspark.sql import functions as F

    df = spark.read.format("delta").load(str(warehouse / name))
    if article_ids is not None:
        df = df.filter(F.col("article_id").isin(*article_ids))
    return sorted(map(str, df.select([c for c in df.columns if c not in VOLATILE]).collect()))


def compare(spark: SparkSession, clean: Path, poisoned: Path, poison: PoisonedInput) -> dict[str, Any]:
    """quarantined: poison records quarantined with their expected stage; wrong: lines naming what
    differs (an unexpected quarantine row, a missing one, a result table unlike the clean run's)."""
    from pyspark.sql import functions as F

    wrong: list[str] = []
    rows = spark.read.format("delta").load(str(poisoned / "quarantine")).collect()
    stages = {r["article_id"]: r["stage"] for r in rows}
    quarantined = sum(stages.get(a) == stage for a, stage in poison.expected_stage.items())
    wrong += [f"quarantine: {a} has stage {stages.get(a)}, expected {s}"
              for a, s in poison.expected_stage.items() if stages.get(a) != s]
    wrong += [f"quarantine: unexpected row for {a} ({s})" for a, s in stages.items() if a not in poison.expected_stage]
    for name in COMPARED:
        want, got = table_rows(spark, clean, name), table_rows(spark, poisoned, name, poison.clean_ids)
        if want != got:
            wrong.append(f"{name}: {len(got)} rows for the clean articles, clean run has {len(want)}")
        leaked = spark.read.format("delta").load(str(poisoned / name)).filter(
            ~F.col("article_id").isin(*poison.clean_ids)).count()
        if leaked:
            wrong.append(f"{name}: {leaked} rows of poison articles")
    return {"quarantined": quarantined, "wrong": wrong}


def snapshot(spark: SparkSession, warehouse: Path) -> dict[str, list[str]]:
    """Every table but `runs`: a rerun that changes none of them is a no-op."""
    return {name: table_rows(spark, warehouse, name) for name in TABLES if name != "runs"}
