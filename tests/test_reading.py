import json

from giellm_batch.reading import decode_jsonl_file, decode_livedoor_file, validate_row
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
