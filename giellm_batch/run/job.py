"""The extraction job's entry point, shared by `spark-submit jobs/extract.py` and `giellm-batch run`.

Order matters: arguments and config are validated completely before Spark starts, so a config
mistake exits with code 2 and a message saying what to fix, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any

from giellm_batch.config.job_config import ConfigError, JobConfig, load_config
from giellm_batch.giellm.regex_constraint import worst_case_tokens

log = logging.getLogger("giellm_batch.run.job")
def _default_config() -> str:
    """conf/local.yaml in the current folder, else the source checkout's (the venv's install is
    editable), so `giellm-batch run` and `evaluate` work from any folder of a checkout."""
    here, checkout = Path("conf/local.yaml"), Path(__file__).resolve().parents[1] / "conf" / "local.yaml"
    return str(here if here.is_file() or not checkout.is_file() else checkout)


DEFAULT_CONFIG = _default_config()


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help=f"job YAML (default: {DEFAULT_CONFIG}: local Spark, sample articles, tiny model)")
    parser.add_argument("--output", help="warehouse root for the Delta tables (overrides output.warehouse)")
    parser.add_argument("--input", help="articles to read (overrides input.path)")
    parser.add_argument("--input-format", choices=["livedoor", "jsonl", "parquet", "delta"],
                        help="overrides input.format")
    parser.add_argument("--model", help="model directory (overrides model.path)")
    parser.add_argument("--tasks", help="comma-separated task names (overrides tasks); see `giellm-batch tasks`")
    parser.add_argument("--reprocess", action="store_true",
                        help="recompute articles already done by this model + prompt version and replace their "
                             "rows (other versions' rows stay); combine with --since/--until to bound it")
    parser.add_argument("--since", type=_date, help="only articles published on or after YYYY-MM-DD")
    parser.add_argument("--until", type=_date, help="only articles published on or before YYYY-MM-DD")
    parser.add_argument("--limit", type=int, help="at most N articles this run (oldest first); the rest wait")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="settings",
                        help="override one config value, validated like the YAML (repeatable), e.g. "
                             "--set execution.dedup=false --set engine.batch_size=1024")
    parser.add_argument("--fail-on-drift", action="store_true",
                        help="exit 4 when the run succeeded but drifted from the previous runs (monitoring.*: "
                             "parse-ok rate, quarantine share, items per sentence, text-label mix, ungrounded spans)")
    parser.add_argument("--log-level", default="WARNING", help="Python log level (default WARNING)")


def _date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from exc


def _parse_setting(setting: str) -> tuple[str, str, Any]:
    name, sep, raw = setting.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError("--set", [f"expected SECTION.KEY=VALUE (e.g. execution.dedup=false), got {setting!r}"])
    import yaml

    return section, key, yaml.safe_load(raw) if raw.strip() else ""


def config_from_args(args: argparse.Namespace) -> JobConfig:
    overrides: dict[str, dict[str, Any]] = {
        "output": {"warehouse": args.output},
        "input": {"path": args.input, "format": args.input_format},
        # A model given on the command line is recorded (and keys the prompt cache) under its own
        # name, never under the name the YAML gives its model.
        "model": {"path": args.model, "name": Path(args.model).name if args.model else None},
    }
    for setting in args.settings:
        section, key, value = _parse_setting(setting)
        overrides.setdefault(section, {})[key] = value
    config = load_config(args.config, overrides=overrides)
    if args.tasks:
        names = [t.strip() for t in args.tasks.split(",") if t.strip()]
        unknown = [n for n in names if n not in config.task_registry.tasks]
        if unknown:
            raise ConfigError("--tasks", [f"unknown task(s) {unknown}; known: {sorted(config.task_registry.tasks)}"])
        config = JobConfig(**{**config.__dict__, "tasks": tuple(names)})
    return config


def warn_on_tight_token_budget(config: JobConfig) -> None:
    eng = config.engine
    if eng.decoding != "free" and (eng.max_items or eng.max_span_chars):
        log.warning("engine.max_items=%d / engine.max_span_chars=%d bound constrained outputs: an output that "
                    "needs more items or a longer span is cut to fit (0 = no bound)", eng.max_items, eng.max_span_chars)
    if eng.decoding != "regex":
        return
    for task in config.selected_tasks():
        need = worst_case_tokens(task, config.task_registry.profiles[task.profile], eng.max_items, eng.max_span_chars)
        if need is not None and need > eng.max_new_tokens:
            log.warning("task %s: a constrained output may need up to %d tokens but engine.max_new_tokens is %d;"
                        " long outputs will be cut and parsed as partial", task.name, need,
                        config.engine.max_new_tokens)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="extract.py",
        description="GIELLM extraction over Japanese news: articles -> sentences -> prompts -> vLLM -> "
                    "parsed records -> Delta tables under the warehouse.",
    )
    add_run_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    warn_on_tight_token_budget(config)

    from giellm_batch.run.driver import RunOptions, WarehouseUnreachable, run_job
    from giellm_batch.spark.object_store import uses_s3a
    from giellm_batch.spark.session import build_spark
    from giellm_batch.warehouse.locking import WarehouseLocked

    spark = build_spark(config.spark, short_lived=True,
                        object_store=config.object_store if uses_s3a(config.paths()) else None)
    options = RunOptions(reprocess=args.reprocess, since=args.since, until=args.until, limit=args.limit)
    try:
        summary = run_job(config, spark, options)
    except WarehouseLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except WarehouseUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from giellm_batch.monitoring.drift import DRIFT_EXIT_CODE

    print(json.dumps({"run_id": summary.run_id, "status": summary.status, "warehouse": summary.warehouse,
                      "articles_in": summary.articles_in, "articles_processed": summary.articles_processed,
                      "articles_skipped": summary.articles_skipped, "articles_deferred": summary.articles_deferred,
                      "articles_quarantined": summary.articles_quarantined, "prompts": summary.prompts,
                      "parse_ok": summary.parse_ok, "engine_calls": summary.engine_calls,
                      "dedup_hits": summary.dedup_hits, "wall_seconds": summary.wall_seconds,
                      "drift_warnings": summary.drift_warnings}, ensure_ascii=False))
    if summary.status != "succeeded":
        return 1
    return DRIFT_EXIT_CODE if args.fail_on_drift and summary.drift_warnings else 0
