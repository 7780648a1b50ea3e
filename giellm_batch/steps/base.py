"""What every batch step is: a function over Arrow batches with a declared contract.

A step names the columns it reads (`needs`, plus `optional` ones it uses when present) and the
schema it yields (`yields`). On the driver, `apply` checks the contract against the DataFrame's
columns before Spark plans anything, and fails with a message naming the step, the missing
columns and the columns it was given; on an executor, `__call__` runs over the partition's pandas
batches (`mapInPandas`), and the same check guards direct in-memory callers (unit tests).

Rule: a step never raises for one record's sake. A record it cannot handle becomes a row carrying
the reason (an `error` or `reject_reason` column); only fatal errors (isolation.failures.FATAL)
fail the Spark task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

import pandas as pd

if TYPE_CHECKING:
    from pyspark.resource import ResourceProfile
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType


class MissingColumns(KeyError):
    """A step was given a frame without a column it needs (a wiring mistake, never a data one)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


def require_columns(columns: list[str] | pd.Index, needed: tuple[str, ...], step: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise MissingColumns(f"step '{step}' needs columns {missing}; its input has {list(columns)}")


class BatchStep(ABC):
    """One step of the pipeline, run by Spark as a `mapInPandas` function.

    Subclasses set `name`, `needs` (and `optional`), implement `yields` and `batches`. Instances
    hold only plain, picklable data (they are shipped to executors); heavy objects (engines,
    taggers) are built on the executor, once per worker process."""

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]]
    optional: ClassVar[tuple[str, ...]] = ()

    @property
    @abstractmethod
    def yields(self) -> StructType:
        """The schema of the rows this step emits."""

    @abstractmethod
    def batches(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Executor side: input batches (the `needs` columns, checked) -> output batches."""

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return self.batches(self._checked(batches))

    def _checked(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            require_columns(batch.columns, self.needs, self.name)
            yield batch

    def columns_of(self, columns: list[str]) -> list[str]:
        """The columns this step reads out of `columns`, after checking the contract."""
        require_columns(columns, self.needs, self.name)
        return [*self.needs, *(c for c in self.optional if c in columns)]

    def apply(self, frame: DataFrame, profile: ResourceProfile | None = None) -> DataFrame:
        """Driver side: this step over `frame` as a Spark stage (lazy, like any transformation)."""
        return frame.select(*self.columns_of(frame.columns)).mapInPandas(self, schema=self.yields, profile=profile)

    def run_local(self, frame: pd.DataFrame) -> pd.DataFrame:
        """This step over one in-memory batch (unit tests, fuzzing): the same code Spark runs."""
        out = list(self(iter([frame[self.columns_of(list(frame.columns))]])))
        return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=self.yields.fieldNames())
