"""The tech-strength evaluation (科创评价) driven by its versioned config.

Every official threshold on both sides (a flipped ``>=`` fails a test), the
automatic routes, the "no data" path, a config change that changes scores
without code, the config's validation errors naming the key path, its hash,
the bilingual strengths and weaknesses, and no features at all breaking it.
"""

from __future__ import annotations

import copy
import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.scoring.tech import Indicator, TechEvaluation, evaluate_tech
from sandu.scoring.tech_config import TechConfigError, load_tech_config, parse_tech_config, tech_config_from_document
from sandu.sources.profile import canonical_sha256

CONFIG = load_tech_config()
RAW = resources.files("sandu.scoring.models").joinpath("tech_v1.toml").read_text(encoding="utf-8")
DOC = tomllib.loads(RAW)
YI_FEN = 100_000_000 * 100  # 1亿元 in fen
INSIDE_SIZE = {"headcount": 100, "revenue_fen": YI_FEN, "total_assets_fen": YI_FEN}


def ev(**features: Any) -> TechEvaluation:
    return evaluate_tech(features, CONFIG)


def part(e: TechEvaluation, key: str) -> Indicator:
    return next(p for p in (*e.most.parts, *e.innovative.parts, *e.indicators) if p.key == key)


def doc_with(edit) -> dict[str, Any]:
    d = copy.deepcopy(DOC)
    edit(d)
    return d


def refusal(d: dict[str, Any]) -> TechConfigError:
    with pytest.raises(TechConfigError) as e:
        tech_config_from_document(d)
    return e.value


# -- the config: identity ---------------------------------------------------------------------------


def test_the_shipped_config_is_named_versioned_and_hashed():
    assert (CONFIG.name, CONFIG.version, CONFIG.label) == ("sandu-tech", "2026.1", "sandu-tech@2026.1")
    assert CONFIG.sha256 == canonical_sha256(DOC)
    # every decision records it: the hash of the shipped config must not drift unnoticed
    assert CONFIG.sha256 == "05bebb5fe1571c138cf5a743685d84681c248d5831aaaeb7dc2b4cd4442b6f8b"
    assert CONFIG.grade_names == ("A", "B", "C", "D")
    assert sum(CONFIG.weights.model_dump().values()) == 100


def test_the_hash_is_of_the_content_not_the_layout():
    assert parse_tech_config((RAW + "\n# a comment\n").encode()).sha256 == CONFIG.sha256
    assert parse_tech_config(RAW.replace("\n\n", "\n").encode()).sha256 == CONFIG.sha256
    changed = parse_tech_config(RAW.replace('min = "0.06"\npoints = 50', 'min = "0.07"\npoints = 50').encode())
    assert changed.sha256 != CONFIG.sha256 and changed.label == CONFIG.label


@pytest.mark.parametrize(("score", "grade"), [("100", "A"), ("60", "A"), ("59.9", "B"), ("45", "B"), ("44.9", "C"), ("30", "C"), ("29.9", "D"), ("0", "D")])
def test_grade_bands_on_both_sides(score, grade):
    assert CONFIG.grade_of(Decimal(score)) == grade


# -- MOST 科技型中小企业: every band on both sides ----------------------------------------------------

STAFF = [(0.30, 20), (0.2999, 16), (0.25, 16), (0.2499, 12), (0.20, 12), (0.1999, 8), (0.15, 8), (0.1499, 4), (0.10, 4), (0.0999, 0), (0.8, 20), (0.0, 0)]
RD_SALES = [(0.06, 50), (0.0599, 40), (0.05, 40), (0.0499, 30), (0.04, 30), (0.0399, 20), (0.03, 20), (0.0299, 10), (0.02, 10), (0.0199, 0), (0.3, 50)]


@pytest.mark.parametrize(("ratio", "points"), STAFF)
def test_most_tech_staff_bands(ratio, points):
    e = ev(tech_staff_ratio=ratio)
    assert part(e, "most.tech_staff_ratio").points == points == e.most.points


@pytest.mark.parametrize(("ratio", "points"), RD_SALES)
def test_most_rd_bands(ratio, points):
    e = ev(rd_ratio=ratio)
    assert part(e, "most.rd_ratio").points == points == e.most.points


