"""Decoding one input record into the canonical article shape, or into a rejected row with its reason.

Every input record becomes one row of `schemas.RAW_ARTICLE`. A record that cannot be used
(undecodable bytes, bad JSON, a field of the wrong type, missing id, empty body, duplicate id, an
input file Spark listed but could not read) keeps its row with a `reject_reason`; the job routes
those rows to the quarantine table, so nothing is lost silently. No record can fail the run: an
unexpected exception while handling one record becomes that record's reason ("read: KeyError: ...").

Records are: one file per Livedoor article; one non-blank line per JSONL file (a JSONL file
without any non-blank line is one rejected record); one row of a Parquet/Delta table.

Livedoor directories and JSONL files are read as raw bytes (Spark's binaryFile source, see
input/files.py for what it skips and how those files are still accounted for) and decoded
strictly here, so a bad byte is caught and reported with its file and line instead of being
replaced with U+FFFD on the way in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.config.job_config import InputSettings
from giellm_batch.isolation.failures import FATAL, failure, storable_text
from giellm_batch.isolation.faults import poison_check

RawRow = dict[str, Any]
PAYLOAD_CHARS = 2000  # how much of a rejected record the quarantine keeps
_TEXT_FIELDS = ("article_id", "url", "title", "published_at", "category", "body")


def _row(record_key: str | None, source: str | None, **values: Any) -> RawRow:
    row: RawRow = {name: None for name in schemas.RAW_ARTICLE.fieldNames()}
    row.update(record_key=record_key, source=source, **values)
    return row


def rejected_row(record_key: str, source: str, reason: str, payload: str, **values: Any) -> RawRow:
    return _row(record_key, source, reject_reason=reason, payload=payload[:PAYLOAD_CHARS], **values)


def preview(content: bytes) -> str:
    return content[:PAYLOAD_CHARS].decode("utf-8", "replace")


def storable_row(row: RawRow) -> RawRow:
    """Every RAW_ARTICLE column as a string Arrow can store, or None.

    A rejected record may carry a wrong-typed value (JSON `"body": 123`) or a lone surrogate
    (JSON `"\\ud800"`); either would fail the whole Spark task when the row is written, so they
    are dropped or escaped here (the payload keeps the original)."""
    return {name: storable_text(value) if isinstance(value, str) else None
            for name, value in ((n, row.get(n)) for n in schemas.RAW_ARTICLE.fieldNames())}


def field_problem(fields: dict[str, Any], integer_ok: frozenset[str] = frozenset()) -> str | None:
    """Why these text fields cannot be used as they are, or None.

    Only strings (or absent/null) are text: a number, list, object or boolean where text is
    expected is rejected rather than turned into article text by str(). `integer_ok` names fields
    where an integer is acceptable (the id: integer ids are common in exports, and their decimal
    text identifies the record just as well; bools, floats, lists and objects are not ids)."""
    for name, value in fields.items():
        if value is None:
            continue
        if not isinstance(value, str):
            if name in integer_ok and isinstance(value, int) and not isinstance(value, bool):
                continue
            expected = "a string or an integer" if name in integer_ok else "a string"
            return f"field '{name}' must be {expected}, got {type(value).__name__}"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"field '{name}' is not valid Unicode: lone surrogate at character {exc.start}"
    return None


def _strict_decode(content: bytes) -> tuple[str | None, str | None]:
    try:
        return content.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        return None, f"undecodable bytes: not UTF-8 at byte {exc.start} (line {line})"


def livedoor_names(path: str) -> dict[str, str | None]:
    """article_id (file name without .txt) and category (parent folder) of a Livedoor file."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    category = path.rstrip("/").rsplit("/", 2)[-2] if path.count("/") >= 2 else None
    return {"article_id": name[:-4] if name.endswith(".txt") else name, "category": category}


def decode_livedoor_file(path: str, content: bytes) -> RawRow:
    """One Livedoor article file: line 1 URL, line 2 date, line 3 title, lines 4+ body."""
    names = livedoor_names(path)
    text, error = _strict_decode(content)
    if text is None:
        return rejected_row(path, path, error or "undecodable", preview(content), **names)
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) < 4:
        return rejected_row(path, path, f"not a Livedoor article: {len(lines)} lines, need URL, date, title, body",
                       text, **names)
    return _row(path, path, article_id=names["article_id"], url=lines[0].strip(), published_at=lines[1].strip(),
                title=lines[2].strip(), body="\n".join(lines[3:]).strip(), category=names["category"])


def decode_jsonl_file(path: str, content: bytes, columns: dict[str, str]) -> Iterator[RawRow]:
    """One JSON object per non-blank line; a bad line is rejected with its line number."""
    for number, raw_line in jsonl_lines(content):
        yield jsonl_record(path, number, raw_line, columns)


