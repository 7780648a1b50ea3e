"""The segmentation step: articles -> sentences with offsets, or the reason an article has none."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.config.settings import SegmentationSettings
from giellm_batch.isolation.failures import FATAL, failure
from giellm_batch.isolation.faults import poison_check
from giellm_batch.isolation.process import IsolationLimits, Poisoned, map_isolated
from giellm_batch.steps.base import BatchStep
from giellm_batch.text.segmentation import PromptBudget, Segmenter, TooLongForModel, worker_segmenter

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


# This worker's prompt-length counters, one per budget (a tokenizer load is seconds).
_COUNTERS: dict[PromptBudget, Callable[[str], int]] = {}


def _worker_overflow(budget: PromptBudget) -> Callable[[str], int]:
    return _COUNTERS.get(budget) or _COUNTERS.setdefault(budget, budget.counter())



def segment_article(segmenter: Segmenter, overflow: Callable[[str], int] | None, article_id: Any,
                    body: Any, max_article_chars: int = 0) -> list[tuple[Any, ...]]:
    """SEGMENTED rows of one article: its sentences, or one row (sentence_idx -1) with the reason it
    has none that fit the model. Never raises for the article's sake: an unexpected exception
    becomes the reject reason ("segmentation: ValueError: ..."), so the article is quarantined
    whole (never half-segmented) and the run goes on."""
    try:
        poison_check("segment", body)
        if max_article_chars and isinstance(body, str) and len(body) > max_article_chars:
            return [_reject_row(article_id, f"body has {len(body):,} characters; the limit is {max_article_chars:,} "
                                            "(segmentation.max_article_chars)")]
        return [(article_id, s.index, s.text, s.char_start, s.char_end, s.n_morphemes, None)
                for s in segmenter.split(body, overflow)]
    except FATAL:
        raise
    except TooLongForModel as exc:
        reason = str(exc)
    except Exception as exc:
        reason = failure("segmentation", exc)
    return [_reject_row(article_id, reason)]


def _reject_row(article_id: Any, reason: str) -> tuple[Any, ...]:
    return (article_id, -1, None, None, None, None, reason)


class SegmentStep(BatchStep):
    """Articles (article_id, body) -> SEGMENTED rows (`segment_article`): an article's sentences,
    or only its reject row; each batch's articles are segmented in an isolated child process, so
    one that crashes MeCab, hangs or exhausts memory is quarantined alone."""

    name = "segment"
    needs = ("article_id", "body")

    def __init__(self, settings: SegmentationSettings, budget: PromptBudget | None = None,
                 limits: IsolationLimits | None = None) -> None:
        self.settings = settings
        self.budget = budget
        self.limits = limits or IsolationLimits()

    @property
    def yields(self) -> StructType:
        return schemas.SEGMENTED

    def batches(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        seg = self.settings
        segmenter = worker_segmenter(seg.max_sentence_chars, seg.min_sentence_chars, seg.mecab_max_chars)
        overflow = _worker_overflow(self.budget) if self.budget is not None else None

        def one(article: tuple[Any, Any]) -> list[tuple[Any, ...]]:
            return segment_article(segmenter, overflow, article[0], article[1], seg.max_article_chars)

        for batch in batches:
            articles = list(zip(batch["article_id"], batch["body"], strict=True))
            rows: list[tuple[Any, ...]] = []
            for article, out in zip(articles, map_isolated(articles, one, self.limits), strict=True):
                rows.extend([_reject_row(article[0], out.reason("segmentation"))] if isinstance(out, Poisoned)
                            else out)
            yield pd.DataFrame(rows, columns=self.yields.fieldNames())
