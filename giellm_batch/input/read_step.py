"""The read steps: raw input records -> validated RAW_ARTICLE rows (accepted or rejected).

`DecodeFilesStep` decodes the bytes Spark's binaryFile source read (a Livedoor file, each JSONL
line); `ValidateTableStep` checks Parquet/Delta rows already in the canonical shape. Both emit a
rejected row with its reason instead of failing (input/decoding.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from giellm_batch import schemas
from giellm_batch.config.job_config import InputSettings
from giellm_batch.input import files as input_files
from giellm_batch.input.decoding import (
    RawRow,
    checked,
    column_map,
    decode_file,
    jsonl_lines,
    jsonl_record,
    livedoor_names,
    preview,
    raw_frame,
    rejected_row,
    storable_row,
    table_record,
)
from giellm_batch.isolation.process import IsolationLimits, Poisoned, map_isolated
from giellm_batch.steps.base import BatchStep

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


class DecodeFilesStep(BatchStep):
    """binaryFile rows (path, content, ..., file_uri) -> validated rows (input_files.decoded_schema).

    Records (a Livedoor file, a JSONL line) are decoded in an isolated child process per batch
    (isolation/process.py): one that crashes, hangs or exhausts memory becomes a rejected row whose reason
    starts with crash / timeout / memory, and whose content_hash is its bytes' digest; the file's
    other records are read as usual. `isolated`: (record key, digest) -> reason of the records an
    earlier run isolated (selection.EarlierIsolations.decoded): rejected again as they were, never decoded again."""

    name = "read"
    needs = ("path", "content", "length", "modificationTime", input_files.FILE_URI)

    def __init__(self, settings: InputSettings, limits: IsolationLimits | None = None,
                 isolated: dict[tuple[str, str], str] | None = None) -> None:
        self.fmt = settings.format
        self.columns = column_map(settings)
        self.limits = limits or IsolationLimits()
        self.isolated = isolated or {}

    @property
    def yields(self) -> StructType:
        return input_files.decoded_schema()

    def batches(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fmt, columns, limits, isolated = self.fmt, self.columns, self.limits, self.isolated
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
                rejected = rejected_row(key, key, reason, preview(raw), **names,
                                        content_hash=digest or _raw_digest(raw))
                rows.append({**storable_row(rejected), **seen})
            yield raw_frame(rows, (*input_files.FILE_COLUMNS, input_files.FILE_URI))


def _raw_digest(raw: bytes) -> str:
    return "bytes:" + hashlib.sha256(raw).hexdigest()[:16]


def unread_file_row(fmt: str) -> Callable[[str, str], RawRow]:
    """The rejected record standing for an input file Spark listed but did not read."""

    def row(path: str, reason: str) -> RawRow:
        names = livedoor_names(path) if fmt == "livedoor" else {}
        return storable_row(rejected_row(path, path, reason, "", **names))

    return row


class ValidateTableStep(BatchStep):
    """Parquet/Delta rows already in RAW_ARTICLE shape -> the same rows, each checked."""

    name = "validate"
    needs = tuple(schemas.RAW_ARTICLE.fieldNames())

    @property
    def yields(self) -> StructType:
        return schemas.RAW_ARTICLE

    def batches(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield raw_frame([table_record(r) for r in batch.to_dict("records")])
