"""The policy engine and bundle: limits, split, prices and authority come from the bundle.

Every boundary is tested on both sides (a flipped `<`/`<=` fails a test), the
explanations are asserted word for word where they carry numbers, and hypothesis
breaks the bundle at random places (the refusal must name the place) and feeds
the engine random profiles (the invariants must hold). Mutation testing
(`make mutate ENGINES=policy`) runs this file only, so every policy test lives here.
"""

from __future__ import annotations

import copy
import hashlib
import math
import tomllib
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sandu.domain.enums import Outcome
from sandu.domain.errors import InvalidInput
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.domain.money import format_cn
from sandu.ledger.journal import LOAN_BUCKETS
from sandu.ledger.overdue import OverduePolicy
from sandu.policy import rules
from sandu.policy.bundle import GRADE_ORDER, PolicyError, bundle_from_document, load_bundle, parse_bundle
from sandu.policy.engine import Application, OfferTerms, PolicyResult, Project, RuleHit, Scores, evaluate, risk_grade, tech_grade
from sandu.policy.kernel import (
    CreditEligibility,
    Price,
    ProjectSizing,
    QuickMeasure,
    SecuredPortion,
    TechMeasure,
    decide,
    read_features,
    require_tech_grades,
    rule_inputs,
    size,
)
from sandu.policy.ops import SCALAR
from sandu.sources.profile import MAX_COLLATERAL_ASSETS, Collateral

AS_OF = date(2026, 11, 29)
BUNDLE = load_bundle()
BUNDLE_PATH = Path(__file__).parents[1] / "src/sandu/policy/bundles/default.toml"
RAW = BUNDLE_PATH.read_bytes()
DOC = tomllib.loads(RAW.decode("utf-8"))
LPR_1Y, LPR_5Y = Decimal("0.0300"), Decimal("0.0350")
BP = Decimal("0.0001")


# -- helpers -------------------------------------------------------------------------------


def features(**over: Any) -> dict[str, Any]:
    f: dict[str, Any] = {
        "revenue_fen": 5_000 * WAN,
        "tax_total_fen": 40 * WAN,
        "tax_credit_grade": "A",
        "overdue_count_24m": 0,
        "max_overdue_days_24m": 0,
        "certifications": [],
        "_quality_flags": (),
        "loans_outstanding_fen": 0,
        "secured_debt_fen": 0,
    }
    f.update(over)
    return f


def scores(tech: str = "D", pd: str = "0.005", most: bool = False, reasons: tuple[str, ...] = ()) -> Scores:
    """`tech` is the tech grade the evaluation gave (its score bands live in the tech config)."""
    return Scores(tech, most, Decimal(pd), reasons)


def run(f=None, collateral=(), sc=None, app=None, bundle=None, as_of=AS_OF) -> PolicyResult:
    return evaluate(bundle or BUNDLE, f or features(), tuple(collateral), sc or scores(), app or Application(True), as_of)


def offer(result: PolicyResult, product: str) -> OfferTerms:
    return next(o for o in result.offers if o.product == product)


def products(result: PolicyResult) -> list[str]:
    return [o.product for o in result.offers]


def hits(result: PolicyResult, rule: str) -> list[str]:
    return [h.detail for h in result.rule_hits if h.rule == rule]


def codes(result: PolicyResult) -> list[str]:
    return [reason.split(":")[0] for reason in result.reasons]


