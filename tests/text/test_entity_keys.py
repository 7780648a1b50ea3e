from giellm_batch.giellm.parsing import parse_output
from giellm_batch.text.entity_keys import span_key
from giellm_batch.text.offsets import ground_items


def test_width_case_and_space_variants_share_one_key():
    assert span_key("ｿﾌﾄﾊﾞﾝｸ") == span_key("ソフトバンク") == "ソフトバンク"
    assert span_key("ＳｏｆｔＢａｎｋ") == span_key("SoftBank") == span_key("SOFTBANK") == "softbank"
    assert span_key("山田　太郎") == span_key(" 山田 太郎") == "山田太郎"
    assert span_key("New   York") == "new york"  # a space between Latin words is kept (once)
    assert span_key("José  Mourinho") == "josé mourinho"  # accented Latin too
    assert span_key("ＮＥＣ　本社") == "nec本社"
    assert span_key("東京") != span_key("京都") and span_key(None) is None


def test_grounded_spans_carry_their_key(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    sentence = "ｿﾌﾄﾊﾞﾝｸの株価が上がった。"
    result = parse_output("‹技術>固有表現抽出:法人名;ｿﾌﾄﾊﾞﾝｸ", task, giellm, sentence=sentence)
    (item,) = ground_items(result, task, sentence, 0)
    assert (item["spans"][0]["text"], item["spans"][0]["key"]) == ("ｿﾌﾄﾊﾞﾝｸ", "ソフトバンク")
