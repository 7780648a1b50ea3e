"""Run profiles and drift checks: does tonight's run look like the previous ones?

A run's profile is computed from its staged extractions in the same single aggregation that
counts parse statuses (no extra pass over the data) and stored in `runs.profile_json`:
parse-status counts, text-label counts and items per task, spans and ungrounded spans. Drift
compares a run's profile with the mean of the previous `monitoring.drift_window` successful runs
of the same pipeline (runs with fewer than `min_prompts` prompts neither get checked nor serve as
reference). Each value beyond its threshold becomes one warning: in the log, in the run report
and in `runs.drift_warnings`; `--fail-on-drift` turns warnings into exit code 4.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from giellm_batch.config.settings import JobConfig, MonitoringSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from giellm_batch.monitoring.runs import RunSummary

log = logging.getLogger("giellm_batch.monitoring.drift")

DRIFT_EXIT_CODE = 4  # documented in the README (0 ok, 1 run failed, 2 config error, 3 warehouse locked)


def profile_from_extractions(extractions: DataFrame, max_items: int = 0) -> dict[str, Any]:
    """One aggregation over the run's extraction rows -> the run's profile (plain JSON).

    With an item bound configured (`engine.max_items` > 0), outputs that reached it are counted:
    the bound may have cut them."""
    from pyspark.sql import functions as F

    from giellm_batch.schemas import ITEMS

    spans = F.flatten(F.transform(F.from_json("items_json", ITEMS), lambda item: item["spans"]))
    rows = (extractions
            .withColumn("_spans", F.coalesce(F.size(spans), F.lit(0)))
            .withColumn("_ungrounded", F.coalesce(F.size(F.filter(spans, lambda s: ~s["grounded"])), F.lit(0)))
            .groupBy("task", "parse_status", "text_label")
            .agg(F.count(F.lit(1)).alias("n"), F.sum("n_items").alias("items"), F.sum("_spans").alias("spans"),
                 F.sum("_ungrounded").alias("ungrounded"),
                 F.sum(F.when(F.lit(max_items > 0) & (F.col("n_items") >= max_items), 1).otherwise(0))
                 .alias("at_bound"))
            .collect())
    return build_profile(
        (r["task"], r["parse_status"], r["text_label"], r["n"], r["items"] or 0, r["spans"] or 0,
         r["ungrounded"] or 0, r["at_bound"] or 0) for r in rows)


def build_profile(groups: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Profile from (task, parse_status, text_label, rows, items, spans, ungrounded spans[, outputs at
    the item bound]) groups."""
    statuses: Counter[str] = Counter()
    labels: dict[str, Counter[str]] = {}
    items: Counter[str] = Counter()
    sentences: Counter[str] = Counter()
    spans = ungrounded = at_bound = 0
    for task, status, label, n, n_items, n_spans, n_ungrounded, *bound in groups:
        at_bound += int(bound[0]) if bound else 0
        task = str(task)
        statuses[str(status)] += int(n)
        sentences[task] += int(n)
        items[task] += int(n_items)
        if label is not None:
            labels.setdefault(task, Counter())[str(label)] += int(n)
        spans += int(n_spans)
        ungrounded += int(n_ungrounded)
    return {"statuses": dict(statuses), "text_labels": {t: dict(c) for t, c in labels.items()},
            "items": dict(items), "sentences": dict(sentences), "spans": spans, "ungrounded_spans": ungrounded,
            "outputs_at_item_bound": at_bound}


def _ok_rate(p: dict[str, Any]) -> float | None:
    total = sum(p["statuses"].values())
    return p["statuses"].get("ok", 0) / total if total else None


def _quarantine_share(p: dict[str, Any]) -> float | None:
    return p["quarantined"] / p["articles_in"] if p.get("articles_in") else None


def _ungrounded_share(p: dict[str, Any]) -> float | None:
    return p["ungrounded_spans"] / p["spans"] if p.get("spans") else None


