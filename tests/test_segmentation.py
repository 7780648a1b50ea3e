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


def test_sentence_too_long_for_the_model_is_split_at_morphemes_until_every_prompt_fits(tiny_model):
    from giellm_batch.segmentation import PromptBudget

    # one sentence (no full stop) of ~700 characters; the model budget is 120 prompt tokens
    body = "、".join(f"第{i}地区では新しい防災計画に基づく大規模な訓練が行われ" for i in range(24)) + "た。"
    budget = PromptBudget(str(tiny_model), 120, ("\n‹人名>‹地名>\n固有表現抽出",))
    overflow = budget.counter()
    assert overflow(body) > 120
    sentences = Segmenter(max_sentence_chars=5000).split(body, overflow)
    assert len(sentences) > 2
    assert all(overflow(s.text) == 0 for s in sentences)
    assert "".join(s.text for s in sentences) == body  # split, never truncated
    assert [s.index for s in sentences] == list(range(len(sentences)))


def test_text_that_cannot_fit_makes_the_article_a_quarantine_case(tiny_model):
    import pandas as pd

    from giellm_batch.segmentation import PromptBudget, segmentation_step

    budget = PromptBudget(str(tiny_model), 3, ("\n‹人名>\n固有表現抽出",))  # not even the suffix fits
    step = segmentation_step(300, 2, budget)
    out = pd.concat(list(step(iter([pd.DataFrame({"article_id": ["a1"], "body": ["東京で会見が開かれた。"]})]))))
    assert list(out["sentence_idx"]) == [-1]
    assert "more than the model context allows" in out["reject_reason"][0]
