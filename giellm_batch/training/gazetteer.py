# ruff: noqa: SIM905  (space-separated word lists read better than 50-item list literals)
"""Name lists for the synthetic corpus, written for this repository (same licence as the project).

Names are built combinatorially (family x given name, place x suffix, brand x product kind), so a
few short lists give thousands of distinct entities. Most are invented; common place names and
government bodies are real words. `synthetic` splits each kind's names into train and held-out
sets by a hash of the name, so held-out records mention entities never seen in training.
"""

from __future__ import annotations

import itertools

FAMILY = ("山田 田中 佐藤 鈴木 高橋 伊藤 渡辺 中村 小林 加藤 吉田 山本 松本 井上 木村 林 清水 山口 森 池田 "
          "橋本 石川 前田 藤田 岡田 後藤 長谷川 村上 近藤 石井 坂本 遠藤 青木 藤井 西村 福田 太田 三浦 藤原 "
          "岡本 中島 小川 原田 竹内 金子 和田 中野 野口 菅原 大塚").split()
GIVEN = ("太郎 翔太 大輔 拓海 健二 優斗 誠 翼 花子 彩花 美咲 陽菜 結衣 さくら 健太 直樹 亮 恵 真由美 由紀 "
         "和也 剛 春香 愛 悠人 蓮 大和 葵 凛 湊 一郎 修 浩二 明美 智子 裕子 達也 隼人 莉子 美穂").split()
CITIES = ("東京 大阪 横浜 名古屋 札幌 福岡 神戸 京都 仙台 広島 千葉 静岡 浜松 新潟 熊本 岡山 金沢 那覇 長野 "
          "松山 鹿児島 青森 盛岡 秋田 山形 福島 宇都宮 前橋 甲府 岐阜 奈良 和歌山 鳥取 松江 徳島 高松 高知 "
          "佐賀 長崎 大分 宮崎 富山 福井 水戸 川崎 堺 姫路 函館 旭川 倉敷").split()
COUNTRIES = "アメリカ 中国 韓国 フランス ドイツ イギリス スペイン イタリア ブラジル インド カナダ タイ".split()
BRANDS = ("さくら 青空 富士 日の出 北斗 東洋 大和 光 未来 アオバ サンライズ ヤマト テクノ 太平洋 アサヒ 星野 "
          "みどり 銀河 オーロラ 白鷺 若葉 朝日 ひかり 菱川 昭和 新星 丸山 カガミ 月島 ハヤテ").split()
COMPANY_KINDS = "電機 製薬 自動車 銀行 商事 ホールディングス 通信 食品 化学 重工 ソフト 不動産 建設 航空 証券".split()
PARTIES = ("自由民政党 国民改革党 立憲未来党 日本維新の風 社会平和党 みどりの党 市民連合 新党さきがけ会 "
           "地域政党ひまわり 改革クラブ 民主連帯 保守の会").split()
MINISTRIES = ("外務省 財務省 文部科学省 厚生労働省 経済産業省 国土交通省 環境省 総務省 防衛省 農林水産省 "
              "法務省 内閣府 金融庁 気象庁 消費者庁 観光庁").split()
TEAM_NAMES = ("ベイサイドFC ユナイテッド スターズ タイガース ドラゴンズ ブルーウイングス イーグルス マリンズ "
              "ファイターズ サンダース レッドホークス ヴィクトリー").split()
ASSOCIATIONS = ("日本サッカー協会 日本陸上競技連盟 日本野球機構 国際オリンピック委員会 日本映画製作者連盟 "
                "日本医師会 全国消費者団体連合会 日本経済団体連合会 日本学術会議 日本赤十字社").split()
FACILITY_HEADS = "港北 中央 セントラル 青葉 みなと 北 桜 緑 ベイ 白鳥 県立 市民 南 西 新".split()
FACILITY_KINDS = "スタジアム ドーム アリーナ 陸上競技場 美術館 総合病院 空港 駅 文化ホール 図書館 公園 球場".split()
PRODUCT_BRANDS = "ミライ ルミナ ノヴァ ゼファー ソラ カイト アクア ステラ ギャラクシア ヒカリ コスモ リーフ".split()
PRODUCT_KINDS = "フォン Pad ブック ウォッチ カメラ クリーナー エアコン イヤホン テレビ ドライヤー".split()
PRODUCT_MODELS = ("", "2", "5", "12", "Pro", "X", "mini", "Air")
EVENT_KINDS = ("マラソン 国際映画祭 音楽祭 博覧会 選手権 女子マラソン 国際会議 ロボット大会 花火大会 "
               "アートフェスティバル 国際ブックフェア サミット").split()
TITLE_PARTS_A = "星 海辺 夜明け 風 最後 青い鳥 月光 雪 春 約束 記憶 光 夏 虹 砂".split()
TITLE_PARTS_B = "の記憶 の約束 の街 の旅人 の夏 たち の庭 の物語 の向こう側 を待つ人 の少女 の果て".split()


def people() -> list[str]:
    return [f + g for f, g in itertools.product(FAMILY, GIVEN)]


def places() -> list[str]:
    return [*CITIES, *(c + "市" for c in CITIES), *COUNTRIES]


def companies() -> list[str]:
    return [b + k for b, k in itertools.product(BRANDS, COMPANY_KINDS)]


def teams() -> list[str]:
    return [c + t for c, t in itertools.product(CITIES, TEAM_NAMES)]


def universities() -> list[str]:
    return [c + "大学" for c in CITIES]


def facilities() -> list[str]:
    return [h + k for h, k in itertools.product(FACILITY_HEADS, FACILITY_KINDS)]


def products() -> list[str]:
    return [b + k + m for b, k, m in itertools.product(PRODUCT_BRANDS, PRODUCT_KINDS, PRODUCT_MODELS)]


def events() -> list[str]:
    return [c + k for c, k in itertools.product(CITIES, EVENT_KINDS)]


def titles() -> list[str]:
    return [a + b for a, b in itertools.product(TITLE_PARTS_A, TITLE_PARTS_B)]


POSITIVE_NOUNS = "成功 勝利 好調 快挙 人気 笑顔 成長 躍進 回復 感動 称賛 期待 喜び 活躍 好評 歓迎 信頼 飛躍".split()
NEGATIVE_NOUNS = "失敗 不振 損失 低迷 批判 不安 赤字 被害 懸念 混乱 不満 減少 敗北 停滞 反発 苦戦 失望 打撃".split()
