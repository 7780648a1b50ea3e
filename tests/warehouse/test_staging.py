"""Staged step outputs are computed once, whether held in files or in the driver."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from giellm_batch.warehouse.staging import stage


def counted_step(log: Path):
    """mapInPandas function that doubles `n` and appends a line to `log` per batch it computes."""

    def run(batches):
        for batch in batches:
            with log.open("a") as out:
                out.write(f"{len(batch)}\n")
            yield batch.assign(n=batch["n"] * 2)

    return run


@pytest.mark.parametrize("in_driver", [True, False])
def test_a_staged_step_runs_once_however_often_it_is_used(spark, tmp_path, in_driver):
    log = tmp_path / "computed.log"
    source = spark.createDataFrame(pd.DataFrame({"k": ["あ", "い", "う", "え"], "n": [1, 2, 3, 4]})).repartition(2)
    staged = stage(source.mapInPandas(counted_step(log), schema="k string, n long"), str(tmp_path / "staging"),
                   "step", in_driver)
    computed = log.read_text()
    assert sorted(r["n"] for r in staged.collect()) == [2, 4, 6, 8]
    assert staged.count() == 4 and staged.filter("n > 4").count() == 2
    assert log.read_text() == computed  # the uses above read the staged rows, not the step again
    assert sum(int(n) for n in computed.split()) == 4  # every row computed exactly once
    assert (tmp_path / "staging" / "step").exists() is not in_driver
