"""What "no single record can fail a run" means, as checks over one input each.

Shared by the property tests (tests/input/test_reading.py, test_segmentation.py, test_parsing.py) and
the coverage-guided fuzzer (bench/fuzz.py). Each target feeds one input through the same
per-record functions the Spark steps call and returns how its records ended, (accepted,
rejected). An exception escaping a target is a bug (a record that would fail its Spark task, and
after retries the run); a broken promise about the outcome raises `Violation`.

- livedoor: raw bytes as one Livedoor file -> exactly one row, accepted xor rejected;
- jsonl: raw bytes as one JSONL file -> one row per non-blank line in order (one row for the
  file when there is none), each accepted xor rejected;
- article: any text as an article body -> segmentation -> prompts -> a model output -> parse ->
  grounding: the article is rejected with a reason, or accepted with sentences that are exact
  slices of the body and one extraction row per sentence x task;
- long_article: any text repeated to ~250,000 characters as an article body, segmented with a
  small MeCab window (1,000 characters): MeCab crashes on one call of ~190,000+ characters of
  some text, so this checks the windows keep every call bounded and every offset exact;
- output: any model output for a sentence -> parse -> grounding, for every task: one row, with
  every grounded span inside the article and equal to the text the model wrote.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from giellm_batch.engine.vllm_engine import EngineSpec
from giellm_batch.giellm.prompts import render_output
from giellm_batch.giellm.tasks import load_task_registry
from giellm_batch.input.decoding import decode_file, decode_livedoor_file, validate_row
from giellm_batch.schemas import RAW_ARTICLE
from giellm_batch.steps.parse import PARSE_INPUT_COLUMNS, ParseStep
from giellm_batch.steps.plan import ExtractionPlan
from giellm_batch.steps.prompt import prompt_requests
from giellm_batch.steps.segment import segment_article
from giellm_batch.text.segmentation import Segmenter

REPO = Path(__file__).resolve().parents[1]
COLUMNS = {"article_id": "id", "body": "body", "title": "title", "url": "url",
           "published_at": "published_at", "category": "category"}
LIVEDOOR_PATH = "file:/in/topic-news/topic-news-1.txt"
JSONL_PATH = "file:/in/drop.jsonl"
STATUSES = {"ok", "partial", "invalid", "error"}
_QUOTES = " 　「」『』"  # what grounding strips from a span before giving up (grounding.locate)
# Small limits, so that short fuzz inputs reach the length splits and the too-long-for-the-model path.
MAX_SENTENCE_CHARS, MIN_SENTENCE_CHARS, PROMPT_LIMIT = 80, 2, 50
Outcome = tuple[int, int]  # (accepted, rejected)


class Violation(AssertionError):
    """A record whose outcome breaks the promise (lost, doubled, half-accepted, unstorable...)."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise Violation(message)


@cache
def plan() -> ExtractionPlan:
    """Every task of conf/tasks.yaml; the engine is never called here."""
    registry = load_task_registry(REPO / "conf" / "tasks.yaml")
    engine = EngineSpec(model="unused", max_model_len=1024, dtype="auto", kv_cache_memory_bytes=0,
                        gpu_memory_utilization=0.9, tensor_parallel_size=1, max_num_seqs=1,
                        enable_prefix_caching=False, enforce_eager=True, seed=0, quantization="")
    return ExtractionPlan(engine=engine, tasks=tuple(registry.tasks.values()), profiles=dict(registry.profiles),
                          max_new_tokens=128, decoding="free", max_items=3, max_span_chars=8, batch_size=64,
                          identity="fuzz")


@cache
def segmenter() -> Segmenter:
    return Segmenter(MAX_SENTENCE_CHARS, MIN_SENTENCE_CHARS)


def overflow(text: str) -> int:
    """Stands in for the tokenizer budget: a prompt "needs" one token per character."""
    return len(text) if len(text) > PROMPT_LIMIT else 0


# --- reading ---------------------------------------------------------------------------------