def test_ratios_are_compared_exactly_not_as_floats():
    # 0.1 + 0.2 = 0.30000000000000004 as a float; 0.07 * 3 = 0.21000000000000002
    assert part(ev(tech_staff_ratio=0.3), "most.tech_staff_ratio").points == 20
    assert part(ev(rd_ratio=Decimal("0.0599999999")), "most.rd_ratio").points == 40
    assert part(ev(rd_ratio=Decimal("0.06")), "most.rd_ratio").points == 50


@pytest.mark.parametrize(
    ("invention", "utility", "software", "points"),
    [(1, 0, 0, 30), (0, 0, 0, 0), (7, 9, 9, 30), (0, 4, 0, 24), (0, 2, 2, 24), (0, 0, 5, 24), (0, 3, 0, 18), (0, 1, 1, 12), (0, 0, 1, 6),
     (None, None, None, 0), (0, None, 3, 18)],
)
def test_most_ip_class_i_and_class_ii_counts(invention, utility, software, points):
    e = ev(invention_patents=invention, utility_models=utility, software_copyrights=software)
    assert part(e, "most.ip").points == points == e.most.points
    assert part(e, "most.ip").has_data is not (invention is None and utility is None and software is None)


def test_most_passes_at_exactly_60_and_fails_at_58():
    at_60 = ev(tech_staff_ratio=0.10, rd_ratio=0.06, invention_patents=0, utility_models=1, **INSIDE_SIZE)
    assert at_60.most.points == 4 + 50 + 6 == 60 and at_60.most_pass and at_60.most.automatic is None
    assert at_60.most.rule.en == "R&D 6.0% → 50, staff 10.0% → 4, IP 0 Class-I, 1 Class-II → 6 = 60 ≥ 60"
    assert at_60.most.rule.zh == "研发 6.0% → 50，科技人员 10.0% → 4，知识产权 一类 0 项、二类 1 项 → 6，合计 60 ≥ 60"
    at_58 = ev(tech_staff_ratio=0.20, rd_ratio=0.05, utility_models=1, **INSIDE_SIZE)
    assert at_58.most.points == 12 + 40 + 6 == 58 and not at_58.most_pass
    assert at_58.most.rule.en.endswith("= 58 < 60")


def test_most_tech_staff_points_must_not_be_0():
    e = ev(tech_staff_ratio=0.0999, rd_ratio=0.06, invention_patents=1, **INSIDE_SIZE)
    assert e.most.points == 80 and not e.most_pass
    assert e.most.rule.en.endswith("tech-staff points are 0, which disqualifies")
    e = ev(tech_staff_ratio=0.10, rd_ratio=0.06, invention_patents=1, **INSIDE_SIZE)
    assert e.most.points == 84 and e.most_pass


@pytest.mark.parametrize(
    ("key", "limit"), [("headcount", 500), ("revenue_fen", 2 * YI_FEN), ("total_assets_fen", 2 * YI_FEN)],
)
def test_most_size_limits_on_both_sides(key, limit):
    strong = {"tech_staff_ratio": 0.4, "rd_ratio": 0.1, "invention_patents": 3, **INSIDE_SIZE}
    assert ev(**{**strong, key: limit}).most_pass
    over = ev(**{**strong, key: limit + 1})
    assert not over.most_pass and over.most.points == 100
    assert over.most.rule.en.startswith("size limit exceeded: ")
    # the size limits hold also against an automatic certificate
    assert not ev(**{**strong, key: limit + 1, "certifications": ["高新技术企业"]}).most_pass


def test_size_limits_without_data_are_reported_not_verified():
    e = ev(tech_staff_ratio=0.4, rd_ratio=0.1, invention_patents=3)
    assert e.most_pass and e.most.not_verified == ("headcount", "revenue_fen", "total_assets_fen")
    assert e.most.rule.en.endswith("= 100 ≥ 60; not verified (no data): headcount, sales, total assets")
    assert e.most.rule.zh.endswith("未核实（缺少数据）：职工人数、销售收入、资产总额")
    assert ev(**INSIDE_SIZE, tech_staff_ratio=0.4).most.not_verified == ()


@pytest.mark.parametrize("cert", ["高新技术企业", "国家科学技术奖", "省部级以上研发机构", "主导制定国家标准或行业标准"])
def test_most_automatic_pass(cert):
    e = ev(certifications=[cert], **INSIDE_SIZE)
    assert e.most.points == 0 and e.most_pass and e.most.automatic == cert
    assert e.most.rule == type(e.most.rule)(f"直接通过：持有{cert}", f"automatic: {cert} certificate")


