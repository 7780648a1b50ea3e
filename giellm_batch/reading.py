"""Reading articles into one canonical shape, with per-record rejection instead of failure.

Every input record becomes one row of `schemas.RAW_ARTICLE`. A record that cannot be used
(undecodable bytes, bad JSON, missing id, empty body, duplicate id) keeps its row with a
`reject_reason`; the job routes those rows to the quarantine table, so nothing is lost silently.

Livedoor directories and JSONL files are read as raw bytes (Spark's binaryFile source) and
decoded strictly here, so a bad byte is caught and reported with its file and line instead of
being replaced with U+FFFD on the way in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.config import InputSettings

RawRow = dict[str, Any]
_PAYLOAD_CHARS = 2000  # how much of a rejected record the quarantine keeps


def _row(record_key: str, source: str, **values: Any) -> RawRow:
    row: RawRow = {name: None for name in schemas.RAW_ARTICLE.fieldNames()}
    row.update(record_key=record_key, source=source, **values)
    return row


def _reject(record_key: str, source: str, reason: str, payload: str, **values: Any) -> RawRow:
    return _row(record_key, source, reject_reason=reason, payload=payload[:_PAYLOAD_CHARS], **values)


def _strict_decode(content: bytes) -> tuple[str | None, str | None]:
    try:
        return content.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        return None, f"undecodable bytes: not UTF-8 at byte {exc.start} (line {line})"


def decode_livedoor_file(path: str, content: bytes) -> RawRow:
    """One Livedoor article file: line 1 URL, line 2 date, line 3 title, lines 4+ body."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    article_id = name[:-4] if name.endswith(".txt") else name
    category = path.rstrip("/").rsplit("/", 2)[-2] if path.count("/") >= 2 else None
    text, error = _strict_decode(content)
    if text is None:
        return _reject(path, path, error or "undecodable", content[:_PAYLOAD_CHARS].decode("utf-8", "replace"),
                       article_id=article_id, category=category)
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) < 4:
        return _reject(path, path, f"not a Livedoor article: {len(lines)} lines, need URL, date, title, body",
                       text, article_id=article_id, category=category)
    return _row(path, path, article_id=article_id, url=lines[0].strip(), published_at=lines[1].strip(),
                title=lines[2].strip(), body="\n".join(lines[3:]).strip(), category=category)


def decode_jsonl_file(path: str, content: bytes, columns: dict[str, str]) -> Iterator[RawRow]:
    """One JSON object per line; a bad line is rejected with its line number."""
    for number, raw_line in enumerate(content.split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        key = f"{path}:{number}"
        text, error = _strict_decode(raw_line)
        if text is None:
            yield _reject(key, key, (error or "undecodable").replace("(line 1)", f"(line {number})"),
                          raw_line.decode("utf-8", "replace"))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield _reject(key, key, f"invalid JSON on line {number}: {exc.msg}", text)
            continue
        if not isinstance(record, dict):
            yield _reject(key, key, f"line {number} is not a JSON object", text)
            continue
        yield _row(key, key, **mapped_fields(record, columns))


def mapped_fields(record: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """Canonical field -> value, using the configured input column names."""
    out: dict[str, Any] = {}
    for canonical, column in columns.items():
        value = record.get(column)
        out[canonical] = None if value is None else str(value)
    return out


def validate_row(row: RawRow) -> RawRow:
    """Reject rows that decoded but cannot be processed; fill content_hash for the rest."""
    if row.get("reject_reason"):
        return row
    body = row.get("body")
    payload = json.dumps({k: row.get(k) for k in ("article_id", "title", "body")}, ensure_ascii=False)
    if not (row.get("article_id") or "").strip():
        row.update(reject_reason="missing article id", payload=payload[:_PAYLOAD_CHARS])
    elif body is None or not body.strip():
        row.update(reject_reason="empty or missing body", payload=payload[:_PAYLOAD_CHARS])
    elif "\ufffd" in body or "\ufffd" in (row.get("title") or ""):
        row.update(reject_reason="undecodable bytes: U+FFFD replacement characters in the text",
                   payload=payload[:_PAYLOAD_CHARS])
    else:
        row["article_id"] = row["article_id"].strip()
        digest = hashlib.sha256("\x1f".join(str(row.get(k) or "") for k in ("title", "body")).encode())
        row["content_hash"] = digest.hexdigest()[:16]
    return row


def _frame(rows: list[RawRow]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=schemas.RAW_ARTICLE.fieldNames())


def file_decoder(settings: InputSettings) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function: binaryFile rows (path, content) -> validated RAW_ARTICLE rows."""
    fmt = settings.format
    columns = _column_map(settings)

    def decode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows: list[RawRow] = []
            for path, content in zip(batch["path"], batch["content"], strict=True):
                if fmt == "livedoor":
                    rows.append(validate_row(decode_livedoor_file(path, bytes(content))))
                else:
                    rows.extend(validate_row(r) for r in decode_jsonl_file(path, bytes(content), columns))
            yield _frame(rows)

    return decode


def table_validator() -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function for Parquet/Delta input already in RAW_ARTICLE shape."""

    def validate(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            records = batch.to_dict("records")
            yield _frame([validate_row({str(k): (None if pd.isna(v) else v) for k, v in r.items()}) for r in records])

    return validate


def _column_map(settings: InputSettings) -> dict[str, str]:
    cols = settings.columns
    return {"article_id": cols.id, "body": cols.body, "title": cols.title, "url": cols.url,
            "published_at": cols.published_at, "category": cols.category}


def read_articles(spark: Any, settings: InputSettings) -> Any:
    """Spark DataFrame of RAW_ARTICLE rows (accepted and rejected) for the configured input."""
    from pyspark.sql import functions as F

    if settings.format in ("livedoor", "jsonl"):
        glob = "*.txt" if settings.format == "livedoor" else "*.json*"
        files = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
                 .option("pathGlobFilter", glob).load(settings.path).select("path", "content"))
        if settings.format == "livedoor":  # each category folder carries a LICENSE.txt, not an article
            files = files.filter(~F.col("path").endswith("/LICENSE.txt"))
        return files.mapInPandas(file_decoder(settings), schema=schemas.RAW_ARTICLE)

    reader = spark.read.format("delta") if settings.format == "delta" else spark.read
    table = reader.load(settings.path) if settings.format == "delta" else reader.parquet(settings.path)
    selected = []
    for canonical, column in _column_map(settings).items():
        value = F.col(f"`{column}`").cast("string") if column in table.columns else F.lit(None).cast("string")
        selected.append(value.alias(canonical))
    key = F.concat_ws(":", F.lit(settings.path), F.coalesce(F.col("article_id"), F.sha2(F.to_json(F.struct("*")), 256)))
    shaped = table.select(*selected).withColumn("record_key", key).withColumn("source", F.lit(settings.path))
    for name in ("content_hash", "reject_reason", "payload"):
        shaped = shaped.withColumn(name, F.lit(None).cast("string"))
    return shaped.select(*schemas.RAW_ARTICLE.fieldNames()).mapInPandas(table_validator(), schema=schemas.RAW_ARTICLE)
