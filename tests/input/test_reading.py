import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.fuzz_targets import check_jsonl, check_livedoor, check_raw_row
from giellm_batch.input.decoding import checked, decode_file, decode_jsonl_file, decode_livedoor_file, validate_row
from tests.conftest import SAMPLE

COLUMNS = {"article_id": "id", "body": "body", "title": "title", "url": "url",
           "published_at": "published_at", "category": "category"}


def test_livedoor_file_layout():
    content = "http://example.jp/1/\n2025-03-14T09:30:00+0900\n見出し\n本文の一行目。\n二行目。\n".encode()
    row = validate_row(decode_livedoor_file("/x/sports-watch/sports-watch-1.txt", content))
    assert row["article_id"] == "sports-watch-1" and row["category"] == "sports-watch"
    assert row["url"] == "http://example.jp/1/" and row["title"] == "見出し"
    assert row["body"] == "本文の一行目。\n二行目。" and row["reject_reason"] is None
    assert row["content_hash"]


def test_livedoor_undecodable_and_short_files_are_rejected_with_reasons():
    bad = "http://e/1\n2025-01-01T00:00:00+0900\nタイトル\n".encode() + b"\xff\xfe broken"
    row = validate_row(decode_livedoor_file("/x/c/c-1.txt", bad))
    assert row["reject_reason"].startswith("undecodable bytes: not UTF-8 at byte")
    assert "(line 4)" in row["reject_reason"] and row["payload"]
    short = validate_row(decode_livedoor_file("/x/c/c-2.txt", "http://e/1\n日付\n".encode()))
    assert short["reject_reason"].startswith("not a Livedoor article")
    empty = validate_row(decode_livedoor_file("/x/c/c-3.txt", b"u\nd\nt\n   \n"))
    assert empty["reject_reason"] == "empty or missing body"


def test_jsonl_lines_are_rejected_individually_with_line_numbers():
    lines = [
        json.dumps({"id": "a1", "body": "東京で会議が開かれた。", "title": "会議"}, ensure_ascii=False).encode(),
        b"{not json",
        json.dumps({"body": "IDがない記事。"}, ensure_ascii=False).encode(),
        b'{"id": "a4", "body": "\xff\xfe"}',
        b"[1, 2]",
    ]
    rows = [validate_row(r) for r in decode_jsonl_file("/in/a.jsonl", b"\n".join(lines), COLUMNS)]
    reasons = [r["reject_reason"] for r in rows]
    assert reasons[0] is None and rows[0]["article_id"] == "a1"
    assert reasons[1].startswith("invalid JSON on line 2")
    assert reasons[2] == "missing article id"
    assert reasons[3].startswith("undecodable bytes") and "(line 4)" in reasons[3]
    assert reasons[4] == "line 5 is not a JSON object"
    assert [r["record_key"] for r in rows] == [f"/in/a.jsonl:{n}" for n in range(1, 6)]


def test_sample_articles_all_decode():
    files = sorted(p for p in SAMPLE.rglob("*.txt") if p.name != "LICENSE.txt")
    assert len(files) >= 30
    for path in files:
        row = validate_row(decode_livedoor_file(str(path), path.read_bytes()))
        assert row["reject_reason"] is None, (path, row["reject_reason"])


# --- no record can fail a run: wrong types, odd JSON, arbitrary bytes -------------------------

def jsonl_rows(*lines: bytes):
    return list(decode_file("jsonl", "/in/a.jsonl", b"\n".join(lines), COLUMNS))


