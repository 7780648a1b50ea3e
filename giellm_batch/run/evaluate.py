"""`giellm-batch evaluate` / `spark-submit jobs/evaluate.py`: score a labelled set with the paper's metrics.

Model mode runs the same prompt -> engine -> parse path as the extraction job (the inference
step in mapInPandas); `--score-only` scores a `prediction` field already in the file. Results go
to stdout (a table), a JSON file and the `evaluations` Delta table under the warehouse.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giellm_batch.config.job_config import ConfigError, JobConfig, load_config
from giellm_batch.giellm.metrics import LabelledRecord, format_table, load_labelled, score
from giellm_batch.run.job import DEFAULT_CONFIG

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labelled", help="labelled file: .jsonl, .json (list) or .csv")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="job YAML: model, engine, task registry")
    parser.add_argument("--task", help="task for records without a task field")
    parser.add_argument("--text-field", default="input")
    parser.add_argument("--gold-field", default="output")
    parser.add_argument("--task-field", default="task")
    parser.add_argument("--score-only", action="store_true",
                        help="no model: score the file's --prediction-field against gold")
    parser.add_argument("--prediction-field", default="prediction")
    parser.add_argument("--json-out", help="write the report here (default: <warehouse>/evaluations-<id>.json)")
    parser.add_argument("--output", help="warehouse root (overrides output.warehouse)")
    parser.add_argument("--model", help="model directory to score (overrides model.path; model.name follows it)")


def _predict(config: JobConfig, spark: SparkSession,
             records: list[LabelledRecord]) -> tuple[list[str | None], list[bool]]:
    import pandas as pd

    from giellm_batch.steps.chain import extract_frame
    from giellm_batch.steps.plan import extraction_plan

    frame = pd.DataFrame({"article_id": [str(r.line) for r in records], "sentence_idx": 0,
                          "text": [r.text for r in records], "char_start": 0, "task": [r.task for r in records]})
    plan = extraction_plan(dataclasses.replace(config, tasks=tuple(sorted({r.task for r in records}))))
    rows = extract_frame(plan, spark, frame).to_dict("records")
    by_line = {int(row["article_id"]): row for row in rows}
    return ([by_line[r.line]["raw_output"] for r in records],
            [by_line[r.line]["finish_reason"] == "length" for r in records])


def run_from_args(args: argparse.Namespace) -> int:
    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        model = {"path": str(Path(args.model).resolve()), "name": Path(args.model).name} if args.model else {}
        config = load_config(args.config, overrides={"output": {"warehouse": args.output}, "model": model},
                             check_paths=not args.score_only)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = Path(args.labelled)
    if not path.is_file():
        print(f"error: labelled file not found: {path}", file=sys.stderr)
        return 2
    loaded = load_labelled(path, config.task_registry, task=args.task, text_field=args.text_field,
                           gold_field=args.gold_field, task_field=args.task_field,
                           prediction_field=args.prediction_field if args.score_only else None)
    for problem in loaded.skipped:
        print(f"skipped {path.name} {problem}", file=sys.stderr)

    from giellm_batch.spark.session import build_spark

    spark = build_spark(config.spark, short_lived=True)
    if args.score_only:
        predictions: list[str | None] = [r.prediction for r in loaded.records]
        truncated = [False] * len(predictions)
    else:
        predictions, truncated = _predict(config, spark, loaded.records)
    scores = score(loaded.records, predictions, config.task_registry, truncated)
    print(format_table(scores, len(loaded.skipped)))

    eval_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    report = {"eval_id": eval_id, "dataset": str(path.resolve()), "mode": "score-only" if args.score_only else "model",
              "model_id": config.model_id, "skipped": loaded.skipped,
              "tasks": {name: s.as_dict() for name, s in scores.items()}}
    json_out = Path(args.json_out or f"{config.output.warehouse}/evaluations-{eval_id}.json")
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    _write_table(spark, config, report)
    print(f"report: {json_out}")
    return 0


def _write_table(spark: SparkSession, config: JobConfig, report: dict[str, Any]) -> None:
    from giellm_batch import schemas

    now = datetime.now(UTC)
    rows = [{
        "eval_id": report["eval_id"], "evaluated_at": now, "dataset": report["dataset"], "mode": report["mode"],
        "task": name, "sequences": d["sequences"], "tl_accuracy": d["tl_accuracy"], "wl_accuracy": d["wl_accuracy"],
        "all_accuracy": d["all_accuracy"], "gold_items": d["gold_items"], "matched_items": d["matched_items"],
        "extra_items": d["extra_items"], "statuses_json": json.dumps(d["statuses"]),
        "skipped_records": len(report["skipped"]), "model_id": config.model_id,
        "pipeline_hash": config.pipeline_hash(),
    } for name, d in report["tasks"].items()]
    if rows:
        (spark.createDataFrame(rows, schema=schemas.EVALUATIONS).write.format("delta").mode("append")
         .save(f"{config.output.warehouse}/evaluations"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evaluate.py", description=__doc__)
    add_evaluate_arguments(parser)
    return run_from_args(parser.parse_args(argv))
