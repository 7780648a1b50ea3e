"""Turning one record's unexpected exception into a reason, so the record is rejected and the run goes on.

Every per-record step (decode, validate, segment, build prompts, parse, ground) catches
`Exception` around one record and records `failure(stage, exc)` on that record instead of letting
the exception fail the Spark task (which, retried and failing again, fails the whole run).

`MemoryError` is an `Exception` too but is not a property of the record: the worker is out of
memory and must fail loudly, so every such site re-raises it first (`except FATAL: raise`).
KeyboardInterrupt and SystemExit are BaseExceptions and are never caught by `except Exception`.
"""

from __future__ import annotations

FATAL: tuple[type[BaseException], ...] = (MemoryError,)
_MAX_REASON_CHARS = 500  # a reason is a table cell, not a log: keep it readable


def failure(stage: str, exc: BaseException) -> str:
    """"<stage>: <ExceptionType>: <message>", bounded and always storable as UTF-8."""
    message = f"{stage}: {type(exc).__name__}: {exc}"[:_MAX_REASON_CHARS]
    return storable_text(message)


def storable_text(text: str) -> str:
    """`text` with lone surrogates escaped: Arrow and Parquet accept only valid UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
