import re

import xgrammar as xgr
from xgrammar.testing import _is_grammar_accept_string

from giellm_batch.giellm.grammar import span_rules, suffix_automaton, task_grammar
from giellm_batch.giellm.prompts import render_output
from giellm_batch.giellm.regex_constraint import task_regex, worst_case_tokens

# A sentence with ten entities and a 41-character organisation name: what real news looks like
# and what a capped constraint used to cut.
LONG_NAME = "国際オリンピック委員会アジア太平洋地域スポーツ振興特別調査委員会事務局長室第二分室"
CROWDED = (f"{LONG_NAME}と山田太郎、鈴木花子、佐藤一郎は東京、大阪、名古屋、福岡で"
           "ソフトバンクとトヨタ自動車の担当者と会った。")
CROWDED_ITEMS = [("その他の組織名", LONG_NAME), ("人名", "山田太郎"), ("人名", "鈴木花子"), ("人名", "佐藤一郎"),
                 ("地名", "東京"), ("地名", "大阪"), ("地名", "名古屋"), ("地名", "福岡"),
                 ("法人名", "ソフトバンク"), ("法人名", "トヨタ自動車")]


def accepts(grammar: str, text: str) -> bool:
    return bool(_is_grammar_accept_string(xgr.Grammar.from_ebnf(grammar), text))