def doc_with(changes: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A copy of the default document with dotted keys set (or dropped)."""
    doc = copy.deepcopy(DOC)
    for path, value in changes.items():
        *parents, last = path.split(".")
        table = doc
        for p in parents:
            table = table[int(p)] if isinstance(table, list) else table[p]
        if isinstance(table, list):
            table[int(last)] = value
        else:
            table[last] = value
    for path in drop:
        *parents, last = path.split(".")
        table = doc
        for p in parents:
            table = table[int(p)] if isinstance(table, list) else table[p]
        del table[last]
    return doc


def bundle_with(**changes: Any) -> Any:
    """The default bundle with `section__key=value` changes (``__`` for dots)."""
    return bundle_from_document(doc_with({k.replace("__", "."): v for k, v in changes.items()}), "test")


def refusal(doc: dict[str, Any]) -> PolicyError:
    with pytest.raises(PolicyError) as e:
        bundle_from_document(doc, "test")
    return e.value


def pledged(value_wan: int, debt_wan: int, kind: str = "industrial_property", id: str = "C1") -> Collateral:
    return Collateral(id, kind, value_wan * WAN, debt_wan * WAN)


# -- the quick loan and the tech line --------------------------------------------------------


def test_quick_loan_is_tax_times_risk_multiplier_capped_at_500wan():
    r = run()
    q = offer(r, "jingying_kuaidai")
    assert q.limit_fen == 40 * WAN * 9 == q.approved_fen and r.outcome == Outcome.APPROVE
    assert hits(r, "credit.quick") == ["年纳税 40.00万 × 9 (风险 A) → 360.00万，上限 500.00万"]
    assert q.components == {"credit_fen": 360 * WAN} and r.tech_uplift_fen == 0
    for pd, mult in (("0.02", 8), ("0.04", 7), ("0.08", 5)):
        assert offer(run(sc=scores(pd=pd)), "jingying_kuaidai").limit_fen == 40 * WAN * mult


@pytest.mark.parametrize(
    ("tax_fen", "limit_fen"),
    [
        (55_555_555, 499 * WAN),  # × 9 = 499.9999955万 → rounded down to whole 万
        (55_555_556, 500 * WAN),  # × 9 = 500.000004万 → 500万: the measure meets the cap
        (56 * WAN, 500 * WAN),  # 504万 → capped
        (3 * WAN, 27 * WAN),
        (40 * WAN + 111_111, 360 * WAN),  # 360.999999万 → 360万 (rounded down, never up)
    ],
)
def test_quick_loan_rounds_down_to_whole_wan_and_caps(tax_fen, limit_fen):
    assert offer(run(features(tax_total_fen=tax_fen)), "jingying_kuaidai").limit_fen == limit_fen


def test_quick_cap_is_read_from_the_bundle_on_both_sides():
    at = bundle_with(credit__quick_max_fen=360 * WAN)
    below = bundle_with(credit__quick_max_fen=359 * WAN)
    assert offer(run(bundle=at), "jingying_kuaidai").limit_fen == 360 * WAN
    assert offer(run(bundle=below), "jingying_kuaidai").limit_fen == 359 * WAN


def test_no_credit_product_when_the_quick_measure_is_zero_says_no_product():
    r = run(bundle=bundle_with(credit__quick_max_fen=0))
    assert r.outcome == Outcome.DECLINE and not r.offers
    assert r.reasons == ("NO_PRODUCT: 没有满足条件的产品",)
    assert hits(r, "refuse.NO_PRODUCT") == ["没有满足条件的产品"]
    assert hits(r, "credit.quick") == ["年纳税 40.00万 × 9 (风险 A) → 0.00元，上限 0.00元"]


def test_tech_grade_lifts_the_credit_limit_and_fast_tracks_the_online_part():
    plain = run()
    tech = run(sc=scores(tech="A", most=True))
    k = offer(tech, "keji_xinyong")
    assert k.limit_fen == 5_000 * WAN * 10 // 100 * 115 // 100  # revenue × 10% × 1.15
    assert k.approved_fen == offer(plain, "jingying_kuaidai").limit_fen  # fast track = the online measure
    assert tech.tech_uplift_fen == k.limit_fen - k.approved_fen > 0
    assert tech.outcome == Outcome.PARTIAL
    assert products(tech) == ["keji_xinyong"] and k.components == {"credit_fen": 575 * WAN}
    assert hits(tech, "credit.tech") == ["营收 5,000.00万 × 0.10 × 科创等级 A 系数 → 575.00万"]
    assert hits(tech, "approval.fast_track") == ["先行发放线上测额 360.00万，其余 215.00万 提交审批"]
    assert hits(tech, "tech.uplift") == ["科创评价提升信用额度 215.00万（无科创评价时 360.00万）"]
    no_fast = run(sc=scores(tech="A", pd="0.04", most=True))  # risk C: no fast track
    assert offer(no_fast, "keji_xinyong").approved_fen == 0 and no_fast.outcome == Outcome.REFER
    assert hits(no_fast, "approval.fast_track") == [] and no_fast.tech_uplift_fen == 575 * WAN - 280 * WAN


@pytest.mark.parametrize(
    ("tech", "pd", "fast"),
    [("A", "0.010", True), ("B", "0.025", True), ("C", "0.010", False), ("A", "0.0251", False), ("C", "0.050", False)],
)
def test_fast_track_needs_both_grades_in_the_fast_track_lists(tech, pd, fast):
    r = run(features(revenue_fen=10_000 * WAN), sc=scores(tech=tech, pd=pd, most=True))
    k = offer(r, "keji_xinyong")
    quick = offer(run(features(revenue_fen=10_000 * WAN), sc=scores(pd=pd)), "jingying_kuaidai").limit_fen
    assert k.approved_fen == (quick if fast else 0)
    assert bool(hits(r, "approval.fast_track")) is fast


@pytest.mark.parametrize(
    ("tech", "most", "tech_line"),
    [("C", True, True), ("D", True, False), ("A", False, False), ("A", True, True), ("B", True, True)],
)
def test_the_tech_line_needs_the_minimum_grade_and_the_most_test(tech, most, tech_line):
    r = run(features(revenue_fen=10_000 * WAN), sc=scores(tech=tech, most=most))
    assert products(r) == (["keji_xinyong"] if tech_line else ["jingying_kuaidai"])


def test_tech_line_replaces_the_quick_loan_only_when_strictly_larger():
    # grade C (multiplier 1.00): revenue × 10 % against tax 40万 × 9 = 360万
    equal = run(features(revenue_fen=3_600 * WAN), sc=scores(tech="C", most=True))
    above = run(features(revenue_fen=3_610 * WAN), sc=scores(tech="C", most=True))
    assert products(equal) == ["jingying_kuaidai"] and equal.tech_uplift_fen == 0
    assert hits(equal, "credit.tech") == [] and hits(equal, "tech.uplift") == []
    k = offer(above, "keji_xinyong")
    assert k.limit_fen == 361 * WAN and above.tech_uplift_fen == WAN
    assert k.approved_fen == 0  # tech C is not on the fast track


def test_tech_line_is_capped_on_both_sides_and_rounded_down():
    cap = BUNDLE.credit.tech_max_fen
    assert cap == 3_000 * WAN
    # tech B (1.10): revenue × 0.11
    at = run(features(revenue_fen=cap * 100 // 11), sc=scores(tech="B", most=True))
    assert offer(at, "keji_xinyong").limit_fen == 2_999 * WAN  # 2,999.99…万 rounded down
    over = run(features(revenue_fen=cap * 100 // 11 + 10 * WAN), sc=scores(tech="B", most=True))
    assert offer(over, "keji_xinyong").limit_fen == cap
    lower = bundle_with(credit__tech_max_fen=1_000 * WAN)
    assert offer(run(features(revenue_fen=10_000 * WAN), sc=scores(tech="B", most=True), bundle=lower), "keji_xinyong").limit_fen == 1_000 * WAN
    assert offer(run(features(revenue_fen=9_090 * WAN), sc=scores(tech="B", most=True), bundle=lower), "keji_xinyong").limit_fen == 999 * WAN


def test_tech_min_grade_comes_from_the_bundle():
    r = run(sc=scores(tech="C", most=True), bundle=bundle_with(credit__tech_min_grade="B"))
    assert products(r) == ["jingying_kuaidai"]
    r = run(sc=scores(tech="B", most=True), bundle=bundle_with(credit__tech_min_grade="B"))
    assert products(r) == ["keji_xinyong"]


# -- pricing -------------------------------------------------------------------------------------


def test_price_is_lpr_plus_spread_minus_tech_discount_with_floor():
    r = run()
    q = offer(r, "jingying_kuaidai")  # risk A (pd 0.5%), tech D
    assert q.rate_annual == LPR_1Y + 50 * BP == q.grid_rate and q.lpr == LPR_1Y
    assert q.annualized_rate == (q.rate_annual * 365 / 360).quantize(Decimal("0.000001")) == Decimal("0.035486")
    assert hits(r, "pricing") == ["经营快贷: 1年期LPR 3.00%（期限12个月） + 50bp − 科创优惠 0bp = 3.50%"]
    strong = run(sc=scores(tech="A", most=True))  # tech A: 40bp off a 40bp spread
    k = offer(strong, "keji_xinyong")
    assert k.rate_annual == LPR_1Y and k.grid_rate == Decimal("0.0340")
    assert hits(strong, "pricing") == ["科创信用额度: 1年期LPR 3.00%（期限12个月） + 40bp − 科创优惠 40bp = 3.00%"]


@pytest.mark.parametrize(
    ("floor_bp", "rate_bp"),
    [(-30, 0), (-1, 0), (0, 0), (1, 1), (25, 25)],  # grid − discount = LPR + 0bp (keji, risk A, tech A)
)
def test_price_floor_binds_only_above_the_discounted_grid(floor_bp, rate_bp):
    b = bundle_with(pricing__floor_bp_vs_lpr=floor_bp, pricing__preferential_certifications=[])
    r = run(sc=scores(tech="A", most=True), bundle=b)
    k = offer(r, "keji_xinyong")
    assert k.rate_annual == LPR_1Y + rate_bp * BP
    assert k.grid_rate == LPR_1Y + 40 * BP


def test_a_floor_above_the_lpr_contradicts_preferential_pricing():
    assert bundle_with(pricing__floor_bp_vs_lpr=0).pricing.floor_bp_vs_lpr == 0
    assert bundle_with(pricing__floor_bp_vs_lpr=1, pricing__preferential_certifications=[]).pricing.floor_bp_vs_lpr == 1
    e = refusal(doc_with({"pricing.floor_bp_vs_lpr": 1}))
    assert str(e) == "pricing.floor_bp_vs_lpr: must be ≤ preferential_max_bp_vs_lpr (0) while preferential_certifications are priced at most there (a floor above their price level contradicts them)"


def test_price_floor_with_the_default_floor_of_minus_30bp():
    # 网贷通 risk A: 30bp spread − 40bp tech A discount = LPR − 10bp, above the floor (−30bp)
    r = run(collateral=[pledged(1_000, 0)], sc=scores(tech="A", most=True))
    assert offer(r, "wangdaitong").rate_annual == LPR_1Y - 10 * BP
    # a bigger discount is stopped by the floor
    big = bundle_with(tech_grades__0__discount_bp=100)
    assert offer(run(collateral=[pledged(1_000, 0)], sc=scores(tech="A", most=True), bundle=big), "wangdaitong").rate_annual == LPR_1Y - 30 * BP


def test_zhuanjingtexin_is_priced_at_most_at_lpr():
    r = run(features(certifications=["专精特新"]), sc=scores(pd="0.04"))  # risk C
    q = offer(r, "jingying_kuaidai")
    assert q.rate_annual == LPR_1Y < q.grid_rate == LPR_1Y + 120 * BP
    assert hits(r, "pricing.preferential") == ["jingying_kuaidai: 专精特新 → 3.00%"]
    assert hits(r, "pricing") == ["经营快贷: 1年期LPR 3.00%（期限12个月） + 120bp − 科创优惠 0bp = 4.20%；专精特新 优惠：执行 3.00%（不高于 LPR 3.00% + 优惠上限）"]
    both = run(features(certifications=["小巨人", "高新技术企业", "专精特新"]))
    assert hits(both, "pricing.preferential") == ["jingying_kuaidai: 专精特新/小巨人 → 3.00%"]
    other = run(features(certifications=["高新技术企业"]))
    assert offer(other, "jingying_kuaidai").rate_annual == LPR_1Y + 50 * BP and hits(other, "pricing.preferential") == []


def test_preference_applies_only_above_the_lpr():
    at_lpr = run(features(certifications=["专精特新"]), sc=scores(tech="A", most=True))  # keji A/A: exactly LPR
    assert offer(at_lpr, "keji_xinyong").rate_annual == LPR_1Y and hits(at_lpr, "pricing.preferential") == []
    assert hits(at_lpr, "pricing") == ["科创信用额度: 1年期LPR 3.00%（期限12个月） + 40bp − 科创优惠 40bp = 3.00%"]
    below = run(features(certifications=["专精特新"]), collateral=[pledged(1_000, 0)], sc=scores(tech="A", most=True))
    assert offer(below, "wangdaitong").rate_annual == LPR_1Y - 10 * BP  # already below the LPR: kept
    one_bp = bundle_with(tech_grades__0__discount_bp=39)
    above = run(features(certifications=["专精特新"]), sc=scores(tech="A", most=True), bundle=one_bp)
    assert offer(above, "keji_xinyong").rate_annual == LPR_1Y and hits(above, "pricing.preferential") == ["keji_xinyong: 专精特新 → 3.00%"]


def test_annualized_rate_follows_the_basis_days():
    b365 = bundle_with(products__jingying_kuaidai__basis_days=365)
    q = offer(run(bundle=b365), "jingying_kuaidai")
    assert q.annualized_rate == Decimal("0.035000") and q.basis_days == 365


def test_lpr_table_is_dated():
    assert BUNDLE.lpr_on(date(2025, 5, 19)).one_year == Decimal("0.0310")
    assert BUNDLE.lpr_on(date(2025, 5, 20)).one_year == Decimal("0.0300")
    assert BUNDLE.lpr_on(date(2024, 10, 21)).over_five_year == Decimal("0.0360")
    with pytest.raises(InvalidInput, match="no LPR") as e:
        BUNDLE.lpr_on(date(2024, 10, 20))
    assert e.value.field == "as_of"
    assert str(e.value) == "as_of: policy wenzhou-tech-default@2026.12.11 has no LPR published on or before 2024-10-20 (allowed: 2024-10-21 or later)"


def test_a_decision_after_the_lpr_tables_valid_through_date_is_refused_until_the_table_is_updated():
    from sandu.domain.errors import PolicyOutdated

    last = BUNDLE.pricing.lpr_valid_through
    assert BUNDLE.lpr_on(last).one_year == LPR_1Y  # the last day it is known current: priced
    with pytest.raises(PolicyOutdated) as e:
        BUNDLE.lpr_on(last + timedelta(days=1))
    assert e.value.field == "as_of" and e.value.http_status == 503 and "valid through 2027-06-30" in str(e.value)
    assert "update the policy's LPR table" in str(e.value)
    with pytest.raises(PolicyOutdated):
        run(as_of=last + timedelta(days=1))
    updated = bundle_with(pricing__lpr_valid_through=date(2027, 7, 31))
    assert offer(run(as_of=last + timedelta(days=1), bundle=updated), "jingying_kuaidai").lpr == LPR_1Y
    e2 = refusal(doc_with({"pricing.lpr_valid_through": date(2025, 5, 19)}))  # before the latest fixing: never current
    assert e2.path == "pricing.lpr_valid_through" and "2025-05-20" in str(e2)
    assert refusal(doc_with({"pricing.lpr_valid_through": "2027-06-31"})).path == "pricing.lpr_valid_through"


@pytest.mark.parametrize(("tenor_years", "lpr_tenor"), [(1, "one_year"), (5, "one_year"), (6, "over_five_year"), (10, "over_five_year")])
def test_the_lpr_follows_the_loans_term(tenor_years, lpr_tenor):
    pl = offer(run(app=Application(True, None, project(tenor=tenor_years))), "project_loan")
    assert (pl.lpr_tenor, pl.max_drawing_months) == (lpr_tenor, tenor_years * 12)
    assert pl.lpr == (LPR_1Y if lpr_tenor == "one_year" else LPR_5Y) and pl.rate_annual == pl.lpr + 40 * BP
    sixty_one = bundle_with(pricing__one_year_lpr_max_term_months=59)  # 60 months: the bound's edge on both sides
    assert offer(run(app=Application(True, None, project(tenor=5)), bundle=sixty_one), "project_loan").lpr_tenor == "over_five_year"
    shorter = bundle_with(pricing__one_year_lpr_max_term_months=48)  # the bound is policy data
    assert offer(run(app=Application(True, None, project(tenor=5)), bundle=shorter), "project_loan").lpr == LPR_5Y
    q = offer(run(), "jingying_kuaidai")  # a revolving line's term is its product's 12 months
    assert (q.lpr_tenor, q.max_drawing_months) == ("one_year", 12)


@pytest.mark.parametrize(
    ("headcount", "revenue_wan", "small_micro"),
    [(299, 5_000, True), (300, 5_000, False), (300, 1_999, True), (300, 2_000, False), (None, 1_999, True), (None, 2_000, None),
     (299, None, True), (300, None, None), (None, None, None), (10, 100, True)],
)
def test_a_small_or_micro_enterprise_is_told_by_staff_and_revenue_on_both_sides_of_each_bound(headcount, revenue_wan, small_micro):
    from sandu.policy.kernel import inclusive_small_micro

    f = read_features(features(headcount=headcount, revenue_fen=None if revenue_wan is None else revenue_wan * WAN))
    flag = inclusive_small_micro(BUNDLE, f, 500 * WAN)
    assert flag.small_micro is small_micro and flag.flagged is (small_micro is True)


@pytest.mark.parametrize(("total_wan", "flagged"), [(0, False), (1, True), (1_000, True), (1_001, False)])
def test_inclusive_small_micro_needs_total_credit_within_ten_million(total_wan, flagged):
    from sandu.policy.kernel import inclusive_small_micro

    assert inclusive_small_micro(BUNDLE, read_features(features(headcount=50)), total_wan * WAN).flagged is flagged


def test_a_decision_of_a_small_firm_within_the_bound_is_flagged_inclusive_with_its_reason():
    r = run(features(headcount=120, revenue_fen=1_500 * WAN))
    assert r.comprehensive_limit_fen <= 1_000 * WAN and r.inclusive_small_micro and r.to_json()["inclusive_small_micro"] is True
    assert hits(r, "inclusive.small_micro") == [
        f"普惠型小微：小微企业（从业人员 120 人、营业收入 1,500.00万），单户授信 {format_cn(r.comprehensive_limit_fen)} ≤ 1,000.00万"]
    medium = run(features(headcount=300, revenue_fen=2_000 * WAN))
    assert not medium.inclusive_small_micro and hits(medium, "inclusive.small_micro") == []
    looser = bundle_with(inclusive__medium_min_headcount=301)  # the bounds are policy data
    assert run(features(headcount=300, revenue_fen=2_000 * WAN), bundle=looser).inclusive_small_micro
    assert refusal(doc_with({"inclusive.max_total_credit_fen": -1})).path == "inclusive.max_total_credit_fen"
    assert refusal(doc_with({"inclusive.medium_min_headcount": 0})).path == "inclusive.medium_min_headcount"


def test_fees_are_policy_data_and_enter_the_annualized_rate():
    from sandu.policy.apr import annualized_rate

    base = offer(run(app=Application(True, None, project())), "project_loan")
    assert base.annualized_rate == base.rate_annual  # 等额本息 without a fee: the IRR is the rate
    fee = bundle_with(products__project_loan__upfront_fee_bp=100, products__jingying_kuaidai__annual_fee_bp=60)
    r = run(app=Application(True, None, project()), bundle=fee)
    pl, q = offer(r, "project_loan"), offer(r, "jingying_kuaidai")
    assert pl.rate_annual == base.rate_annual < pl.annualized_rate  # the same price, a dearer loan
    assert pl.annualized_rate == annualized_rate(12_000_000 * 100, pl.rate_annual, 60, "等额本息", upfront_fee_fen=12_000_000)
    assert q.annualized_rate > (q.rate_annual * 365 / 360).quantize(Decimal("0.000001"))
    assert q.annualized_rate == annualized_rate(12_000_000 * 100, q.rate_annual, 12, "随借随还", periodic_fee_fen=600_000, start=AS_OF)  # 60 bp a year of 1,200万, a twelfth each month
    assert refusal(doc_with({"products.project_loan.upfront_fee_bp": 1_001})).path == "products.project_loan.upfront_fee_bp"
    assert refusal(doc_with({"products.project_loan.annual_fee_bp": -1})).path == "products.project_loan.annual_fee_bp"


def test_the_preferential_price_level_is_policy_data():
    r = run(features(certifications=["专精特新"]), sc=scores(pd="0.04"), bundle=bundle_with(pricing__preferential_max_bp_vs_lpr=20))
    q = offer(r, "jingying_kuaidai")
    assert q.rate_annual == LPR_1Y + 20 * BP and hits(r, "pricing.preferential") == ["jingying_kuaidai: 专精特新 → 3.20%"]
    e = refusal(doc_with({"pricing.preferential_max_bp_vs_lpr": -40}))  # below the floor of −30: contradicts it
    assert e.path == "pricing.floor_bp_vs_lpr"


@pytest.mark.parametrize(("as_of", "lpr"), [(date(2025, 5, 19), Decimal("0.0310")), (date(2025, 5, 20), LPR_1Y), (date(2024, 10, 21), Decimal("0.0310"))])
def test_offers_price_off_the_lpr_published_on_or_before_the_day(as_of, lpr):
    q = offer(run(as_of=as_of), "jingying_kuaidai")
    assert q.lpr == lpr and q.rate_annual == lpr + 50 * BP


def test_no_lpr_before_the_table_is_a_clear_error_even_when_nothing_would_be_priced():
    """A policy decides only on the days its LPR table covers (both forms price every row)."""
    for f in (features(), features(revenue_fen=None)):
        with pytest.raises(InvalidInput) as e:
            run(f, as_of=date(2024, 10, 20))
        assert e.value.field == "as_of"
    assert run(as_of=date(2024, 10, 21)).offers


# -- collateral ---------------------------------------------------------------------------------


def test_unencumbered_collateral_gives_wangdaitong_and_pledged_gives_combined_with_residual_value():
    free = run(collateral=[pledged(1_000, 0)])
    w = offer(free, "wangdaitong")
    assert w.limit_fen == 700 * WAN and w.approved_fen == 0 and w.components == {"collateral_fen": 700 * WAN}
    assert products(free) == ["wangdaitong", "jingying_kuaidai"] and free.outcome == Outcome.PARTIAL
    assert hits(free, "secured.revolving") == ["最高额抵押 700.00万 → 网贷通 700.00万"]
    assert hits(free, "secured.asset") == ["C1: 评估 1,000.00万 × 0.70 − 已担保债务 0.00元 = 700.00万"]
    r = run(collateral=[pledged(1_000, 300)])
    c = offer(r, "diya_xinyong")
    assert c.components == {"collateral_fen": 400 * WAN, "residual_value_fen": 400 * WAN, "credit_topup_fen": 240 * WAN}
    assert c.limit_fen == 640 * WAN and c.approved_fen == 0
    assert products(r) == ["diya_xinyong"]  # the credit portion is its top-up
    assert hits(r, "secured.combined") == ["抵押 400.00万（其中余值 400.00万）+ 信用 240.00万 → 640.00万"]
    assert r.outcome == Outcome.REFER and r.comprehensive_limit_fen == 640 * WAN


def test_topup_is_the_smaller_of_the_credit_line_and_the_ratio_of_the_capacity():
    # credit 360万; capacity 1,000万 × 0.7 − 100万 = 600万 → cap 360万: equal
    equal = offer(run(collateral=[pledged(1_000, 100)]), "diya_xinyong")
    assert equal.components["credit_topup_fen"] == 360 * WAN and equal.limit_fen == 960 * WAN
    # capacity 610万 → cap 366万 > credit 360万
    more = offer(run(collateral=[pledged(1_000, 90)]), "diya_xinyong")
    assert more.components["credit_topup_fen"] == 360 * WAN
    # capacity 590万 → cap 354万 < credit
    less = offer(run(collateral=[pledged(1_000, 110)]), "diya_xinyong")
    assert less.components["credit_topup_fen"] == 354 * WAN and less.limit_fen == 944 * WAN
    # capacity 599.99万 × 0.6 = 359.994万 → 359万 (rounded down)
    odd = offer(run(collateral=[Collateral("C1", "industrial_property", 1_000 * WAN, 100 * WAN + 10_000)]), "diya_xinyong")
    assert odd.components["credit_topup_fen"] == 359 * WAN and odd.components["collateral_fen"] == 600 * WAN - 10_000
    assert odd.limit_fen == 958 * WAN  # 599.99万 + 359万, rounded down


def test_combined_without_credit_has_no_topup():
    r = run(features(tax_credit_grade="C"), collateral=[pledged(1_000, 300)])
    c = offer(r, "diya_xinyong")
    assert c.components["credit_topup_fen"] == 0 and c.limit_fen == 400 * WAN
    assert codes(r) == ["TAX_GRADE"] and r.outcome == Outcome.REFER


def test_combined_and_revolving_caps_on_both_sides():
    b = bundle_with(secured__combined_max_fen=640 * WAN, secured__revolving_max_fen=700 * WAN)
    assert offer(run(collateral=[pledged(1_000, 300)], bundle=b), "diya_xinyong").limit_fen == 640 * WAN
    assert offer(run(collateral=[pledged(1_000, 0)], bundle=b), "wangdaitong").limit_fen == 700 * WAN
    b = bundle_with(secured__combined_max_fen=639 * WAN, secured__revolving_max_fen=699 * WAN)
    assert offer(run(collateral=[pledged(1_000, 300)], bundle=b), "diya_xinyong").limit_fen == 639 * WAN
    assert offer(run(collateral=[pledged(1_000, 0)], bundle=b), "wangdaitong").limit_fen == 699 * WAN
    big = run(collateral=[pledged(100_000, 0)])
    assert offer(big, "wangdaitong").limit_fen == 5_000 * WAN
    assert hits(big, "secured.revolving") == ["最高额抵押 7.00亿 → 网贷通 5,000.00万"]
    assert offer(run(collateral=[pledged(100_000, 1)]), "diya_xinyong").limit_fen == 10_000 * WAN


def test_collateral_value_is_taken_to_the_yuan_and_debt_beyond_it_counts_nothing():
    r = run(collateral=[Collateral("C1", "land_use_right", 1_000 * WAN + 199, 0)])  # × 0.60 = 600万 + 119.4 fen
    assert hits(r, "secured.asset") == ["C1: 评估 1,000.00万 × 0.60 − 已担保债务 0.00元 = 600.00万"]
    assert offer(r, "wangdaitong").components["collateral_fen"] == 600 * WAN + 100
    under = run(collateral=[pledged(1_000, 800)])  # 700万 − 800万: pledged, no capacity
    assert products(under) == ["jingying_kuaidai"]
    assert hits(under, "secured.asset") == ["C1: 评估 1,000.00万 × 0.70 − 已担保债务 800.00万 = 0.00元"]
    assert hits(under, "secured.combined") == [] and hits(under, "secured.revolving") == []


def test_a_small_capacity_below_one_unit_gives_no_secured_offer_and_keeps_the_credit_offer():
    tiny = [Collateral("C1", "industrial_property", 100_000 * 100, 60_000 * 100)]  # 7万 − 6万 = 1万 capacity
    assert products(run(collateral=tiny)) == ["diya_xinyong"]
    tinier = [Collateral("C1", "industrial_property", 100_000 * 100, 63_000 * 100)]  # 0.7万 capacity
    r = run(features(tax_credit_grade="C"), collateral=tinier)
    assert products(r) == [] and hits(r, "secured.combined") == ["抵押 7,000.00元（其中余值 7,000.00元）+ 信用 0.00元 → 0.00元"]
    r = run(collateral=tinier)  # the top-up (min(credit, 0.42万 → 0)) cannot lift it either
    assert products(r) == ["jingying_kuaidai"]
    free = run(collateral=[Collateral("C1", "industrial_property", 10_000 * 100, 0)])  # 0.7万
    assert products(free) == ["jingying_kuaidai"] and hits(free, "secured.revolving") == ["最高额抵押 7,000.00元 → 网贷通 0.00元"]


def test_residual_value_counts_only_assets_that_already_secure_debt():
    r = run(collateral=[pledged(1_000, 300, id="C1"), pledged(200, 0, kind="residential", id="C2")])
    c = offer(r, "diya_xinyong")
    assert c.components == {"collateral_fen": 540 * WAN, "residual_value_fen": 400 * WAN, "credit_topup_fen": 324 * WAN}


def test_unknown_collateral_kind_is_not_counted():
    r = run(collateral=[Collateral("C9", "spaceship", 10_000 * WAN, 0)])
    assert all(o.kind != "secured" for o in r.offers)
    assert hits(r, "secured.unknown_kind") == ["C9: 抵押物类型 spaceship 不在抵押率表中，不计入"]
    # an unknown asset's debt does not make the known ones 'pledged'
    r = run(collateral=[Collateral("C9", "spaceship", 10_000 * WAN, 5 * WAN), pledged(1_000, 0)])
    assert products(r) == ["wangdaitong", "jingying_kuaidai"]


def test_only_the_first_max_collateral_assets_are_read():
    assets = [Collateral(f"C{k}", "industrial_property", 10 * WAN, 0) for k in range(MAX_COLLATERAL_ASSETS + 1)]
    r = run(collateral=assets)
    assert len(hits(r, "secured.asset")) == MAX_COLLATERAL_ASSETS
    assert offer(r, "wangdaitong").components["collateral_fen"] == 7 * WAN * MAX_COLLATERAL_ASSETS


# -- project -------------------------------------------------------------------------------------


def project(capex_wan: int = 10_000, cash_wan: int = 1_000, tenor: int = 5) -> Project:
    return Project("扩产项目", capex_fen=capex_wan * WAN, annual_cash_flow_fen=cash_wan * WAN, tenor_years=tenor)


def dscr_limit_fen(cash_wan: int, tenor: int, rate: Decimal, existing_fen: int = 0, dscr: str = "1.25", ratio: str = "0.25",
                   method: str = "等额本息") -> int:
    """Independent of the kernel: the largest whole 万 whose largest 12-month service by the closed form of
    `method` (monthly rate r/12, n = 12·tenor), with existing loans × `ratio` a year, the cash flow covers `dscr` times."""
    n, i = tenor * 12, Fraction(rate) / 12
    factor = {"等额本息": 12 * i / (1 - (1 + i) ** -n),
              "等额本金": Fraction(12, n) + Fraction(rate) * (1 - Fraction(11, 2 * n)),
              "按月付息到期还本": 1 + Fraction(rate)}[method]
    available = int(Fraction(cash_wan * WAN) / Fraction(dscr)) - int(existing_fen * Fraction(ratio))
    return max(0, math.floor(Fraction(max(available, 0)) / factor / WAN)) * WAN


def worst_year_service_fen(method: str, limit_fen: int, rate: Decimal, tenor: int) -> int:
    """What the ledger's schedule of a drawing of `limit_fen` asks in its heaviest 12 months."""
    from sandu.domain.dates import add_months
    from sandu.ledger.schedule import build_schedule

    due = [x.principal_fen + x.interest_fen for x in build_schedule(method, limit_fen, rate, date(2026, 1, 10), add_months(date(2026, 1, 10), tenor * 12))]
    return max(sum(due[k:k + 12]) for k in range(len(due) - 11))


def test_project_loan_is_sized_on_equity_and_on_principal_and_interest_cover():
    r = run(features(loans_outstanding_fen=None), app=Application(True, 5_000 * WAN, project()))
    pl = offer(r, "project_loan")
    assert pl.rate_annual == LPR_1Y + 40 * BP and pl.lpr_tenor == "one_year" and pl.max_drawing_months == 60  # 60 months: the 1-year LPR
    assert pl.limit_fen == dscr_limit_fen(1_000, 5, pl.rate_annual) == 3_673 * WAN < 7_000 * WAN  # 800万 a year covers 3,673万 at 3.40 % over 5 years
    assert pl.approved_fen == 0 and pl.components == {"project_fen": 3_673 * WAN}
    assert hits(r, "project.sizing") == [
        "扩产项目: 总投资 1.00亿 × (1 − 资本金 0.30) = 7,000.00万; 年现金流 1,000.00万 ÷ DSCR 1.25 − 征信未显示既有贷款，按无计（转人工审批） = 可还款 800.00万/年，"
        "按 3.40% 等额本息 5 年每万元年还本付息 2,177.63元 → 3,673.00万; 取 3,673.00万（偿债覆盖率 1.25）"
    ]
    # the old formula (cash flow × tenor ÷ DSCR = 4,000万) would ask 871万 a year: a cover of 1.15, below the bundle's 1.25
    assert Decimal(1_000 * WAN) / worst_year_service_fen("等额本息", 4_000 * WAN, pl.rate_annual, 5) < Decimal("1.25")


@pytest.mark.parametrize(
    ("capex_wan", "cash_wan", "tenor", "loans_wan"),
    [(10_000, 1_000, 5, None), (10_000, 1_000, 5, 0), (10_000, 1_000, 5, 1_000), (10_000, 2_000, 10, 500), (10_000, 3_000, 3, 0),
     (1, 1, 1, 0), (5_000, 1_000, 1, 0), (10_000, 100, 5, 2_000), (100_000, 20_000, 10, 10_000)],
)
def test_project_sizing_takes_the_smaller_measure_rounded_down(capex_wan, cash_wan, tenor, loans_wan):
    r = run(features(loans_outstanding_fen=None if loans_wan is None else loans_wan * WAN), app=Application(True, None, project(capex_wan, cash_wan, tenor)))
    rate = LPR_1Y + 40 * BP if tenor <= 5 else LPR_5Y + 40 * BP
    expected = min(math.floor(capex_wan * Fraction(7, 10)) * WAN, dscr_limit_fen(cash_wan, tenor, rate, (loans_wan or 0) * WAN), BUNDLE.project.max_fen)
    assert [o.limit_fen for o in r.offers if o.product == "project_loan"] == ([expected] if expected else [])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30_000), st.integers(1, 10), st.integers(0, 20_000), st.sampled_from(["等额本息", "等额本金", "按月付息到期还本"]))
