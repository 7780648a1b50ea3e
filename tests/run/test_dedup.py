"""Deduplication: repeated sentences reach the engine once, within a run and across runs, and the
tables are exactly those of a run with deduplication off."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CONFIG, contents, table

# A wire story's boilerplate repeats across articles; each article also has its own sentences.
BOILERPLATE = ["この記事は共同通信の配信です。", "詳しくは公式サイトをご覧ください。"]


def article(i: int, boiler: int) -> dict[str, str]:
    own = [f"第{i}回の大会で山田選手が{i}点を挙げた。", f"会場の{i}番ゲートには長い列ができた。",
           f"佐藤監督は{i}日に東京で会見を開いた。"]
    sentences = own[: 3 - boiler] + BOILERPLATE[:boiler]
    return {"id": f"wire-{i}", "title": f"記事{i}", "body": "\n".join(sentences),
            "published_at": f"2025-04-{i + 1:02d}T09:00:00+0900"}


def write_jsonl(path: Path, articles: list[dict[str, str]]) -> Path:
    path.write_text("\n".join(json.dumps(a, ensure_ascii=False) for a in articles) + "\n", encoding="utf-8")
    return path


def run(source: Path, warehouse: Path, *extra: str) -> None:
    from giellm_batch.run import job

    args = ["--config", str(CONFIG), "--input", str(source), "--input-format", "jsonl", "--output", str(warehouse),
            "--tasks", "scnm_ner", *extra]
    assert job.main(args) == 0


def test_repeated_sentences_reach_the_engine_once_and_tables_match_dedup_off(spark, tmp_path):
    # night 1: 10 articles x 3 sentences, 9 of the 30 are the two boilerplate lines (30 %)
    night1 = [article(i, boiler=1 if i < 9 else 0) for i in range(10)]
    # night 2: new articles; their boilerplate was already answered on night 1
    night2 = [article(i, boiler=2) for i in range(10, 13)]
    (tmp_path / "in").mkdir()
    first = write_jsonl(tmp_path / "in" / "night1.jsonl", night1)
    second = write_jsonl(tmp_path / "in" / "night2.jsonl", night2)
    both = tmp_path / "in"  # the same files in one run: rows name the same source file

    on = tmp_path / "dedup-on"
    run(first, on)
    run(second, on)
    runs = table(spark, on, "runs").orderBy("started_at").collect()
    assert [(r["prompts"], r["engine_calls"], r["dedup_hits"]) for r in runs] == [
        (30, 22, 8),  # 21 own sentences + 1 boilerplate line answered once; 8 repeats reused
        (9, 4, 5),  # 3 own + the second boilerplate line (new); the first comes from prompt_cache
    ]
    assert 1 - runs[0]["engine_calls"] / runs[0]["prompts"] >= 0.25  # ~ the 30 % repeated share

    off = tmp_path / "dedup-off"
    run(both, off, "--set", "execution.dedup=false")
    (off_run,) = table(spark, off, "runs").collect()
    assert (off_run["prompts"], off_run["engine_calls"], off_run["dedup_hits"]) == (39, 39, 0)
    assert table(spark, off, "prompt_cache").count() == 0

    on_tables, off_tables = contents(spark, on), contents(spark, off)
    assert len(on_tables.pop("prompt_cache")) == 22 + 4
    off_tables.pop("prompt_cache")
    assert on_tables == off_tables
    # reused answers carry the new article's keys and offsets into its own body
    boiler = table(spark, on, "sentences").filter(f"text = '{BOILERPLATE[0]}'").select("article_id").collect()
    assert len(boiler) == 9 + 3
