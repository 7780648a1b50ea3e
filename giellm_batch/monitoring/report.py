"""The run report: one self-contained HTML page per run, read from the Delta tables.

Written after every run to `<warehouse>/_reports/<run_id>.html` and `latest.html` (the job does
it; `giellm-batch report` renders any past run). Plots are inline SVG (charts.py) and the page
has no scripts and no external links, so it opens anywhere, offline, from a cluster's storage as
well as from a laptop; the browser draws Japanese labels in the reader's own fonts.

Everything shown is read back from the tables (runs, quarantine, extractions, articles, the item
tables; rows carry their `run_id`), so the report of a cluster run is the same as of a local one.
"""

from __future__ import annotations

import functools
import html
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from giellm_batch.monitoring.charts import bar_chart, line_chart
from giellm_batch.spark.concurrent_jobs import concurrently
from giellm_batch.storage import storage_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

log = logging.getLogger("giellm_batch.monitoring.report")
TREND_RUNS = 20


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _collect(df: DataFrame) -> list[Row]:
    return list(df.collect())


def gather(spark: SparkSession, warehouse: str, run_id: str | None = None) -> dict[str, Any]:
    """Everything the page shows for a recorded run (the newest without `run_id`), read from the tables."""
    from pyspark.sql import functions as F

    from giellm_batch.warehouse import tables

    if not tables.table_exists(spark, warehouse, "runs"):
        raise ValueError(f"no runs table under {warehouse}: run the job first (or pass --warehouse)")
    runs = tables.read_table(spark, warehouse, "runs")
    ordered = runs.orderBy(F.col("started_at").desc())
    run = (ordered.filter(F.col("run_id") == run_id) if run_id else ordered).limit(1).collect()
    if not run:
        raise ValueError(f"no run {run_id!r} in {warehouse}/runs" if run_id else f"no runs in {warehouse}/runs")
    row = run[0].asDict()
    sources = {name: tables.read_table(spark, warehouse, name).filter(F.col("run_id") == row["run_id"])
               for name in RUN_SECTIONS}
    return gather_run(spark, warehouse, row, sources)


# The tables whose rows of one run the page summarises.
RUN_SECTIONS = ("quarantine", "extractions", "entities", "relations", "events")