def test_at_its_limit_a_cash_bound_project_loan_is_covered_and_one_unit_more_is_not(cash_wan, tenor, loans_wan, method):
    b = bundle_with(products__project_loan__repayment_method=method)
    r = run(features(loans_outstanding_fen=loans_wan * WAN), app=Application(True, None, project(10**7, cash_wan, tenor)), bundle=b)
    limit = next((o.limit_fen for o in r.offers if o.product == "project_loan"), 0)
    rate = LPR_1Y + 40 * BP if tenor <= 5 else LPR_5Y + 40 * BP
    existing = loans_wan * WAN // 4
    assert limit == dscr_limit_fen(cash_wan, tenor, rate, loans_wan * WAN, method=method) or limit == BUNDLE.project.max_fen
    cover = Decimal("1.25")
    if limit:
        assert Decimal(cash_wan * WAN) >= cover * (worst_year_service_fen(method, limit, rate, tenor) + existing) - 1
    if limit < BUNDLE.project.max_fen:
        assert Decimal(cash_wan * WAN) < cover * (worst_year_service_fen(method, limit + WAN, rate, tenor) + existing) + 2


def test_project_tenor_and_amount_caps_on_both_sides():
    at = run(app=Application(True, None, project(cash_wan=2_000, tenor=10)))
    assert offer(at, "project_loan").limit_fen == 7_000 * WAN  # equity-bound: 1,600万 a year covers more
    over = run(app=Application(True, None, project(tenor=11)))
    assert products(over) == ["jingying_kuaidai"] and codes(over) == ["PROJECT_TENOR"]
    assert hits(over, "refuse.PROJECT_TENOR") == ["项目期限 11 年超过 10 年"] and hits(over, "project.sizing") == []
    assert over.outcome == Outcome.APPROVE
    capped = run(app=Application(True, None, project(capex_wan=1_000_000, cash_wan=100_000, tenor=10)))
    assert offer(capped, "project_loan").limit_fen == BUNDLE.project.max_fen == 50_000 * WAN
    one_less = bundle_with(project__max_fen=3_673 * WAN - 1)
    assert offer(run(app=Application(True, None, project()), bundle=one_less), "project_loan").limit_fen == 3_673 * WAN - 1
    equal = bundle_with(project__max_fen=3_673 * WAN)
    assert offer(run(app=Application(True, None, project()), bundle=equal), "project_loan").limit_fen == 3_673 * WAN


def test_project_equity_dscr_and_existing_debt_service_come_from_the_bundle():
    b = bundle_with(project__min_equity_ratio="0.50", project__min_dscr="2", project__existing_debt_annual_service_ratio="0.10")
    r = run(features(loans_outstanding_fen=1_000 * WAN), app=Application(True, None, project()), bundle=b)
    assert offer(r, "project_loan").limit_fen == dscr_limit_fen(1_000, 5, LPR_1Y + 40 * BP, 1_000 * WAN, dscr="2", ratio="0.10") == 1_836 * WAN
    assert hits(r, "project.sizing")[0].startswith(
        "扩产项目: 总投资 1.00亿 × (1 − 资本金 0.50) = 5,000.00万; 年现金流 1,000.00万 ÷ DSCR 2 − 既有贷款 1,000.00万 年还款 100.00万 = 可还款 400.00万/年")
    assert refusal(doc_with({"products.project_loan.repayment_method": "随借随还"})).path == "products.project_loan.repayment_method"


def test_project_is_offered_without_credit_eligibility():
    r = run(features(tax_credit_grade="D"), app=Application(True, None, project()))
    assert products(r) == ["project_loan"] and codes(r) == ["TAX_GRADE"] and r.outcome == Outcome.REFER


# -- eligibility and refusals ------------------------------------------------------------------------


def test_declines_carry_reasons():
    r = run(
        features(tax_total_fen=1 * WAN, tax_credit_grade="C", overdue_count_24m=5, max_overdue_days_24m=90),
        sc=scores(pd="0.2", reasons=("r1", "r2", "r3", "r4")),
    )
    assert r.outcome == Outcome.DECLINE and not r.offers and r.comprehensive_limit_fen == 0
    assert r.reasons == (
        "RISK_GRADE: 风险等级 E (PD 20.00%) 超出准入 — r1; r2; r3",
        "OVERDUE_COUNT: 近24个月逾期 5 次，上限 2 次",
        "OVERDUE_DAYS: 近24个月最长逾期 90 天，上限 30 天",
    )
    assert [h.rule for h in r.rule_hits] == ["refuse.RISK_GRADE", "refuse.OVERDUE_COUNT", "refuse.OVERDUE_DAYS"]
    low_tax = run(features(tax_total_fen=2 * WAN, tax_credit_grade="C"))
    assert low_tax.outcome == Outcome.DECLINE
    assert low_tax.reasons == ("TAX_BELOW_MIN: 年纳税 2.00万 低于信用贷款准入 3.00万", "TAX_GRADE: 纳税信用等级 C，信用贷款要求 A/B")
    assert [h.rule for h in low_tax.rule_hits] == ["eligibility.general", "refuse.TAX_BELOW_MIN", "refuse.TAX_GRADE"]
    assert hits(low_tax, "eligibility.general") == ["risk grade A, tech grade D"]


@pytest.mark.parametrize(
    ("over", "flags", "declined"),
    [
        ({"revenue_fen": None}, (), True),
        ({"overdue_count_24m": None}, (), True),
        ({}, ("tax:not_read",), True),
        ({}, ("credit_bureau:not_read",), True),
        ({}, ("ip:not_read", "tax.years:missing", "tax:no_record"), False),
        ({"max_overdue_days_24m": None}, (), False),
    ],
)
def test_missing_data_refers_to_an_officer_before_anything_else(over, flags, declined):
    r = run(features(_quality_flags=flags, **over), sc=scores(pd="0.5"))  # risk E as well
    if declined:
        assert r.reasons == ("DATA_INSUFFICIENT: 税务或征信数据缺失，无法自动测额，转人工补充资料后审核 (tax or credit-bureau data missing: referred to an officer)",)
        assert [h.rule for h in r.rule_hits] == ["refuse.DATA_INSUFFICIENT"]
        assert r.outcome == Outcome.REFER and r.offers == ()
    else:
        assert codes(r) == ["RISK_GRADE"] and r.outcome == Outcome.DECLINE


@pytest.mark.parametrize(
    ("count", "days", "refused"),
    [(2, 30, []), (3, 30, ["OVERDUE_COUNT"]), (2, 31, ["OVERDUE_DAYS"]), (0, None, []), (3, 31, ["OVERDUE_COUNT", "OVERDUE_DAYS"])],
)
def test_overdue_thresholds_on_both_sides(count, days, refused):
    r = run(features(overdue_count_24m=count, max_overdue_days_24m=days))
    assert codes(r) == refused
    assert (r.outcome == Outcome.DECLINE) is bool(refused)
    assert bool(hits(r, "eligibility.general")) is not refused


def test_overdue_thresholds_of_zero_refuse_a_single_day():
    b = bundle_with(eligibility__max_overdue_count_24m=0, eligibility__max_overdue_days_24m=0)
    assert codes(run(features(overdue_count_24m=1, max_overdue_days_24m=0), bundle=b)) == ["OVERDUE_COUNT"]
    assert codes(run(features(overdue_count_24m=0, max_overdue_days_24m=1), bundle=b)) == ["OVERDUE_DAYS"]
    assert codes(run(features(overdue_count_24m=0, max_overdue_days_24m=None), bundle=b)) == []


@pytest.mark.parametrize(("tax_fen", "ok"), [(3 * WAN, True), (3 * WAN - 1, False), (None, False), (0, False)])
def test_minimum_annual_tax_on_both_sides(tax_fen, ok):
    r = run(features(tax_total_fen=tax_fen))
    assert codes(r) == ([] if ok else ["TAX_BELOW_MIN"])
    if not ok:
        shown = "0.00元" if not tax_fen else "3.00万"
        assert r.reasons[0] == f"TAX_BELOW_MIN: 年纳税 {shown} 低于信用贷款准入 3.00万"


@pytest.mark.parametrize(("grade", "ok"), [("A", True), ("B", True), ("M", False), ("C", False), ("D", False), (None, False)])
def test_tax_credit_grades(grade, ok):
    r = run(features(tax_credit_grade=grade))
    assert products(r) == (["jingying_kuaidai"] if ok else [])
    if not ok:
        assert r.reasons == (f"TAX_GRADE: 纳税信用等级 {grade or '无'}，信用贷款要求 A/B",)


# -- grades -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pd", "grade"),
    [("0", "A"), ("0.010", "A"), ("0.0101", "B"), ("0.025", "B"), ("0.0251", "C"), ("0.05", "C"), ("0.0501", "D"), ("0.1", "D"), ("0.1001", "E"), ("1", "E")],
)
def test_risk_grade_is_the_first_whose_max_pd_is_not_exceeded(pd, grade):
    assert risk_grade(BUNDLE, Decimal(pd)) == grade
    assert run(sc=scores(pd=pd)).risk_grade == grade