@pytest.mark.parametrize("cert", ["专精特新", "小巨人", "科技型中小企业", "其他"])
def test_other_certificates_do_not_pass_most(cert):
    e = ev(certifications=[cert], **INSIDE_SIZE)
    assert not e.most_pass and e.most.automatic is None


# -- MIIT 创新型中小企业 ------------------------------------------------------------------------------

# innovation 20 (Class-I 10 + R&D 2% 10), growth 15 (revenue +10% 15, debt 80% 0), specialisation 15 (other field 5 + main share 55% 10)
AT_MINIMA = {"invention_patents": 1, "rd_ratio": 0.02, "revenue_growth": 0.10, "debt_to_assets": 0.80,
             "strategic_emerging_industry": False, "main_business_share": 0.55}


def groups(e: TechEvaluation) -> tuple[int, int, int]:
    p = {x.key: int(x.points) for x in e.innovative.parts}
    return (p["innovative.ip"] + p["innovative.rd_ratio"], p["innovative.revenue_growth"] + p["innovative.debt_ratio"],
            p["innovative.field"] + p["innovative.main_business_share"])


@pytest.mark.parametrize(
    ("key", "value", "points"),
    [("rd_ratio", 0.05, 20), ("rd_ratio", 0.0499, 15), ("rd_ratio", 0.03, 15), ("rd_ratio", 0.0299, 10), ("rd_ratio", 0.02, 10), ("rd_ratio", 0.0199, 5),
     ("rd_ratio", 0.01, 5), ("rd_ratio", 0.0099, 0),
     ("revenue_growth", 0.15, 20), ("revenue_growth", 0.1499, 15), ("revenue_growth", 0.10, 15), ("revenue_growth", 0.0999, 10),
     ("revenue_growth", 0.05, 10), ("revenue_growth", 0.0499, 5), ("revenue_growth", 0.0, 5), ("revenue_growth", -0.0001, 0),
     ("debt_to_assets", 0.5499, 10), ("debt_to_assets", 0.55, 5), ("debt_to_assets", 0.7499, 5), ("debt_to_assets", 0.75, 0),
     ("main_business_share", 0.70, 20), ("main_business_share", 0.6999, 15), ("main_business_share", 0.60, 15), ("main_business_share", 0.5999, 10),
     ("main_business_share", 0.55, 10), ("main_business_share", 0.5499, 5), ("main_business_share", 0.50, 5), ("main_business_share", 0.4999, 0)],
)
def test_innovative_bands_on_both_sides(key, value, points):
    name = {"debt_to_assets": "debt_ratio"}.get(key, key)
    assert part(ev(**{key: value}), f"innovative.{name}").points == points


@pytest.mark.parametrize(
    ("features", "points"),
    [({"high_value_invention_patents": 1}, 20), ({"invention_patents": 1}, 10), ({"invention_patents": 0, "utility_models": 1}, 5),
     ({"invention_patents": 0, "utility_models": 0, "software_copyrights": 0}, 0), ({"strategic_emerging_industry": True}, 10),
     ({"strategic_emerging_industry": False}, 5)],
)
def test_innovative_ip_and_field(features, points):
    key = "innovative.field" if "strategic_emerging_industry" in features else "innovative.ip"
    assert part(ev(**features), key).points == points


def test_innovative_group_minima_hold_exactly_at_the_minimum():
    e = ev(**AT_MINIMA)
    assert groups(e) == (20, 15, 15) and e.innovative.points == 50 and not e.innovative.passed  # each minimum met, the total not
    assert e.innovative.rule.en == "innovation 20 ≥ 20, growth 15 ≥ 15, specialisation 15 ≥ 15, total 50 < 60 → no"


BEST = {"high_value_invention_patents": 1, "rd_ratio": 0.05, "revenue_growth": 0.15, "debt_to_assets": 0.3,
        "strategic_emerging_industry": True, "main_business_share": 0.7}