def test_regex_admits_well_formed_and_rejects_the_rest(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    pattern = re.compile(task_regex(task, giellm, max_items=2, max_span_chars=5))
    assert pattern.fullmatch("‹社会>固有表現抽出")
    assert pattern.fullmatch("‹社会>固有表現抽出:人名;山田太郎:地名;東京")
    assert not pattern.fullmatch("‹社会>固有表現抽出:人名;山田太郎:地名;東京:地名;大阪")  # > max_items
    assert not pattern.fullmatch("‹政治>固有表現抽出")  # not a candidate text label
    assert not pattern.fullmatch("‹社会>固有表現抽出:職業;選手")  # not an entity type
    assert not pattern.fullmatch("‹社会>固有表現抽出:人名;山田太郎さん")  # span > max_span_chars


def test_default_regex_cuts_no_item_list_and_no_span(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    raw = render_output(task, giellm, "社会", CROWDED_ITEMS)
    assert len(LONG_NAME) >= 40 and len(CROWDED_ITEMS) == 10
    assert re.fullmatch(task_regex(task, giellm, max_items=0, max_span_chars=0), raw)
    assert worst_case_tokens(task, giellm, 0, 0) is None  # unbounded: max_new_tokens bounds it


def test_triples_close_with_a_colon_and_worst_case_is_an_upper_bound(registry):
    task, giellm = registry.tasks["tcree_re"], registry.profiles["giellm"]
    pattern = re.compile(task_regex(task, giellm, max_items=3, max_span_chars=4))
    assert pattern.fullmatch("‹IT>Relation Extraction:A社;買収;B社:")
    assert not pattern.fullmatch("‹IT>Relation Extraction:A社;買収;B社")
    longest = "‹スポーツ>Relation Extraction" + ":𠀋𠀋𠀋𠀋;所属;𠀋𠀋𠀋𠀋" * 3 + ":"
    assert pattern.fullmatch(longest)
    assert len(longest.encode()) <= worst_case_tokens(task, giellm, 3, 4)


def test_suffix_automaton_spells_exactly_the_substrings():
    text = "ababcab"
    trans = suffix_automaton(text)

    def walk(s: str) -> bool:
        state = 0
        for ch in s:
            if ch not in trans[state]:
                return False
            state = trans[state][ch]
        return True

    subs = {text[i:j] for i in range(len(text)) for j in range(i, len(text) + 1)}
    assert all(walk(s) for s in subs)
    assert not walk("bb") and not walk("abab" + "a") and not walk("ca" + "c")
    assert len(trans) <= 2 * len(text)


def test_grounded_grammar_admits_only_spans_of_the_sentence(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    grammar = task_grammar(task, giellm, CROWDED)
    assert accepts(grammar, render_output(task, giellm, "社会", CROWDED_ITEMS))  # 10 items, a 40-char span
    assert accepts(grammar, "‹社会>固有表現抽出")
    assert not accepts(grammar, "‹社会>固有表現抽出:人名;山田次郎")  # not in the sentence
    assert accepts(grammar, "‹社会>固有表現抽出:人名;山田太郎、鈴木花子")  # any substring, '、' included
    assert not accepts(grammar, "‹社会>固有表現抽出:人名;山田太郎鈴木花子")  # two pieces joined: not in it
    assert not accepts(grammar, "‹社会>固有表現抽出:職業;山田太郎")  # labels stay the closed set
    assert not accepts(grammar, "‹政治>固有表現抽出")


def test_grounded_spans_skip_separator_characters_but_reach_both_sides(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    grammar = task_grammar(task, giellm, "午前10:30;東京:大阪")
    assert accepts(grammar, "‹社会>固有表現抽出:地名;東京:地名;大阪")
    assert not accepts(grammar, "‹社会>固有表現抽出:地名;30;東京")  # a span cannot hold ';'
    assert span_rules("：；").n_starts == 0  # nothing groundable: no item can be written at all
    assert accepts(task_grammar(task, giellm, "：；"), "‹社会>固有表現抽出")
    assert not accepts(task_grammar(task, giellm, "：；"), "‹社会>固有表現抽出:地名;\uffff")
    assert accepts(task_grammar(task, giellm, ""), "‹社会>固有表現抽出:無い")


def test_the_no_item_marker_is_admitted_like_the_parser_admits_it(registry):
    giellm = registry.profiles["giellm"]
    for name, empty in (("scnm_ner", "‹社会>固有表現抽出:無い"), ("tcree_re", "‹IT>Relation Extraction:無い")):
        task = registry.tasks[name]
        assert accepts(task_grammar(task, giellm, "東京で会った。"), empty)
        assert re.fullmatch(task_regex(task, giellm, 0, 0), empty)
    assert not re.fullmatch(task_regex(registry.tasks["scnm_ner"], giellm, 0, 0), "‹社会>固有表現抽出:無い:人名;山田")


def test_grounded_quadruples_keep_closed_event_types(registry):
    task, giellm = registry.tasks["tcree_ee"], registry.profiles["giellm"]
    sentence = "北斗自動車は3月25日、新型車を発売した。"
    grammar = task_grammar(task, giellm, sentence, max_items=1)
    assert accepts(grammar, "‹IT>Event Extraction:発売;発売;新型車;3月25日:")
    assert not accepts(grammar, "‹IT>Event Extraction:発表;発売;新型車;3月26日:")
    assert not accepts(grammar, "‹IT>Event Extraction:発売;発売;新型車;3月25日:発売;発売;新型車;3月25日:")


def test_grounded_spans_never_start_or_end_with_whitespace(registry):
    # the parser strips a span's ends, so such a span could not be read back as the model wrote it
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    grammar = task_grammar(task, giellm, "新型 iPhone 15 Pro\tと　ｿﾌﾄﾊﾞﾝｸ 。")
    assert accepts(grammar, "‹技術>固有表現抽出:製品名;iPhone 15 Pro")  # inner spaces are fine
    assert accepts(grammar, "‹技術>固有表現抽出:製品名;Pro\tと　ｿﾌﾄﾊﾞﾝｸ")
    for span in (" iPhone", "iPhone ", "\t", "　", "Pro\t", "　ｿﾌﾄﾊﾞﾝｸ"):
        assert not accepts(grammar, f"‹技術>固有表現抽出:製品名;{span}"), repr(span)
    assert span_rules("\t　 ").n_starts == 0  # only whitespace: nothing to ground


def test_with_word_boundaries_a_span_is_whole_morphemes_and_every_such_substring_is_admitted(registry):
    from giellm_batch.text.segmentation import morpheme_boundaries

    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    sentence = "山田太郎は東京ドームで 新型 iPhone を発表した。"
    bounds = morpheme_boundaries(sentence)
    grammar = task_grammar(task, giellm, sentence, boundaries=bounds)
    cuts = sorted({0, len(sentence), *bounds})

    def spans(start: int, end: int) -> bool:
        return accepts(grammar, f"‹社会>固有表現抽出:人名;{sentence[start:end]}")

    whole = [(a, b) for a in cuts for b in cuts if a < b and sentence[a:b].strip() == sentence[a:b]
             and not any(c in "。" for c in sentence[a:b])]
    assert whole and all(spans(a, b) for a, b in whole)
    inner = [(a, b) for a in range(len(sentence)) for b in range(a + 1, len(sentence) + 1)
             if (a not in cuts or b not in cuts) and sentence[a:b].strip() == sentence[a:b]
             and sentence.count(sentence[a:b]) == 1]
    assert inner and not any(spans(a, b) for a, b in inner)  # never half a word
    assert spans(0, 4) or spans(0, 2)  # the name (or its first word) is reachable
    # Characters mode still admits the half words.
    assert accepts(task_grammar(task, giellm, sentence), f"‹社会>固有表現抽出:人名;{sentence[1:3]}")


def test_noun_phrase_edges_admit_whole_names_and_nothing_cut_from_them(registry):
    from giellm_batch.text.segmentation import noun_phrase_edges

    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    sentence = "レッドフォックス株式会社は、東京都千代田区に本社を置く。"
    grammar = task_grammar(task, giellm, sentence, 0, *noun_phrase_edges(sentence))

    def spans(span: str) -> bool:
        return accepts(grammar, f"‹社会>固有表現抽出:法人名;{span}")

    assert spans("レッドフォックス株式会社") and spans("東京都千代田区") and spans("本社")
    assert spans("東京都千代田区に本社")  # several runs with what lies between
    cut = ("東京都", "千代田区", "株式会社", "レッドフォックス", "は、東京都千代田区", "置く")
    assert not any(spans(s) for s in cut)
    assert task.span_boundaries == "noun_phrases"  # the registry's choice for names (docs/quality.md)
    titled = "山田氏と鈴木さんが来た。"  # a name may end before the suffix that closes its run
    grammar = task_grammar(task, giellm, titled, 0, *noun_phrase_edges(titled))
    assert all(accepts(grammar, f"‹社会>固有表現抽出:人名;{name}") for name in ("山田", "鈴木", "山田氏"))
    assert not accepts(grammar, "‹社会>固有表現抽出:人名;山")
