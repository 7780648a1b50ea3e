"""The parse step and prompt building never fail a run: a bad row becomes an `error` row."""

from __future__ import annotations

import json

import pandas as pd

from bench.fuzz_targets import plan
from giellm_batch.steps import parse as parse_module
from giellm_batch.steps.chain import extract_frame
from giellm_batch.steps.parse import PARSE_INPUT_COLUMNS, ParseStep
from giellm_batch.steps.prompt import prompt_requests


def parse(rows: list[dict]) -> pd.DataFrame:
    batch = pd.DataFrame(rows, columns=list(PARSE_INPUT_COLUMNS))
    return ParseStep(plan()).run_local(batch)


def request(task: str = "scnm_ner", **values) -> dict:
    return {"article_id": "a1", "sentence_idx": 0, "task": task, "prompt": "p", "text": "山田太郎は東京に住む。",
            "char_start": 10, "raw_output": "‹社会>固有表現抽出:人名;山田太郎", "finish_reason": "stop",
            "n_output_tokens": 5, "error": None, **values}


def test_an_exception_in_grounding_becomes_an_error_row_naming_the_stage(monkeypatch):
    def broken(result, *args, **kwargs):
        if result.items:
            raise IndexError("offset out of range")
        return []

    monkeypatch.setattr(parse_module, "ground_items", broken)
    out = parse([request(), request(raw_output="‹社会>固有表現抽出")])  # no items: grounding has nothing to do
    failed, fine = out.iloc[0], out.iloc[1]
    assert (failed["parse_status"], failed["error"]) == ("error", "grounding: IndexError: offset out of range")
    assert list(failed["flags"]) == ["grounding_error"] and failed["raw_output"] == "‹社会>固有表現抽出:人名;山田太郎"
    assert (failed["n_items"], json.loads(failed["items_json"])) == (0, [])
    assert fine["parse_status"] == "ok" and fine["error"] is None


def test_a_row_the_step_cannot_read_becomes_an_error_row():
    out = parse([request(task="no_such_task"), request(char_start="x")])
    assert out["parse_status"].tolist() == ["error", "error"]
    assert out["error"][0].startswith("parse step: KeyError:") and out["task"][0] == "no_such_task"
    assert out["error"][1].startswith("grounding: ValueError:")


def test_a_prompt_that_cannot_be_built_is_an_error_row_without_an_engine_call(spark):
    giellm = [t for t in plan().tasks if t.profile == "giellm"]
    rows = prompt_requests(plan(), "a1", 3, None)  # a null sentence: GIELLM prompts cannot be built
    failed = [r for r in rows if r[6] is not None]
    assert [r[2] for r in failed] == [t.name for t in giellm]
    assert all(r[5] is None and r[6].startswith("prompt: TypeError:") and r[1] == 3 for r in failed)
    assert len({r[3] for r in failed}) == len(failed)  # keys of their own: never merged by dedup

    import dataclasses
    only_giellm = dataclasses.replace(plan(), tasks=tuple(giellm))
    sentences = pd.DataFrame({"article_id": ["a1"], "sentence_idx": [0], "text": [None], "char_start": [0]})
    out = extract_frame(only_giellm, spark, sentences)  # no engine needed: no prompt reaches one
    assert out["parse_status"].tolist() == ["error"] * len(giellm)
    assert all(list(f) == ["prompt_error"] for f in out["flags"])
