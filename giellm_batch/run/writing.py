"""The job's last step: result tables, quarantine and prompt cache side by side, `articles` last.

Tables are written with key-based MERGE and the `articles` row goes last: an article is marked
done only after all its results are in, so a rerun after a crash redoes unfinished articles and
the MERGE keys keep finished rows from doubling. An earlier attempt that died between commits
left rows of these articles in some result tables; one query over them decides append vs
replace for all, needed only where rows can exist: edited articles, --reprocess, or an earlier
run that started writing and did not finish (its write intent is still there: warehouse/intents.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from giellm_batch import schemas
from giellm_batch.input import manifest
from giellm_batch.isolation import faults
from giellm_batch.monitoring import report
from giellm_batch.run import records
from giellm_batch.run.job_steps import Run, Selected, SetAside
from giellm_batch.spark.concurrent_jobs import concurrently
from giellm_batch.warehouse import intents, tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def write_results(run: Run, selected: Selected, aside: SetAside, profile: dict[str, Any],
                  cache_write: list[Callable[[], None]]) -> tuple[dict[str, int], dict[str, DataFrame]]:
    """Commit this run's rows; returns (articles_processed/articles_quarantined, this run's
    non-empty rows per report section: report.gather_run)."""
    spark, warehouse, ph = run.spark, run.warehouse, run.pipeline_hash
    faults.check("before_first_write", run.fault)
    run.lease.check()
    interrupted = intents.pending(spark, warehouse, ph)
    holding = (tables.tables_with_rows_for(spark, warehouse, (*schemas.ARTICLE_RESULT_TABLES, "articles"),
                                           selected.todo, ph)
               if interrupted or selected.n_changed > 0 or run.options.reprocess else frozenset())
    intents.mark(spark, warehouse, ph, run.run_id)
    sizes = records.result_sizes(profile, run.config, aside.n_sentences)
    dates = selected.todo.select("article_id", "published_date")
    results = records.result_rows(aside.sentences, aside.extractions, dates, run.config, run.stamp)

    def write(name: str) -> Callable[[], None]:
        def write_table() -> None:
            if name == "sentences":  # the injected fault fails this write while the others commit
                faults.check("between_writes", run.fault)
            tables.write_rows(spark, warehouse, name, results[name], replace_articles=selected.todo,
                              pipeline_hash=ph, leftovers=name in holding, n_rows=sizes[name])
        return write_table

    n_quarantined = selected.n_rejected + aside.n_unsegmented
    quarantined = records.quarantine_rows(selected.rejected, aside.unsegmented, run.stamp)
    concurrently([*(write(name) for name in results), lambda: tables.write_rows(
        spark, warehouse, "quarantine", quarantined, n_rows=n_quarantined), *cache_write])
    done = selected.todo.join(aside.unsegmented.select("article_id"), "article_id", "left_anti")
    n_processed = selected.n_todo - aside.n_unsegmented
    # Last: an article counts as done only once all its results are in.
    run.lease.check()
    tables.write_rows(spark, warehouse, "articles", records.article_rows(done, aside.sentences, run.stamp),
                      replace_articles=selected.todo, pipeline_hash=ph, leftovers="articles" in holding,
                      n_rows=n_processed)
    # Only now are this run's files finished: a run killed before this commit reads them again.
    manifest.write_finished(spark, warehouse, selected.read, selected.finished_files)
    faults.check("after_last_write", run.fault)
    intents.settle(spark, warehouse, ph, found=interrupted)
    sources = {**results, "quarantine": quarantined}
    counts = {**sizes, "quarantine": n_quarantined}
    return ({"articles_processed": n_processed, "articles_quarantined": n_quarantined},
            {name: sources[name] for name in report.RUN_SECTIONS if counts[name]})
