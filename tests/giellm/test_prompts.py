from giellm_batch.giellm.prompts import build_prompt, render_output


def test_giellm_prompt_is_byte_exact(registry):
    task = registry.tasks["scnm_ner"]
    prompt = build_prompt(task, registry.profiles["giellm"], "山田太郎は東京に住む。")
    assert prompt == "山田太郎は東京に住む。\n‹社会>‹文芸>‹学問>‹技術>‹自然>\n固有表現抽出"
    assert prompt.encode("utf-8").count("\u2039".encode()) == 5


def test_oiellm_prompt_and_output(registry):
    task = registry.tasks["oiellm_ner"]
    profile = registry.profiles["oiellm"]
    assert build_prompt(task, profile, "山田が東京で講演した。") == "山田が東京で講演した。/NER"
    assert render_output(task, profile, "Sports", [("Person", "A"), ("Location", "B")]) == \
        "Sports/NER/:Person;A:Location;B"


def test_rendered_outputs_follow_the_cards(registry):
    giellm = registry.profiles["giellm"]
    assert render_output(registry.tasks["scnm_ner"], giellm, "社会", [("人名", "山田太郎"), ("地名", "東京")]) == \
        "‹社会>固有表現抽出:人名;山田太郎:地名;東京"
    assert render_output(registry.tasks["tcree_re"], giellm, "スポーツ", [("メッシ", "所属", "バルセロナ")]) == \
        "‹スポーツ>Relation Extraction:メッシ;所属;バルセロナ:"
    assert render_output(registry.tasks["scnm_ner"], giellm, "社会", []) == "‹社会>固有表現抽出"
