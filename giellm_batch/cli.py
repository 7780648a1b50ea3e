"""`giellm-batch` command line: run the job, inspect prompts and parses, list tasks, build the tiny model."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from giellm_batch.giellm.tasks import DEFAULT_REGISTRY, TaskRegistry, registry_or_exit
from giellm_batch.run.evaluate import add_evaluate_arguments
from giellm_batch.run.evaluate import run_from_args as evaluate_from_args
from giellm_batch.run.job import DEFAULT_CONFIG, add_run_arguments, run_from_args

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _task(registry: TaskRegistry, name: str) -> tuple[object, object]:
    if name not in registry.tasks:
        raise SystemExit(f"error: unknown task '{name}'; known: {', '.join(sorted(registry.tasks))}")
    task = registry.tasks[name]
    return task, registry.profiles[task.profile]


def cmd_prompt(args: argparse.Namespace) -> int:
    from giellm_batch.giellm.prompts import build_prompt

    task, profile = _task(registry_or_exit(args.registry), args.task)
    sys.stdout.write(build_prompt(task, profile, args.text) + "\n")  # type: ignore[arg-type]
    return 0


def _morphemes(text: str | None) -> list[tuple[int, int, str, str]] | None:
    if not text:
        return None
    from giellm_batch.text.segmentation import Segmenter

    return Segmenter().morphemes(text)


def cmd_parse(args: argparse.Namespace) -> int:
    from giellm_batch.giellm.parsing import parse_output
    from giellm_batch.text.offsets import ground_items

    task, profile = _task(registry_or_exit(args.registry), args.task)
    result = parse_output(args.output, task, profile, sentence=args.text or "",  # type: ignore[arg-type]
                          truncated=args.truncated)
    payload = {
        "status": result.status, "text_label": result.text_label, "text_label_known": result.text_label_known,
        "flags": list(result.flags), "raw_output": args.output,
        "items": ground_items(result, task, args.text or "", 0, _morphemes(args.text)),  # type: ignore[arg-type]
    }
    print(json.dumps(payload, ensure_ascii=False, indent=2))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from giellm_batch.tools.doctor import run_checks

    return run_checks(args.config)


def cmd_tasks(args: argparse.Namespace) -> int:
    registry = registry_or_exit(args.registry)
    if args.json:
        print(json.dumps({n: asdict(t) for n, t in registry.tasks.items()}, ensure_ascii=False, indent=2))
        return 0
    for name, task in registry.tasks.items():
        labels = " ".join(task.text_labels) or "(open)"
        items = " ".join(task.item_labels) or "(open)"
        print(f"{name:<12} [{task.profile}] IW={task.iw!r} {task.item_kind}{task.fields} -> {task.records}")
        print(f"{'':<12} text labels: {labels}")
        print(f"{'':<12} item labels: {items}")
    return 0


def cmd_build_tiny_model(args: argparse.Namespace) -> int:
    from giellm_batch.training import tiny_model

    argv = ["--out", args.out, *[arg for c in args.corpus for arg in ("--corpus", c)]]
    return tiny_model.main([*argv, "--force"] if args.force else argv)


def _warehouse_session(args: argparse.Namespace, command: str, master: str = "local[*]") -> tuple[SparkSession, str]:
    """A local Spark session with Delta (and S3A for an s3a:// warehouse, set up from `--config`'s
    object_store section) for a maintenance command, and the warehouse's absolute path or URI."""
    from giellm_batch.config.job_config import ConfigError, ObjectStoreSettings, SparkSettings, load_config
    from giellm_batch.spark.object_store import uses_s3a
    from giellm_batch.spark.session import build_spark

    warehouse = args.warehouse if "://" in args.warehouse else str(Path(args.warehouse).resolve())
    store = ObjectStoreSettings()
    if getattr(args, "config", None):
        try:
            store = load_config(args.config, check_paths=False).object_store
        except ConfigError as exc:
            raise SystemExit(f"error: {exc}") from exc
    spark = build_spark(SparkSettings(master=master, app_name=f"giellm-batch-{command}"), short_lived=True,
                        object_store=store if uses_s3a([warehouse]) else None)
    return spark, warehouse