@pytest.mark.parametrize("grade", ["A", "B", "C", "D"])
def test_the_tech_grade_is_the_evaluations_and_must_be_priced_by_the_bundle(grade):
    assert tech_grade(BUNDLE, grade) == grade
    assert run(sc=scores(tech=grade)).tech_grade == grade


def test_a_tech_config_whose_grades_the_bundle_does_not_price_is_refused():
    require_tech_grades(BUNDLE, ("A", "B", "C", "D"), "t@1")
    with pytest.raises(InvalidInput) as e:
        require_tech_grades(BUNDLE, ("A", "B", "C", "D", "E"), "t@1")
    assert str(e.value) == f"tech_grades: tech config t@1 gives grade E, which policy {BUNDLE.label} does not price (allowed: A/B/C/D)"


@pytest.mark.parametrize(
    ("field", "sc"),
    [
        ("scores.risk_pd", Scores("D", False, Decimal("1.0001"))),
        ("scores.risk_pd", Scores("D", False, Decimal("-0.0001"))),
        ("scores.risk_pd", Scores("D", False, Decimal("NaN"))),
        ("scores.risk_pd", Scores("D", False, 0.01)),  # type: ignore[arg-type]
        ("scores.tech_grade", Scores("E", False, Decimal("0.01"))),
        ("scores.tech_grade", Scores("a", False, Decimal("0.01"))),
        ("scores.tech_grade", Scores(Decimal("50"), False, Decimal("0.01"))),  # type: ignore[arg-type]
    ],
)
def test_scores_out_of_range_are_refused_with_the_field(field, sc):
    with pytest.raises(InvalidInput) as e:
        run(sc=sc)
    if field.endswith("pd"):
        assert e.value.field == field and e.value.allowed == "0..1"
        assert str(e.value) == f"{field}: must be a Decimal within 0..1, got {sc.risk_pd!r} (allowed: 0..1)"
    else:
        assert e.value.field == field and e.value.allowed == "A/B/C/D"
        assert str(e.value) == f"{field}: must be a grade of policy {BUNDLE.label}'s tech_grades, got {sc.tech_grade!r} (allowed: A/B/C/D)"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("revenue_fen", 1.5),
        ("revenue_fen", True),
        ("revenue_fen", -1),
        ("tax_total_fen", "40"),
        ("overdue_count_24m", 0.0),
        ("max_overdue_days_24m", False),
        ("tax_credit_grade", 1),
        ("certifications", "专精特新"),
        ("certifications", [1]),
        ("certifications", {"专精特新": True}),
        ("_quality_flags", "tax:not_read"),
    ],
)
def test_features_of_the_wrong_type_are_refused_with_the_field(key, value):
    with pytest.raises(InvalidInput) as e:
        run(features(**{key: value}))
    assert e.value.field == f"features.{key}"
    if key in ("certifications", "_quality_flags"):
        reason, allowed = f"must be a list of strings, got {value!r}", "a list of strings"
    elif key == "tax_credit_grade":
        reason, allowed = f"must be a string or absent, got {value!r}", "A/B/M/C/D or None"
    else:
        reason, allowed = f"must be an integer ≥ 0 or absent, got {value!r}", "a non-negative integer or None"
    assert str(e.value) == f"features.{key}: {reason} (allowed: {allowed})" and e.value.allowed == allowed


def test_features_are_read_into_a_typed_record():
    f = read_features({"revenue_fen": 7, "certifications": ["b", "a"], "_quality_flags": ["tax:not_read", "ip:no_record", "x:not_read"]})
    assert f.revenue_fen == 7 and f.tax_total_fen is None and f.tax_credit_grade is None
    assert f.certifications == frozenset({"a", "b"}) and f.sources_not_read == frozenset({"tax", "x"})
    empty = read_features({})
    assert empty.certifications == frozenset() and empty.sources_not_read == frozenset() and empty.overdue_count_24m is None
    assert read_features({"tax_total_fen": 0, "max_overdue_days_24m": 0}).tax_total_fen == 0


# -- channels, authority, outcome ---------------------------------------------------------------------


def test_non_customers_with_pledged_collateral_still_get_pure_credit():
    r = run(collateral=[pledged(1_000, 300)], app=Application(False))
    assert products(r) == ["jingying_kuaidai"] and r.outcome == Outcome.APPROVE
    assert hits(r, "channel.non_customer") == ["抵押+信用 需在本行开户后办理，未纳入线上授信"]
    assert hits(r, "secured.combined") == []


def test_non_customers_get_only_products_open_to_them():
    r = run(collateral=[pledged(1_000, 0)], app=Application(False, None, project()))
    assert products(r) == ["jingying_kuaidai"]
    assert hits(r, "channel.non_customer") == ["网贷通 需在本行开户后办理，未纳入线上授信", "项目/固定资产贷款 需在本行开户后办理，未纳入线上授信"]
    assert hits(r, "secured.revolving") == [] and hits(r, "project.sizing") == []


def test_a_credit_product_closed_to_non_customers_gives_no_credit_and_no_topup():
    b = bundle_with(products__jingying_kuaidai__open_to_non_customers=False, products__diya_xinyong__open_to_non_customers=True)
    r = run(collateral=[pledged(1_000, 300)], app=Application(False), bundle=b)
    assert products(r) == ["diya_xinyong"] and offer(r, "diya_xinyong").components["credit_topup_fen"] == 0
    assert hits(r, "channel.non_customer") == ["经营快贷 需在本行开户后办理，未纳入线上授信"]
    assert r.tech_uplift_fen == 0
    k = bundle_with(products__keji_xinyong__open_to_non_customers=False)
    r = run(sc=scores(tech="A", most=True), app=Application(False), bundle=k)
    assert products(r) == [] and r.tech_uplift_fen == 0 and hits(r, "tech.uplift") == []
    assert r.reasons == ("NO_PRODUCT: 没有满足条件的产品",)
    assert run(sc=scores(tech="A", most=True), app=Application(True), bundle=k).tech_uplift_fen == 215 * WAN


@pytest.mark.parametrize(("auto_wan", "approved_wan", "outcome"), [(0, 0, Outcome.PARTIAL), (300, 300, Outcome.PARTIAL), (700, 700, Outcome.APPROVE), (701, 700, Outcome.APPROVE)])
def test_authority_approves_up_to_the_product_limit(auto_wan, approved_wan, outcome):
    b = bundle_with(products__wangdaitong__auto_approve_max_fen=auto_wan * WAN)
    r = run(collateral=[pledged(1_000, 0)], bundle=b)
    w = offer(r, "wangdaitong")
    assert w.approved_fen == approved_wan * WAN and w.referred_fen == (700 - approved_wan) * WAN
    assert r.outcome == outcome


def test_one_fen_approved_is_partial_not_refer():
    b = bundle_with(products__wangdaitong__auto_approve_max_fen=1)
    r = run(features(tax_credit_grade="C"), collateral=[pledged(1_000, 0)], bundle=b)
    assert products(r) == ["wangdaitong"] and offer(r, "wangdaitong").approved_fen == 1 and r.outcome == Outcome.PARTIAL


def test_with_a_one_fen_unit_limits_are_exact_to_the_fen():
    b = bundle_with(credit__round_down_fen=1)
    # 143 fen × 0.70 = 100.1 → 100 fen (to the yuan) − 99 fen of debt = 1 fen of capacity
    r = run(features(tax_credit_grade="C"), collateral=[Collateral("C1", "industrial_property", 143, 99)], bundle=b)
    assert [(o.product, o.limit_fen) for o in r.offers] == [("diya_xinyong", 1)]
    assert hits(r, "secured.combined") == ["抵押 0.01元（其中余值 0.01元）+ 信用 0.00元 → 0.01元"]
    assert offer(run(features(tax_total_fen=40 * WAN + 7), bundle=b), "jingying_kuaidai").limit_fen == 360 * WAN + 63
    tiny = bundle_with(credit__round_down_fen=1, eligibility__min_annual_tax_fen=0, credit__quick_tax_multiplier={"A": "1", "B": "1", "C": "1", "D": "1"})
    assert [(o.product, o.limit_fen, o.approved_fen) for o in run(features(tax_total_fen=1), bundle=tiny).offers] == [("jingying_kuaidai", 1, 1)]
    assert run(features(tax_total_fen=0), bundle=tiny).reasons == ("NO_PRODUCT: 没有满足条件的产品",)
    one = run(features(tax_credit_grade="C"), collateral=[Collateral("C1", "industrial_property", 143, 100)], bundle=b)
    assert one.offers == () and hits(one, "secured.combined") == []  # no capacity at all: no secured step


def test_authority_for_combined_and_project():
    b = bundle_with(products__diya_xinyong__auto_approve_max_fen=100 * WAN, products__project_loan__auto_approve_max_fen=5_000 * WAN)
    r = run(features(loans_outstanding_fen=0), collateral=[pledged(1_000, 300)], app=Application(True, None, project()), bundle=b)
    assert offer(r, "diya_xinyong").approved_fen == 100 * WAN
    assert offer(r, "project_loan").approved_fen == 3_673 * WAN
    assert r.outcome == Outcome.PARTIAL
    unknown = run(features(loans_outstanding_fen=None), collateral=[pledged(1_000, 300)], app=Application(True, None, project()), bundle=b)  # not evidenced
    assert offer(unknown, "project_loan").approved_fen == 0 and offer(unknown, "project_loan").limit_fen == 3_673 * WAN


def test_outcome_refer_when_nothing_is_approved():
    r = run(collateral=[pledged(1_000, 300)])
    assert r.outcome == Outcome.REFER and r.outcome.value == "refer" and r.to_json()["outcome"] == "refer"


def test_the_requested_amount_is_recorded_last():
    r = run(app=Application(True, 123 * WAN))
    assert r.rule_hits[-1] == RuleHit("application.requested", "申请 123.00万，综合授信 360.00万")
    assert hits(run(), "application.requested") == []


# -- the kernel's records ----------------------------------------------------------------------------


def test_the_kernel_keeps_every_number():
    f = read_features(features(certifications=["专精特新"], loans_outstanding_fen=None))
    collateral = (pledged(1_000, 300), Collateral("C3", "boat", 50 * WAN, 5 * WAN))
    d = decide(BUNDLE, f, collateral, scores("A", "0.02", True), Application(True, None, project()), AS_OF)
    g = d.general
    assert g.eligible and (g.tech_grade, g.risk_grade, g.risk_pd) == ("A", "B", Decimal("0.02"))
    assert (g.overdue_count_24m, g.max_overdue_count_24m, g.overdue_days_24m, g.max_overdue_days_24m) == (0, 2, 0, 30)
    assert d.credit_eligibility == CreditEligibility(40 * WAN, 3 * WAN, False, "A", ("A", "B"), False)
    assert d.credit is not None
    assert d.credit.quick == QuickMeasure(tax_total_fen=40 * WAN, risk_grade="B", multiplier=Decimal("8"), max_fen=500 * WAN, limit_fen=320 * WAN)
    assert d.credit.tech == TechMeasure(
        qualifies=True, revenue_fen=5_000 * WAN, revenue_ratio=Decimal("0.10"), tech_grade="A", multiplier=Decimal("1.15"), limit_fen=575 * WAN
    )
    c = d.credit
    assert (c.product and c.product.code, c.tech_line, c.fast_track, c.limit_fen, c.approved_fen, c.open_to_applicant, c.uplift_fen) == (
        "keji_xinyong",
        True,
        True,
        575 * WAN,
        0,  # the bureau gave no existing loans: nothing at once, not even on the fast track
        True,
        255 * WAN,
    )
    assert not c.debt_known
    assert d.collateral is not None
    assert [(r.ltv, r.value_fen, r.capacity_fen, r.pledged) for r in d.collateral.assets] == [(Decimal("0.70"), 700 * WAN, 400 * WAN, True), (None, 0, 0, False)]
    assert (d.collateral.capacity_fen, d.collateral.residual_fen, d.collateral.pledged) == (400 * WAN, 400 * WAN, True)
    assert d.secured == SecuredPortion(
        product=BUNDLE.products["diya_xinyong"],
        combined=True,
        open_to_applicant=True,
        capacity_fen=400 * WAN,
        residual_fen=400 * WAN,
        topup_cap_fen=240 * WAN,
        topup_fen=240 * WAN,
        max_fen=10_000 * WAN,
        limit_fen=640 * WAN,
        approved_fen=0,
    )
    assert d.credit_offer is None  # carried by the combined offer
    assert d.project == ProjectSizing(
        project=project(),
        product=BUNDLE.products["project_loan"],
        open_to_applicant=True,
        tenor_refused=False,
        max_tenor_years=10,
        min_equity_ratio=Decimal("0.30"),
        min_dscr=Decimal("1.25"),
        by_equity_fen=7_000 * WAN,
        by_cash_flow_fen=3_710 * WAN,
        max_fen=50_000 * WAN,
        limit_fen=3_710 * WAN,
        approved_fen=0,
        rate_annual=LPR_1Y,  # 专精特新: sized at the preferential price it gets
        service_factor=Decimal("0.21562428797"),
        existing_debt_fen=None,
        existing_service_fen=0,
        available_service_fen=800 * WAN,
    )
    assert d.project.limit_fen == dscr_limit_fen(1_000, 5, LPR_1Y) and d.project.dscr_at_limit == Decimal("1.25")
    assert d.secured_offer is not None and d.project_offer is not None
    assert d.secured_offer.price == Price(
        lpr=LPR_1Y,
        lpr_tenor="one_year",
        term_months=12,
        spread_bp=60,
        discount_bp=40,
        grid_rate=Decimal("0.0360"),
        floor_rate=Decimal("0.0270"),
        base_rate=Decimal("0.0320"),
        preferred=("专精特新",),
        preference_applied=True,
        rate_annual=LPR_1Y,
        annualized_rate=Decimal("0.030000"),  # 按月付息到期还本: interest by the month, the IRR is the rate
    )
    assert d.project_offer.price.floor_rate == LPR_1Y - 30 * BP and d.project_offer.price.base_rate == LPR_1Y + 30 * BP
    assert d.offers == (d.secured_offer, d.project_offer)
    assert (d.comprehensive_limit_fen, d.approved_fen, d.outcome, d.requested_fen) == (4_350 * WAN, 0, Outcome.REFER, None)
    partial = decide(BUNDLE, read_features(features()), (), scores(), Application(True, 9), AS_OF)
    assert (partial.approved_fen, partial.comprehensive_limit_fen, partial.requested_fen) == (360 * WAN, 360 * WAN, 9)


