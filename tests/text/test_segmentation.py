from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from giellm_batch.steps.segment import segment_article
from giellm_batch.text.segmentation import Segmenter

REPO = Path(__file__).resolve().parents[2]


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
    from giellm_batch.text.segmentation import PromptBudget

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

    from giellm_batch.config.settings import SegmentationSettings
    from giellm_batch.steps.segment import SegmentStep
    from giellm_batch.text.segmentation import PromptBudget

    budget = PromptBudget(str(tiny_model), 3, ("\n‹人名>\n固有表現抽出",))  # not even the suffix fits
    step = SegmentStep(SegmentationSettings(), budget)
    out = step.run_local(pd.DataFrame({"article_id": ["a1"], "body": ["東京で会見が開かれた。"]}))
    assert list(out["sentence_idx"]) == [-1]
    assert "more than the model context allows" in out["reject_reason"][0]


# --- no article can fail a run ----------------------------------------------------------------

def test_an_unexpected_exception_quarantines_only_that_article():
    from giellm_batch.steps.segment import segment_article

    class Broken(Segmenter):
        def split(self, body, overflow=None):
            if "boom" in body:
                raise ValueError("cannot split")
            return super().split(body, overflow)

    broken = Broken()
    assert segment_article(broken, None, "a1", "boom。") == [
        ("a1", -1, None, None, None, None, "segmentation: ValueError: cannot split")]
    assert [r[2] for r in segment_article(broken, None, "a2", "東京で会議。")] == ["東京で会議。"]
    assert segment_article(broken, None, "a3", None)[0][6].startswith("segmentation: TypeError:")


def test_nul_characters_do_not_stop_morphological_analysis(segmenter):
    # MeCab reads C strings; before the fix a sentence after NULs had no morphemes at all
    (sentence,) = segmenter.split("\x00\x00\x00無料で利用できる。")
    assert sentence.n_morphemes > 3
    assert [m[2] for m in segmenter.morphemes("a\x00東京")][-1] == "東京"


def test_pieces_of_a_split_keep_short_text_and_drop_control_characters_only(segmenter):
    body = "あ" * 40 + "い" + "\x1f" * 30 + "\x15"  # \x1f is whitespace to Python, \x15 is not
    texts = [s.text for s in Segmenter(max_sentence_chars=20).split(body)]
    assert "".join(texts) == "あ" * 40 + "い"  # a 1-character piece of text is kept, "\x15" alone is not


REGRESSIONS = sorted((Path(__file__).parent / "fuzz_regressions").glob("*.bin"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_inputs_the_fuzzer_found_stay_fixed(path):
    from bench import fuzz_targets as ft

    target, data = path.name.split("-", 1)[0], path.read_bytes()
    if target in ("article", "output"):
        first, _sep, second = data.partition(b"\xff")
        getattr(ft, f"check_{target}")(first.decode("utf-8", "replace"), second.decode("utf-8", "replace"))
    else:
        getattr(ft, f"check_{target}")(data)


@settings(max_examples=200, deadline=None)
@given(body=st.one_of(
    st.text(max_size=300),
    st.text(alphabet="東京で会議が開かれた山田「」『』（）。、！？!?\n \x00\x1f\x15aZ0１", max_size=400),
), output=st.text(max_size=80))
def test_any_text_as_an_article_is_accepted_whole_or_rejected_with_a_reason(body, output):
    from bench import fuzz_targets as ft

    # segmentation -> prompts -> parse -> grounding, every task: see bench/fuzz_targets.py
    ft.check_article(body.encode("utf-8", "replace").decode("utf-8"), output)


@pytest.mark.parametrize("text", ["a" * 300_000, "x y " * 110_000, "長" * 600_000])
def test_text_that_crashes_one_mecab_call_is_tagged_in_bounded_windows(text):
    """Each of these segfaults MeCab when tagged in one call (measured: docs/isolation.md); run
    in-process here, a broken window would kill the test process."""
    segmenter = Segmenter(max_sentence_chars=300)
    morphemes = segmenter.morphemes(text)
    assert "".join(m[2] for m in morphemes) == text.replace(" ", "")  # MeCab skips spaces
    assert all(text[s:e] == surface for s, e, surface, _pos in morphemes[:2000])
    rows = segment_article(segmenter, None, "a", text)
    assert rows and rows[0][6] is None
    assert all(text[r[3]:r[4]] == r[2] for r in rows) and rows[-1][4] == len(text.rstrip())


def test_an_article_over_the_bound_is_quarantined_naming_it():
    (row,) = segment_article(Segmenter(), None, "a", "長" * 3_000, max_article_chars=2_000)
    assert row[1] == -1 and "segmentation.max_article_chars" in row[6] and "3,000" in row[6]


def test_fuzz_long_article_target_passes_on_pathological_shapes():
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    import fuzz_targets

    for text in ("a", "x y ", "長", "東京都で会議が開かれた、"):
        assert fuzz_targets.check_long_article(text) == (1, 0)