@pytest.mark.parametrize(
    ("below", "at", "failing", "passing"),
    [
        # innovation: Class-II 5 + R&D 2% 10 = 15 | R&D 3% 15 → 20
        ({"high_value_invention_patents": 0, "invention_patents": 0, "utility_models": 1, "rd_ratio": 0.02}, {"rd_ratio": 0.03},
         "innovation 15 < 20", "innovation 20 ≥ 20"),
        # growth: revenue +5% 10 + debt 80% 0 = 10 | revenue +10% 15 → 15
        ({"revenue_growth": 0.05, "debt_to_assets": 0.8}, {"revenue_growth": 0.10}, "growth 10 < 15", "growth 15 ≥ 15"),
        # specialisation: another field 5 + main share 54.99% 5 = 10 | main share 55% 10 → 15
        ({"strategic_emerging_industry": False, "main_business_share": 0.5499}, {"main_business_share": 0.55}, "specialisation 10 < 15", "specialisation 15 ≥ 15"),
    ],
)
def test_a_group_just_below_its_minimum_fails_even_with_a_passing_total(below, at, failing, passing):
    assert ev(**BEST).innovative.passed and ev(**BEST).innovative.points == 100
    fail = ev(**{**BEST, **below})
    assert fail.innovative.points >= 60 and not fail.innovative.passed and failing in fail.innovative.rule.en
    ok = ev(**{**BEST, **below, **at})
    assert ok.innovative.passed and passing in ok.innovative.rule.en


def test_innovative_total_passes_at_60_and_fails_at_55():
    at_60 = ev(**{**AT_MINIMA, "rd_ratio": 0.05})  # innovation 30
    assert groups(at_60) == (30, 15, 15) and at_60.innovative.points == 60 and at_60.innovative.passed
    assert at_60.innovative.rule.en == "innovation 30 ≥ 20, growth 15 ≥ 15, specialisation 15 ≥ 15, total 60 ≥ 60 → yes"
    at_55 = ev(**{**AT_MINIMA, "rd_ratio": 0.03})  # innovation 25
    assert at_55.innovative.points == 55 and not at_55.innovative.passed


def _innovative_config(**values: int):
    return tech_config_from_document(doc_with(lambda d: d["innovative"].update(values)))


@pytest.mark.parametrize("key", ["min_innovation", "min_growth", "min_specialisation"])
def test_each_group_minimum_is_inclusive(key):
    """With the total out of the way (pass at 50), the firm sitting exactly on each official minimum
    passes, and a config one point stricter on that minimum fails it."""
    lenient = _innovative_config(pass_points=50)
    assert groups(ev(**AT_MINIMA)) == (20, 15, 15) and evaluate_tech(AT_MINIMA, lenient).innovative.passed
    stricter = _innovative_config(pass_points=50, **{key: getattr(CONFIG.innovative, key) + 1})
    assert not evaluate_tech(AT_MINIMA, stricter).innovative.passed


def test_the_total_minimum_is_inclusive():
    at_60 = {**AT_MINIMA, "rd_ratio": 0.05}
    assert evaluate_tech(at_60, CONFIG).innovative.passed
    assert not evaluate_tech(at_60, _innovative_config(pass_points=61)).innovative.passed


@pytest.mark.parametrize("cert", ["高新技术企业", "知识产权示范企业", "省级科技奖励"])
def test_innovative_automatic_route(cert):
    e = ev(certifications=[cert])
    assert e.innovative.passed and e.innovative.automatic == cert and e.innovative.points == 0
    assert e.innovative.rule.en.startswith(f"automatic: {cert}")
    assert not ev(certifications=["专精特新"]).innovative.passed


# -- no data ------------------------------------------------------------------------------------------


def test_no_data_scores_0_and_says_what_is_missing():
    e = ev()
    assert e.score == Decimal("0.0") and e.grade == "D" and not e.most_pass and not e.innovative.passed
    assert not any(i.has_data for i in e.indicators) and all(i.points == 0 for i in e.indicators)
    assert e.strengths == ()
    assert [w.zh for w in e.weaknesses] == ["缺少科技型中小企业评价数据（0/20 分）", "缺少资质认定数据（0/15 分）", "缺少创新型中小企业评价数据（0/10 分）"]
    assert [w.en for w in e.weaknesses] == ["no data on MOST tech-based SME score (0/20)", "no data on certifications (0/15)",
                                            "no data on MIIT innovative SME score (0/10)"]
    assert part(e, "team_education").explanation.en == "no data on founder's education: 0/5"
    assert part(e, "team_education").explanation.zh == "缺少创始人学历数据：0/5"