def test_closed_or_refused_steps_carry_zero_amounts():
    f = read_features(features())
    closed = decide(BUNDLE, f, (pledged(1_000, 300),), scores(), Application(False, None, project(tenor=11)), AS_OF)
    assert closed.secured == SecuredPortion(
        product=BUNDLE.products["diya_xinyong"],
        combined=True,
        open_to_applicant=False,
        capacity_fen=400 * WAN,
        residual_fen=400 * WAN,
        topup_cap_fen=0,
        topup_fen=0,
        max_fen=10_000 * WAN,
        limit_fen=0,
        approved_fen=0,
    )
    p = closed.project
    assert p is not None and not p.open_to_applicant and not p.tenor_refused  # closed first: the tenor is not judged
    assert (p.by_equity_fen, p.by_cash_flow_fen, p.limit_fen, p.approved_fen, p.max_fen) == (0, 0, 0, 0, 50_000 * WAN)
    free = decide(BUNDLE, f, (pledged(1_000, 0),), scores(), Application(False), AS_OF)
    assert free.secured is not None and not free.secured.combined and free.secured.max_fen == 5_000 * WAN
    assert (free.secured.limit_fen, free.secured.approved_fen, free.secured.topup_cap_fen) == (0, 0, 0)
    refused = decide(BUNDLE, f, (), scores(), Application(True, None, project(tenor=11)), AS_OF)
    p = refused.project
    assert p is not None and p.open_to_applicant and p.tenor_refused and p.max_tenor_years == 10
    assert (p.by_equity_fen, p.by_cash_flow_fen, p.limit_fen, p.approved_fen) == (0, 0, 0, 0)
    plain = decide(BUNDLE, f, (), scores(tech="A", most=False), Application(True), AS_OF)
    assert plain.credit is not None and plain.credit.tech == TechMeasure(False, 5_000 * WAN, Decimal("0.10"), "A", Decimal("1.15"), 0)
    assert not plain.credit.tech_line and not plain.credit.fast_track and plain.credit.uplift_fen == 0
    missing = decide(BUNDLE, read_features(features(revenue_fen=None)), (pledged(1_000, 0),), scores(), Application(True, None, project()), AS_OF)
    assert missing.credit_eligibility is None and missing.credit is None and missing.collateral is None
    assert missing.secured is None and missing.project is None and missing.offers == () and missing.outcome == Outcome.REFER  # data missing


def test_a_non_customer_project_beyond_the_tenor_is_a_channel_matter_not_a_refusal():
    r = run(app=Application(False, None, project(tenor=11)))
    assert codes(r) == [] and hits(r, "channel.non_customer") == ["项目/固定资产贷款 需在本行开户后办理，未纳入线上授信"]


# -- one decision, word for word ------------------------------------------------------------------------


def test_a_full_decision_word_for_word():
    f = features(certifications=["专精特新", "高新技术企业"], loans_outstanding_fen=None)
    collateral = (pledged(1_000, 300, id="C1"), pledged(200, 0, kind="residential", id="C2"), Collateral("C3", "boat", 50 * WAN, 0))
    r = run(f, collateral, scores("A", "0.02", True, ("r1", "r2", "r3", "r4")), Application(True, 2_000 * WAN, project()))
    secured = {
        "product": "diya_xinyong",
        "name": "抵押+信用",
        "kind": "secured",
        "limit_fen": 864 * WAN,
        "approved_fen": 0,
        "referred_fen": 864 * WAN,
        "rate_annual": "0.0300",
        "annualized_rate": "0.030000",
        "grid_rate": "0.0360",
        "lpr": "0.0300",
        "lpr_tenor": "one_year",
        "repayment_method": "按月付息到期还本",
        "revolving": True,
        "validity_months": 12,
        "max_drawing_months": 12,
        "term_within_validity": True,
        "basis_days": 360,
        "settlement": "monthly",
        "interest_with_principal": False,
        "penalty_uplift": "0.50",
        "grace_days": 0,
        "allocation_order": ["penalty", "compound", "overdue_interest", "overdue_principal", "interest", "principal"],
        "components": {"collateral_fen": 540 * WAN, "residual_value_fen": 400 * WAN, "credit_topup_fen": 324 * WAN},
    }
    project_offer = {
        "product": "project_loan",
        "name": "项目/固定资产贷款",
        "kind": "project",
        "limit_fen": 3_710 * WAN,
        "approved_fen": 0,
        "referred_fen": 3_710 * WAN,
        "rate_annual": "0.0300",
        "annualized_rate": "0.030000",
        "grid_rate": "0.0370",
        "lpr": "0.0300",
        "lpr_tenor": "one_year",  # five years: still the 1-year LPR (up to 60 months)
        "repayment_method": "等额本息",
        "revolving": False,
        "validity_months": 24,
        "max_drawing_months": 5 * 12,  # the project's tenor, not the product's 12 months
        "term_within_validity": False,
        "basis_days": 360,
        "settlement": "monthly",
        "interest_with_principal": False,
        "penalty_uplift": "0.50",
        "grace_days": 0,
        "allocation_order": ["penalty", "compound", "overdue_interest", "overdue_principal", "interest", "principal"],
        "components": {"project_fen": 3_710 * WAN},
    }
    assert r.to_json() == {
        "outcome": "refer",
        "tech_grade": "A",
        "risk_grade": "B",
        "offers": [secured, project_offer],
        "comprehensive_limit_fen": 4_574 * WAN,
        "tech_uplift_fen": 255 * WAN,
        "inclusive_small_micro": False,  # 4,574万 of total credit: above 1,000万
        "rule_hits": [
            {"rule": "eligibility.general", "detail": "risk grade B, tech grade A"},
            {"rule": "credit.quick", "detail": "年纳税 40.00万 × 8 (风险 B) → 320.00万，上限 500.00万"},
            {"rule": "credit.tech", "detail": "营收 5,000.00万 × 0.10 × 科创等级 A 系数 → 575.00万"},
            {"rule": "credit.debt_unknown", "detail": "征信未显示既有贷款，信用额度转人工审批"},
            {"rule": "tech.uplift", "detail": "科创评价提升信用额度 255.00万（无科创评价时 320.00万）"},
            {"rule": "secured.asset", "detail": "C1: 评估 1,000.00万 × 0.70 − 已担保债务 300.00万 = 400.00万"},
            {"rule": "secured.asset", "detail": "C2: 评估 200.00万 × 0.70 − 已担保债务 0.00元 = 140.00万"},
            {"rule": "secured.unknown_kind", "detail": "C3: 抵押物类型 boat 不在抵押率表中，不计入"},
            {"rule": "secured.combined", "detail": "抵押 540.00万（其中余值 400.00万）+ 信用 324.00万 → 864.00万"},
            {"rule": "pricing.preferential", "detail": "diya_xinyong: 专精特新 → 3.00%"},
            {"rule": "pricing", "detail": "抵押+信用: 1年期LPR 3.00%（期限12个月） + 60bp − 科创优惠 40bp = 3.20%；专精特新 优惠：执行 3.00%（不高于 LPR 3.00% + 优惠上限）"},
            {
                "rule": "project.sizing",
                "detail": "扩产项目: 总投资 1.00亿 × (1 − 资本金 0.30) = 7,000.00万; 年现金流 1,000.00万 ÷ DSCR 1.25 − 征信未显示既有贷款，按无计（转人工审批） = 可还款 800.00万/年，"
                          "按 3.00% 等额本息 5 年每万元年还本付息 2,156.24元 → 3,710.00万; 取 3,710.00万（偿债覆盖率 1.25）",
            },
            {"rule": "pricing.preferential", "detail": "project_loan: 专精特新 → 3.00%"},
            {"rule": "pricing", "detail": "项目/固定资产贷款: 1年期LPR 3.00%（期限60个月） + 70bp − 科创优惠 40bp = 3.30%；专精特新 优惠：执行 3.00%（不高于 LPR 3.00% + 优惠上限）"},
            {"rule": "application.requested", "detail": "申请 2,000.00万，综合授信 4,574.00万"},
        ],
        "reasons": [],
    }


def test_offers_come_in_order_secured_credit_project_with_pricing_after_each():
    r = run(collateral=[pledged(1_000, 0)], app=Application(True, None, project()))
    assert products(r) == ["wangdaitong", "jingying_kuaidai", "project_loan"]
    assert [h.rule for h in r.rule_hits] == [
        "eligibility.general",
        "credit.quick",
        "secured.asset",
        "secured.revolving",
        "pricing",
        "pricing",
        "project.sizing",
        "pricing",
    ]
    assert [d.split(":")[0] for d in hits(r, "pricing")] == ["网贷通", "经营快贷", "项目/固定资产贷款"]


# -- invariants over random profiles ------------------------------------------------------------------

ASSET_KINDS = ["industrial_property", "residential", "land_use_right", "boat"]


@st.composite
def cases(draw):
    f = features(
        revenue_fen=draw(st.one_of(st.none(), st.integers(0, 10**12))),
        tax_total_fen=draw(st.one_of(st.none(), st.integers(0, 10**10))),
        tax_credit_grade=draw(st.sampled_from(["A", "B", "M", "C", "D", None])),
        overdue_count_24m=draw(st.one_of(st.none(), st.integers(0, 5))),
        max_overdue_days_24m=draw(st.one_of(st.none(), st.integers(0, 60))),
        certifications=draw(st.lists(st.sampled_from(["专精特新", "小巨人", "高新技术企业"]), unique=True)),
    )
    collateral = draw(
        st.lists(
            st.builds(Collateral, st.text("C0123", min_size=1, max_size=3), st.sampled_from(ASSET_KINDS), st.integers(0, 10**11), st.integers(0, 10**11)),
            max_size=4,
        )
    )
    sc = Scores(draw(st.sampled_from("ABCD")), draw(st.booleans()), draw(st.decimals("0", "1", places=4)))
    proj = draw(st.one_of(st.none(), st.builds(Project, st.just("P"), st.integers(1, 10**12), st.integers(1, 10**11), st.integers(1, 12))))
    app = Application(draw(st.booleans()), draw(st.one_of(st.none(), st.integers(1, 10**12))), proj)
    bundle = draw(st.sampled_from([BUNDLE, VARIANT]))
    return f, collateral, sc, app, bundle


VARIANT = bundle_with(
    credit__round_down_fen=100_000,
    pricing__floor_bp_vs_lpr=0,
    products__wangdaitong__auto_approve_max_fen=300 * WAN,
    products__project_loan__auto_approve_max_fen=1_000 * WAN,
    credit__fast_track_risk_grades=["A", "B", "C", "D"],
)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_invariants_hold_for_any_profile(case):
    f, collateral, sc, app, bundle = case
    r = evaluate(bundle, f, tuple(collateral), sc, app, AS_OF)
    unit = bundle.credit.round_down_fen
    assert r.comprehensive_limit_fen == sum(o.limit_fen for o in r.offers)
    approved = sum(o.approved_fen for o in r.offers)
    for o in r.offers:
        p = bundle.products[o.product]
        assert 0 <= o.approved_fen <= o.limit_fen and o.limit_fen > 0
        assert o.limit_fen % unit == 0
        assert o.rate_annual >= o.lpr + bundle.pricing.floor_bp_vs_lpr * BP
        assert o.rate_annual <= o.grid_rate
        assert o.lpr_tenor == ("one_year" if o.max_drawing_months <= 60 else "over_five_year")
        assert o.lpr == (LPR_1Y if o.lpr_tenor == "one_year" else LPR_5Y)
        closed = o.rate_annual * 365 / p.basis_days if p.repayment_method == "随借随还" else o.rate_annual  # no fees in this bundle
        assert o.annualized_rate == closed.quantize(Decimal("0.000001"))
        assert app.has_bank_account or p.open_to_non_customers
        assert o.name == p.name and o.kind == p.kind
        cap = {
            "jingying_kuaidai": bundle.credit.quick_max_fen,
            "keji_xinyong": bundle.credit.tech_max_fen,
            "wangdaitong": bundle.secured.revolving_max_fen,
            "diya_xinyong": bundle.secured.combined_max_fen,
            "project_loan": bundle.project.max_fen,
        }[o.product]
        assert o.limit_fen <= cap
        assert any(d.startswith(f"{o.name}: {'1年期' if o.lpr_tenor == 'one_year' else '5年期以上'}LPR ") for d in hits(r, "pricing"))
    assert len(set(products(r))) == len(r.offers)
    assert not {"jingying_kuaidai", "keji_xinyong"} <= set(products(r))
    assert not ({"jingying_kuaidai", "keji_xinyong"} & set(products(r)) and "diya_xinyong" in products(r))
    expected = (
        Outcome.REFER  # data missing or a required source silent: an officer decides
        if codes(r)[:1] in (["DATA_INSUFFICIENT"], ["DATA_GAP_REFERRED"])
        else Outcome.DECLINE
        if not r.offers
        else Outcome.APPROVE
        if approved == r.comprehensive_limit_fen
        else Outcome.PARTIAL
        if approved > 0
        else Outcome.REFER
    )
    assert r.outcome == expected
    if r.outcome == Outcome.DECLINE:
        assert r.reasons and r.comprehensive_limit_fen == 0
    assert [h for h in r.rule_hits if h.rule.startswith("refuse.")] == [RuleHit(f"refuse.{c}", t.split(": ", 1)[1]) for c, t in zip(codes(r), r.reasons, strict=True)]
    if r.tech_uplift_fen:
        assert r.tech_grade in "ABC" and sc.tech_most_pass
    assert r.risk_grade == risk_grade(bundle, sc.risk_pd) and r.tech_grade == sc.tech_grade
    if r.risk_grade == "E":
        assert not r.offers
    assert r == evaluate(bundle, f, tuple(collateral), sc, app, AS_OF)  # deterministic


PRICES = ("credit_price", "secured_price", "guaranteed_price")  # the offers' prices: what a run not priced leaves out


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.one_of(st.none(), st.integers(0, 10**11)))
def test_a_run_not_priced_keeps_every_other_number_and_sizes_as_the_record(case, guarantee_fen):
    """The counterfactual search's evaluations (`size`, `rules.decide(priced=False)`) leave out the offers' prices and
    nothing else: every other number, a project's price (it sizes the loan) among them, and so the outcome, the
    comprehensive limit and the part approved, are those of the full evaluation."""
    f, collateral, sc, app, bundle = case
    app = replace(app, guarantee_fen=guarantee_fen)
    inputs = rule_inputs(read_features(f), tuple(collateral), sc, app)
    full, lean = rules.decide(SCALAR, bundle, inputs, AS_OF), rules.decide(SCALAR, bundle, inputs, AS_OF, priced=False)
    assert set(lean) == set(full) - set(PRICES) and set(PRICES) <= set(full) and "project_price" in lean
    assert {k: full[k] for k in lean} == lean
    sized = size(bundle, read_features(f), tuple(collateral), sc, app, AS_OF)
    r = evaluate(bundle, f, tuple(collateral), sc, app, AS_OF)
    assert (sized.outcome, sized.comprehensive_limit_fen, sized.approved_fen) == (r.outcome, r.comprehensive_limit_fen, sum(o.approved_fen for o in r.offers))


# -- the bundle ---------------------------------------------------------------------------------------


def test_default_bundle_is_typed():
    b = load_bundle()
    assert (b.name, b.version, b.label) == ("wenzhou-tech-default", "2026.12.11", "wenzhou-tech-default@2026.12.11")
    assert b.required_sources == ("tax", "credit_bureau")
    assert b.credit.quick_product == "jingying_kuaidai" and b.credit.tech_revenue_ratio == Decimal("0.10")
    assert b.credit.quick_tax_multiplier == {"A": Decimal("9"), "B": Decimal("8"), "C": Decimal("7"), "D": Decimal("5")}
    assert isinstance(b.credit.quick_max_fen, int) and b.credit.round_down_fen == WAN
    assert b.secured.ltv == {"industrial_property": Decimal("0.70"), "residential": Decimal("0.70"), "land_use_right": Decimal("0.60")}
    assert [g.grade for g in b.tech_grades] == ["A", "B", "C", "D"] and [g.grade for g in b.risk_grades] == list(GRADE_ORDER)
    assert b.non_declined_risk_grades == ("A", "B", "C", "D")
    assert b.tech_grade("B").limit_multiplier == Decimal("1.10") and b.tech_grade("A").discount_bp == 40
    assert b.products["project_loan"].code == "project_loan" and b.pricing.one_year_lpr_max_term_months == 60
    assert b.pricing.lpr_valid_through == date(2027, 6, 30) and b.pricing.preferential_max_bp_vs_lpr == 0
    assert b.products["wangdaitong"].settlement == "monthly" and b.products["jingying_kuaidai"].basis_days == 360
    assert list(b.products) == ["jingying_kuaidai", "keji_xinyong", "wangdaitong", "diya_xinyong", "project_loan", "danbao_kuaidai"]
    assert b.eligibility.allowed_tax_credit_grades == ("A", "B") and b.pricing.preferential_certifications == ("专精特新", "小巨人")
    assert b.project.min_dscr == Decimal("1.25") and b.project.max_tenor_years == 10


