import json

import pytest

from giellm_batch.giellm.metrics import LabelledRecord, load_labelled, score
from giellm_batch.run import evaluate
from tests.conftest import CONFIG

G = "固有表現抽出"
CASES = [  # (gold, prediction) — hand-scored below
    (f"‹社会>{G}:人名;山田:地名;東京", f"‹社会>{G}:人名;山田:地名;東京"),  # all correct
    (f"‹社会>{G}:人名;山田:地名;東京", f"‹社会>{G}:人名;山田"),  # missing item
    (f"‹技術>{G}:製品名;X", f"‹技術>{G}:製品名;X:人名;Y"),  # extra item (WL still 100 %)
    (f"‹自然>{G}:地名;富士山:地名;富士山", f"‹自然>{G}:地名;富士山"),  # duplicated gold item, one predicted
    (f"‹社会>{G}:人名;田中", f"‹文芸>{G}:人名;田中"),  # wrong text label
    (f"‹学問>{G}", f"‹学問>{G}"),  # nothing to extract, nothing extracted
]


def test_tl_wl_all_match_hand_computed_values(registry):
    records = [LabelledRecord(i, "scnm_ner", "text", gold) for i, (gold, _) in enumerate(CASES)]
    result = score(records, [pred for _, pred in CASES], registry)["scnm_ner"].as_dict()
    assert result["sequences"] == 6
    assert result["tl_accuracy"] == pytest.approx(5 / 6)
    assert (result["matched_items"], result["gold_items"]) == (6, 8)
    assert result["wl_accuracy"] == pytest.approx(0.75)
    assert result["all_accuracy"] == pytest.approx(0.5)
    assert result["extra_items"] == 1
    assert result["statuses"] == {"ok": 6}


def test_triples_match_as_whole_tuples_and_invalid_predictions_count_as_wrong(registry):
    gold = "‹IT>Relation Extraction:A社;買収;B社:"
    records = [LabelledRecord(1, "tcree_re", "A社がB社を買収", gold)] * 3
    preds = ["‹IT>Relation Extraction:A社;買収;C社:", gold, "garbage"]
    result = score(records, preds, registry)["tcree_re"].as_dict()
    assert (result["tl_correct"], result["matched_items"], result["gold_items"], result["all_correct"]) == (2, 1, 3, 1)
    assert result["statuses"] == {"ok": 2, "invalid": 1}


def test_bad_records_are_reported_by_line_and_skipped(registry, tmp_path):
    path = tmp_path / "gold.jsonl"
    lines = [
        json.dumps({"task": "scnm_ner", "input": "山田は東京へ行った。", "output": f"‹社会>{G}:人名;山田"}),
        "{oops",
        json.dumps({"task": "ner_v9", "input": "x", "output": "y"}),
        json.dumps({"task": "scnm_ner", "output": "no input"}),
        json.dumps({"task": "scnm_ner", "input": "山田は東京へ行った。\n‹社会>‹文芸>‹学問>‹技術>‹自然>\n固有表現抽出",
                    "output": f"‹社会>{G}"}),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    report = load_labelled(path, registry)
    assert [r.line for r in report.records] == [1, 5]
    assert report.records[1].text == "山田は東京へ行った。"  # full prompts in the input are reduced to the text
    assert report.skipped[0].startswith("line 2: invalid JSON")
    assert report.skipped[1] == "line 3: unknown task 'ner_v9'"
    assert report.skipped[2].startswith("line 4: needs string fields")


def test_csv_with_one_task_for_the_file(registry, tmp_path):
    path = tmp_path / "gold.csv"
    path.write_text(f"input,output\n東京で会議。,‹社会>{G}:地名;東京\n", encoding="utf-8")
    report = load_labelled(path, registry, task="scnm_ner")
    assert [(r.line, r.task, r.text) for r in report.records] == [(2, "scnm_ner", "東京で会議。")]


def test_evaluate_runs_the_model_path_and_writes_json_and_delta(spark, tmp_path, capsys):
    path = tmp_path / "gold.jsonl"
    rows = [{"task": t, "input": "山田太郎は東京ドームで決勝点を挙げた。", "output": o} for t, o in [
        ("scnm_ner", f"‹社会>{G}:人名;山田太郎:施設名;東京ドーム"),
        ("tcree_re", "‹スポーツ>Relation Extraction:山田太郎;所属;東京:"),
        ("scpos_n", "‹積極>Sentiment Extraction Noun:ポジティブ;決勝点"),
    ]]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{bad\n", encoding="utf-8")
    out = tmp_path / "report.json"
    argv = [str(path), "--config", str(CONFIG), "--output", str(tmp_path / "wh"), "--json-out", str(out)]
    assert evaluate.main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(report["tasks"]) == ["scnm_ner", "scpos_n", "tcree_re"]
    assert all(t["statuses"] == {"ok": 1} for t in report["tasks"].values())  # constrained decoding
    assert report["skipped"] == ["line 4: invalid JSON: Expecting property name enclosed in double quotes"]
    table = spark.read.format("delta").load(str(tmp_path / "wh" / "evaluations"))
    assert table.count() == 3 and {r["skipped_records"] for r in table.collect()} == {1}
    assert "TL %" in capsys.readouterr().out

    # score-only mode: the gold strings as predictions score 100 %
    for row in rows:
        row["prediction"] = row["output"]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert evaluate.main([*argv, "--score-only"]) == 0
    perfect = json.loads(out.read_text(encoding="utf-8"))["tasks"]
    assert {t["all_accuracy"] for t in perfect.values()} == {1.0}


def test_a_placeholder_text_label_is_left_out_of_tl_and_all(registry):
    gold = f"‹社会>{G}:人名;山田"
    records = [LabelledRecord(0, "scnm_ner", "山田が来た", gold, text_label_known=False),
               LabelledRecord(1, "scnm_ner", "山田が来た", gold)]
    result = score(records, [f"‹文芸>{G}:人名;山田", f"‹文芸>{G}:人名;山田"], registry)["scnm_ner"].as_dict()
    assert (result["tl_sequences"], result["tl_correct"], result["all_correct"]) == (1, 0, 1)
    assert result["tl_accuracy"] == 0.0 and result["wl_accuracy"] == 1.0
