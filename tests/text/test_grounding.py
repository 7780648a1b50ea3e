from giellm_batch.giellm.parsing import parse_output
from giellm_batch.text.offsets import ground_items, locate


def test_offsets_are_article_level_and_repeated_spans_map_to_successive_mentions(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    sentence = "山田と田中と山田が来た。"
    result = parse_output("‹社会>固有表現抽出:人名;山田:人名;田中:人名;山田:人名;鈴木", task, giellm, sentence=sentence)
    items = ground_items(result, task, sentence, sentence_start=100)
    starts = [i["spans"][0]["char_start"] for i in items]
    assert starts == [100, 103, 106, None]
    assert [i["spans"][0]["grounded"] for i in items] == [True, True, True, False]


def test_triple_spans_are_both_grounded(registry):
    task, giellm = registry.tasks["tcree_re"], registry.profiles["giellm"]
    sentence = "A社はB社を買収した。"
    result = parse_output("‹IT>Relation Extraction:A社;買収;B社:", task, giellm, sentence=sentence)
    (item,) = ground_items(result, task, sentence, 0)
    assert [(s["role"], s["char_start"], s["char_end"]) for s in item["spans"]] == [("head", 0, 2), ("tail", 3, 5)]


def test_locate_strips_quote_brackets():
    assert locate("「東京」", "東京に行く") == (0, 2)
    assert locate("", "abc") is None


def test_spans_that_cut_words_are_snapped_and_pos_is_checked(registry):
    from giellm_batch.text.segmentation import Segmenter

    task, giellm = registry.tasks["scpos_n"], registry.profiles["giellm"]
    sentence = "美しい景色に感動した。"
    morphemes = Segmenter().morphemes(sentence)
    result = parse_output("‹積極>Sentiment Extraction Noun:ポジティブ;景:ポジティブ;美しい", task, giellm,
                          sentence=sentence)
    scenery, beautiful = (i["spans"][0] for i in ground_items(result, task, sentence, 10, morphemes))
    assert (scenery["char_start"], scenery["char_end"], scenery["snapped"]) == (13, 15, True)  # 景 -> 景色
    assert (scenery["pos"], scenery["pos_ok"]) == ("名詞", True)
    assert (beautiful["snapped"], beautiful["pos"], beautiful["pos_ok"]) == (False, "形容詞", False)
    # grounded decoding: the model chose the substring, so its offsets stay exact (POS still checked)
    scenery, _ = (i["spans"][0] for i in ground_items(result, task, sentence, 10, morphemes, snap_spans=False))
    assert (scenery["char_start"], scenery["char_end"], scenery["snapped"]) == (13, 14, False)
    assert scenery["pos"] == "名詞"