def test_an_empty_certificate_list_is_data_and_a_missing_one_is_not():
    held_none = part(ev(certifications=[]), "certifications")
    assert held_none.has_data and held_none.points == 0 and held_none.value is not None and held_none.value.en == "none"
    assert not part(ev(certifications=None), "certifications").has_data


@pytest.mark.parametrize(
    ("key", "value"),
    [("tech_staff_ratio", "0.3"), ("tech_staff_ratio", True), ("tech_staff_ratio", float("nan")), ("rd_ratio", float("inf")), ("rd_ratio", [0.1]),
     ("invention_patents", -1), ("invention_patents", 1.0), ("invention_patents", True), ("headcount", "100"), ("founder_education", "phd"),
     ("certifications", "高新技术企业"), ("strategic_emerging_industry", 1)],
)
def test_malformed_features_are_no_data_never_a_guess(key, value):
    e = ev(**{key: value})
    assert e.score == Decimal("0.0")
    shown = {"tech_staff_ratio": "most.tech_staff_ratio", "rd_ratio": "most.rd_ratio", "invention_patents": "most.ip", "headcount": "invention_density",
             "founder_education": "team_education", "certifications": "certifications", "strategic_emerging_industry": "innovative.field"}[key]
    assert not part(e, shown).has_data


def test_optional_features_a_later_source_may_supply():
    e = ev(founder_education="doctorate", management_tenure_years=12, tech_revenue_share=0.65, invention_patents=10, invention_patents_12m_ago=7)
    assert [(part(e, k).points, part(e, k).has_data) for k in ("team_education", "team_tenure", "commercialisation", "invention_trend")] == [
        (5, True), (5, True), (5, True), (5, True)]
    assert part(e, "invention_trend").value.en == "+3 in 12 months"
    assert part(ev(invention_patents=10, invention_patents_12m_ago=8), "invention_trend").points == 4


# -- the score, strengths and weaknesses ----------------------------------------------------------------

S3_LIKE = {"tech_staff_ratio": 0.31875, "rd_ratio": 0.07, "rd_growth": 0.111111, "revenue_growth": 0.111111, "headcount": 160,
           "revenue_fen": 60_000_000_000 // 10, "invention_patents": 9, "utility_models": 31, "software_copyrights": 6,
           "certifications": ["专精特新", "科技型中小企业", "高新技术企业"]}


def test_a_strong_firm_scores_and_reads_in_two_languages():
    e = ev(**S3_LIKE)
    # MOST 100 → 20; MIIT 45 (innovation 30, growth 15) → 4.5; density 5.63/100 → 10; R&D 7% → 6; R&D +11% → 4; staff 31.9% → 8; certificates 14
    assert e.score == Decimal("66.5") and e.grade == "A" and e.most_pass and e.innovative.passed
    assert [s.zh for s in e.strengths] == [
        "科技型中小企业评价：100/100，符合，缺少资产总额数据（20/20 分）",
        "资质认定：专精特新、科技型中小企业、高新技术企业（14/15 分）",
        "发明专利密度：每百人 5.62 项（10/10 分）",
    ]
    assert [s.en for s in e.strengths] == [
        "MOST tech-based SME score: 100/100, qualified, no data on total assets (20/20)",
        "certifications: 专精特新, 科技型中小企业, 高新技术企业 (14/15)",
        "invention-patent density: 5.62 per 100 staff (10/10)",
    ]
    assert [w.en for w in e.weaknesses] == [
        "weak MIIT innovative SME score: 45/100, qualified, no data on debt ratio, main product's field, main-business share (4.5/10)",
        "no data on invention-patent trend (0/5)",
        "no data on founder's education (0/5)",
    ]
    assert e.weaknesses[1].zh == "缺少发明专利增长数据（0/5 分）"


def test_strengths_and_weaknesses_are_the_top_three_in_order():
    e = ev(**S3_LIKE)
    earned = sorted((i for i in e.indicators if i.has_data and i.points > 0), key=lambda i: -i.points)
    assert len(earned) > 3 and len(e.strengths) == 3
    assert [s.en.split(":")[0] for s in e.strengths] == [i.name.en for i in earned[:3]]
    lost = [i.max_points - i.points for i in e.indicators]
    assert len([x for x in lost if x > 0]) > 3 and len(e.weaknesses) == 3
    assert sorted(lost, reverse=True)[:3] == [Decimal("5.5"), 5, 5]