def gather_run(spark: SparkSession, warehouse: str, row: dict[str, Any], sources: dict[str, DataFrame],
               previous: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The page's data for the run `row` (a `runs` row as a dict), whose rows of each table in
    RUN_SECTIONS are `sources[name]`; a missing source is a section with nothing in it.

    The job passes its own staged rows (no table scan) and leaves out what it knows is empty, and
    the pipeline's earlier runs when it has read them already (`previous`, newest first); the
    sections' small queries run side by side. Text-label counts come from the run's profile."""
    from pyspark.sql import functions as F

    from giellm_batch.monitoring import runs

    queries: dict[str, DataFrame] = {}
    if "quarantine" in sources:
        queries["quarantine"] = (
            sources["quarantine"].groupBy("stage", F.substring("reason", 1, 90).alias("reason"))
            .agg(F.count(F.lit(1)).alias("n"), F.slice(F.collect_list("record_key"), 1, 3).alias("examples"))
            .orderBy(F.col("n").desc()).limit(25))
    profile = json.loads(row.get("profile_json") or "null")
    if "extractions" in sources:
        if profile is None:  # a run recorded before profiles existed
            queries["labels"] = sources["extractions"].groupBy("task", "text_label").count()
        queries["per_day"] = sources["extractions"].groupBy("published_date").agg(
            F.countDistinct("article_id").alias("articles"), F.count(F.lit(1)).alias("extractions"))
    if "entities" in sources:
        entities = sources["entities"]
        key = F.coalesce(F.col("span_key"), F.col("span")) if "span_key" in entities.columns else F.col("span")
        queries["top_entities"] = entities.groupBy("label", key.alias("key")).agg(
            F.mode("span").alias("span"), F.count(F.lit(1)).alias("n")).orderBy(F.col("n").desc(), "key").limit(15)
    for name, column in (("relations", "relation"), ("events", "event_type")):
        if name in sources:
            queries[name] = sources[name].groupBy(column).count().orderBy(F.col("count").desc(), column).limit(15)
    data: dict[str, Any] = {"run": row, "quarantine": [], "labels": [], "per_day": [], "top_entities": [],
                            "relations": [], "events": [], "trend": previous or []}
    actions: list[Callable[[], Any]] = [functools.partial(_collect_into, data, name, df)
                                        for name, df in queries.items()]
    if previous is None:
        actions.append(lambda: data.update(trend=runs.recent_runs(
            spark, warehouse, row["pipeline_hash"], row["run_id"], before=row["started_at"], limit=TREND_RUNS - 1)))
    concurrently(actions)
    data["trend"] = [*data["trend"][: TREND_RUNS - 1][::-1], row]  # oldest first, this run last
    if profile is not None:
        data["labels"] = [{"task": task, "text_label": label, "count": n}
                          for task, counts in profile.get("text_labels", {}).items() for label, n in counts.items()]
    data["labels"].sort(key=lambda r: (r["task"], -r["count"], str(r["text_label"])))
    data["per_day"].sort(key=lambda r: (r["published_date"] is None, r["published_date"] or 0))
    return data


def _collect_into(data: dict[str, Any], name: str, df: DataFrame) -> None:
    data[name] = _collect(df)


def render(data: dict[str, Any]) -> str:
    run = data["run"]
    figures = {k: run.get(k) or 0 for k in ("articles_in", "articles_processed", "articles_quarantined",
                                            "articles_skipped", "articles_deferred", "sentences", "prompts",
                                            "engine_calls", "dedup_hits", "parse_ok", "parse_partial",
                                            "parse_invalid", "engine_errors")}
    parts = [f"<h1>giellm-batch run {html.escape(run['run_id'])}</h1>",
             _table(["status", "started", "wall s", "model", "pipeline", "tasks", "input"],
                    [[run["status"], run["started_at"], round(run.get("wall_seconds") or 0, 1), run["model_id"],
                      run["pipeline_hash"], ", ".join(run.get("tasks") or []), run["input_path"]]])]
    if run.get("error"):
        parts.append(f"<p class=bad>error: {html.escape(str(run['error']))}</p>")
    warnings = run.get("drift_warnings") or []
    parts.append("<h2>Drift against previous runs</h2>" + (
        "<ul class=bad>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>" if warnings
        else "<p>No drift warnings.</p>"))
    parts.append("<h2>Funnel</h2>" + bar_chart("articles → sentences → prompts → outcomes", list(figures),
                                                [float(v) for v in figures.values()]))
    q = data["quarantine"]
    parts.append("<h2>Quarantine</h2>" + (bar_chart("quarantined records by stage", [
        f"{r['stage']}: {r['reason'][:40]}" for r in q], [float(r["n"]) for r in q], "#c44e52") + _table(
        ["stage", "reason", "records", "example keys"],
        [[r["stage"], r["reason"], r["n"], ", ".join(r["examples"])] for r in q]) if q
        else "<p>Nothing quarantined in this run.</p>"))
    parts.append("<h2>Text labels per task</h2>")
    for task in sorted({r["task"] for r in data["labels"]}):
        rows = [r for r in data["labels"] if r["task"] == task]
        parts.append(bar_chart(task, [str(r["text_label"]) for r in rows], [float(r["count"]) for r in rows]))
    if not data["labels"]:
        parts.append("<p class=empty>No extractions in this run (nothing new to process).</p>")
    parts.append("<h2>Top entities, relation and event types</h2>")
    parts.append(bar_chart("top entities (grouped by normalised key)", [
        f"{r['span']} ({r['label']})" for r in data["top_entities"]], [float(r["n"]) for r in data["top_entities"]]))
    parts.append(bar_chart("relation types", [str(r["relation"]) for r in data["relations"]],
                           [float(r["count"]) for r in data["relations"]]))
    parts.append(bar_chart("event types", [str(r["event_type"]) for r in data["events"]],
                           [float(r["count"]) for r in data["events"]]))
    days = data["per_day"]
    parts.append("<h2>By publication day</h2>" + line_chart(
        "articles and extractions per day", [str(r["published_date"]) for r in days],
        {"articles": [r["articles"] for r in days], "extractions": [r["extractions"] for r in days]}))
    engines = json.loads(run.get("engines_json") or "[]")
    parts.append("<h2>Engines</h2>" + (_table(
        ["engine", "prompts", "seconds", "prompts/s", "Spark tasks", "GPUs (task / engine)"],
        [[e.get("engine_id"), e.get("prompts"), e.get("seconds"),
          round(e["prompts"] / e["seconds"], 1) if e.get("seconds") else "-", e.get("spark_tasks"),
          f"{e.get('task_gpus') or '-'} / {e.get('engine_gpus') or '-'}"] for e in engines])
        + f"<p>generation stage {run.get('inference_seconds') or 0:.1f} s, {run.get('prompts_per_second') or 0:.1f} "
          f"engine calls/s, engines idle {100 * (run.get('engine_idle_share') or 0):.1f}% of the stage</p>"
        if engines else "<p>No engine ran (every prompt was answered from the cache, or "
                                                "nothing was new).</p>"))
    steps = json.loads(run.get("step_seconds_json") or "{}")
    if steps:
        parts.append("<h2>Where the time went</h2>" + bar_chart(
            "wall seconds per step", list(steps), [float(v) for v in steps.values()], "#8172b2"))
    trend = data["trend"]
    x = [str(t["run_id"])[:15] for t in trend]

    def share(t: dict[str, Any], num: str, den: str) -> float | None:
        return (t.get(num) or 0) / t[den] if t.get(den) else None

    parts.append("<h2>Trend over the last runs of this pipeline</h2>"
                 + line_chart("parse-ok rate and quarantine share", x, {
                     "parse ok": [share(t, "parse_ok", "prompts") for t in trend],
                     "quarantined": [share(t, "articles_quarantined", "articles_in") for t in trend]})
                 + line_chart("articles processed and prompts per run", x, {
                     "articles": [t.get("articles_processed") for t in trend],
                     "prompts": [t.get("prompts") for t in trend]}))
    style = ("body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse;"
             "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}"
             "svg.chart{display:block;max-width:100%;height:auto;margin:.4em 0}"
             ".bad{color:#b00}.empty{color:#777}")
    return (f"<!DOCTYPE html><html lang=ja><head><meta charset=utf-8><title>run {html.escape(run['run_id'])}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>")


def write_run_report(spark: SparkSession, warehouse: str, run_id: str, row: dict[str, Any] | None = None,
                     sources: dict[str, DataFrame] | None = None,
                     previous: list[dict[str, Any]] | None = None) -> str | None:
    """Render the run's report next to the tables; never fails the run (logs instead). The job
    passes its `runs` row, its own rows per section and the earlier runs it read (see gather_run);
    otherwise all are read."""
    try:
        data = (gather(spark, warehouse, run_id) if row is None
                else gather_run(spark, warehouse, row, sources or {}, previous))
        page = render(data).encode("utf-8")
        reports = f"{warehouse.rstrip('/')}/_reports"
        path = f"{reports}/{run_id}.html"
        storage = storage_for(spark, reports)
        storage.write_bytes(path, page)
        storage.write_bytes(f"{reports}/latest.html", page)
        log.warning("run %s: report %s", run_id, path)
        return path
    except Exception:
        log.exception("run %s: could not write the run report", run_id)
        return None
