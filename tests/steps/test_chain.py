"""One inference chain: what the job wrote for its sentences is what the chain gives in memory."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from giellm_batch.config.job_config import load_config
from giellm_batch.steps.base import MissingColumns
from giellm_batch.steps.chain import extract_frame
from giellm_batch.steps.plan import extraction_plan
from giellm_batch.steps.prompt import PromptStep
from tests.conftest import CONFIG, table

COMPARED = ["article_id", "sentence_idx", "task", "prompt", "raw_output", "finish_reason", "n_output_tokens",
            "parse_status", "text_label", "text_label_known", "n_items", "error"]


def test_the_job_and_the_in_memory_chain_give_the_same_rows(spark, clean_run):
    """Evaluation, the benches and the unit tests call `extract_frame`; the job runs `infer` inside
    its own steps. Same sentences in, same extraction rows out (the engine decodes greedily)."""
    _source, _contents, warehouse = clean_run
    sentences = (table(spark, warehouse, "sentences").select("article_id", "sentence_idx", "text", "char_start")
                 .toPandas())
    assert len(sentences) > 10
    plan = extraction_plan(dataclasses.replace(load_config(CONFIG), tasks=("scnm_ner",)))
    in_memory = extract_frame(plan, spark, sentences)
    written = table(spark, warehouse, "extractions").select(*COMPARED).toPandas()

    def rows(frame: pd.DataFrame) -> list[tuple]:
        records = frame[COMPARED].itertuples(index=False)
        return sorted(tuple(None if v is None or v != v else v for v in r) for r in records)

    assert len(in_memory) == len(written) == len(sentences)
    assert rows(in_memory) == rows(written)


def test_a_step_given_a_frame_without_a_column_it_needs_says_which(spark):
    plan = extraction_plan(load_config(CONFIG))
    frame = spark.createDataFrame([("a1", 0)], "article_id string, sentence_idx int")
    with pytest.raises(MissingColumns, match=r"step 'prompt' needs columns \['text'\]; its input has "
                                             r"\['article_id', 'sentence_idx'\]"):
        PromptStep(plan).apply(frame)
    with pytest.raises(MissingColumns, match="step 'prompt' needs columns"):
        PromptStep(plan).run_local(pd.DataFrame({"article_id": ["a1"], "text": ["x"]}))