def test_the_score_adds_up_the_indicators_and_is_at_most_100():
    top = ev(tech_staff_ratio=0.5, rd_ratio=0.12, rd_growth=0.3, revenue_growth=0.2, debt_to_assets=0.3, headcount=100, revenue_fen=YI_FEN,
             total_assets_fen=YI_FEN, invention_patents=10, invention_patents_12m_ago=5, high_value_invention_patents=1,
             strategic_emerging_industry=True, main_business_share=0.9, founder_education="doctorate", management_tenure_years=15,
             tech_revenue_share=0.8, certifications=["小巨人", "专精特新", "高新技术企业", "科技型中小企业"])
    assert top.score == Decimal("100.0") and top.grade == "A" and top.weaknesses == ()
    assert sum(i.max_points for i in top.indicators) == 100
    assert part(top, "certifications").points == 15  # 24 capped at the weight


def test_to_json_carries_the_whole_evaluation():
    j = ev(**S3_LIKE).to_json()
    assert (j["model"], j["sha256"], j["score"], j["grade"], j["most_pass"]) == ("sandu-tech@2026.1", CONFIG.sha256, "66.5", "A", True)
    assert j["most"]["passed"] and j["most"]["automatic"] == "高新技术企业" and j["most"]["rule"]["en"].startswith("automatic: 高新技术企业 certificate")
    assert j["innovative"]["rule"]["zh"].startswith("直接认定：持有高新技术企业")
    assert [i["key"] for i in j["indicators"]][:3] == ["most", "innovative", "invention_density"]
    assert j["indicators"][1]["points"] == "4.5" and j["indicators"][0]["points"] == "20"
    assert len(j["strengths"]) == 3 and all(set(s) == {"zh", "en"} for s in j["strengths"] + j["weaknesses"])


# -- a config change changes scores without code ----------------------------------------------------------


def test_a_changed_config_file_changes_the_scores(tmp_path: Path):
    edited = (RAW.replace('version = "2026.1"', 'version = "2026.2"')
              .replace('[[most.rd_ratio]]\nmin = "0.06"', '[[most.rd_ratio]]\nmin = "0.08"')
              .replace('[[grades]]\ngrade = "A"\nmin_score = "60"', '[[grades]]\ngrade = "A"\nmin_score = "65"'))
    path = tmp_path / "tech_v2.toml"
    path.write_text(edited, encoding="utf-8")
    other = load_tech_config(path)
    assert other.label == "sandu-tech@2026.2" and other.sha256 != CONFIG.sha256
    before, after = evaluate_tech(S3_LIKE, CONFIG), evaluate_tech(S3_LIKE, other)
    assert part(before, "most.rd_ratio").points == 50 and part(after, "most.rd_ratio").points == 40  # 7% is now below the top band
    assert after.most_pass and after.most.points == 90  # still qualified (automatically), but 90 points weigh 18, not 20
    assert (before.score, before.grade) == (Decimal("66.5"), "A") and (after.score, after.grade) == (Decimal("64.5"), "B")  # and A starts at 65
    assert after.to_json()["model"] == "sandu-tech@2026.2"