def check_raw_row(row: dict[str, Any]) -> Outcome:
    expect(set(row) == set(RAW_ARTICLE.fieldNames()), f"columns {sorted(row)}")
    for name, value in row.items():
        expect(value is None or isinstance(value, str), f"{name} is {type(value).__name__}, not text")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise Violation(f"{name} cannot be stored (not UTF-8): {exc}") from exc
    if row["reject_reason"] is not None:
        expect(row["reject_reason"].strip() and row["content_hash"] is None, f"bad rejection {row}")
        return 0, 1
    expect(row["content_hash"], "accepted without content_hash")
    expect(row["article_id"] and row["article_id"] == row["article_id"].strip(), "accepted without a clean id")
    expect(row["body"] and row["body"].strip(), "accepted without a body")
    return 1, 0


def check_livedoor(data: bytes) -> Outcome:
    rows = decode_file("livedoor", LIVEDOOR_PATH, data, COLUMNS)
    expect(len(rows) == 1 and rows[0]["record_key"] == LIVEDOOR_PATH, f"{len(rows)} rows for one file")
    expect(validate_row(decode_livedoor_file(LIVEDOOR_PATH, data)) == rows[0], "decode_file differs from its parts")
    return check_raw_row(rows[0])


def check_jsonl(data: bytes) -> Outcome:
    rows = decode_file("jsonl", JSONL_PATH, data, COLUMNS)
    lines = [n for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
    expected = [f"{JSONL_PATH}:{n}" for n in lines] or [JSONL_PATH]
    expect([r["record_key"] for r in rows] == expected, "records lost, doubled or out of order")
    accepted = rejected = 0
    for row in rows:
        a, r = check_raw_row(row)
        accepted, rejected = accepted + a, rejected + r
    return accepted, rejected


# --- segmentation -> prompts -> parse -> grounding --------------------------------------------

def check_article(body: str, output: str) -> Outcome:
    """`output` is what the "model" answers to every other request; the rest get a well-formed
    answer built from pieces of their sentence, so grounding and snapping run too."""
    rows = segment_article(segmenter(), overflow, "a1", body)
    if any(r[6] is not None for r in rows):
        expect(len(rows) == 1 and rows[0][1] == -1 and rows[0][6].strip(), "a rejected article kept sentences")
        return 0, 1
    if not rows:  # the job quarantines it ("no sentence with text after segmentation")
        return 0, 1
    check_sentences(body, rows)
    requests = [req for r in rows for req in prompt_requests(plan(), "a1", r[1], r[2])]
    expect(len(requests) == len(rows) * len(plan().tasks), "not one request per sentence x task")
    by_sentence = {r[1]: r for r in rows}
    frame = []
    for i, (_article, idx, task, _key, _skey, prompt, error) in enumerate(requests):
        sentence = by_sentence[idx]
        expect(error is None and isinstance(prompt, str) and prompt.startswith(sentence[2]), f"prompt: {error}")
        raw = output if i % 2 == 0 else rendered_output(task, sentence[2], output)
        frame.append(_parse_input(task, prompt, sentence[2], sentence[3], raw))
    extracted = _parse(frame)
    expect(len(extracted) == len(requests), "not one extraction row per request")
    for (_i, row), request in zip(extracted.iterrows(), frame, strict=True):
        check_extraction(row, body, request["char_start"], len(request["text"]))
    return 1, 0


LONG_ARTICLE_CHARS, LONG_WINDOW = 250_000, 1_000


@cache
def windowed_segmenter() -> Segmenter:
    return Segmenter(MAX_SENTENCE_CHARS, MIN_SENTENCE_CHARS, mecab_max_chars=LONG_WINDOW)


def check_long_article(text: str) -> Outcome:
    """`text` repeated to LONG_ARTICLE_CHARS: segmented without a crash, sentences exact slices."""
    body = (text or "長") * (LONG_ARTICLE_CHARS // max(len(text), 1) + 1)
    rows = segment_article(windowed_segmenter(), overflow, "a1", body[:LONG_ARTICLE_CHARS])
    if any(r[6] is not None for r in rows):
        expect(len(rows) == 1 and rows[0][1] == -1 and rows[0][6].strip(), "a rejected article kept sentences")
        return 0, 1
    check_sentences(body[:LONG_ARTICLE_CHARS], rows)
    return (1, 0) if rows else (0, 1)


def check_sentences(body: str, rows: list[tuple[Any, ...]]) -> None:
    end = 0
    for n, (_article, idx, text, start, stop, n_morphemes, _reason) in enumerate(rows):
        expect(idx == n, "sentence indexes are not 0..n-1")
        expect(end <= start < stop <= len(body) and body[start:stop] == text, "a sentence is not a slice of the body")
        expect(any(ch.isalnum() for ch in text), f"a sentence without text: {text!r}")
        expect(overflow(text) == 0, "a sentence does not fit the model")
        expect(n_morphemes > 0, "a sentence without morphemes")
        end = stop


def check_output(sentence: str, raw: str, start: int = 7) -> Outcome:
    """One model output for one sentence (placed at `start` in an article), parsed for every task."""
    body = "x" * start + sentence
    frame = [_parse_input(t.name, "prompt", sentence, start, raw) for t in plan().tasks]
    extracted = _parse(frame)
    expect(len(extracted) == len(frame), "not one extraction row per request")
    for _i, row in extracted.iterrows():
        check_extraction(row, body, start, len(sentence))
    return len(frame), 0


def rendered_output(task_name: str, sentence: str, seed: str) -> str:
    """A well-formed answer whose spans are pieces of the sentence picked by `seed`'s characters."""
    task = plan().task(task_name)
    picks = [ord(c) for c in seed[:12]] or [0]
    items = []
    for k in range(0, len(picks), len(task.fields)):
        fields = []
        for j, name in enumerate(task.fields):
            p = picks[(k + j) % len(picks)]
            if name == task.label_field:
                fields.append(task.item_labels[p % len(task.item_labels)] if task.item_labels else "X")
            else:
                a = p % max(len(sentence), 1)
                fields.append(sentence[a:a + 1 + p % 7] or "x")
        items.append(fields)
    label = task.text_labels[picks[0] % len(task.text_labels)] if task.text_labels else "Y"
    return render_output(task, plan().profiles[task.profile], label, items)


def check_extraction(row: Any, body: str, sentence_start: int, sentence_len: int) -> None:
    expect(row["parse_status"] in STATUSES, f"status {row['parse_status']}")
    expect((row["parse_status"] == "error") == isinstance(row["error"], str), "error text without error status")
    items = json.loads(row["items_json"])
    expect(row["n_items"] == len(items), "n_items differs from the items")
    for item in items:
        for span in item["spans"]:
            check_span(span, body, sentence_start, sentence_start + sentence_len)


def check_span(span: dict[str, Any], body: str, lo: int, hi: int) -> None:
    start, end, text = span["char_start"], span["char_end"], span["text"]
    if not span["grounded"]:
        expect(start is None and end is None, "offsets on an ungrounded span")
        return
    expect(lo <= start < end <= hi, f"span {text!r} at {start}-{end} is outside its sentence {lo}-{hi}")
    found = body[start:end]
    if span["snapped"]:
        expect(text.strip(_QUOTES) in found, f"snapped span {found!r} does not cover {text!r}")
    else:
        expect(found in (text, text.strip(_QUOTES)), f"span {text!r} grounded on {found!r}")


def _parse_input(task: str, prompt: str, text: str, start: int, raw: str) -> dict[str, Any]:
    return {"article_id": "a1", "sentence_idx": 0, "task": task, "prompt": prompt, "text": text,
            "char_start": start, "raw_output": raw, "finish_reason": "stop", "n_output_tokens": 1, "error": None}


def _parse(frame: list[dict[str, Any]]) -> pd.DataFrame:
    return ParseStep(plan()).run_local(pd.DataFrame(frame, columns=list(PARSE_INPUT_COLUMNS)))