def test_bundle_identity_is_its_content_hash(tmp_path: Path):
    a, b = parse_bundle(RAW), parse_bundle(RAW + b"\n# a comment\n")
    assert a.version == b.version and a.sha256 != b.sha256
    assert a.sha256 == hashlib.sha256(RAW).hexdigest() == BUNDLE.sha256
    # the shipped file is part of every stored decision: its hash must not drift
    assert BUNDLE.sha256 == "0fa0074ba0b3fc7feaf5fed14570501fafbc820a7a09885016b6664caf46d001"
    assert load_bundle() == BUNDLE
    edited = RAW.replace(b'version = "2026.12.11"', b'version = "2026.11.2"')
    copy_path = tmp_path / "p.toml"
    copy_path.write_bytes(edited)
    other = load_bundle(copy_path)
    assert other.version == "2026.11.2" and other.sha256 == hashlib.sha256(edited).hexdigest()
    assert load_bundle(str(copy_path)) == other != BUNDLE
    assert bundle_from_document(DOC, "abc").sha256 == "abc"
    with pytest.raises(FileNotFoundError):
        load_bundle(tmp_path / "missing.toml")


def test_a_policy_change_changes_the_outcome_without_code():
    raw = RAW.decode("utf-8")
    looser = parse_bundle(raw.replace('quick_tax_multiplier = { A = "9"', 'quick_tax_multiplier = { A = "7"').encode())
    assert offer(run(bundle=looser), "jingying_kuaidai").limit_fen == 40 * WAN * 7
    assert replace(BUNDLE).sha256 != looser.sha256


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('max_pd = "1"', 'max_pd = "0.5"', 'risk_grades[4].max_pd: the last grade must have max_pd "1" so that every value has a grade'),
        ('one_year = "0.0310"', 'one_year = "0.03105"', 'lpr[0].one_year: must be a whole basis point (4 decimal places, e.g. "0.0310"), got \'0.03105\''),
        (
            'basis_days = 360\nsettlement = "monthly"\nauto_approve_max_fen = 500_000_000',
            'basis_days = 300\nsettlement = "monthly"\nauto_approve_max_fen = 500_000_000',
            "products.jingying_kuaidai.basis_days: must be 360 or 365 (days in the interest year), got 300",
        ),
        ('settlement = "monthly"', 'settlement = "weekly"', "products.jingying_kuaidai.settlement: Input should be 'monthly' or 'quarterly', got 'weekly'"),
        ('industrial_property = "0.70"', 'industrial_property = "1.70"', "secured.ltv.industrial_property: Input should be less than or equal to 1, got '1.70'"),
        (
            'quick_product = "jingying_kuaidai"',
            'quick_product = "nope"',
            "credit.quick_product: 'nope' is not a product of this bundle (products: jingying_kuaidai, keji_xinyong, wangdaitong, diya_xinyong, project_loan, danbao_kuaidai)",
        ),
        ('tech_product = "keji_xinyong"', 'tech_product = "project_loan"', "credit.tech_product: 'project_loan' is a project product; a credit product is needed here"),
        (
            '[products.jingying_kuaidai]\nname = "经营快贷"\nkind = "credit"',
            '[products.jingying_kuaidai]\nname = "经营快贷"\nkind = "magic"',
            "products.jingying_kuaidai.kind: Input should be 'credit', 'secured', 'project' or 'guaranteed', got 'magic'",
        ),
        (
            "keji_xinyong = { A = 40, B = 70, C = 110, D = 160 }",
            "keji_xinyong = { A = 40, B = 70, C = 110 }",
            "pricing.spread_bp.keji_xinyong.D: missing (every product needs a spread for each risk grade that is not declined)",
        ),
        ('tech_revenue_ratio = "0.10"\n', "", "credit.tech_revenue_ratio: missing"),
        ('tech_revenue_ratio = "0.10"', "tech_revenue_ratio = 0.10", 'credit.tech_revenue_ratio: must be a decimal string like "0.70", got 0.1'),
        ('tech_revenue_ratio = "0.10"', 'tech_revenue_ratio = "ten"', "credit.tech_revenue_ratio: 'ten' is not a decimal number"),
        ('tech_revenue_ratio = "0.10"', 'tech_revenue_ratio = "NaN"', "credit.tech_revenue_ratio: must be a finite decimal number, got 'NaN'"),
        ('tech_revenue_ratio = "0.10"', 'tech_revenue_ratio = "-0.1"', "credit.tech_revenue_ratio: Input should be greater than or equal to 0, got '-0.1'"),
        ("quick_max_fen = 500_000_000", "quick_max_fen = 5.0e8", "credit.quick_max_fen: Input should be a valid integer, got 500000000.0"),
        ("quick_max_fen = 500_000_000", "quick_max_fen = -1", "credit.quick_max_fen: Input should be greater than or equal to 0, got -1"),
        ("quick_max_fen = 500_000_000", "quick_max_fen = 1_000_000_000_000_001", "credit.quick_max_fen: Input should be less than or equal to 1000000000000000, got 1000000000000001"),
        ("round_down_fen = 1_000_000", "round_down_fen = 0", "credit.round_down_fen: Input should be greater than or equal to 1, got 0"),
        ('min_dscr = "1.25"', 'min_dscr = "0"', "project.min_dscr: Input should be greater than 0, got '0'"),
        ("[bundle]\n", "[bundle]\nauthor = 1\n", "bundle.author: unknown key (allowed: name, version, description)"),
        ('one_year = "0.0300"', 'one_year = "0.0300"\nten_year = "0.04"', "lpr[1].ten_year: unknown key (allowed: published_on, one_year, over_five_year)"),
        ('one_year = "0.0300"', 'one_year = "0"', "lpr[1].one_year: Input should be greater than 0, got '0'"),
        ('one_year = "0.0300"', 'one_year = "1"', "lpr[1].one_year: Input should be less than 1, got '1'"),
        ('published_on = "2025-05-20"', 'published_on = "2025-13-20"', "lpr[1].published_on: must be a date like \"2025-05-20\", got '2025-13-20'"),
        ('published_on = "2025-05-20"', "published_on = 20250520", 'lpr[1].published_on: must be a date like "2025-05-20", got 20250520'),
        (
            'published_on = "2025-05-20"',
            'published_on = "2024-10-21"',
            "lpr[1].published_on: fixings must be listed by publication date, oldest first, each date once; '2024-10-21' follows '2024-10-21'",
        ),
        ('required = ["tax", "credit_bureau"]', 'required = ["tax", "tax"]', "sources.required: 'tax' is listed twice"),
        ('required = ["tax", "credit_bureau"]', "required = []", "sources.required: Tuple should have at least 1 item after validation, not 0, got []"),
        (
            'required = ["tax", "credit_bureau"]',
            'required = ["tax", "weather"]',
            "sources.required: 'weather' is not a data source (allowed: tax, invoices, social_insurance, utilities, ip, credit_bureau, bank_flows, collateral)",
        ),
        ('declined_risk_grades = ["E"]', 'declined_risk_grades = ["A", "B", "C", "D", "E"]', "eligibility.declined_risk_grades: declines every risk grade; at least one must remain"),
        ('declined_risk_grades = ["E"]', 'declined_risk_grades = ["F"]', "eligibility.declined_risk_grades[0]: Input should be 'A', 'B', 'C', 'D' or 'E', got 'F'"),
        ('tech_min_grade = "C"', 'tech_min_grade = "E"', "credit.tech_min_grade: E is not a grade of tech_grades (A/B/C/D)"),
        ('fast_track_tech_grades = ["A", "B"]', 'fast_track_tech_grades = ["A", "E"]', "credit.fast_track_tech_grades: E is not a grade of tech_grades (A/B/C/D)"),
        ('fast_track_risk_grades = ["A", "B"]', 'fast_track_risk_grades = ["A", "B", "B"]', "credit.fast_track_risk_grades: 'B' is listed twice"),
        ('allowed_tax_credit_grades = ["A", "B"]', 'allowed_tax_credit_grades = ["A", "X"]', "eligibility.allowed_tax_credit_grades[1]: Input should be 'A', 'B', 'M', 'C' or 'D', got 'X'"),
        (
            'quick_tax_multiplier = { A = "9",',
            'quick_tax_multiplier = { a = "9",',
            "credit.quick_tax_multiplier.a: the key 'a' is not allowed: Input should be 'A', 'B', 'C', 'D' or 'E'",
        ),
        (', D = "5" }', " }", "credit.quick_tax_multiplier.D: missing (every risk grade that is not declined needs a multiplier)"),
        ('repayment_method = "随借随还"', 'repayment_method = "whenever"', "products.jingying_kuaidai.repayment_method: Input should be '随借随还', '按月付息到期还本', '等额本息' or '等额本金', got 'whenever'"),
        ("revolving = true", "revolving = 1", "products.jingying_kuaidai.revolving: Input should be a valid boolean, got 1"),
        ("validity_months = 12", "validity_months = 0", "products.jingying_kuaidai.validity_months: Input should be greater than or equal to 1, got 0"),
        ('name = "经营快贷"', 'name = ""', "products.jingying_kuaidai.name: String should have at least 1 character, got ''"),
        ("[products.jingying_kuaidai]\n", '[products.jingying_kuaidai]\ncode = "other"\n', "products.jingying_kuaidai.code: must be the table's key 'jingying_kuaidai' (or be left out), got 'other'"),
        ("floor_bp_vs_lpr = -30", "floor_bp_vs_lpr = -10001", "pricing.floor_bp_vs_lpr: Input should be greater than or equal to -10000, got -10001"),
        ("[pricing.spread_bp]\n", "[pricing.spread_bp]\ncredit_card = { A = 1 }\n", "pricing.spread_bp.credit_card: 'credit_card' is not a product of this bundle (products: jingying_kuaidai, keji_xinyong, wangdaitong, diya_xinyong, project_loan, danbao_kuaidai)"),
        ("[pricing.spread_bp]\n", "[pricing.spread_bp]\nkeji_xinyong = { A = 1, F = 2 }\n", None),  # TOML refuses the duplicate table
    ],
)
def test_a_broken_bundle_is_refused_with_the_key(old, new, message):
    raw = RAW.decode("utf-8")
    assert old in raw, old
    with pytest.raises(PolicyError) as e:
        parse_bundle(raw.replace(old, new, 1).encode())
    if message is None:
        assert e.value.path == "" and str(e.value).startswith("policy file is not valid TOML: ")
    else:
        assert str(e.value) == message
        assert e.value.path == message.split(": ")[0] and e.value.reason == message.split(": ", 1)[1]


def test_grade_tables_must_read_in_order():
    tech = [{"grade": g, "limit_multiplier": "1", "discount_bp": 0} for g in ("A", "B", "B")]
    assert str(refusal(doc_with({"tech_grades": tech}))) == "tech_grades[2].grade: grades must be listed in the order A/B/C/D/E, each once; B follows B"
    tech[2]["grade"] = "C"
    assert len(bundle_from_document(doc_with({"tech_grades": tech, "credit.fast_track_tech_grades": ["A"]}), "x").tech_grades) == 3
    swapped = [{"grade": g, "limit_multiplier": "1", "discount_bp": 0} for g in ("B", "A", "C")]
    assert str(refusal(doc_with({"tech_grades": swapped}))) == "tech_grades[1].grade: grades must be listed in the order A/B/C/D/E, each once; A follows B"
    risk = [{"grade": g, "max_pd": p} for g, p in (("A", "0.01"), ("B", "0.01"), ("E", "1"))]
    assert str(refusal(doc_with({"risk_grades": risk}))) == "risk_grades[1].max_pd: must be listed from the best grade up, strictly increasing; '0.01' follows '0.01'"
    risk = [{"grade": g, "max_pd": p} for g, p in (("A", "0.01"), ("A", "0.02"), ("E", "1"))]
    assert str(refusal(doc_with({"risk_grades": risk}))) == "risk_grades[1].grade: grades must be listed in the order A/B/C/D/E, each once; A follows A"


def test_a_shorter_grade_table_is_checked_against_its_own_grades():
    risk = [{"grade": g, "max_pd": p} for g, p in (("A", "0.02"), ("C", "0.1"), ("E", "1"))]
    e = refusal(doc_with({"risk_grades": risk}))
    assert str(e) == "credit.fast_track_risk_grades: B is not a grade of risk_grades (A/C/E)"
    ok = doc_with({"risk_grades": risk, "credit.fast_track_risk_grades": ["A"]})
    e = refusal(ok)
    assert str(e) == "credit.quick_tax_multiplier: B is not a grade of risk_grades (A/C/E)"
    ok = doc_with({"risk_grades": risk, "credit.fast_track_risk_grades": ["A"], "credit.quick_tax_multiplier": {"A": "9", "C": "7"}})
    assert str(refusal(ok)) == "pricing.spread_bp.jingying_kuaidai: B is not a grade of risk_grades (A/C/E)"
    spreads = {code: {"A": 1, "C": 2} for code in DOC["products"]}
    b = bundle_from_document(doc_with({"risk_grades": risk, "credit.fast_track_risk_grades": ["A"], "credit.quick_tax_multiplier": {"A": "9", "C": "7"}, "pricing.spread_bp": spreads}), "x")
    assert b.non_declined_risk_grades == ("A", "C") and risk_grade(b, Decimal("0.03")) == "C"
    assert str(refusal(doc_with({"eligibility.declined_risk_grades": ["D", "E"], "risk_grades": risk}))) == "eligibility.declined_risk_grades: D is not a grade of risk_grades (A/C/E)"


def test_every_non_declined_grade_needs_a_multiplier_and_spreads_but_declined_ones_do_not():
    doc = doc_with({"eligibility.declined_risk_grades": ["D", "E"]}, drop=("credit.quick_tax_multiplier.D", "pricing.spread_bp.keji_xinyong.D"))
    assert bundle_from_document(doc, "x").non_declined_risk_grades == ("A", "B", "C")
    e = refusal(doc_with({}, drop=("pricing.spread_bp.project_loan",)))
    assert str(e) == "pricing.spread_bp.project_loan: missing (every product needs a spread for each risk grade that is not declined)"


def test_a_product_table_removed_is_named_where_it_is_referenced():
    assert str(refusal(doc_with({}, drop=("products.wangdaitong",)))).startswith("secured.revolving_product: 'wangdaitong' is not a product of this bundle")
    assert str(refusal(doc_with({}, drop=("products.diya_xinyong",)))).startswith("secured.combined_product: 'diya_xinyong' is not a product")
    assert str(refusal(doc_with({}, drop=("products.project_loan",)))).startswith("project.product: 'project_loan' is not a product")
    assert str(refusal(doc_with({}, drop=("products.keji_xinyong",)))).startswith("credit.tech_product: 'keji_xinyong' is not a product")
    e = refusal(doc_with({"products.extra": dict(DOC["products"]["wangdaitong"])}))
    assert str(e) == "pricing.spread_bp.extra: missing (every product needs a spread for each risk grade that is not declined)"
    assert str(refusal(doc_with({"secured.combined_product": "wangdaitong", "secured.revolving_product": "jingying_kuaidai"}))) == (
        "secured.revolving_product: 'jingying_kuaidai' is a credit product; a secured product is needed here"
    )
    assert str(refusal(doc_with({"secured.combined_product": "project_loan"}))).startswith("secured.combined_product: 'project_loan' is a project product")
    assert str(refusal(doc_with({"project.product": "wangdaitong"}))).startswith("project.product: 'wangdaitong' is a secured product; a project product")
    assert str(refusal(doc_with({"credit.quick_product": "wangdaitong"}))).startswith("credit.quick_product: 'wangdaitong' is a secured product")


