"""The parse step: engine outputs joined back to their sentences -> typed, grounded extraction rows.

Runs on CPU executors after the generation step. Parsing is total (never raises); grounding finds
each span in its own sentence and turns it into character offsets in the article, so one cached
engine output reused for another article (deduplication) gets that article's offsets. Whatever
else goes wrong on one row becomes that row's `error` (parse_status "error"), never a failed run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.giellm.parsing import parse_output
from giellm_batch.isolation.failures import FATAL, failure, storable_text
from giellm_batch.isolation.faults import poison_check
from giellm_batch.isolation.process import Poisoned, map_isolated
from giellm_batch.steps.base import BatchStep
from giellm_batch.steps.plan import ExtractionPlan

if TYPE_CHECKING:
    from pyspark.sql.types import StructType
from giellm_batch.text.offsets import ground_items, items_to_json

PARSE_INPUT_COLUMNS = ("article_id", "sentence_idx", "task", "prompt", "text", "char_start", "raw_output",
                       "finish_reason", "n_output_tokens", "error")


class ParseStep(BatchStep):
    """Requests joined to their answers and sentences -> EXTRACTION_STAGE rows (typed, grounded)."""

    name = "parse"
    needs = PARSE_INPUT_COLUMNS

    def __init__(self, plan: ExtractionPlan) -> None:
        self.plan = plan

    @property
    def yields(self) -> StructType:
        return schemas.EXTRACTION_STAGE

    def batches(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        parser = _Parser(self.plan)
        for batch in batches:
            records = list(batch[list(PARSE_INPUT_COLUMNS)].itertuples(index=False))
            # Each batch is parsed in an isolated child process (isolation.process).
            rows = [_poisoned_row(r, out) if isinstance(out, Poisoned) else out
                    for r, out in zip(records, map_isolated(records, parser.row, self.plan.isolation), strict=True)]
            yield pd.DataFrame(rows, columns=self.yields.fieldNames())


class _Parser:
    def __init__(self, plan: ExtractionPlan) -> None:
        self.plan = plan
        self.segmenter: Any = None
        self._morphemes: tuple[str, list[Any]] = ("", [])  # last sentence's: rows arrive sentence by sentence

    def morphemes(self, sentence: str) -> list[Any]:
        if self._morphemes[0] != sentence:
            if self.segmenter is None:
                from giellm_batch.text.segmentation import worker_segmenter

                self.segmenter = worker_segmenter()  # only its morphemes are used
            self._morphemes = (sentence, self.segmenter.morphemes(sentence))
        return self._morphemes[1]

    def row(self, r: Any) -> dict[str, Any]:
        """One EXTRACTION_STAGE row. Never raises for the row's sake: an unexpected exception becomes
        an `error` row naming the stage ("grounding: IndexError: ..."), and the run goes on."""
        stage = "parse step"
        try:
            poison_check("parse", r.text)
            error = r.error if isinstance(r.error, str) else None
            if error is not None:  # the engine (or the prompt step) already failed on this request;
                # its task may be unknown (a prompt that failed before its tasks were known)
                flag = "prompt_error" if error.startswith("prompt: ") else "engine_error"
                return _error_row(_base(r, r.task if isinstance(r.task, str) else None, error), error, flag)
            task = self.plan.task(r.task)
            base = _base(r, task.name, error)
            stage = "parse"
            parsed = parse_output(r.raw_output, task, self.plan.profiles[task.profile], sentence=r.text,
                                  truncated=r.finish_reason == "length")
            stage = "grounding"
            morphemes = self.morphemes(r.text) if parsed.items else None
            items = ground_items(parsed, task, r.text, int(r.char_start), morphemes,
                                 snap_spans=self.plan.decoding != "grounded")
            stage = "row building"
            return {**base, "parse_status": parsed.status, "text_label": parsed.text_label,
                    "text_label_known": parsed.text_label_known, "flags": list(parsed.flags),
                    "n_items": len(items), "items_json": items_to_json(items)}
        except FATAL:
            raise
        except Exception as exc:
            reason = failure(stage, exc)
            base = _base(r, r.task if isinstance(r.task, str) else None, reason, keep_output=True)
            return _error_row(base, reason, f"{stage.replace(' ', '_')}_error")


def _poisoned_row(r: Any, poisoned: Poisoned[Any]) -> dict[str, Any]:
    reason = poisoned.reason("parse")
    return _error_row(_base(r, r.task if isinstance(r.task, str) else None, reason, keep_output=True), reason,
                      f"{poisoned.kind}_error")


def _base(r: Any, task: str | None, error: str | None, keep_output: bool = False) -> dict[str, Any]:
    """The columns every row has, taken defensively: this also builds the row for a failed row."""
    answered = error is None or keep_output
    return {"article_id": _text(r.article_id), "sentence_idx": _int(r.sentence_idx), "task": task,
            "prompt": _text(r.prompt), "raw_output": _text(r.raw_output) if answered else None,
            "finish_reason": _text(r.finish_reason) if answered else None,
            "n_output_tokens": _int(r.n_output_tokens) or 0, "error": error}


def _error_row(base: dict[str, Any], error: str, flag: str) -> dict[str, Any]:
    return {**base, "error": error, "parse_status": "error", "text_label": None, "text_label_known": None,
            "flags": [flag], "n_items": 0, "items_json": "[]"}


def _text(value: Any) -> str | None:
    return storable_text(value) if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    try:
        return None if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError, OverflowError):
        return None