def cmd_sql(args: argparse.Namespace) -> int:
    if args.engine == "duckdb":
        # No JVM: delta-rs reads the tables, DuckDB runs the query; s3a:// is reached with the
        # config's object_store section and the credentials in the environment.
        from giellm_batch.config.job_config import ConfigError, ObjectStoreSettings, load_config
        from giellm_batch.tools.sql_duckdb import show_sql_file

        store = ObjectStoreSettings()
        if args.config:
            try:
                store = load_config(args.config, check_paths=False).object_store
            except ConfigError as exc:
                raise SystemExit(f"error: {exc}") from exc
        sys.stdout.write(show_sql_file(args.warehouse, args.file, store, args.limit))
        return 0
    from giellm_batch.tools.sql import run_sql_file

    spark, warehouse = _warehouse_session(args, "sql")
    run_sql_file(spark, warehouse, args.file).show(args.limit, truncate=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from giellm_batch.monitoring.report import gather, render

    spark, warehouse = _warehouse_session(args, "report", master="local[2]")
    try:
        page = render(gather(spark, warehouse, args.run))
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
    from giellm_batch.storage import storage_for

    # Through the warehouse's storage, so the report lands on S3 (or HDFS) beside an s3a:// warehouse
    # as it does on a local disk (the folder is created either way).
    out = args.out or f"{warehouse.rstrip('/')}/_reports/{args.run or 'latest'}.html"
    storage_for(spark, out).write_bytes(out, page.encode("utf-8"))
    print(out)
    return 0


def cmd_optimize(args: argparse.Namespace) -> int:
    from giellm_batch.warehouse.maintenance import optimize

    spark, warehouse = _warehouse_session(args, "optimize")
    report = optimize(spark, warehouse, zorder=args.zorder, vacuum=not args.no_vacuum,
                      retention_hours=args.retention_hours, only=tuple(args.table))
    print(json.dumps(report, indent=2))
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    from giellm_batch.warehouse.locking import release

    spark, warehouse = _warehouse_session(args, "unlock", master="local[1]")
    release(spark, warehouse)
    print(f"lock removed from {args.warehouse}")
    return 0


def cmd_schema_doc(_: argparse.Namespace) -> int:
    from giellm_batch.tools.schema_doc import render

    sys.stdout.write(render())
    return 0


def cmd_delta_package(_: argparse.Namespace) -> int:
    from giellm_batch.spark.session import delta_maven_coordinate

    print(delta_maven_coordinate())
    return 0


def cmd_spark_submit(args: argparse.Namespace) -> int:
    """`spark-submit`: exec the project's spark-submit command; `submit-args`: print it, shell-quoted."""
    import shlex

    from giellm_batch.spark import submit

    job = args.job_argv
    script, job_args = (job[0], job[1:]) if job and not job[0].startswith("-") else (submit.default_job(), job)
    conf: dict[str, str] = {}
    for entry in args.conf:
        key, equals, value = entry.partition("=")
        if not equals:
            raise SystemExit(f"error: --conf {entry}: expected KEY=VALUE")
        conf[key] = value
    command = submit.spark_submit_command(script, job_args, master=args.master, conf=conf, options=args.options)
    if args.command == "submit-args":
        print(shlex.join(command))
        return 0
    submit.exec_spark_submit(command)
    return 1  # not reached: exec replaced this process


WAREHOUSE_CONFIG_HELP = ("job YAML whose object_store section reaches an s3a:// warehouse (endpoint, region, "
                         "path style); credentials come from the environment or the instance role")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="giellm-batch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the extraction job (same as spark-submit jobs/extract.py)")
    add_run_arguments(run)
    run.set_defaults(func=run_from_args)

    evaluate = sub.add_parser("evaluate", help="TL/WL/ALL accuracy on a labelled set (model or --score-only)")
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(func=evaluate_from_args)

    prompt = sub.add_parser("prompt", help="print the exact prompt for one text and task")
    prompt.add_argument("--task", required=True)
    prompt.add_argument("text")
    prompt.add_argument("--registry", default=DEFAULT_REGISTRY,
                        help="task registry YAML (default: the packaged tasks.yaml)")
    prompt.set_defaults(func=cmd_prompt)

    parse = sub.add_parser("parse", help="parse one model output into JSON (with offsets if --text is given)")
    parse.add_argument("--task", required=True)
    parse.add_argument("--text", help="the source sentence, for grounding and ambiguous ':'/';' splits")
    parse.add_argument("--truncated", action="store_true", help="the output was cut at max_new_tokens")
    parse.add_argument("output")
    parse.add_argument("--registry", default=DEFAULT_REGISTRY)
    parse.set_defaults(func=cmd_parse)

    tasks = sub.add_parser("tasks", help="list the configured tasks with their IW and labels")
    tasks.add_argument("--registry", default=DEFAULT_REGISTRY)
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(func=cmd_tasks)

    tiny = sub.add_parser("build-tiny-model", help="build the random-weight smoke-test model (labels meaningless)")
    tiny.add_argument("--out", required=True)
    tiny.add_argument("--corpus", action="append", default=[], help="directory of .txt files for the tokenizer")
    tiny.add_argument("--force", action="store_true")
    tiny.set_defaults(func=cmd_build_tiny_model)

    sql = sub.add_parser("sql", help="run a query file from sql/ against a warehouse (tables become views)")
    sql.add_argument("file")
    sql.add_argument("--warehouse", default="warehouse")
    sql.add_argument("--config", help=WAREHOUSE_CONFIG_HELP)
    sql.add_argument("--limit", type=int, default=50)
    sql.add_argument("--engine", choices=("spark", "duckdb"), default="spark",
                     help="spark (default) or duckdb: DuckDB over delta-rs, no JVM (pip install "
                          "'giellm-batch[analytics]')")
    sql.set_defaults(func=cmd_sql)

    rep = sub.add_parser("report", help="render the HTML report of a run (default: the latest) from the tables")
    rep.add_argument("--warehouse", default="warehouse")
    rep.add_argument("--config", help=WAREHOUSE_CONFIG_HELP)
    rep.add_argument("--run", help="run_id (see the runs table); default: the latest run")
    rep.add_argument("--out", help="file to write, local or on the warehouse's store (s3a://...; default: "
                                   "<warehouse>/_reports/<run>.html)")
    rep.set_defaults(func=cmd_report)

    opt = sub.add_parser("optimize", help="compact the tables (OPTIMIZE, optional Z-order) and VACUUM")
    opt.add_argument("--warehouse", default="warehouse")
    opt.add_argument("--config", help=WAREHOUSE_CONFIG_HELP)
    opt.add_argument("--zorder", action="store_true", help="Z-order by the common filter columns")
    opt.add_argument("--no-vacuum", action="store_true")
    opt.add_argument("--table", action="append", default=[], help="only this table (repeatable; default all)")
    opt.add_argument("--retention-hours", type=float, default=168.0,
                     help="VACUUM keeps files younger than this (default 168 = 7 days; lower is refused)")
    opt.set_defaults(func=cmd_optimize)

    unlock = sub.add_parser("unlock", help="remove a warehouse lock left by a run that was killed")
    unlock.add_argument("--warehouse", default="warehouse")
    unlock.add_argument("--config", help=WAREHOUSE_CONFIG_HELP)
    unlock.set_defaults(func=cmd_unlock)

    doc = sub.add_parser("schema-doc", help="print the table reference (docs/tables.md)")
    doc.set_defaults(func=cmd_schema_doc)

    delta = sub.add_parser("delta-package", help="print the Delta Maven coordinate for spark-submit --packages")
    delta.set_defaults(func=cmd_delta_package)

    for name, what in (("spark-submit", "run a job script under spark-submit with the project's options"),
                       ("submit-args", "print the spark-submit command `giellm-batch spark-submit` runs")):
        submit = sub.add_parser(name, help=f"{what} (Delta --packages, driver JVM options)",
                                usage=f"giellm-batch {name} [--master M] [--conf K=V] [SPARK-SUBMIT OPTIONS] -- "
                                      "[JOB.py] [JOB ARGS]",
                                description="Options before `--` go to spark-submit after the project's own (so "
                                            "a repeated one wins); after it: the job script (default "
                                            "jobs/extract.py) and its arguments.")
        submit.add_argument("--master", help="spark-submit --master (default: spark-submit's: spark-defaults.conf, "
                                             "else local[*])")
        submit.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
        submit.set_defaults(func=cmd_spark_submit, options=[], job_argv=[])

    doctor = sub.add_parser("doctor", help="check this machine can run the job (Java, Delta jars, vLLM, model, "
                                           "GPUs, warehouse; on s3a:// also endpoint, S3A jars, credentials, "
                                           "writes, conditional create); one line per check with a fix for each "
                                           "failure")
    doctor.add_argument("--config", default=DEFAULT_CONFIG,
                        help=f"job YAML to check against ({DEFAULT_CONFIG})")
    doctor.set_defaults(func=cmd_doctor)

    from giellm_batch.training.commands import add_commands

    add_commands(sub)
    return parser


SUBMIT_COMMANDS = ("spark-submit", "submit-args")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] and argv[0] in SUBMIT_COMMANDS:
        # spark-submit's own options pass through; everything after `--` is the job's
        cut = argv.index("--") if "--" in argv else len(argv)
        args, options = parser.parse_known_args(argv[:cut])
        if options and cut == len(argv):
            parser.error(f"unrecognized arguments: {' '.join(options)} (spark-submit options go before `--`, "
                         "the job script and its arguments after it)")
        args.options, args.job_argv = options, argv[cut + 1:]
    else:
        args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
