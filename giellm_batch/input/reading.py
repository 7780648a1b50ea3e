"""Reading articles into one canonical shape, with per-record rejection instead of failure.

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
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.config.job_config import InputSettings
from giellm_batch.input import files as input_files
from giellm_batch.isolation.failures import FATAL, failure, storable_text
from giellm_batch.isolation.faults import poison_check
from giellm_batch.isolation.process import IsolationLimits, Poisoned, map_isolated

RawRow = dict[str, Any]
_PAYLOAD_CHARS = 2000  # how much of a rejected record the quarantine keeps
_TEXT_FIELDS = ("article_id", "url", "title", "published_at", "category", "body")


def _row(record_key: str | None, source: str | None, **values: Any) -> RawRow:
    row: RawRow = {name: None for name in schemas.RAW_ARTICLE.fieldNames()}
    row.update(record_key=record_key, source=source, **values)
    return row


def _reject(record_key: str, source: str, reason: str, payload: str, **values: Any) -> RawRow:
    return _row(record_key, source, reject_reason=reason, payload=payload[:_PAYLOAD_CHARS], **values)


def _preview(content: bytes) -> str:
    return content[:_PAYLOAD_CHARS].decode("utf-8", "replace")


def _storable(row: RawRow) -> RawRow:
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
        return _reject(path, path, error or "undecodable", _preview(content), **names)
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) < 4:
        return _reject(path, path, f"not a Livedoor article: {len(lines)} lines, need URL, date, title, body",
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
        return _reject(key, key, failure("read", exc), _preview(raw_line))


def _jsonl_line(key: str, number: int, raw_line: bytes, columns: dict[str, str]) -> RawRow:
    text, error = _strict_decode(raw_line)
    if text is None:
        return _reject(key, key, (error or "undecodable").replace("(line 1)", f"(line {number})"),
                       _preview(raw_line))
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return _reject(key, key, f"invalid JSON on line {number}: {exc.msg}", text)
    except RecursionError:  # json recurses per nesting level: [[[[...]]]] a few thousand deep
        return _reject(key, key, f"invalid JSON on line {number}: nested too deeply", text)
    except ValueError as exc:  # e.g. an integer literal longer than Python's 4300-digit limit
        return _reject(key, key, f"invalid JSON on line {number}: {exc}", text)
    if not isinstance(record, dict):
        return _reject(key, key, f"line {number} is not a JSON object", text)
    problem = field_problem({column: record.get(column) for column in columns.values()},
                            integer_ok=frozenset({columns["article_id"]}))
    fields = mapped_fields(record, columns)
    if problem:
        return _reject(key, key, problem, text, **fields)  # _storable drops the wrong-typed values
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
        return _storable({**row, "reject_reason": kept, "content_hash": None})
    reason = _rejection(row)
    if reason:
        payload = json.dumps({k: row[k] for k in ("article_id", "title", "body")}, ensure_ascii=False, default=repr)
        return _storable({**row, "reject_reason": reason, "payload": payload[:_PAYLOAD_CHARS], "content_hash": None})
    digest = hashlib.sha256("\x1f".join(row[k] or "" for k in ("title", "body")).encode())
    return _storable({**row, "article_id": row["article_id"].strip(), "reject_reason": None,
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
        return _storable({**row, "reject_reason": failure("validation", exc),
                          "payload": storable_text(repr(row)[:_PAYLOAD_CHARS])})


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
                rows = [_reject(path, path, reason, _preview(content))]
        return [checked(r) for r in rows]
    except FATAL:
        raise
    except Exception as exc:
        names = livedoor_names(path) if fmt == "livedoor" else {}
        return [_storable(_reject(path, path, failure("read", exc), _preview(content), **names))]


def _frame(rows: list[RawRow], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[*schemas.RAW_ARTICLE.fieldNames(), *extra])


def file_decoder(settings: InputSettings, limits: IsolationLimits | None = None,
                 isolated: dict[tuple[str, str], str] | None = None,
                 ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function: binaryFile rows (path, content, file_uri) -> validated input_files.DECODED rows.

    Records (a Livedoor file, a JSONL line) are decoded in an isolated child process per batch
    (isolation.py): one that crashes, hangs or exhausts memory becomes a rejected row whose reason
    starts with crash / timeout / memory, and whose content_hash is its bytes' digest; the file's
    other records are read as usual. `isolated`: (record key, digest) -> reason of the records an
    earlier run isolated (selection.EarlierIsolations.decoded): rejected again as they were, never decoded again."""
    fmt = settings.format
    columns = _column_map(settings)
    limits = limits or IsolationLimits()
    isolated = isolated or {}

    def decode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            units: list[tuple[str, int, bytes, dict[str, Any]]] = []  # (path, JSONL line or 0, bytes, file columns)
            whole: list[RawRow] = []  # files that hold no record to decode: one rejected row each
            for path, content, length, modified, uri in zip(
                    batch["path"], batch["content"], batch["length"], batch["modificationTime"],
                    batch[input_files.FILE_URI], strict=True):
                data = bytes(content) if content is not None else b""
                seen = {"file_path": path, "file_length": length, "file_modified_at": modified,
                        input_files.FILE_URI: uri}
                lines = list(jsonl_lines(data)) if fmt != "livedoor" else [(0, data)]
                if not lines:
                    whole.extend({**r, **seen} for r in decode_file(fmt, path, data, columns))
                units.extend((path, number, raw, seen) for number, raw in lines)

            def one(unit: tuple[str, int, bytes, dict[str, Any]]) -> list[RawRow]:
                path, number, raw, _seen = unit
                if not number:
                    return decode_file(fmt, path, raw, columns)
                return [checked(jsonl_record(path, number, raw, columns))]

            keys = [f"{path}:{number}" if number else path for path, number, _raw, _seen in units]
            digests = [_raw_digest(raw) if isolated else "" for _path, _number, raw, _seen in units]
            known = [isolated.get((key, digest)) for key, digest in zip(keys, digests, strict=True)]
            fresh = [unit for unit, reason in zip(units, known, strict=True) if reason is None]
            decoded = iter(map_isolated(fresh, one, limits))
            rows = list(whole)
            for (path, _number, raw, seen), key, digest, reason in zip(units, keys, digests, known, strict=True):
                if reason is None:
                    out = next(decoded)
                    if not isinstance(out, Poisoned):
                        rows.extend({**r, **seen} for r in out)
                        continue
                    reason = out.reason("read")
                # isolated now or by an earlier run: rejected, never half-read
                names = livedoor_names(path) if fmt == "livedoor" else {}
                rejected = _reject(key, key, reason, _preview(raw), **names, content_hash=digest or _raw_digest(raw))
                rows.append({**_storable(rejected), **seen})
            yield _frame(rows, (*input_files.FILE_COLUMNS, input_files.FILE_URI))

    return decode