@pytest.mark.parametrize(("line", "reason"), [
    (b'{"id": "a", "body": 123}', "field 'body' must be a string, got int"),
    (b'{"id": "a", "body": "x", "title": ["a"]}', "field 'title' must be a string, got list"),
    (b'{"id": {"x": 1}, "body": "x"}', "field 'id' must be a string or an integer, got dict"),
    (b'{"id": true, "body": "x"}', "field 'id' must be a string or an integer, got bool"),
    (b'{"id": 1.5, "body": "x"}', "field 'id' must be a string or an integer, got float"),
    (b'{"id": "a", "body": "x", "published_at": 20250101}', "field 'published_at' must be a string, got int"),
    (b'{"id": "a", "body": "ok\\ud800"}', "field 'body' is not valid Unicode: lone surrogate at character 2"),
    (b"[" * 100_000, "invalid JSON on line 1: nested too deeply"),
    (b'{"id": "a", "body": ' + b"7" * 5000 + b"}", "invalid JSON on line 1: Exceeds the limit"),
])
def test_wrong_typed_or_odd_json_is_rejected_with_a_reason_not_stringified(line, reason):
    (row,) = jsonl_rows(line)
    assert row["reject_reason"].startswith(reason)
    assert row["body"] is None or isinstance(row["body"], str)  # never 123 or "123"
    row["payload"].encode("utf-8")  # storable, even when the input held a lone surrogate


def test_an_integer_id_is_its_decimal_text_and_other_columns_keep_their_configured_names():
    (row,) = jsonl_rows(b'{"id": 42, "body": "\xe6\x9c\xac\xe6\x96\x87"}')
    assert (row["article_id"], row["body"], row["reject_reason"]) == ("42", "本文", None)
    columns = {**COLUMNS, "body": "text"}
    (row,) = decode_file("jsonl", "/in/a.jsonl", b'{"id": "a", "text": 1}', columns)
    assert row["reject_reason"] == "field 'text' must be a string, got int"


def test_a_jsonl_file_without_records_is_one_rejected_record():
    assert [r["reject_reason"] for r in decode_file("jsonl", "/in/e.jsonl", b"", COLUMNS)] == ["empty file"]
    (row,) = decode_file("jsonl", "/in/w.jsonl", b" \n\r\n\n", COLUMNS)
    assert (row["record_key"], row["reject_reason"]) == ("/in/w.jsonl", "no JSON lines: the file holds only whitespace")


def test_an_unexpected_exception_rejects_only_its_record(monkeypatch):
    from giellm_batch.input import decoding as reading

    real = reading.mapped_fields

    def flaky(record, columns):
        if record.get("id") == "boom":
            raise KeyError("surprise")
        return real(record, columns)

    monkeypatch.setattr(reading, "mapped_fields", flaky)
    rows = jsonl_rows(b'{"id": "a", "body": "x"}', b'{"id": "boom", "body": "x"}', b'{"id": "c", "body": "y"}')
    assert [r["reject_reason"] for r in rows] == [None, "read: KeyError: 'surprise'", None]
    monkeypatch.setattr(reading, "validate_row", lambda row: 1 / 0)
    (row,) = decode_file("livedoor", "/x/c/c-1.txt", b"u\nd\nt\nbody", COLUMNS)
    assert row["reject_reason"] == "validation: ZeroDivisionError: division by zero"
    assert row["article_id"] == "c-1" and row["record_key"] == "/x/c/c-1.txt"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
json_records = st.fixed_dictionaries({}, optional={k: json_values | st.text(max_size=30) for k in
                                                   ("id", "body", "title", "url", "published_at", "category")})
jsonl_lines = st.one_of(
    json_records.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
)


@settings(max_examples=250, deadline=None)
@given(data=st.one_of(st.binary(max_size=600), st.lists(jsonl_lines, max_size=6).map(b"\n".join)))
def test_any_bytes_as_jsonl_give_one_outcome_per_line(data):
    check_jsonl(data)  # one row per non-blank line, each accepted xor rejected, all storable


@settings(max_examples=250, deadline=None)
@given(data=st.one_of(
    st.binary(max_size=600),
    st.lists(st.text(max_size=30), min_size=3, max_size=6).map(
        lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
))
def test_any_bytes_as_a_livedoor_file_give_exactly_one_outcome(data):
    check_livedoor(data)


@settings(max_examples=200, deadline=None)
@given(row=st.fixed_dictionaries({"record_key": st.text(max_size=5)}, optional={
    k: json_values for k in ("article_id", "body", "title", "url", "published_at", "category", "reject_reason",
                             "content_hash", "payload")}))
def test_validation_of_any_row_gives_one_storable_outcome(row):
    check_raw_row(checked(row))
