"""A warehouse written before the package's reorganisation (commit a9ad022) is read and extended.

The archive holds the warehouse that commit's job wrote for two sample articles (conf/smoke.yaml,
task scnm_ner); its reports, staging and lock were left out. That job's grounded spans could end
anywhere: the new code decoding the same way (spans on characters, no per-task choice) is the same
pipeline and must skip what it finished; with today's defaults (noun-phrase edges for scnm_ner) it
is another pipeline, and everything is processed again.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from giellm_batch.run import job
from tests.conftest import CONFIG, REPO, argv, articles_dir, table

OLD = Path(__file__).parent / "data" / "warehouse-before-issue-29.tar.gz"
OLD_ARTICLES = ["topic-news-6500401.txt", "topic-news-6500402.txt"]
NEW_ARTICLE = "topic-news-6500403.txt"


def test_the_new_code_skips_what_the_old_one_finished_and_adds_the_rest(spark, tmp_path):
    with tarfile.open(OLD) as archive:
        archive.extractall(tmp_path, filter="data")
    warehouse = tmp_path / "wh"
    old_entities = sorted(map(tuple, table(spark, warehouse, "entities").select("article_id", "span", "char_start")
                              .collect()))
    assert old_entities, "the archived warehouse holds entities"
    source = articles_dir(tmp_path, [*OLD_ARTICLES, NEW_ARTICLE])
    registry = tmp_path / "tasks.yaml"  # the shipped registry without its per-task span edges
    registry.write_text((REPO / "conf" / "tasks.yaml").read_text(encoding="utf-8").replace(
        "span_boundaries: noun_phrases", ""), encoding="utf-8")
    config = tmp_path / "smoke.yaml"
    config.write_text(CONFIG.read_text(encoding="utf-8").replace("../", f"{REPO}/").replace(
        "task_registry: tasks.yaml", f"task_registry: {registry}"), encoding="utf-8")
    args = argv(source, warehouse, "--set", "engine.span_boundaries=characters")
    args[args.index(str(CONFIG))] = str(config)

    assert job.main(args) == 0

    runs = {r["run_id"]: r for r in table(spark, warehouse, "runs").collect()}
    assert len(runs) == 2
    new = max(runs.values(), key=lambda r: r["started_at"])
    assert (new["articles_in"], new["articles_skipped"], new["articles_processed"]) == (3, 2, 1)
    done = sorted(r["article_id"] for r in table(spark, warehouse, "articles").collect())
    assert done == sorted(name.removesuffix(".txt") for name in [*OLD_ARTICLES, NEW_ARTICLE])
    entities = table(spark, warehouse, "entities")
    kept = sorted(map(tuple, entities.filter(entities.article_id != NEW_ARTICLE.removesuffix(".txt"))
                      .select("article_id", "span", "char_start").collect()))
    assert kept == old_entities  # the old rows are neither doubled nor replaced
