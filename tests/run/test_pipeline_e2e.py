"""End to end on the bundled sample: the entry point's own function, real Spark + Delta + vLLM + fugashi."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from giellm_batch.run import job
from giellm_batch.schemas import TABLES
from giellm_batch.text.entity_keys import span_key
from giellm_batch.tools.sql import run_sql_file
from tests.conftest import CONFIG, REPO

N_TASKS = 4  # conf/smoke.yaml runs scnm_ner, tcree_re, tcree_ee, scpos_n


def read(spark, warehouse: Path, name: str):
    return spark.read.format("delta").load(str(warehouse / name))


def snapshot(spark, warehouse: Path) -> dict[str, list]:
    """Every result table's rows, sorted, for before/after comparisons (runs excluded)."""
    return {name: sorted(map(str, read(spark, warehouse, name).collect())) for name in TABLES if name != "runs"}


@pytest.fixture(scope="module")
def sample_run(spark, tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("warehouse")
    assert job.main(["--config", str(CONFIG), "--output", str(warehouse)]) == 0
    return warehouse


def test_every_sentence_gets_one_extraction_per_task(spark, sample_run):
    articles = read(spark, sample_run, "articles")
    sentences = read(spark, sample_run, "sentences")
    extractions = read(spark, sample_run, "extractions")
    assert articles.count() == 30
    assert sentences.count() > 100
    assert extractions.count() == sentences.count() * N_TASKS
    per_sentence = extractions.groupBy("article_id", "sentence_idx").agg(F.countDistinct("task").alias("n"))
    assert per_sentence.filter(F.col("n") != N_TASKS).count() == 0
    # keys lead back: every extraction to a sentence, every sentence to an article
    assert extractions.join(sentences, ["article_id", "sentence_idx"], "left_anti").count() == 0
    assert sentences.join(articles, "article_id", "left_anti").count() == 0
    assert extractions.filter(F.col("parse_status").isNull() | F.col("raw_output").isNull()).count() == 0
    statuses = {r["parse_status"] for r in extractions.select("parse_status").distinct().collect()}
    assert statuses <= {"ok", "partial", "invalid", "error"} and "ok" in statuses


def test_sentences_and_spans_point_at_the_article_text(spark, sample_run):
    articles = read(spark, sample_run, "articles").select("article_id", "body")
    sentences = read(spark, sample_run, "sentences").join(articles, "article_id").collect()
    for row in sentences:
        assert row["body"][row["char_start"]:row["char_end"]] == row["text"]
    # conf/smoke.yaml decodes grounded: every span of every item table is its sentence's text at its
    # offsets, exactly (no snapping, no search), even from a random-weight model.
    spans = []
    for name in ("entities", "sentiment_words"):
        for row in read(spark, sample_run, name).join(articles, "article_id").collect():
            spans.append((name, row["body"], row["span"], row["char_start"], row["char_end"], row["grounded"]))
    for row in read(spark, sample_run, "relations").join(articles, "article_id").collect():
        for role in ("head", "tail"):
            spans.append(("relations", row["body"], row[role], row[f"{role}_start"], row[f"{role}_end"],
                          row["grounded"]))
    for row in read(spark, sample_run, "events").join(articles, "article_id").collect():
        spans += [("events", row["body"], a["text"], a["char_start"], a["char_end"], a["grounded"])
                  for a in row["arguments"]]
    assert {s[0] for s in spans} == {"entities", "sentiment_words", "relations", "events"}
    bad = [s[0:1] + s[2:] for s in spans if not s[5] or s[1][s[3]:s[4]] != s[2]]
    assert not bad, f"{len(bad)} of {len(spans)} spans not at their offsets, e.g. {bad[:3]}"
    assert read(spark, sample_run, "entities").filter("snapped").count() == 0
    for name, surface, key in (("entities", "span", "span_key"), ("relations", "head", "head_key")):
        rows = read(spark, sample_run, name).select(surface, key).collect()
        assert rows and all(r[key] == span_key(r[surface]) for r in rows), name  # normalised grouping keys
    nouns = read(spark, sample_run, "sentiment_words")
    assert nouns.filter(F.col("pos_ok").isNull()).count() == 0  # scpos_n spans all get a POS check


def test_item_tables_are_filled_from_their_tasks(spark, sample_run):
    assert read(spark, sample_run, "entities").select("task").distinct().collect()[0]["task"] == "scnm_ner"
    for name, task in [("relations", "tcree_re"), ("events", "tcree_ee"), ("sentiment_words", "scpos_n")]:
        rows = read(spark, sample_run, name)
        assert rows.count() > 0, name
        assert {r["task"] for r in rows.select("task").distinct().collect()} == {task}
    extractions = read(spark, sample_run, "extractions")
    items = extractions.agg(F.sum("n_items")).collect()[0][0]
    total = sum(read(spark, sample_run, n).count() for n in ("entities", "relations", "events", "sentiment_words"))
    assert total == items  # nothing parsed is lost between extractions and item tables


def test_runs_row_accounts_for_every_article(spark, sample_run):
    (run,) = read(spark, sample_run, "runs").collect()
    assert run["status"] == "succeeded"
    assert run["articles_in"] == run["articles_processed"] + run["articles_quarantined"] + run["articles_skipped"]
    assert (run["articles_in"], run["articles_processed"], run["articles_quarantined"]) == (30, 30, 0)
    assert run["prompts"] == read(spark, sample_run, "extractions").count()
    assert run["parse_ok"] + run["parse_partial"] + run["parse_invalid"] + run["engine_errors"] == run["prompts"]
    assert run["model_id"] == "tiny-giellm" and run["tasks"] == ["scnm_ner", "tcree_re", "tcree_ee", "scpos_n"]
    # conf/smoke.yaml bounds items at 3: outputs that reached the bound are counted (they may be cut)
    at_bound = read(spark, sample_run, "extractions").filter("n_items >= 3").count()
    assert run["outputs_at_item_bound"] == at_bound > 0
    assert json.loads(run["profile_json"])["outputs_at_item_bound"] == at_bound


def test_example_sql_runs_against_the_output(spark, sample_run):
    result = run_sql_file(spark, str(sample_run), REPO / "sql" / "entity_counts_by_text_label.sql").collect()
    assert result
    assert sum(r["mentions"] for r in result) == read(spark, sample_run, "entities").count()
    assert {r["text_label"] for r in result} <= {"社会", "文芸", "学問", "技術", "自然"}


def test_rerun_on_same_input_changes_nothing(spark, sample_run):
    before = snapshot(spark, sample_run)
    assert job.main(["--config", str(CONFIG), "--output", str(sample_run)]) == 0
    assert snapshot(spark, sample_run) == before
    runs = read(spark, sample_run, "runs").orderBy("started_at").collect()
    assert len(runs) == 2
    assert (runs[1]["articles_skipped"], runs[1]["prompts"], runs[1]["articles_processed"]) == (30, 0, 0)


def write_jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_bad_records_go_to_quarantine_and_the_run_succeeds(spark, tmp_path):
    body = "山田太郎選手が東京ドームで{}点を挙げた。監督は「完璧だ。」と語った。"
    good = [{"id": f"g{i}", "title": "試合結果", "body": body.format(i),
             "published_at": f"2025-03-0{i + 1}T10:00:00+0900"} for i in range(3)]
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in good] + [
        json.dumps({"id": "empty", "title": "空", "body": "   "}, ensure_ascii=False).encode(),
        json.dumps({"title": "IDなし", "body": "IDがない記事です。"}, ensure_ascii=False).encode(),
        b'{"id": "bytes", "title": "x", "body": "\xff\xfe\xfd"}',
        b"{broken json",
        json.dumps({"id": "g0", "title": "重複", "body": "同じIDの記事。"}, ensure_ascii=False).encode(),
        json.dumps({"id": "punct", "title": "記号", "body": "。。。！"}, ensure_ascii=False).encode(),
    ]
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    warehouse = tmp_path / "wh"
    argv = ["--config", str(CONFIG), "--input", str(source), "--input-format", "jsonl", "--output", str(warehouse)]
    assert job.main(argv) == 0
    quarantine = {r["record_key"].rsplit(":", 1)[1]: (r["stage"], r["reason"])
                  for r in read(spark, warehouse, "quarantine").collect()}
    assert quarantine["4"] == ("read", "empty or missing body")
    assert quarantine["5"] == ("read", "missing article id")
    assert quarantine["6"][1].startswith("undecodable bytes")
    assert quarantine["7"][1].startswith("invalid JSON on line 7")
    assert quarantine["8"][1] == "duplicate article_id 'g0' in this input"
    assert quarantine["9"] == ("segmentation", "no sentence with text after segmentation")
    assert sorted(r["article_id"] for r in read(spark, warehouse, "articles").collect()) == ["g0", "g1", "g2"]
    (run,) = read(spark, warehouse, "runs").collect()
    assert (run["articles_in"], run["articles_processed"], run["articles_quarantined"]) == (9, 3, 6)

    # the bad records are read again by the next run: quarantined once, not twice
    before = snapshot(spark, warehouse)
    assert job.main(argv) == 0
    assert snapshot(spark, warehouse) == before
    last = read(spark, warehouse, "runs").orderBy(F.col("started_at").desc()).first()
    assert (last["articles_skipped"], last["articles_quarantined"], last["prompts"]) == (3, 6, 0)


