"""Render docs/tables.md from schemas.TABLES, so the schema reference cannot drift from the code."""

from __future__ import annotations

from giellm_batch.schemas import PROVENANCE_COLUMNS, TABLES

HEADER = """# Table reference

Generated from `giellm_batch/schemas.py` by `giellm-batch schema-doc > docs/tables.md` (a test
checks it is current). Every table is a Delta table at `<warehouse>/<name>`, with Change Data Feed
enabled (`spark.read.option("readChangeFeed", "true").option("startingVersion", N)`).

Provenance columns on every result row: {provenance}. `pipeline_hash` combines
model id + revision, `task_hash` (prompt profiles and the task definitions) and `decoding_hash`
(decoding and segmentation settings); results of different pipelines live side by side.
`published_date` is the article's calendar day as written in its source (`published_at`).

`span_key`, `head_key`, `tail_key` (and `key` inside event arguments) are the normalised form of
the span next to them (Unicode NFKC, width, case and whitespace folded; `text/entity_keys.py`): group
and join by them so that ｿﾌﾄﾊﾞﾝｸ and ソフトバンク count as one entity. Tables made by an earlier
version gain these columns on the next run (rows written before hold NULL there).
"""


def render() -> str:
    parts = [HEADER.format(provenance=", ".join(f"`{c}`" for c in PROVENANCE_COLUMNS))]
    for spec in TABLES.values():
        partitioning = ", ".join(spec.partition_by) or "none"
        parts.append(f"\n## `{spec.name}`\n\n{spec.description[0].upper()}{spec.description[1:]}.\n\n"
                     f"- keys: {', '.join(f'`{k}`' for k in spec.keys)}\n- partitioned by: {partitioning}\n\n"
                     "| column | type |\n|---|---|\n")
        parts.append("".join(f"| `{f.name}` | {f.dataType.simpleString()} |\n" for f in spec.schema.fields))
    return "".join(parts)


if __name__ == "__main__":
    print(render(), end="")
