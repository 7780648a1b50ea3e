import re

from giellm_batch.constraints import task_regex, worst_case_tokens


def test_regex_admits_well_formed_and_rejects_the_rest(registry):
    task, giellm = registry.tasks["scnm_ner"], registry.profiles["giellm"]
    pattern = re.compile(task_regex(task, giellm, max_items=2, max_span_chars=5))
    assert pattern.fullmatch("‹社会>固有表現抽出")
    assert pattern.fullmatch("‹社会>固有表現抽出:人名;山田太郎:地名;東京")
    assert not pattern.fullmatch("‹社会>固有表現抽出:人名;山田太郎:地名;東京:地名;大阪")  # > max_items
    assert not pattern.fullmatch("‹政治>固有表現抽出")  # not a candidate text label
    assert not pattern.fullmatch("‹社会>固有表現抽出:職業;選手")  # not an entity type
    assert not pattern.fullmatch("‹社会>固有表現抽出:人名;山田太郎さん")  # span > max_span_chars


def test_triples_close_with_a_colon_and_worst_case_is_an_upper_bound(registry):
    task, giellm = registry.tasks["tcree_re"], registry.profiles["giellm"]
    pattern = re.compile(task_regex(task, giellm, max_items=3, max_span_chars=4))
    assert pattern.fullmatch("‹IT>Relation Extraction:A社;買収;B社:")
    assert not pattern.fullmatch("‹IT>Relation Extraction:A社;買収;B社")
    longest = "‹スポーツ>Relation Extraction" + ":𠀋𠀋𠀋𠀋;所属;𠀋𠀋𠀋𠀋" * 3 + ":"
    assert pattern.fullmatch(longest)
    assert len(longest.encode()) <= worst_case_tokens(task, giellm, 3, 4)