def _raw_digest(raw: bytes) -> str:
    return "bytes:" + hashlib.sha256(raw).hexdigest()[:16]


def unread_file_row(fmt: str) -> Callable[[str, str], RawRow]:
    """The rejected record standing for an input file Spark listed but did not read."""

    def row(path: str, reason: str) -> RawRow:
        names = livedoor_names(path) if fmt == "livedoor" else {}
        return _storable(_reject(path, path, reason, "", **names))

    return row


def table_validator() -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function for Parquet/Delta input already in RAW_ARTICLE shape."""

    def validate(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield _frame([_table_record(r) for r in batch.to_dict("records")])

    return validate


def _table_record(record: dict[Any, Any]) -> RawRow:
    try:
        return checked({str(k): (None if v is None or (isinstance(v, float) and pd.isna(v)) else v)
                        for k, v in record.items()})
    except FATAL:
        raise
    except Exception as exc:
        key = record.get("record_key")
        return _storable(_row(key, key, reject_reason=failure("validation", exc),
                              payload=storable_text(repr(record)[:_PAYLOAD_CHARS])))


def _column_map(settings: InputSettings) -> dict[str, str]:
    cols = settings.columns
    return {"article_id": cols.id, "body": cols.body, "title": cols.title, "url": cols.url,
            "published_at": cols.published_at, "category": cols.category}


def file_rules(settings: InputSettings, max_file_bytes: int | None = None) -> input_files.FileRules:
    """Which files of a Livedoor/JSONL input are read (glob, names left out, size limit)."""
    limit = max_file_bytes or int(getattr(settings, "max_file_bytes", 0) or input_files.MAX_FILE_BYTES)
    return input_files.FileRules.for_format(settings.format, limit)


def read_articles(spark: Any, settings: InputSettings, max_file_bytes: int | None = None,
                  files: list[str] | None = None, listed: Any = None, limits: IsolationLimits | None = None,
                  isolated: dict[tuple[str, str], str] | None = None) -> Any:
    """Spark DataFrame of RAW_ARTICLE rows (accepted and rejected) for the configured input, plus
    input_files.FILE_COLUMNS (null for table input).

    Livedoor/JSONL: one row per record of every file Spark lists (see input/files.py), or of
    `files` only (manifest.py), files larger than `max_file_bytes` (default
    input_files.MAX_FILE_BYTES) rejected unread. `listed`: the input's binaryFile DataFrame when
    the caller has listed it already (input_files.binary_files)."""
    if settings.format in ("livedoor", "jsonl"):
        return input_files.read_files(spark, settings.path if files is None else files,
                                      file_rules(settings, max_file_bytes), file_decoder(settings, limits, isolated),
                                      unread_file_row(settings.format), listed=listed)
    from pyspark.sql import functions as F

    return _read_table(spark, settings).select("*", *(
        F.lit(None).cast(field.dataType).alias(field.name)
        for field in input_files.file_schema().fields if field.name in input_files.FILE_COLUMNS))


def _read_table(spark: Any, settings: InputSettings) -> Any:
    from pyspark.sql import functions as F

    reader = spark.read.format("delta") if settings.format == "delta" else spark.read
    table = reader.load(settings.path) if settings.format == "delta" else reader.parquet(settings.path)
    selected, problems = [], []
    for canonical, column in _column_map(settings).items():
        value, problem = _typed_text_column(table, canonical, column)
        selected.append(value.alias(canonical))
        if problem is not None:
            problems.append(problem)
    raw = F.to_json(F.struct(*[F.col(f"`{c}`") for c in _column_map(settings).values() if c in table.columns]))
    # A record without id is keyed by its content (the canonical columns, as before type checks existed).
    content = F.to_json(F.struct(*_column_map(settings)))
    key = F.concat_ws(":", F.lit(settings.path), F.coalesce(F.col("article_id"), F.sha2(content, 256)))
    reason = F.coalesce(*problems, F.lit(None).cast("string")) if problems else F.lit(None).cast("string")
    payload = F.substring(raw, 1, _PAYLOAD_CHARS)
    shaped = (table.select(*selected, reason.alias("reject_reason"), payload.alias("payload"))
              .withColumn("record_key", key).withColumn("source", F.lit(settings.path))
              .withColumn("content_hash", F.lit(None).cast("string"))
              .withColumn("payload", F.when(F.col("reject_reason").isNotNull(), F.col("payload"))))
    return shaped.select(*schemas.RAW_ARTICLE.fieldNames()).mapInPandas(table_validator(), schema=schemas.RAW_ARTICLE)


def _typed_text_column(table: Any, canonical: str, column: str) -> tuple[Any, Any]:
    """(value as string, reject reason or None) for one input column, by its Spark type: as for
    JSONL, only string columns are text (and integer ids); others are rejected where non-null,
    never cast into article text."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegralType, StringType

    if column not in table.columns:
        return F.lit(None).cast("string"), None
    col = F.col(f"`{column}`")
    dtype = table.schema[column].dataType
    if isinstance(dtype, StringType) or (canonical == "article_id" and isinstance(dtype, IntegralType)):
        return col.cast("string"), None
    expected = "a string or an integer" if canonical == "article_id" else "a string"
    reason = F.when(col.isNotNull(), F.lit(f"field '{column}' must be {expected}, got {dtype.simpleString()}"))
    return F.lit(None).cast("string"), reason