def test_article_too_long_for_the_model_is_quarantined_not_truncated(spark, tmp_path):
    record = {"id": "long", "title": "長文", "body": "山田太郎選手が東京ドームで決勝点を挙げた。"}
    source = write_jsonl(tmp_path / "in.jsonl", [json.dumps(record, ensure_ascii=False).encode()])
    warehouse = tmp_path / "wh"
    # a 6-token prompt budget (max_model_len - max_new_tokens): no prompt can fit
    assert job.main(["--config", str(CONFIG), "--input", str(source), "--input-format", "jsonl", "--output",
                     str(warehouse), "--set", "engine.max_model_len=366"]) == 0
    (row,) = read(spark, warehouse, "quarantine").collect()
    assert (row["article_id"], row["stage"]) == ("long", "segmentation")
    assert "more than the model context allows" in row["reason"]
    assert read(spark, warehouse, "sentences").count() == 0


def test_every_sql_query_runs_and_adds_up(spark, sample_run):
    def query(name: str):
        return run_sql_file(spark, str(sample_run), REPO / "sql" / f"{name}.sql").collect()

    extractions = read(spark, sample_run, "extractions")
    per_day = query("text_labels_per_day")
    assert sum(r["sentences"] for r in per_day) == extractions.filter("text_label IS NOT NULL").count()
    assert all(r["published_date"] is not None for r in per_day)

    top = query("top_entities_per_category")
    categories = {r["category"] for r in read(spark, sample_run, "articles").collect()}
    assert top and {r["category"] for r in top} <= categories and max(r["rank"] for r in top) <= 10

    triples = query("relation_triples")
    assert sum(r["mentions"] for r in triples) == read(spark, sample_run, "relations").count()

    events = query("events_by_type_and_date")
    assert sum(r["events"] for r in events) == read(spark, sample_run, "events").count()
    assert {r["event_type"] for r in events} <= {"試合", "移籍", "公開", "発売", "発表", "受賞", "結婚", "買収",
                                                "事故", "災害", "選挙"}

    sentiment = query("sentiment_over_time")
    assert sentiment
    for row in sentiment:
        assert row["positive_sentences"] + row["negative_sentences"] == row["labelled_sentences"]
        assert 0.0 <= row["positive_share"] <= 1.0


def _plain(value):
    """Spark and delta-rs values in one comparable shape (naive UTC datetimes, dicts for structs)."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value).isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "asDict"):
        return _plain(value.asDict())
    return value


def test_delta_rs_and_spark_read_identical_rows(spark, sample_run):
    from deltalake import DeltaTable

    for name in TABLES:
        by_spark = sorted(json.dumps(_plain(r.asDict()), sort_keys=True, ensure_ascii=False, default=str)
                          for r in read(spark, sample_run, name).collect())
        by_rust = sorted(json.dumps(_plain(r), sort_keys=True, ensure_ascii=False, default=str)
                         for r in DeltaTable(str(sample_run / name)).to_pyarrow_table().to_pylist())
        assert by_spark == by_rust, name