def jsonl_lines(content: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line."""
    for number, raw_line in enumerate(content.split(b"\n"), start=1):
        if raw_line.strip():
            yield number, raw_line


def jsonl_record(path: str, number: int, raw_line: bytes, columns: dict[str, str]) -> RawRow:
    key = f"{path}:{number}"
    try:
        poison_check("read", raw_line)
        return _jsonl_line(key, number, raw_line, columns)
    except FATAL:
        raise
    except Exception as exc:  # one line's surprise must not lose the file's other lines
        return rejected_row(key, key, failure("read", exc), preview(raw_line))


def _jsonl_line(key: str, number: int, raw_line: bytes, columns: dict[str, str]) -> RawRow:
    text, error = _strict_decode(raw_line)
    if text is None:
        return rejected_row(key, key, (error or "undecodable").replace("(line 1)", f"(line {number})"),
                       preview(raw_line))
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return rejected_row(key, key, f"invalid JSON on line {number}: {exc.msg}", text)
    except RecursionError:  # json recurses per nesting level: [[[[...]]]] a few thousand deep
        return rejected_row(key, key, f"invalid JSON on line {number}: nested too deeply", text)
    except ValueError as exc:  # e.g. an integer literal longer than Python's 4300-digit limit
        return rejected_row(key, key, f"invalid JSON on line {number}: {exc}", text)
    if not isinstance(record, dict):
        return rejected_row(key, key, f"line {number} is not a JSON object", text)
    problem = field_problem({column: record.get(column) for column in columns.values()},
                            integer_ok=frozenset({columns["article_id"]}))
    fields = mapped_fields(record, columns)
    if problem:
        return rejected_row(key, key, problem, text, **fields)  # _storable drops the wrong-typed values
    return _row(key, key, **fields)


def mapped_fields(record: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """Canonical field -> value, using the configured input column names. Values are not coerced
    (see `field_problem`), except an integer id, which becomes its decimal text."""
    out: dict[str, Any] = {canonical: record.get(column) for canonical, column in columns.items()}
    article_id = out.get("article_id")
    if isinstance(article_id, int) and not isinstance(article_id, bool):
        out["article_id"] = str(article_id)
    return out


def validate_row(row: RawRow) -> RawRow:
    """Reject rows that decoded but cannot be processed; fill content_hash for the rest."""
    row = {**dict.fromkeys(schemas.RAW_ARTICLE.fieldNames()), **row}  # a copy, with every column
    prior = row["reject_reason"]
    if prior is not None and prior != "":  # rejected upstream; a reason must read as one
        kept = prior if isinstance(prior, str) and prior.strip() else f"rejected: {prior!r}"
        return storable_row({**row, "reject_reason": kept, "content_hash": None})
    reason = _rejection(row)
    if reason:
        payload = json.dumps({k: row[k] for k in ("article_id", "title", "body")}, ensure_ascii=False, default=repr)
        return storable_row({**row, "reject_reason": reason, "payload": payload[:PAYLOAD_CHARS], "content_hash": None})
    digest = hashlib.sha256("\x1f".join(row[k] or "" for k in ("title", "body")).encode())
    return storable_row({**row, "article_id": row["article_id"].strip(), "reject_reason": None,
                      "content_hash": digest.hexdigest()[:16]})


def _rejection(row: RawRow) -> str | None:
    problem = field_problem({k: row[k] for k in _TEXT_FIELDS})
    if problem:
        return problem
    if not (row["article_id"] or "").strip():
        return "missing article id"
    body = row["body"]
    if body is None or not body.strip():
        return "empty or missing body"
    if "\ufffd" in body or "\ufffd" in (row["title"] or ""):
        return "undecodable bytes: U+FFFD replacement characters in the text"
    return None


def checked(row: RawRow) -> RawRow:
    """validate_row, with an unexpected exception turned into this record's reject reason."""
    try:
        return validate_row(row)
    except FATAL:
        raise
    except Exception as exc:
        return storable_row({**row, "reject_reason": failure("validation", exc),
                          "payload": storable_text(repr(row)[:PAYLOAD_CHARS])})


def decode_file(fmt: str, path: str, content: bytes, columns: dict[str, str]) -> list[RawRow]:
    """Every record of one input file, validated; at least one row (a file is never lost)."""
    try:
        if fmt == "livedoor":
            poison_check("read", content)
            rows = [decode_livedoor_file(path, content)]
        else:
            rows = list(decode_jsonl_file(path, content, columns))
            if not rows:
                reason = "empty file" if not content else "no JSON lines: the file holds only whitespace"
                rows = [rejected_row(path, path, reason, preview(content))]
        return [checked(r) for r in rows]
    except FATAL:
        raise
    except Exception as exc:
        names = livedoor_names(path) if fmt == "livedoor" else {}
        return [storable_row(rejected_row(path, path, failure("read", exc), preview(content), **names))]


def raw_frame(rows: list[RawRow], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[*schemas.RAW_ARTICLE.fieldNames(), *extra])


def table_record(record: dict[Any, Any]) -> RawRow:
    try:
        return checked({str(k): (None if v is None or (isinstance(v, float) and pd.isna(v)) else v)
                        for k, v in record.items()})
    except FATAL:
        raise
    except Exception as exc:
        key = record.get("record_key")
        return storable_row(_row(key, key, reject_reason=failure("validation", exc),
                              payload=storable_text(repr(record)[:PAYLOAD_CHARS])))


def column_map(settings: InputSettings) -> dict[str, str]:
    cols = settings.columns
    return {"article_id": cols.id, "body": cols.body, "title": cols.title, "url": cols.url,
            "published_at": cols.published_at, "category": cols.category}
