"""The parse step: engine outputs joined back to their sentences -> typed, grounded extraction rows.

Runs on CPU executors after the generation step. Parsing is total (never raises); grounding finds
each span in its own sentence and turns it into character offsets in the article, so one cached
engine output reused for another article (deduplication) gets that article's offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.grounding import ground_items, items_to_json
from giellm_batch.inference import ExtractionPlan, PandasStep, require_columns
from giellm_batch.parsing import parse_output

PARSE_INPUT_COLUMNS = ("article_id", "sentence_idx", "task", "prompt", "text", "char_start", "raw_output",
                       "finish_reason", "n_output_tokens", "error")


def parse_step(plan: ExtractionPlan) -> PandasStep:
    """mapInPandas function: (request + generation + sentence) rows -> EXTRACTION_STAGE rows."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        parser = _Parser(plan)
        for batch in batches:
            require_columns(batch, PARSE_INPUT_COLUMNS, "parse step")
            rows = [parser.row(r) for r in batch[list(PARSE_INPUT_COLUMNS)].itertuples(index=False)]
            yield pd.DataFrame(rows, columns=schemas.EXTRACTION_STAGE.fieldNames())

    return run


class _Parser:
    def __init__(self, plan: ExtractionPlan) -> None:
        self.plan = plan
        self.segmenter: Any = None
        self._morphemes: tuple[str, list[Any]] = ("", [])  # last sentence's: rows arrive sentence by sentence

    def morphemes(self, sentence: str) -> list[Any]:
        if self._morphemes[0] != sentence:
            if self.segmenter is None:
                from giellm_batch.segmentation import Segmenter

                self.segmenter = Segmenter()
            self._morphemes = (sentence, self.segmenter.morphemes(sentence))
        return self._morphemes[1]

    def row(self, r: Any) -> dict[str, Any]:
        task = self.plan.task(r.task)
        error = r.error if isinstance(r.error, str) else None
        n_tokens = 0 if pd.isna(r.n_output_tokens) else int(r.n_output_tokens)
        base = {"article_id": r.article_id, "sentence_idx": int(r.sentence_idx), "task": task.name,
                "prompt": r.prompt, "raw_output": r.raw_output if error is None else None,
                "finish_reason": r.finish_reason if error is None else None,
                "n_output_tokens": n_tokens, "error": error}
        if error is not None:
            return {**base, "parse_status": "error", "text_label": None, "text_label_known": None,
                    "flags": ["engine_error"], "n_items": 0, "items_json": "[]"}
        parsed = parse_output(r.raw_output, task, self.plan.profiles[task.profile], sentence=r.text,
                              truncated=r.finish_reason == "length")
        morphemes = self.morphemes(r.text) if parsed.items else None
        items = ground_items(parsed, task, r.text, int(r.char_start), morphemes)
        return {**base, "parse_status": parsed.status, "text_label": parsed.text_label,
                "text_label_known": parsed.text_label_known, "flags": list(parsed.flags),
                "n_items": len(items), "items_json": items_to_json(items)}
