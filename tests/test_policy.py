"""The policy engine and bundle: limits, split, prices and authority come from the bundle."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.domain.errors import InvalidInput
from sandu.policy.bundle import PolicyError, load_bundle, parse_bundle
from sandu.policy.engine import Application, Project, Scores, evaluate
from sandu.sources.profile import Collateral

AS_OF = date(2026, 11, 29)
BUNDLE = load_bundle()
from sandu.domain.money import FEN_PER_WAN as WAN


def features(**over):
    f = {
        "revenue_fen": 5_000 * WAN,
        "tax_total_fen": 40 * WAN,
        "tax_credit_grade": "A",
        "overdue_count_24m": 0,
        "max_overdue_days_24m": 0,
        "certifications": [],
        "_quality_flags": (),
    }
    f.update(over)
    return f


def scores(tech="50", pd="0.005", most=False):
    return Scores(Decimal(tech), most, Decimal(pd))


def run(f=None, collateral=(), sc=None, app=None, bundle=BUNDLE):
    return evaluate(bundle, f or features(), tuple(collateral), sc or scores(), app or Application(True), AS_OF)


def offer(result, product):
    return next(o for o in result.offers if o.product == product)


def test_quick_loan_is_tax_times_risk_multiplier_capped_at_500wan():
    r = run()
    q = offer(r, "jingying_kuaidai")
    assert q.limit_fen == 40 * WAN * 9 == q.approved_fen and r.outcome == "approve"
    big = run(features(tax_total_fen=100 * WAN))
    assert offer(big, "jingying_kuaidai").limit_fen == 500 * WAN


def test_lpr_table_is_dated():
    assert BUNDLE.lpr_on(date(2025, 5, 19)).one_year == Decimal("0.0310")
    assert BUNDLE.lpr_on(date(2025, 5, 20)).one_year == Decimal("0.0300")
    with pytest.raises(InvalidInput, match="no LPR"):
        BUNDLE.lpr_on(date(2020, 1, 1))


def test_price_is_lpr_plus_spread_minus_tech_discount_with_floor():
    q = offer(run(), "jingying_kuaidai")  # risk A (pd 0.5%), tech D
    assert q.rate_annual == Decimal("0.0300") + Decimal("0.0050")
    assert q.annualized_rate == (q.rate_annual * 365 / 360).quantize(Decimal("0.000001"))
    strong = offer(run(sc=scores(tech="95", most=True)), "keji_xinyong")  # tech A: 40bp off 40bp spread
    assert strong.rate_annual == Decimal("0.0300")
    assert strong.grid_rate == Decimal("0.0340")


def test_zhuanjingtexin_is_priced_at_most_at_lpr():
    r = run(features(certifications=["专精特新"]), sc=scores(pd="0.04"))  # risk C
    q = offer(r, "jingying_kuaidai")
    assert q.rate_annual == Decimal("0.0300") < q.grid_rate
    assert any(h.rule == "pricing.preferential" for h in r.rule_hits)


def test_tech_grade_lifts_the_credit_limit_and_fast_tracks_the_online_part():
    plain = run()
    tech = run(sc=scores(tech="90", most=True))
    k = offer(tech, "keji_xinyong")
    assert k.limit_fen == 5_000 * WAN * 10 // 100 * 115 // 100  # revenue × 10% × 1.15
    assert k.approved_fen == offer(plain, "jingying_kuaidai").limit_fen  # fast track = the online measure
    assert tech.tech_uplift_fen == k.limit_fen - k.approved_fen > 0
    assert tech.outcome == "partial"
    no_fast = run(sc=scores(tech="90", pd="0.04", most=True))  # risk C: no fast track
    assert offer(no_fast, "keji_xinyong").approved_fen == 0 and no_fast.outcome == "refer"


def test_unencumbered_collateral_gives_wangdaitong_and_pledged_gives_combined_with_residual_value():
    free = run(collateral=[Collateral("C1", "industrial_property", 1_000 * WAN, 0)])
    w = offer(free, "wangdaitong")
    assert w.limit_fen == 700 * WAN and w.approved_fen == 0
    assert {o.product for o in free.offers} == {"wangdaitong", "jingying_kuaidai"}
    pledged = run(collateral=[Collateral("C1", "industrial_property", 1_000 * WAN, 300 * WAN)])
    c = offer(pledged, "diya_xinyong")
    assert c.components["residual_value_fen"] == 400 * WAN
    assert c.components["credit_topup_fen"] == min(360 * WAN, 400 * WAN * 60 // 100)
    assert c.limit_fen == 400 * WAN + c.components["credit_topup_fen"]
    assert {o.product for o in pledged.offers} == {"diya_xinyong"}  # the credit portion is its top-up


def test_unknown_collateral_kind_is_not_counted():
    r = run(collateral=[Collateral("C9", "spaceship", 10_000 * WAN, 0)])
    assert all(o.kind != "secured" for o in r.offers)
    assert any(h.rule == "secured.unknown_kind" for h in r.rule_hits)


def test_project_loan_is_sized_on_equity_and_cash_flow():
    p = Project("扩产项目", capex_fen=10_000 * WAN, annual_cash_flow_fen=1_000 * WAN, tenor_years=5)
    r = run(app=Application(True, 5_000 * WAN, p))
    pl = offer(r, "project_loan")
    assert pl.limit_fen == min(7_000 * WAN, 4_000 * WAN)  # capex × 70% vs 1,000万 × 5 / 1.25
    assert pl.approved_fen == 0 and pl.lpr == Decimal("0.0350")  # over-5-year LPR for the project tenor


def test_declines_carry_reasons():
    r = run(features(tax_total_fen=1 * WAN, tax_credit_grade="C", overdue_count_24m=5, max_overdue_days_24m=90), sc=scores(pd="0.2"))
    assert r.outcome == "decline" and not r.offers and r.comprehensive_limit_fen == 0
    codes = {reason.split(":")[0] for reason in r.reasons}
    assert {"RISK_GRADE", "OVERDUE_COUNT", "OVERDUE_DAYS"} <= codes
    low_tax = run(features(tax_total_fen=2 * WAN, tax_credit_grade="C"))
    assert low_tax.outcome == "decline"
    assert [reason.split(":")[0] for reason in low_tax.reasons] == ["TAX_BELOW_MIN", "TAX_GRADE"]
    missing = run(features(revenue_fen=None))
    assert missing.outcome == "decline" and missing.reasons[0].startswith("DATA_INSUFFICIENT")


def test_non_customers_with_pledged_collateral_still_get_pure_credit():
    pledged = [Collateral("C1", "industrial_property", 1_000 * WAN, 300 * WAN)]
    r = run(collateral=pledged, app=Application(False))
    assert {o.product for o in r.offers} == {"jingying_kuaidai"} and r.outcome == "approve"


def test_non_customers_get_only_products_open_to_them():
    r = run(collateral=[Collateral("C1", "industrial_property", 1_000 * WAN, 0)], app=Application(False))
    assert {o.product for o in r.offers} == {"jingying_kuaidai"}
    assert any(h.rule == "channel.non_customer" for h in r.rule_hits)


@settings(max_examples=200, deadline=None)
@given(
    revenue=st.integers(0, 10**12),
    tax=st.integers(0, 10**10),
    pd=st.decimals("0.0001", "0.5", places=4),
    tech=st.decimals("0", "100", places=1),
    appraised=st.integers(0, 10**11),
    debt=st.integers(0, 10**11),
    grade=st.sampled_from(["A", "B", "M", "C", "D"]),
)
def test_invariants_hold_for_any_profile(revenue, tax, pd, tech, appraised, debt, grade):
    r = run(
        features(revenue_fen=revenue, tax_total_fen=tax, tax_credit_grade=grade),
        collateral=[Collateral("C1", "industrial_property", appraised, debt)] if appraised else [],
        sc=Scores(tech, True, pd),
    )
    assert r.comprehensive_limit_fen == sum(o.limit_fen for o in r.offers)
    for o in r.offers:
        assert 0 <= o.approved_fen <= o.limit_fen and o.limit_fen > 0
        assert o.limit_fen % WAN == 0  # whole 万元
        assert o.rate_annual >= o.lpr - Decimal("0.0030")
        if o.kind == "credit":
            assert o.limit_fen <= 3_000 * WAN
    if r.outcome == "decline":
        assert r.reasons and not r.offers
    assert r == run(  # deterministic
        features(revenue_fen=revenue, tax_total_fen=tax, tax_credit_grade=grade),
        collateral=[Collateral("C1", "industrial_property", appraised, debt)] if appraised else [],
        sc=Scores(tech, True, pd),
    )


def test_bundle_identity_is_its_content_hash(tmp_path: Path):
    raw = (Path(__file__).parents[1] / "src/sandu/policy/bundles/default.toml").read_bytes()
    a, b = parse_bundle(raw), parse_bundle(raw + b"\n# a comment\n")
    assert a.version == b.version and a.sha256 != b.sha256


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('min_score = "0"', 'min_score = "1"', "tech_grades"),
        ("basis_days = 360\nsettlement = \"monthly\"\nauto_approve_max_fen = 500_000_000", "basis_days = 300\nsettlement = \"monthly\"\nauto_approve_max_fen = 500_000_000", "basis_days"),
        ('settlement = "monthly"', 'settlement = "weekly"', "settlement"),
        ('industrial_property = "0.70"', 'industrial_property = "1.70"', "secured.ltv.industrial_property"),
        ('quick_product = "jingying_kuaidai"', 'quick_product = "nope"', "credit.quick_product"),
        ('[products.jingying_kuaidai]\nname = "经营快贷"\nkind = "credit"', '[products.jingying_kuaidai]\nname = "经营快贷"\nkind = "magic"', "products.jingying_kuaidai.kind"),
        ("keji_xinyong = { A = 40, B = 70, C = 110, D = 160 }", "keji_xinyong = { A = 40, B = 70, C = 110 }", "pricing.spread_bp.keji_xinyong.D"),
    ],
)
def test_a_broken_bundle_is_refused_with_the_key(old, new, message):
    raw = (Path(__file__).parents[1] / "src/sandu/policy/bundles/default.toml").read_text(encoding="utf-8")
    assert old in raw, old
    with pytest.raises(PolicyError, match=message.replace(".", r"\.")):
        parse_bundle(raw.replace(old, new, 1).encode())


def test_a_policy_change_changes_the_outcome_without_code():
    raw = (Path(__file__).parents[1] / "src/sandu/policy/bundles/default.toml").read_text(encoding="utf-8")
    looser = parse_bundle(raw.replace('quick_tax_multiplier = { A = "9"', 'quick_tax_multiplier = { A = "7"').encode())
    assert offer(run(bundle=looser), "jingying_kuaidai").limit_fen == 40 * WAN * 7
    assert replace(BUNDLE).sha256 != looser.sha256
