"""The inference step on the real vLLM engine (tiny model), called as Spark calls it, without Spark."""

from __future__ import annotations

import dataclasses
import os

import pandas as pd
import pytest

from giellm_batch.config.job_config import load_config
from giellm_batch.engine import vllm_engine as engine_module
from giellm_batch.engine.vllm_engine import Generation, generate
from giellm_batch.steps.chain import extract_frame
from giellm_batch.steps.generate import GenerateStep
from giellm_batch.steps.parse import ParseStep
from giellm_batch.steps.plan import extraction_plan
from giellm_batch.steps.prompt import PromptStep
from tests.conftest import CONFIG

TEXTS = [
    "山田太郎は東京ドームで決勝点を挙げた。",
    "日本銀行は政策金利を0.75%に引き上げた。",
    "新型スマートフォンが来月発売される。",
    "監督は「完璧な試合だった。」と語った。",
    "大阪府で震度4の地震があった。",
]


@pytest.fixture(scope="module")
def all_tasks_plan(tiny_model):
    config = load_config(CONFIG)
    return extraction_plan(dataclasses.replace(config, tasks=tuple(config.task_registry.tasks)))


def sentences(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"article_id": [f"a{i}" for i in range(len(texts))], "sentence_idx": 0, "text": texts,
                         "char_start": 0})


@pytest.fixture
def run(spark):
    """The inference chain the job runs (steps.chain), on an in-memory frame; rows in sentence order."""
    def chain(plan, frame: pd.DataFrame) -> pd.DataFrame:
        out = extract_frame(plan, spark, frame)
        return out.sort_values(["article_id", "sentence_idx", "task"], key=lambda c: c.map(str).str.zfill(6),
                               ignore_index=True)
    return chain


def test_constrained_decoding_gives_only_ok_parses(all_tasks_plan, run):
    texts = [f"{t}（{i}）" for i in range(8) for t in TEXTS]  # 40 texts x 8 tasks = 320 prompts
    out = run(all_tasks_plan, sentences(texts))
    assert len(out) == 40 * 8
    assert out["parse_status"].value_counts().to_dict() == {"ok": 320}
    assert (out["finish_reason"] == "stop").all()
    # every sentence got every task, and every row keeps its raw output
    every_task = tuple(sorted(t.name for t in all_tasks_plan.tasks))
    assert all(tuple(sorted(tasks)) == every_task for _, tasks in out.groupby("article_id")["task"])
    assert out["raw_output"].str.len().min() > 0


def test_prompt_longer_than_the_context_is_an_error_row_not_a_crash(all_tasks_plan, run):
    plan = dataclasses.replace(all_tasks_plan, tasks=all_tasks_plan.tasks[:1])
    out = run(plan, sentences(["短い文です。", "長い" * 2000]))
    assert list(out["parse_status"]) == ["ok", "error"]
    assert "tokens; the limit is 664" in out["error"][1]


class FlakyEngine:
    """Stands in for vLLM only to test the error isolation around it: token 0 makes a prompt fail."""

    def generate(self, prompts, params, use_tqdm=False, lora_request=None):
        if any(0 in p["prompt_token_ids"] for p in prompts):
            raise ValueError("cannot decode")
        return [type("Out", (), {"outputs": [type("C", (), {"text": str(p["prompt_token_ids"][0]),
                                                            "finish_reason": "stop", "token_ids": [1, 2]})]})
                for p in prompts]


def test_one_failing_prompt_costs_one_row():
    prompts = [[1], [2], [0], [3], [4]]
    results = generate(FlakyEngine(), prompts, [None] * 5)
    assert [r.error is None for r in results] == [True, True, False, True, True]
    assert results[2] == Generation(None, None, 0, "ValueError: cannot decode")
    assert [r.text for r in results if r.text] == ["1", "2", "3", "4"]


def test_worker_builds_its_engine_once_and_reuses_it(all_tasks_plan):
    for text in TEXTS[:2]:  # two Spark tasks' worth of prompts, run here as a worker runs them
        requests = PromptStep(all_tasks_plan).run_local(sentences([text]))
        assert GenerateStep(all_tasks_plan).run_local(requests)["error"].isna().all()
    built = [e for e in engine_module._ENGINES.values() if e.engine_id.endswith(f":{os.getpid()}")]
    assert [e.starts for e in built] == [1]
    assert built[0].gpus == ()  # no GPU was assigned outside a Spark task


def test_equal_prompts_share_one_engine_call_when_dedup_is_on(all_tasks_plan):
    plan = dataclasses.replace(all_tasks_plan, tasks=all_tasks_plan.tasks[:2])
    frame = sentences([TEXTS[0], TEXTS[1], TEXTS[0]])
    requests = PromptStep(plan).run_local(frame)
    assert requests["prompt_key"].nunique() == 4  # 3 sentences x 2 tasks, one sentence repeated
    off = PromptStep(dataclasses.replace(plan, dedup=False)).run_local(frame)
    assert off["prompt_key"].nunique() == 6
    # the repeated sentence's prompts sit next to each other and share the sentence key
    assert requests["sentence_key"][0] == requests["sentence_key"][1] == requests["sentence_key"][4]


def test_steps_ship_to_executors_by_reference(all_tasks_plan):
    """Spark ships each step with cloudpickle. A step must be an instance of a module-level class
    (pickled by reference), never a closure: a closure carries copies of the module globals it
    names, so a module-level sentinel compared with `is` would differ on the executor."""
    import cloudpickle

    for step in (PromptStep(all_tasks_plan), GenerateStep(all_tasks_plan), ParseStep(all_tasks_plan)):
        shipped = cloudpickle.loads(cloudpickle.dumps(step))
        assert type(shipped) is type(step), f"{step.name} step does not ship by reference"
        assert shipped.plan == step.plan


def test_an_empty_partition_builds_no_engine(all_tasks_plan, monkeypatch):
    """A Spark task with no rows (more partitions than prompts) must not pay for an engine: in a
    fresh worker that is the model load."""
    from giellm_batch.steps import generate

    monkeypatch.setattr(generate, "_GenerationWorker", lambda plan: pytest.fail("engine built for no prompt"))
    empty = pd.DataFrame({"prompt_key": [], "task": [], "prompt": []})
    assert list(GenerateStep(all_tasks_plan)(iter([]))) == []
    assert list(GenerateStep(all_tasks_plan)(iter([empty, empty]))) == []