def test_open_tables_take_new_entries():
    b = bundle_from_document(doc_with({"secured.ltv.vessel": "0.40"}, drop=("secured.ltv.residential",)), "x")
    assert b.secured.ltv == {"industrial_property": Decimal("0.70"), "land_use_right": Decimal("0.60"), "vessel": Decimal("0.40")}
    r = run(collateral=[pledged(1_000, 0, kind="vessel")], bundle=b)
    assert offer(r, "wangdaitong").limit_fen == 400 * WAN


@pytest.mark.parametrize(("ltv", "ok"), [("0", True), ("1", True), ("1.0001", False), ("-0.0001", False)])
def test_ltv_range_on_both_sides(ltv, ok):
    doc = doc_with({"secured.ltv.residential": ltv})
    if ok:
        assert bundle_from_document(doc, "x").secured.ltv["residential"] == Decimal(ltv)
    else:
        assert refusal(doc).path == "secured.ltv.residential"


@pytest.mark.parametrize(("days", "ok"), [(360, True), (365, True), (364, False), (366, False), (360.0, False), (True, False)])
def test_basis_days_are_360_or_365(days, ok):
    doc = doc_with({"products.keji_xinyong.basis_days": days})
    if ok:
        assert bundle_from_document(doc, "x").products["keji_xinyong"].basis_days == days
    else:
        assert refusal(doc).path == "products.keji_xinyong.basis_days"


def test_lpr_dates_may_be_toml_dates_but_not_datetimes():
    from datetime import datetime

    b = bundle_from_document(doc_with({"lpr.1.published_on": date(2025, 5, 20)}), "x")
    assert b.lpr_on(date(2025, 5, 20)).one_year == LPR_1Y
    assert refusal(doc_with({"lpr.1.published_on": datetime(2025, 5, 20)})).path == "lpr[1].published_on"


def test_unknown_keys_list_what_the_table_allows():
    e = refusal(doc_with({"products.keji_xinyong.colour": "red"}))
    assert str(e) == (
        "products.keji_xinyong.colour: unknown key (allowed: name, kind, revolving, repayment_method, validity_months, "
        "max_drawing_months, basis_days, settlement, auto_approve_max_fen, open_to_non_customers, "
        "interest_with_principal, penalty_uplift, grace_days, allocation_order, upfront_fee_bp, annual_fee_bp)"
    )
    assert str(refusal(doc_with({"tech_grades.2.colour": 1}))) == "tech_grades[2].colour: unknown key (allowed: grade, limit_multiplier, discount_bp)"
    assert str(refusal(doc_with({"colour": 1}))) == (
        "colour: unknown key (allowed: bundle, lpr, sources, tech_grades, risk_grades, eligibility, credit, secured, project, guarantee, pricing, products, classification, inclusive, "
        "expected_loss, approval_authority, early_warning)"
    )
    assert str(refusal(doc_with({"pricing.colour": 1}))) == "pricing.colour: unknown key (allowed: lpr_valid_through, one_year_lpr_max_term_months, floor_bp_vs_lpr, preferential_certifications, preferential_max_bp_vs_lpr, spread_bp)"


def test_a_refusal_lists_five_problems_then_counts_the_rest():
    five = refusal(doc_with({}, drop=("bundle", "lpr", "sources", "tech_grades", "risk_grades")))
    assert str(five) == "bundle: missing; lpr: missing; sources: missing; tech_grades: missing; risk_grades: missing"
    six = refusal(doc_with({}, drop=("bundle", "lpr", "sources", "tech_grades", "risk_grades", "eligibility")))
    assert str(six) == "bundle: missing; lpr: missing; sources: missing; tech_grades: missing; risk_grades: missing (and 1 more)"
    assert six.problems[-1] == ("eligibility", "missing") and len(six.problems) == 6
    one = PolicyError("a.b", "why")
    assert (str(one), one.path, one.reason, one.problems) == ("a.b: why", "a.b", "why", (("a.b", "why"),))
    assert str(PolicyError("", "not TOML")) == "not TOML"


def test_not_a_bundle_at_all():
    with pytest.raises(PolicyError) as e:
        parse_bundle(b"x = ")
    assert e.value.path == "" and str(e.value).startswith("policy file is not valid TOML: ")
    with pytest.raises(PolicyError) as e:
        parse_bundle(b"\xff\xfe")
    assert str(e.value).startswith("policy file is not valid TOML: ")
    with pytest.raises(PolicyError) as e:
        parse_bundle(b"")
    assert str(e.value) == "bundle: missing; lpr: missing; sources: missing; tech_grades: missing; risk_grades: missing (and 12 more)"
    assert len(e.value.problems) == 17 and e.value.path == "bundle" and e.value.reason == "missing"
    with pytest.raises(PolicyError) as e:
        parse_bundle(RAW.replace(b'name = "wenzhou-tech-default"', b"name = 1").replace(b'version = "2026.12.11"', b"version = 2"))
    assert str(e.value) == "bundle.name: Input should be a valid string, got 1; bundle.version: Input should be a valid string, got 2"
    assert e.value.problems == (("bundle.name", "Input should be a valid string, got 1"), ("bundle.version", "Input should be a valid string, got 2"))
    with pytest.raises(PolicyError) as e:
        bundle_from_document(doc_with({"products": {"Bad-Code": {}}}), "x")
    assert str(e.value).startswith("products.Bad-Code: the key 'Bad-Code' is not allowed: String should match pattern")


# -- hypothesis: break the bundle anywhere, the refusal names the place -----------------------------------


