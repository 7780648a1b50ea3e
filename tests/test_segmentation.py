import pytest

from giellm_batch.segmentation import Segmenter


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(max_sentence_chars=40)


def test_quotes_protect_inner_full_stops_and_offsets_point_into_the_body(segmenter):
    body = "山田選手は「勝ててうれしい。次も頑張る」と語った。試合は18:30に始まった！？\n監督は『最高だ。』と述べた。"
    sentences = segmenter.split(body)
    assert [s.text for s in sentences] == [
        "山田選手は「勝ててうれしい。次も頑張る」と語った。",
        "試合は18:30に始まった！？",
        "監督は『最高だ。』と述べた。",
    ]
    for s in sentences:
        assert body[s.char_start:s.char_end] == s.text
        assert s.n_morphemes > 0


def test_long_sentences_split_at_morpheme_boundaries_without_losing_text(segmenter):
    body = ("東京都は、新しい防災計画を発表し、大阪府や京都府、兵庫県などの自治体と連携して、"
            "大規模な防災訓練を来月から順次実施すると明らかにした。")
    sentences = segmenter.split(body)
    assert len(sentences) > 1
    assert all(len(s.text) <= 40 for s in sentences)
    assert "".join(s.text for s in sentences) == body
    words = {m[2] for m in segmenter.morphemes(body)}
    for s in sentences[:-1]:  # every cut falls between two morphemes
        assert any(s.text.endswith(w) for w in words)


def test_unbalanced_quote_does_not_swallow_the_paragraph(segmenter):
    sentences = segmenter.split("「閉じない引用。次の文。\n次の段落。")
    assert sentences[-1].text == "次の段落。"


def test_punctuation_only_fragments_are_dropped():
    assert Segmenter().split("。。。\n！") == []
