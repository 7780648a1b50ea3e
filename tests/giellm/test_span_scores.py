import pytest

from giellm_batch.giellm.span_scores import score_entities

GOLD = [[("人名", "山田太郎"), ("地名", "東京"), ("法人名", "トヨタ")], [("地名", "大阪"), ("地名", "大阪")], []]
PRED = [[("人名", "山田太郎"), ("人名", "東京"), ("その他の組織名", "トヨタ")], [("地名", "大阪")], [("人名", "田")]]


def test_scores_match_hand_computed_values():
    s = score_entities(GOLD, PRED, {"法人名": "組織", "その他の組織名": "組織"}, repeated=[0, 2, 0])
    assert (s.untyped.gold, s.untyped.predicted, s.untyped.matched) == (5, 5, 4)  # 大阪 found once of twice
    assert (s.typed.matched, s.merged.matched) == (2, 3)
    assert s.untyped.f1 == pytest.approx(0.8) and s.typed.f1 == pytest.approx(0.4)
    assert s.wl == pytest.approx(2 / 5)
    assert s.by_type["地名"].recall == pytest.approx(1 / 3) and s.by_type["人名"].recall == 1.0
    assert s.short_share == pytest.approx(3 / 5) and s.repeated_share == pytest.approx(2 / 7)


def test_answers_must_pair_up_with_gold():
    with pytest.raises(ValueError, match="2 gold answers but 1 predicted"):
        score_entities(GOLD[:2], PRED[:1])