def _paths(node: Any, prefix: str = "", keys: str = "") -> list[tuple[str, str]]:
    """(dotted path as PolicyError names it, dotted path for doc_with) of every key and array item."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for k, v in items:
        shown = f"{prefix}[{k}]" if isinstance(k, int) else f"{prefix}.{k}" if prefix else k
        out.append((shown, f"{keys}.{k}" if keys else str(k)))
        out.extend(_paths(v, shown, f"{keys}.{k}" if keys else str(k)))
    return out


def _get(path: str) -> Any:
    node: Any = DOC
    for p in path.split("."):
        node = node[int(p)] if isinstance(node, list) else node[p]
    return node


ALL_PATHS = _paths(DOC)
KEY_PATHS = [(shown, keys) for shown, keys in ALL_PATHS if not shown.endswith("]")]
OPEN_TABLE_ENTRIES = ("secured.ltv.",)  # kinds may come and go
TABLES = [("", "")] + [(shown, keys) for shown, keys in ALL_PATHS if isinstance(_get(keys), dict)]


@pytest.mark.parametrize(("shown", "keys"), KEY_PATHS, ids=[s for s, _ in KEY_PATHS])
def test_removing_any_key_is_refused_naming_it(shown, keys):
    doc = doc_with({}, drop=(keys,))
    if shown.startswith(OPEN_TABLE_ENTRIES):
        bundle_from_document(doc, "x")
        return
    e = refusal(doc)
    if shown.startswith("products.") and shown.count(".") == 1:  # a whole product: named where it is referenced
        assert shown.split(".")[1] in str(e)
    else:
        assert e.path == shown and e.reason.startswith("missing")


SCALARS = [7, 7.5, True, "x", [], {}, [1], {"k": 1}]


def _kind(v: Any) -> str:
    return type(v).__name__


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(ALL_PATHS), st.sampled_from(SCALARS))
def test_a_value_of_another_type_anywhere_is_refused_naming_it(path, value):
    shown, keys = path
    assume(_kind(value) != _kind(_get(keys)))
    e = refusal(doc_with({keys: value}))
    assert e.path == shown, str(e)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(TABLES), st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True), st.sampled_from([1, True, [1], 2.5]))
def test_an_unknown_key_anywhere_is_refused_naming_it(table, key, value):
    shown, keys = table
    assume(key not in (_get(keys) if keys else DOC))
    e = refusal(doc_with({f"{keys}.{key}" if keys else key: value}))
    assert e.path == (f"{shown}.{key}" if shown else key), str(e)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_bundle_or_a_policy_error(raw):
    try:
        parse_bundle(raw)
    except PolicyError as e:
        assert str(e)


# -- overdue rules: product fields and the classification table ---------------------------------------

PRODUCT_CODES = list(DOC["products"])
ORDER = ["penalty", "compound", "overdue_interest", "overdue_principal", "interest", "principal"]
ORDER_REASON = "must list each of penalty, compound, overdue_interest, overdue_principal, interest, principal exactly once"


def test_default_bundle_overdue_rules():
    for code in PRODUCT_CODES:
        p = BUNDLE.products[code]
        assert (p.interest_with_principal, p.penalty_uplift, p.grace_days, p.allocation_order) == (False, Decimal("0.50"), 0, tuple(ORDER))
        assert isinstance(p.allocation_order, tuple) and p.allocation_order == LOAN_BUCKETS
        assert BUNDLE.overdue_policy(code) == OverduePolicy(Decimal("0.50"), 0, (0, 90, 270, 360), 90)
    assert BUNDLE.classification.thresholds_dpd == (0, 90, 270, 360) and BUNDLE.classification.upgrade_after_days == 90


@pytest.mark.parametrize(
    ("uplift", "ok"),
    [
        ("0.29", False),
        ("0.299999", False),  # the last 6-place value below the floor
        ("0.30", True),
        ("0.3", True),
        ("0.300001", True),
        ("0.4", True),
        ("0.499999", True),
        ("0.50", True),
        ("0.500000", True),
        ("0.500001", False),
        ("0.51", False),
        ("0", False),
        ("-0.40", False),
        ("0.3000001", False),  # seven places
        ("0.4000001", False),
    ],
)
def test_penalty_uplift_range_on_both_sides(uplift, ok):
    doc = doc_with({"products.keji_xinyong.penalty_uplift": uplift})
    if ok:
        b = bundle_from_document(doc, "x")
        assert b.products["keji_xinyong"].penalty_uplift == Decimal(uplift)
        assert b.overdue_policy("keji_xinyong").penalty_uplift == Decimal(uplift)
        assert b.products["jingying_kuaidai"].penalty_uplift == Decimal("0.50")  # the other products keep theirs
    else:
        e = refusal(doc)
        assert e.path == "products.keji_xinyong.penalty_uplift" and len(e.problems) == 1, str(e)


@pytest.mark.parametrize(
    ("uplift", "message"),
    [
        ("0.29", "Input should be greater than or equal to Decimal('0.30'), got '0.29'"),
        ("0.51", "Input should be less than or equal to Decimal('0.50'), got '0.51'"),
        ("0.3000001", "Decimal input should have no more than 6 decimal places, got '0.3000001'"),
        (0.4, 'must be a decimal string like "0.70", got 0.4'),
        (True, 'must be a decimal string like "0.70", got True'),
        ("NaN", "must be a finite decimal number, got 'NaN'"),
        ("forty", "'forty' is not a decimal number"),
    ],
)
def test_penalty_uplift_refusals_word_for_word(uplift, message):
    for code in ("jingying_kuaidai", "project_loan"):
        assert str(refusal(doc_with({f"products.{code}.penalty_uplift": uplift}))) == f"products.{code}.penalty_uplift: {message}"


@pytest.mark.parametrize(
    ("days", "ok"),
    [(0, True), (1, True), (29, True), (30, True), (31, False), (-1, False), (1000, False), (7.0, False), (True, False), ("7", False)],
)
def test_grace_days_range_on_both_sides(days, ok):
    doc = doc_with({"products.wangdaitong.grace_days": days})
    if ok:
        b = bundle_from_document(doc, "x")
        assert b.products["wangdaitong"].grace_days == days and b.overdue_policy("wangdaitong").grace_days == days
    else:
        assert refusal(doc).path == "products.wangdaitong.grace_days"


def test_grace_days_refusals_word_for_word():
    assert str(refusal(doc_with({"products.wangdaitong.grace_days": 31}))) == (
        "products.wangdaitong.grace_days: Input should be less than or equal to 30, got 31")
    assert str(refusal(doc_with({"products.wangdaitong.grace_days": -1}))) == (
        "products.wangdaitong.grace_days: Input should be greater than or equal to 0, got -1")


@pytest.mark.parametrize(("value", "ok"), [(True, True), (False, True), (1, False), (0, False), ("true", False), ([True], False)])
def test_interest_with_principal_is_a_boolean(value, ok):
    doc = doc_with({"products.diya_xinyong.interest_with_principal": value})
    if ok:
        assert bundle_from_document(doc, "x").products["diya_xinyong"].interest_with_principal is value
    else:
        assert refusal(doc).path == "products.diya_xinyong.interest_with_principal"


@pytest.mark.parametrize(
    "order",
    [
        ORDER[::-1],
        ["principal", "interest", "penalty", "compound", "overdue_interest", "overdue_principal"],
        ORDER[1:] + ORDER[:1],
    ],
)
def test_allocation_order_may_be_any_permutation_of_the_buckets(order):
    b = bundle_from_document(doc_with({"products.jingying_kuaidai.allocation_order": order}), "x")
    assert b.products["jingying_kuaidai"].allocation_order == tuple(order)
    assert b.products["keji_xinyong"].allocation_order == tuple(ORDER)


@pytest.mark.parametrize(
    "order",
    [
        ORDER[:-1],  # principal missing
        ORDER[1:],  # penalty missing
        ORDER + ["principal"],  # principal twice
        ORDER[:-1] + ["penalty"],  # penalty twice, principal missing
        ORDER[:-1] + ["fees"],  # an unknown bucket instead of principal
        ORDER + ["fees"],  # an unknown bucket besides all six
        [b.upper() for b in ORDER],
        [],
    ],
)
def test_allocation_order_that_is_not_a_permutation_is_refused(order):
    e = refusal(doc_with({"products.jingying_kuaidai.allocation_order": order}))
    assert e.path == "products.jingying_kuaidai.allocation_order", str(e)
    assert e.reason.startswith(ORDER_REASON + ", got ")


@pytest.mark.parametrize(("value", "path"), [("penalty", ""), ({"penalty": 1}, ""), ([1, 2, 3, 4, 5, 6], "[0]"), (ORDER[:5] + [None], "[5]")])
def test_allocation_order_of_another_type_is_refused_naming_it(value, path):
    assert refusal(doc_with({"products.project_loan.allocation_order": value})).path == "products.project_loan.allocation_order" + path


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([*ORDER, "fees"]), max_size=8))
def test_allocation_order_is_accepted_exactly_when_it_is_a_permutation(order):
    doc = doc_with({"products.keji_xinyong.allocation_order": order})
    if sorted(order) == sorted(ORDER):
        assert bundle_from_document(doc, "x").products["keji_xinyong"].allocation_order == tuple(order)
    else:
        assert refusal(doc).path == "products.keji_xinyong.allocation_order"


@pytest.mark.parametrize(
    ("thresholds", "ok"),
    [
        ([0, 90, 270, 360], True),
        ([0, 1, 2, 3], True),
        ([30, 60, 90, 180], True),
        ([3647, 3648, 3649, 3650], True),  # the top of the range
        ([0, 0, 270, 360], False),  # equal neighbours at each place
        ([0, 90, 90, 360], False),
        ([0, 90, 270, 270], False),
        ([90, 0, 270, 360], False),  # a decrease at each place
        ([0, 270, 90, 360], False),
        ([0, 90, 360, 270], False),
        ([360, 270, 90, 0], False),
    ],
)
def test_classification_thresholds_must_increase_strictly(thresholds, ok):
    doc = doc_with({"classification.thresholds_dpd": thresholds})
    if ok:
        b = bundle_from_document(doc, "x")
        assert b.classification.thresholds_dpd == tuple(thresholds)
        assert all(b.overdue_policy(code).thresholds == tuple(thresholds) for code in PRODUCT_CODES)
    else:
        e = refusal(doc)
        assert e.path == "classification.thresholds_dpd", str(e)
        assert e.reason.startswith(f"must increase strictly (关注, 次级, 可疑, 损失), got {thresholds}")


@pytest.mark.parametrize(
    ("thresholds", "path"),
    [
        ([0, 90, 270], "classification.thresholds_dpd[3]"),  # three of four: the fourth is missing
        ([0, 90, 270, 360, 720], "classification.thresholds_dpd"),
        ([], "classification.thresholds_dpd[0]"),
        ([0, 90, 270, 360.0], "classification.thresholds_dpd[3]"),
        ([0, True, 270, 360], "classification.thresholds_dpd[1]"),
        ([0, 90, "270", 360], "classification.thresholds_dpd[2]"),
        (90, "classification.thresholds_dpd"),
    ],
)
def test_classification_needs_four_integer_thresholds(thresholds, path):
    assert refusal(doc_with({"classification.thresholds_dpd": thresholds})).path == path


@pytest.mark.parametrize("thresholds", [[-1, 90, 270, 360], [3647, 3648, 3649, 3651], [0, 90, 270, 10**6]])
def test_classification_thresholds_out_of_range_are_refused(thresholds):
    e = refusal(doc_with({"classification.thresholds_dpd": thresholds}))
    assert e.path.startswith("classification.thresholds") and "is out of range" in e.reason
    assert "4 strictly increasing ints in 0..3650" in e.reason


@pytest.mark.parametrize("thresholds", [[-1, 90, 270, 360], [3647, 3648, 3649, 3651]])
def test_classification_thresholds_out_of_range_name_the_key(thresholds):
    assert refusal(doc_with({"classification.thresholds_dpd": thresholds})).path == "classification.thresholds_dpd"


@pytest.mark.parametrize(("path", "value"), [("products.keji_xinyong.allocation_order", ORDER[:-1]), ("classification.thresholds_dpd", [0, 9, 9, 10])])
def test_own_validators_quote_the_value_once(path, value):
    assert refusal(doc_with({path: value})).reason.count(", got ") == 1


@pytest.mark.parametrize(("days", "ok"), [(0, False), (1, True), (2, True), (90, True), (3650, True), (3651, False), (-1, False), (90.0, False), (True, False)])
def test_upgrade_after_days_range_on_both_sides(days, ok):
    doc = doc_with({"classification.upgrade_after_days": days})
    if ok:
        b = bundle_from_document(doc, "x")
        assert b.classification.upgrade_after_days == days and b.overdue_policy("keji_xinyong").upgrade_after_days == days
    else:
        assert refusal(doc).path == "classification.upgrade_after_days"


def test_upgrade_after_days_refusals_word_for_word():
    assert str(refusal(doc_with({"classification.upgrade_after_days": 0}))) == (
        "classification.upgrade_after_days: Input should be greater than or equal to 1, got 0")
    assert str(refusal(doc_with({"classification.upgrade_after_days": 3651}))) == (
        "classification.upgrade_after_days: Input should be less than or equal to 3650, got 3651")


def test_the_classification_table_is_required_and_closed():
    assert str(refusal(doc_with({}, drop=("classification",)))) == "classification: missing"
    assert str(refusal(doc_with({}, drop=("classification.upgrade_after_days",)))) == "classification.upgrade_after_days: missing"
    assert str(refusal(doc_with({"classification.colour": 1}))) == "classification.colour: unknown key (allowed: thresholds_dpd, upgrade_after_days)"
    for key in ("interest_with_principal", "penalty_uplift", "grace_days", "allocation_order"):
        assert str(refusal(doc_with({}, drop=(f"products.wangdaitong.{key}",)))) == f"products.wangdaitong.{key}: missing"


def test_overdue_policy_takes_the_products_uplift_and_grace_with_the_bundles_classification():
    b = bundle_with(
        products__jingying_kuaidai__penalty_uplift="0.30",
        products__jingying_kuaidai__grace_days=3,
        products__keji_xinyong__penalty_uplift="0.45",
        products__keji_xinyong__grace_days=30,
        classification__thresholds_dpd=[5, 60, 180, 365],
        classification__upgrade_after_days=120,
    )
    assert b.overdue_policy("jingying_kuaidai") == OverduePolicy(Decimal("0.30"), 3, (5, 60, 180, 365), 120)
    assert b.overdue_policy("keji_xinyong") == OverduePolicy(Decimal("0.45"), 30, (5, 60, 180, 365), 120)
    assert b.overdue_policy("wangdaitong") == OverduePolicy(Decimal("0.50"), 0, (5, 60, 180, 365), 120)
    policy = b.overdue_policy("jingying_kuaidai")
    assert isinstance(policy, OverduePolicy) and isinstance(policy.penalty_uplift, Decimal)


def test_the_overdue_terms_reach_the_offer():
    b = bundle_with(
        products__jingying_kuaidai__interest_with_principal=True,
        products__jingying_kuaidai__penalty_uplift="0.35",
        products__jingying_kuaidai__grace_days=5,
        products__jingying_kuaidai__allocation_order=ORDER[::-1],
    )
    o = offer(run(bundle=b), "jingying_kuaidai")
    assert (o.interest_with_principal, o.penalty_uplift, o.grace_days, o.allocation_order) == (True, Decimal("0.35"), 5, tuple(ORDER[::-1]))


def test_the_overdue_rules_of_an_unknown_product_are_refused_naming_the_products():
    with pytest.raises(InvalidInput) as e:
        BUNDLE.overdue_policy("no_such_product")
    assert e.value.field == "product" and "jingying_kuaidai" in e.value.allowed


# -- gaps: a source asked that gave no usable answer in time ----------------------------------


def test_a_required_source_gap_refers_the_application_with_its_reason_and_nothing_else_is_checked():
    r = run(features(overdue_count_24m=None, _quality_flags=("credit_bureau:unavailable",)))
    assert r.outcome == Outcome.REFER and r.offers == ()
    assert codes(r) == ["DATA_GAP_REFERRED"] and "credit_bureau" in r.reasons[0]
    declining = bundle_with(sources__on_required_gap="decline")
    d = run(features(_quality_flags=("tax:unavailable", "credit_bureau:unavailable")), bundle=declining)
    assert d.outcome == Outcome.DECLINE and codes(d) == ["DATA_GAP"] and "tax、credit_bureau" in d.reasons[0]


def test_a_required_source_not_read_is_still_missing_data_not_a_gap():
    r = run(features(overdue_count_24m=None, _quality_flags=("credit_bureau:not_read",)))
    assert r.outcome == Outcome.REFER and codes(r) == ["DATA_INSUFFICIENT"]
    declining = bundle_with(sources__on_required_gap="decline")  # the gap rule does not change what missing data does
    assert run(features(overdue_count_24m=None), bundle=declining).outcome == Outcome.REFER


def test_an_optional_source_gap_adds_the_bundles_gap_spread_to_every_offer():
    base = run()
    gapped = run(features(_quality_flags=("utilities:unavailable", "ip:unavailable")))
    assert products(base) == products(gapped) and base.offers
    for a, b in zip(base.offers, gapped.offers, strict=True):
        assert b.rate_annual - a.rate_annual == BUNDLE.gap_spread_bp * BP == 20 * BP
    assert any("数据缺口 20bp (ip、utilities)" in h for h in hits(gapped, "pricing"))
    free = run(features(_quality_flags=("utilities:unavailable",)), bundle=bundle_with(sources__gap_spread_bp=0))
    assert [o.rate_annual for o in free.offers] == [o.rate_annual for o in base.offers]


@pytest.mark.parametrize(("key", "value", "words"), [("on_required_gap", "wait", "refer"), ("gap_spread_bp", -1, "greater than or equal"),
                                                     ("gap_spread_bp", 1001, "less than or equal")])
def test_gap_rules_are_checked_when_the_bundle_is_read(key, value, words):
    e = refusal(doc_with({f"sources.{key}": value}))
    assert f"sources.{key}" in str(e) and words in str(e)


def test_policy_check_names_file_line_key_and_reason(tmp_path: Path):
    import subprocess
    import sys

    from sandu.policy.bundle import check_bundle_file, line_of

    text = RAW.decode()
    lines = text.splitlines()
    for path, expected in [("pricing.lpr_valid_through", "lpr_valid_through ="), ("lpr[1].one_year", 'one_year = "0.0300"'),
                           ("lpr[0].one_year", 'one_year = "0.0310"'), ("products.project_loan.upfront_fee_bp", "upfront_fee_bp ="),
                           ("pricing.spread_bp.keji_xinyong.Z", "keji_xinyong = {"), ("inclusive.max_total_credit_fen", "max_total_credit_fen =")]:
        number = line_of(text, path)
        assert number is not None and lines[number - 1].startswith(expected), (path, number)
    assert lines[line_of(text, "products.project_loan.colour") - 1] == "[products.project_loan]"  # an unknown key: its table
    assert line_of(text, "nowhere.at_all") is None
    project_line = line_of(text, "products.project_loan.upfront_fee_bp")
    assert project_line > line_of(text, "products.diya_xinyong.upfront_fee_bp")  # the key under its own table, not the first one
    good = tmp_path / "good.toml"
    good.write_bytes(RAW)
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('lpr_valid_through = "2027-06-30"', 'lpr_valid_through = "2025-05-19"')
                   .replace('one_year = "0.0300"', 'one_year = "0.0300"\ncolour = "red"'), encoding="utf-8")
    assert check_bundle_file(good)[1] == []
    _, problems = check_bundle_file(bad)
    assert [(p, lines_of_bad) for _, p, lines_of_bad in problems][0][0] == "lpr[1].colour"
    sandu = str(Path(sys.executable).with_name("sandu"))
    r = subprocess.run([sandu, "policy", "check", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"{good}: ok — wenzhou-tech-default@" in r.stdout
    bad_lines = bad.read_text(encoding="utf-8").splitlines()
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{bad}:") and first.endswith("lpr[1].colour: unknown key (allowed: published_on, one_year, over_five_year)")
    assert bad_lines[int(first.split(":")[1]) - 1] == 'colour = "red"'
    fixed = subprocess.run([sandu, "policy", "check", str(good)], capture_output=True, text=True, timeout=120)
    assert fixed.returncode == 0 and "LPR table valid through 2027-06-30" in fixed.stdout
    missing = subprocess.run([sandu, "policy", "check", str(tmp_path / "none.toml")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr


# -- existing unsecured debt ------------------------------------------------------------------------


@pytest.mark.parametrize(("loans_wan", "secured_wan", "quick_wan"), [
    (0, 0, 320), (100, 0, 220), (100, 100, 320), (100, 150, 320),  # secured debt beyond the loans: no unsecured debt, never a bonus
    (320, 0, 0), (319, 0, 1), (400, 0, 0),
])
def test_unsecured_debt_comes_off_the_quick_measure_before_its_cap(loans_wan, secured_wan, quick_wan):
    r = run(features(loans_outstanding_fen=loans_wan * WAN, secured_debt_fen=secured_wan * WAN), sc=scores(pd="0.02"))  # B: tax 40万 × 8
    got = [o.limit_fen for o in r.offers if o.product == "jingying_kuaidai"]
    assert got == ([quick_wan * WAN] if quick_wan else [])
    if quick_wan:
        assert offer(r, "jingying_kuaidai").approved_fen == quick_wan * WAN


def test_the_deduction_is_taken_before_the_cap_and_rounded_down_once():
    """tax 100万 × 9 = 900万 − 400万 unsecured = 500万, exactly the cap; a fen more debt rounds down a whole 万."""
    at_cap = run(features(tax_total_fen=100 * WAN, loans_outstanding_fen=400 * WAN))
    assert offer(at_cap, "jingying_kuaidai").limit_fen == 500 * WAN
    below = run(features(tax_total_fen=100 * WAN, loans_outstanding_fen=400 * WAN + 1))
    assert offer(below, "jingying_kuaidai").limit_fen == 499 * WAN
    assert hits(below, "credit.quick") == ["年纳税 100.00万 × 9 (风险 A) − 既有信用类负债 400.00万 → 499.00万，上限 500.00万"]


def test_unsecured_debt_comes_off_the_tech_measure_and_a_bundle_may_say_not_to():
    tech = scores(tech="A", most=True)
    r = run(features(loans_outstanding_fen=100 * WAN), sc=tech)  # revenue 5,000万 × 0.10 × 1.15 = 575万 − 100万
    assert offer(r, "keji_xinyong").limit_fen == 475 * WAN and offer(r, "keji_xinyong").approved_fen == 260 * WAN  # quick 360 − 100
    keep = bundle_with(credit__quick_deducts_unsecured_debt=False, credit__tech_deducts_unsecured_debt=False)
    r = run(features(loans_outstanding_fen=100 * WAN), sc=tech, bundle=keep)
    assert offer(r, "keji_xinyong").limit_fen == 575 * WAN and offer(r, "keji_xinyong").approved_fen == 360 * WAN


def test_unknown_existing_debt_refers_the_credit_line_to_an_officer():
    r = run(features(loans_outstanding_fen=None))
    q = offer(r, "jingying_kuaidai")
    assert q.limit_fen == 360 * WAN and q.approved_fen == 0 and r.outcome == Outcome.REFER
    assert "credit.debt_unknown" in [h.rule for h in r.rule_hits]


# -- 担保快贷: a financing guarantee the applicant arranged -----------------------------------------------------


@pytest.mark.parametrize(("guarantee_fen", "limit_wan"), [
    (None, 0), (0, 0), (1, 0), (800_000, 1), (800_000 - 1, 0),  # 1万 needs 8,000元 of guarantee (80 % coverage), whole 万
    (799 * WAN, 998), (800 * WAN, 1_000), (800 * WAN + 1, 1_000), (5_000 * WAN, 1_000),  # capped at 1,000万
])
def test_a_guarantee_backs_a_line_of_guarantee_over_coverage_rounded_down_and_capped(guarantee_fen, limit_wan):
    r = run(app=Application(True, None, None, guarantee_fen))
    got = [o for o in r.offers if o.product == "danbao_kuaidai"]
    if not limit_wan:
        assert got == []
        return
    [g] = got
    assert g.limit_fen == limit_wan * WAN and g.approved_fen == 0 and g.kind == "guaranteed"  # an officer checks the letter
    assert g.components == {"guaranteed_fen": limit_wan * WAN, "guarantee_fen": guarantee_fen}
    assert g.rate_annual == LPR_1Y + 20 * BP  # risk A: the guaranteed spread
    assert g.annualized_rate > g.rate_annual * 365 / 360  # the 1 % guarantee fee enters 年化利率
    assert r.comprehensive_limit_fen == sum(o.limit_fen for o in r.offers)
    assert any(h.rule == "guarantee.sizing" for h in r.rule_hits)


def test_a_guarantee_does_not_make_an_ineligible_applicant_eligible():
    declined = run(features(overdue_count_24m=5), app=Application(True, None, None, 800 * WAN))
    assert declined.offers == () and declined.outcome == Outcome.DECLINE
    assert run(features(revenue_fen=None), app=Application(True, None, None, 800 * WAN)).outcome == Outcome.REFER


def test_a_guarantee_product_must_be_a_guaranteed_product():
    e = refusal(doc_with({"guarantee.product": "jingying_kuaidai"}))
    assert e.path == "guarantee.product" and "a guaranteed product is needed here" in e.reason
