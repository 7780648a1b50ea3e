import re

from hypothesis import given, settings
from hypothesis import strategies as st

from giellm_batch.giellm.parsing import parse_output
from giellm_batch.giellm.prompts import render_output
from giellm_batch.giellm.regex_constraint import task_regex

SENTENCE = "山田太郎は18:30に東京ドームで試合に出た。"


def fields(result):
    return [item.fields for item in result.items]


def test_pairs_full_width_and_no_entity_marker(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    result = parse_output("＜社会＞固有表現抽出：人名；山田太郎：地名；東京", task, giellm)
    assert result.status == "ok" and result.text_label == "社会"
    assert fields(result) == [("人名", "山田太郎"), ("地名", "東京")]
    empty = parse_output("‹社会>固有表現抽出:無い", task, giellm)
    assert empty.status == "ok" and empty.items == ()
    assert parse_output("<社会>固有表現抽出", task, giellm).items == ()


def test_span_with_colon_is_split_where_the_source_agrees(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    result = parse_output("‹社会>固有表現抽出:人名;山田太郎:イベント名;18:30", task, giellm, sentence=SENTENCE)
    assert fields(result) == [("人名", "山田太郎"), ("イベント名", "18:30")]
    assert result.status == "ok"


def test_triples_with_closing_colon_and_unknown_labels_flagged(registry):
    task, giellm = registry.tasks["tcree_re"], registry.profiles["giellm"]
    result = parse_output("‹スポーツ>Relation Extraction:メッシ;所属;バルセロナ::A;友人;B:", task, giellm)
    assert fields(result) == [("メッシ", "所属", "バルセロナ"), ("A", "友人", "B")]
    assert [i.label_known for i in result.items] == [True, False]
    assert "unknown_item_label" in result.flags and result.status == "ok"
    odd = parse_output("‹ニュース>Relation Extraction:A;所属;B:", task, giellm)
    assert odd.text_label == "ニュース" and not odd.text_label_known and "unknown_text_label" in odd.flags


def test_truncated_and_malformed_outputs_are_partial_and_keep_what_parsed(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    cut = parse_output("‹社会>固有表現抽出:人名;山田:地名", task, giellm, truncated=True)
    assert cut.status == "partial" and fields(cut) == [("人名", "山田")]
    assert "truncated" in cut.flags and "malformed_items:1" in cut.flags
    no_iw = parse_output("‹社会>:人名;山田", task, giellm)
    assert no_iw.status == "partial" and "iw_missing" in no_iw.flags and fields(no_iw) == [("人名", "山田")]


def test_invalid_when_no_text_label(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    for raw in ["", "固有表現抽出:人名;山田", "‹社会", None]:
        result = parse_output(raw, task, giellm)
        assert result.status == "invalid" and result.text_label is None


def test_oiellm_output(registry):
    task, oiellm = registry.tasks["oiellm_ner"], registry.profiles["oiellm"]
    result = parse_output("Sports/NER/:Person;A:Location;B", task, oiellm)
    assert result.status == "ok" and result.text_label == "Sports"
    assert fields(result) == [("Person", "A"), ("Location", "B")]


span_text = st.text(alphabet=st.characters(blacklist_characters=":;：；\n\r‹<>＜＞/", blacklist_categories=("Cs",)),
                    min_size=1, max_size=6).filter(lambda s: s.strip() == s and s.strip())


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_render_then_parse_gives_back_the_items(registry, data):
    name = data.draw(st.sampled_from(sorted(registry.tasks)))
    task = registry.tasks[name]
    profile = registry.profiles[task.profile]
    label_pool = st.sampled_from(task.item_labels) if task.item_labels else span_text
    items = data.draw(st.lists(
        st.tuples(*[label_pool if f == task.label_field else span_text for f in task.fields]), max_size=4))
    text_label = data.draw(st.sampled_from(task.text_labels) if task.text_labels else span_text)
    raw = render_output(task, profile, text_label, items)
    sentence = "".join(s for item in items for s in item)
    result = parse_output(raw, task, profile, sentence=sentence)
    assert result.text_label == text_label
    assert fields(result) == [tuple(i) for i in items]
    assert result.status == "ok"
    # what the renderer writes is exactly what the decoding constraint admits
    if len(items) <= 4:
        assert re.fullmatch(task_regex(task, profile, max_items=4, max_span_chars=6), raw)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.text(max_size=300), st.text(alphabet="‹<>＜＞:;：；無い社会人名\n\x00\x1b", max_size=200)))
def test_parser_never_raises(registry, raw):
    for task in registry.tasks.values():
        result = parse_output(raw, task, registry.profiles[task.profile], sentence=raw[:50])
        assert result.status in {"ok", "partial", "invalid"}


def test_parser_handles_huge_input(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    raw = "‹社会>固有表現抽出" + ":人名;山田" * 5000
    result = parse_output(raw, task, giellm)
    assert result.status == "partial" and "malformed_items:4600" in result.flags  # 400 pieces parsed, the rest flagged
    assert len(result.items) == 1 and "repeated_items:399" in result.flags  # one item, as often as written
    kept = parse_output(raw, task, giellm, drop_repeats=False)
    assert len(kept.items) == 400


def test_an_item_is_kept_as_often_as_the_sentence_holds_its_span(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    raw = "‹社会>固有表現抽出:人名;山田:地名;東京:人名;山田:人名;山田:地名;東京"
    result = parse_output(raw, task, giellm, sentence="山田さんと山田さんが東京へ。")
    assert [item.fields for item in result.items] == [("人名", "山田"), ("地名", "東京"), ("人名", "山田")]
    assert "repeated_items:2" in result.flags and result.status == "ok"


@settings(max_examples=200, deadline=None)
@given(sentence=st.text(min_size=1, max_size=60), raw=st.one_of(
    st.text(max_size=200), st.text(alphabet="‹<>＜＞:;：；無い社会人名地名「」 東京山田\n", max_size=120)))
def test_any_output_for_any_sentence_parses_and_grounds_inside_the_sentence(sentence, raw):
    from bench import fuzz_targets as ft

    # parse -> grounding for every task, through the parse step; see bench/fuzz_targets.py
    clean = sentence.encode("utf-8", "replace").decode("utf-8")
    ft.check_output(clean, raw)
    ft.check_output(clean, ft.rendered_output("scnm_ner", clean, raw))
    ft.check_output(clean, ft.rendered_output("tcree_ee", clean, raw))
