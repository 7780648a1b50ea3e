"""Drift checks: pure profile comparisons, and a second night on a different mix of input."""

from __future__ import annotations

import json

from giellm_batch.config.settings import MonitoringSettings
from giellm_batch.monitoring.drift import DRIFT_EXIT_CODE, build_profile, drift_warnings, js_divergence
from giellm_batch.run import job
from tests.conftest import ARTICLES, argv, articles_dir, table

MON = MonitoringSettings(min_prompts=10)


def profile(ok: int, bad: int, labels: dict[str, int], items: int, quarantined: int = 0, spans: int = 0,
            ungrounded: int = 0) -> dict:
    groups = [("scnm_ner", "ok", label, n, 0, 0, 0) for label, n in labels.items()]
    groups[0] = (*groups[0][:4], items, spans, ungrounded)
    groups.append(("scnm_ner", "invalid", None, bad, 0, 0, 0))
    p = build_profile(groups)
    p["statuses"]["ok"] = ok
    return {**p, "articles_in": 100, "quarantined": quarantined}


def test_same_mix_gives_no_warning_and_each_shift_gives_one():
    base = profile(95, 5, {"社会": 50, "技術": 50}, items=100, spans=100, ungrounded=2)
    assert drift_warnings(base, [base, base], MON) == []
    assert drift_warnings(base, [], MON) == []  # nothing to compare with yet
    worse = profile(70, 30, {"社会": 50, "技術": 50}, items=100, spans=100, ungrounded=2)
    assert [w.split(" ")[0] for w in drift_warnings(worse, [base], MON)] == ["parse-ok"]
    shifted = profile(95, 5, {"社会": 5, "自然": 95}, items=100, spans=100, ungrounded=2)
    (warning,) = drift_warnings(shifted, [base], MON)
    assert warning.startswith("scnm_ner: text-label mix diverges")
    fewer_items = profile(95, 5, {"社会": 50, "技術": 50}, items=20, spans=20)
    assert any("scnm_ner: items per sentence 0.19 vs 0.95" in w for w in drift_warnings(fewer_items, [base], MON))
    invented = profile(95, 5, {"社会": 50, "技術": 50}, items=100, spans=100, ungrounded=40)
    assert any(w.startswith("ungrounded span share 0.400") for w in drift_warnings(invented, [base], MON))
    tiny = profile(3, 0, {"社会": 3}, items=0)
    assert drift_warnings(tiny, [base], MON) == []  # below min_prompts: too noisy to judge


def test_js_divergence_bounds():
    assert js_divergence({"a": 5}, {"a": 1.0}) == 0.0
    assert abs(js_divergence({"a": 5}, {"b": 1.0}) - 1.0) < 1e-9


def test_second_night_with_many_bad_records_drifts_and_an_identical_rerun_does_not(spark, tmp_path):
    source = articles_dir(tmp_path, ARTICLES[:2])
    warehouse = tmp_path / "wh"
    settings = ["--set", "monitoring.min_prompts=1"]
    assert job.main(argv(source, warehouse, *settings)) == 0  # night 1: clean input
    articles_dir(tmp_path, ARTICLES[2:])
    for i in range(4):  # night 2: a new article and a batch of broken (empty) files
        (source / "topic-news" / f"broken-{i}.txt").write_bytes(b"")
    assert job.main(argv(source, warehouse, *settings, "--fail-on-drift")) == DRIFT_EXIT_CODE
    assert job.main(argv(source, warehouse, *settings, "--fail-on-drift")) == 0  # identical rerun: no drift
    first, second, third = table(spark, warehouse, "runs").orderBy("started_at").collect()
    assert first["drift_warnings"] == [] and third["drift_warnings"] == []
    assert any(w.startswith("quarantine share") for w in second["drift_warnings"]), second["drift_warnings"]
    assert json.loads(second["profile_json"])["quarantined"] == second["articles_quarantined"] == 4
    report = (warehouse / "_reports" / f"{second['run_id']}.html").read_text(encoding="utf-8")
    assert "quarantine share" in report and '<svg class="chart"' in report
    assert (warehouse / "_reports" / "latest.html").read_text(encoding="utf-8").count("<svg class=\"chart\"") >= 3


def test_runs_compared_are_the_newest_succeeded_profiled_ones_with_enough_prompts():
    from giellm_batch.monitoring.drift import previous_profiles

    def run(status: str, prompts: int | None, label: str | None) -> dict:
        return {"status": status, "prompts": prompts,
                "profile_json": None if label is None else json.dumps({"label": label})}

    newest_first = [run("failed", 50, "a"), run("succeeded", 50, None), run("succeeded", 0, "b"),
                    run("succeeded", None, "c"), run("succeeded", 50, "d"), run("succeeded", 5, "e"),
                    run("succeeded", 50, "f")]
    assert [p["label"] for p in previous_profiles(newest_first, 2, min_prompts=10)] == ["d", "f"]
    assert [p["label"] for p in previous_profiles(newest_first, 5, min_prompts=1)] == ["d", "e", "f"]
    assert previous_profiles(newest_first, 0) == []
