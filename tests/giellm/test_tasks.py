from pathlib import Path

import pytest

from giellm_batch.giellm.tasks import load_task_registry

DEFAULT_TASKS = {"scnm_ner", "tcree_re", "tcree_ee", "scpos_rw", "scpos_n", "scpos_adj", "scpos_n_adj", "oiellm_ner"}


def test_default_registry_has_the_papers_subtasks(registry):
    assert set(registry.tasks) == DEFAULT_TASKS
    assert registry.tasks["tcree_re"].item_kind == "triple"
    assert registry.tasks["tcree_re"].span_fields == ("head", "tail")
    assert registry.tasks["tcree_ee"].item_kind == "quadruple"
    assert registry.tasks["scnm_ner"].iw == "固有表現抽出"
    assert registry.tasks["oiellm_ner"].profile == "oiellm"
    assert registry.tasks["oiellm_ner"].text_labels == ()
    assert registry.profiles["giellm"].label_open == "\u2039"


def test_bad_registry_entry_says_what_to_fix(tmp_path: Path):
    path = tmp_path / "tasks.yaml"
    path.write_text("tasks:\n  x:\n    iw: NER\n    item_kind: pentuple\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tasks.x.item_kind: 'pentuple' is not one of"):
        load_task_registry(path)
    path.write_text("tasks:\n  x:\n    iw: NER\n    item_kind: triple\n    fields: [a, b]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="a triple has 3 fields, got 2"):
        load_task_registry(path)


def test_table_reference_in_docs_is_current():
    from giellm_batch.tools.schema_doc import render
    from tests.conftest import REPO

    assert (REPO / "docs" / "tables.md").read_text(encoding="utf-8") == render(), \
        "run `giellm-batch schema-doc > docs/tables.md`"