# -- the config: validation names the key path ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["most"].pop("pass_points"), "most.pass_points: missing"),
        (lambda d: d.pop("grades"), "grades: missing"),
        (lambda d: d["bank"]["rd_intensity"][0].__setitem__("colour", 1), "bank.rd_intensity[0].colour: unknown key (allowed: min, points)"),
        (lambda d: d["weights"].__setitem__("awards", 1), "weights.awards: unknown key (allowed: most, innovative, invention_density, invention_trend, "
                                                           "rd_intensity, rd_growth, tech_staff, team_education, team_tenure, certifications, commercialisation)"),
        (lambda d: d.__setitem__("extra", {}), "extra: unknown key (allowed: model, weights, grades, most, innovative, bank)"),
        (lambda d: d["most"]["rd_ratio"][1].__setitem__("min", "0.07"),
         "most.rd_ratio[1].min: must be listed from the best band down, strictly decreasing; '0.07' follows '0.06'"),
        (lambda d: d["most"]["rd_ratio"][1].__setitem__("min", "0.06"),
         "most.rd_ratio[1].min: must be listed from the best band down, strictly decreasing; '0.06' follows '0.06'"),
        (lambda d: d["bank"]["tech_staff"][2].__setitem__("points", 9), "bank.tech_staff[2].points: a lower band may not give more points; 9 follows 8"),
        (lambda d: d["innovative"]["debt_ratio"][1].__setitem__("below", "0.50"),
         "innovative.debt_ratio[1].below: must be listed from the best band down, strictly increasing; '0.50' follows '0.55'"),
        (lambda d: d["most"]["class_ii"][1].__setitem__("min", 5), "most.class_ii[1].min: must be listed from the best band down, strictly decreasing; '5' follows '4'"),
        (lambda d: d["weights"].__setitem__("most", 101), "weights.most: Input should be less than or equal to 100, got 101"),
        (lambda d: d["weights"].__setitem__("most", -1), "weights.most: Input should be greater than or equal to 0, got -1"),
        (lambda d: d["weights"].__setitem__("most", 21), "weights: must add up to 100, got 101 (most 21, innovative 10, invention_density 10, invention_trend 5, "
                                                         "rd_intensity 10, rd_growth 5, tech_staff 10, team_education 5, team_tenure 5, certifications 15, "
                                                         "commercialisation 5)"),
        (lambda d: d["weights"].__setitem__("most", 20.0), "weights.most: Input should be a valid integer, got 20.0"),
        (lambda d: d["weights"].__setitem__("most", True), "weights.most: Input should be a valid integer, got True"),
        (lambda d: d["most"]["rd_ratio"][0].__setitem__("min", 0.06), "most.rd_ratio[0].min: must be a decimal string like \"0.30\", got 0.06"),
        (lambda d: d["most"]["rd_ratio"][0].__setitem__("min", "six"), "most.rd_ratio[0].min: 'six' is not a decimal number"),
        (lambda d: (d["weights"].__setitem__("rd_intensity", 8), d["weights"].__setitem__("most", 22)),
         "bank.rd_intensity[0].points: must be within 0..8 (the weight of rd_intensity), got 10"),
        (lambda d: d["bank"]["team_education"].__setitem__("doctorate", 6), "bank.team_education.doctorate: must be within 0..5 (the weight of team_education), got 6"),
        (lambda d: d["most"].__setitem__("class_i_points", 25),
         "most: the best bands (tech_staff_ratio 20 + rd_ratio 50 + class_i_points 25) must add up to 100, got 95"),
        (lambda d: d["innovative"].__setitem__("min_growth", 31), "innovative.min_growth: must be within 0..30 (the most its group can score), got 31"),
        (lambda d: d["innovative"].__setitem__("strategic_emerging_points", 5),
         "innovative: innovation 40 + growth 30 + specialisation 25 must add up to 100, got 95"),
        (lambda d: d["grades"][1].__setitem__("min_score", "80"),
         "grades[1].min_score: must be listed from the best grade down, strictly decreasing; '80' follows '60'"),
        (lambda d: d["grades"][3].__setitem__("min_score", "1"), 'grades[3].min_score: the last grade must have min_score "0" so that every score has a grade'),
        (lambda d: d["grades"][1].__setitem__("grade", "A"), "grades[1].grade: grades must be listed in the order A/B/C/D/E, each once; A follows A"),
        (lambda d: d["grades"][1].__setitem__("grade", "F"), "grades[1].grade: Input should be 'A', 'B', 'C', 'D' or 'E', got 'F'"),
    ],
)
def test_config_errors_name_the_key_path_the_reason_and_what_is_allowed(edit, message):
    e = refusal(doc_with(edit))
    assert str(e) == message
    assert e.path == message.split(": ")[0] and e.reason == message.split(": ", 1)[1]


def test_several_problems_are_listed_and_a_non_toml_file_is_refused():
    e = refusal(doc_with(lambda d: (d["most"].pop("pass_points"), d["weights"].__setitem__("most", 101))))
    assert str(e) == "weights.most: Input should be less than or equal to 100, got 101; most.pass_points: missing" and len(e.problems) == 2
    with pytest.raises(TechConfigError) as bad:
        parse_tech_config(b"[model\nname = 1")
    assert bad.value.path == "" and str(bad.value).startswith("tech config is not valid TOML: ")