def js_divergence(a: dict[str, int], b: dict[str, float]) -> float:
    """Jensen-Shannon divergence in bits (0 = same mix, 1 = disjoint) of two count distributions."""
    keys = set(a) | set(b)
    ta, tb = sum(a.values()), sum(b.values())
    if not ta or not tb:
        return 0.0
    total = 0.0
    for k in keys:
        p, q = a.get(k, 0) / ta, b.get(k, 0) / tb
        m = (p + q) / 2
        total += (p * math.log2(p / m) if p else 0.0) + (q * math.log2(q / m) if q else 0.0)
    return total / 2


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def drift_warnings(current: dict[str, Any], previous: list[dict[str, Any]], mon: MonitoringSettings) -> list[str]:
    """Warnings for `current` against the reference runs (profiles with articles_in/quarantined)."""
    reference = [p for p in previous if sum(p["statuses"].values()) >= max(mon.min_prompts, 1)]
    if not mon.drift_window or not reference or sum(current["statuses"].values()) < max(mon.min_prompts, 1):
        return []
    warnings = []

    def rise(name: str, value: float | None, ref: float | None, limit: float, sign: int) -> None:
        if value is not None and ref is not None and sign * (value - ref) > limit:
            warnings.append(f"{name} {value:.3f} vs {ref:.3f} over the previous {len(reference)} runs "
                            f"(threshold {'+' if sign > 0 else '-'}{limit})")

    rise("parse-ok rate", _ok_rate(current), _mean([_ok_rate(p) for p in reference]), mon.max_ok_rate_drop, -1)
    rise("quarantine share", _quarantine_share(current), _mean([_quarantine_share(p) for p in reference]),
         mon.max_quarantine_share_rise, 1)
    rise("ungrounded span share", _ungrounded_share(current), _mean([_ungrounded_share(p) for p in reference]),
         mon.max_ungrounded_share_rise, 1)
    for task, n in sorted(current["sentences"].items()):
        per_sentence = current["items"].get(task, 0) / n if n else None
        ref = _mean([p["items"].get(task, 0) / p["sentences"][task] for p in reference if p["sentences"].get(task)])
        if per_sentence is not None and ref is not None and ref + per_sentence > 0:
            ratio = (per_sentence + 1e-9) / (ref + 1e-9)
            if abs(math.log(ratio)) > math.log(1 + mon.max_items_change):
                warnings.append(f"{task}: items per sentence {per_sentence:.2f} vs {ref:.2f} over the previous "
                                f"{len(reference)} runs (threshold x{1 + mon.max_items_change:g})")
        mix: Counter[str] = Counter()
        for p in reference:
            total = sum(p["text_labels"].get(task, {}).values())
            for label, count in p["text_labels"].get(task, {}).items():
                mix[label] += count / total
        divergence = js_divergence(current["text_labels"].get(task, {}), dict(mix))
        if mix and divergence > mon.max_label_divergence:
            warnings.append(f"{task}: text-label mix diverges from the previous {len(reference)} runs "
                            f"(Jensen-Shannon {divergence:.3f} bits > {mon.max_label_divergence})")
    return warnings


def previous_profiles(runs: list[dict[str, Any]], window: int, min_prompts: int = 1) -> list[dict[str, Any]]:
    """Profiles of the first `window` of `runs` (`runs` rows, newest first) that a run is compared
    with: succeeded, profiled, and with at least `min_prompts` prompts."""
    return [json.loads(r["profile_json"]) for r in runs
            if r["status"] == "succeeded" and r.get("profile_json") and (r.get("prompts") or 0) >= max(min_prompts, 1)
            ][:window]


def count_and_profile(extractions: DataFrame, run_id: str,
                      max_items: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run's parse-status counts and profile as `runs` columns, the profile) from one
    aggregation of its extractions."""
    profile = profile_from_extractions(extractions, max_items)
    at_bound = profile["outputs_at_item_bound"]
    if at_bound:
        log.warning("run %s: %d outputs reached engine.max_items=%d and may have been cut; raise or remove the "
                    "bound", run_id, at_bound, max_items)
    counts = profile["statuses"]
    return ({"outputs_at_item_bound": at_bound, "prompts": sum(counts.values()), "parse_ok": counts.get("ok", 0),
             "parse_partial": counts.get("partial", 0), "parse_invalid": counts.get("invalid", 0),
             "engine_errors": counts.get("error", 0),
             "profile_json": json.dumps(profile, ensure_ascii=False, sort_keys=True)}, profile)


def check_drift(spark: SparkSession, config: JobConfig, summary: RunSummary,
                recent: Future[list[dict[str, Any]]] | None) -> dict[str, Any]:
    """Compare the finished run with the previous ones; returns its `runs` columns that change
    (profile_json with the article counts, drift_warnings), warnings also logged. `recent`: the
    pipeline's latest `runs` rows (runs.recent_runs, read in the background)."""
    from giellm_batch.monitoring import runs

    if summary.profile_json is None or recent is None:  # nothing processed (e.g. an identical rerun)
        return {}
    mon = config.monitoring
    try:
        profile = {**json.loads(summary.profile_json), "articles_in": summary.articles_in,
                   "quarantined": summary.articles_quarantined}
        rows = recent.result()
        previous = previous_profiles(rows, mon.drift_window, mon.min_prompts)
        if len(previous) < mon.drift_window and len(rows) == runs.RECENT_RUNS:  # older ones may qualify
            every_run = runs.recent_runs(spark, config.output.warehouse, summary.pipeline_hash, summary.run_id,
                                         limit=None)
            previous = previous_profiles(every_run, mon.drift_window, mon.min_prompts)
        warnings = drift_warnings(profile, previous, mon)
    except Exception:  # a monitoring failure must not turn a good run into a failed one
        log.exception("run %s: drift check failed", summary.run_id)
        return {}
    for warning in warnings:
        log.warning("run %s: drift: %s", summary.run_id, warning)
    return {"profile_json": json.dumps(profile, ensure_ascii=False, sort_keys=True), "drift_warnings": warnings}