# -- robustness ---------------------------------------------------------------------------------------------

FEATURE_NAMES = ["tech_staff_ratio", "headcount", "rd_ratio", "rd_growth", "revenue_fen", "revenue_growth", "invention_patents", "utility_models",
                 "software_copyrights", "certifications", "total_assets_fen", "debt_to_assets", "high_value_invention_patents",
                 "invention_patents_12m_ago", "strategic_emerging_industry", "main_business_share", "founder_education",
                 "management_tenure_years", "tech_revenue_share"]
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True), st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=5), st.lists(st.one_of(st.text(max_size=8), st.integers(), st.sampled_from(["高新技术企业", "专精特新", "小巨人"])), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.sampled_from(["doctorate", "master", "bachelor", "college", "other"]),
)
GOOD_VALUE = st.one_of(st.floats(0, 2), st.integers(0, 10**12), st.just(None))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FEATURE_NAMES) | st.text(max_size=6), ANY_VALUE | GOOD_VALUE, max_size=len(FEATURE_NAMES)))
def test_any_features_give_a_score_within_0_and_100_and_never_raise(features):
    e = evaluate_tech(features, CONFIG)
    assert 0 <= e.score <= 100 and e.score == e.score.quantize(Decimal("0.1"))
    assert e.grade == CONFIG.grade_of(e.score)
    assert 0 <= e.most.points <= 100 and 0 <= e.innovative.points <= 100
    assert all(0 <= i.points <= i.max_points for i in e.indicators)
    assert len(e.strengths) <= 3 and len(e.weaknesses) <= 3
    assert e.score == sum((i.points for i in e.indicators), Decimal(0)).quantize(Decimal("0.1"))
    e.to_json()


@pytest.mark.parametrize("features", [None, [], "features", 3])
def test_features_that_are_not_a_dict_are_no_data(features):
    assert evaluate_tech(features, CONFIG).score == Decimal("0.0")  # type: ignore[arg-type]


# -- the decision page ------------------------------------------------------------------------------------------


def test_the_decision_page_shows_score_grade_qualifications_strengths_and_weaknesses():
    from sandu.web.render import templates

    e = ev(**S3_LIKE)
    d = SimpleNamespace(id="d-1", enterprise_name="乐清华创电子科技有限公司", outcome="partial", comprehensive_limit_fen=0, offers=[], reasons=[],
                        tech_grade=e.grade, risk_grade="A", tech_uplift_fen=0, rule_hits=[], scores={"tech": e.to_json()},
                        policy_version="p@1", timings_ms={"total_ms": 1})
    html = templates.get_template("decision.html").render(d=d, outcome_text="部分批准", session=None)
    assert '科创评价 <strong id="tech-grade">A</strong> 级（<span id="tech-score">66.5</span> 分）' in html
    assert '<dd id="tech-most" data-passed="true">符合：直接通过：持有高新技术企业' in html
    assert '<dd id="tech-innovative" data-passed="true">符合：直接认定：持有高新技术企业' in html
    for s in (*e.strengths, *e.weaknesses):
        assert s.zh in html and s.en.replace("'", "&#39;") in html
    # a decision recorded before the tech config existed still renders
    old = SimpleNamespace(**{**d.__dict__, "scores": {"tech": {"score": "75.0"}}})
    assert "75.0" in templates.get_template("decision.html").render(d=old, outcome_text="", session=None)


def test_the_runtime_refuses_a_tech_config_whose_grades_the_policy_does_not_price():
    from sandu.domain.errors import InvalidInput
    from sandu.policy.bundle import load_bundle
    from sandu.runtime import Runtime

    def five_grades(d: dict[str, Any]) -> None:
        d["grades"][3]["min_score"] = "20"
        d["grades"].append({"grade": "E", "min_score": "0"})

    five = tech_config_from_document(doc_with(five_grades))
    assert five.grade_names == ("A", "B", "C", "D", "E") and five.grade_of(Decimal("19.9")) == "E"
    with pytest.raises(InvalidInput) as e:  # checked first, before the store is touched
        Runtime(engine=None, bundle=load_bundle(), model=None, tech=five)  # type: ignore[arg-type]
    assert str(e.value) == "tech_grades: tech config sandu-tech@2026.1 gives grade E, which policy wenzhou-tech-default@2026.12.11 does not price (allowed: A/B/C/D)"
