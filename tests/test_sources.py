"""Profile snapshots: validated, hashed, with data-quality flags instead of crashes."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.simulate.stories import STORY_ROWS
from sandu.simulate.universe import source_payloads
from sandu.sources.catalog import ALL_SOURCES, SOURCE_DESCRIPTIONS, unknown_sources
from sandu.sources.profile import (
    MAX_CERTIFICATIONS,
    MAX_COLLATERAL_ASSETS,
    MAX_SOURCE_INT,
    MAX_SOURCE_TEXT,
    MAX_STORED_LIST,
    MAX_TAX_YEARS,
    PROFILE_SCHEMA_VERSION,
    SCHEMA_VERSION,
    CheckedSources,
    Collateral,
    ProfileIntegrityError,
    build_profile,
    canonical_sha256,
    profile_from_json,
)
from sandu.sources.schemas import validate

AS_OF = date(2026, 10, 31)
S5 = dict(STORY_ROWS[4])
USCC = S5["uscc"]


def s5_payloads() -> dict[str, Any]:
    return source_payloads(S5, AS_OF)


def flags_with(payloads: dict[str, Any]) -> tuple[str, ...]:
    return build_profile(USCC, AS_OF, payloads).quality_flags


def tax_year(year: int, revenue_fen: int = 1_000_000) -> dict[str, Any]:
    return {"year": year, "revenue_fen": revenue_fen, "vat_fen": 10, "cit_fen": 20, "rd_expense_fen": 30}


def test_catalog_names_every_source_once() -> None:
    assert ALL_SOURCES == ("tax", "invoices", "social_insurance", "utilities", "ip", "credit_bureau", "bank_flows", "collateral")
    assert all(SOURCE_DESCRIPTIONS[s] for s in ALL_SOURCES)
    assert unknown_sources(["tax", "weather", "ip", "stars"]) == ["weather", "stars"]
    assert unknown_sources(list(ALL_SOURCES)) == []


def test_profile_features_from_all_sources():
    p = build_profile(USCC, AS_OF, s5_payloads())
    f = p.features
    assert f["revenue_fen"] == 20_000 * 1_000_000 and f["revenue_fen_y1"] == 17_000 * 1_000_000
    assert f["revenue_fen_y2"] == 18_600 * 1_000_000
    assert f["tax_total_fen"] == (480 + 160) * 1_000_000
    assert (f["vat_fen"], f["cit_fen"], f["rd_expense_fen"]) == (480 * 1_000_000, 160 * 1_000_000, 820 * 1_000_000)
    assert f["tax_credit_grade"] == "A"
    assert f["rd_ratio"] == 0.041 and f["tech_staff_ratio"] == round(80 / 380, 6)
    assert f["revenue_growth"] == round(20_000 / 18_600 - 1, 6) and f["revenue_growth_prev"] == round(18_600 / 17_000 - 1, 6)
    assert f["cit_margin"] == 0.008
    assert f["sales_invoice_fen_12m"] == 19_600 * 1_000_000 and f["customer_count_12m"] == 180
    assert (f["headcount"], f["tech_staff"], f["si_arrears_months"]) == (380, 80, 0)
    assert f["headcount_growth"] == round(380 / 357 - 1, 6)
    assert f["electricity_growth"] == round(3_800_000 / 3_534_000 - 1, 6) and f["utility_arrears"] is False
    assert (f["invention_patents"], f["utility_models"], f["software_copyrights"]) == (2, 35, 1)
    assert f["certifications"] == sorted(["高新技术企业", "专精特新", "科技型中小企业"])
    assert (f["loans_outstanding_fen"], f["secured_debt_fen"], f["queries_3m"]) == (1_500 * 1_000_000, 1_500 * 1_000_000, 1)  # S5: its mortgage loan
    assert (f["overdue_count_24m"], f["max_overdue_days_24m"]) == (0, 0)
    assert (f["inflow_fen_12m"], f["outflow_fen_12m"]) == (20_800 * 1_000_000, 19_800 * 1_000_000)
    assert f["debt_to_revenue"] == 0.075 and f["flow_to_revenue"] == 1.04
    assert p.collateral == (
        Collateral("C1", "industrial_property", 6_000 * 1_000_000, 1_500 * 1_000_000),
        Collateral("C2", "industrial_property", 2_000 * 1_000_000, 0),
    )
    assert p.quality_flags == ()
    assert p.sources_read == tuple(sorted(ALL_SOURCES))
    assert p.uscc == USCC and p.as_of == AS_OF


def test_hash_is_stable_and_changes_with_content():
    a = build_profile(USCC, AS_OF, s5_payloads())
    b = build_profile(USCC, AS_OF, s5_payloads())
    assert a.sha256 == b.sha256 and len(a.sha256) == 64
    assert a.sha256 == canonical_sha256(a.to_json())
    changed = s5_payloads()
    changed["credit_bureau"]["overdue_count_24m"] = 1
    assert build_profile(USCC, AS_OF, changed).sha256 != a.sha256
    assert profile_from_json(a.to_json(), a.sha256) == a


def test_canonical_hash_ignores_key_order_and_keeps_text_unescaped():
    assert canonical_sha256({"a": 1, "b": [1, "温州"]}) == canonical_sha256({"b": [1, "温州"], "a": 1})
    # sorted keys, no spaces, UTF-8 text as is (not \\u escapes)
    assert canonical_sha256({"b": 1, "a": "温"}) == hashlib.sha256('{"a":"温","b":1}'.encode()).hexdigest()


def test_to_json_is_the_stored_form():
    p = build_profile(USCC, AS_OF, {"collateral": {"assets": [{"id": "C9", "kind": "land_use_right", "appraised_value_fen": 5, "secured_debt_fen": 1}]}})
    j = p.to_json()
    assert j["schema"] == PROFILE_SCHEMA_VERSION == "profile-v2" and j["source_schema"] == SCHEMA_VERSION == "sources@2026.2"
    assert j["as_of"] == "2026-10-31" and j["uscc"] == USCC
    assert j["collateral"] == [{"id": "C9", "kind": "land_use_right", "appraised_value_fen": 5, "secured_debt_fen": 1}]
    assert j["sources_read"] == ["collateral"] and j["features"] == {}
    assert j["quality_flags"] == [f"{s}:not_read" for s in ALL_SOURCES if s != "collateral"]


def test_missing_and_malformed_sources_become_flags():
    payloads = s5_payloads()
    del payloads["utilities"]
    payloads["ip"] = None
    payloads["tax"]["years"][2]["vat_fen"] = -5
    payloads["credit_bureau"]["queries_3m"] = "many"
    payloads["collateral"]["assets"][0]["appraised_value_fen"] = 1.5
    p = build_profile(USCC, AS_OF, payloads)
    assert "utilities:not_read" in p.quality_flags
    assert "ip:no_record" in p.quality_flags
    assert "tax.years[2025].vat_fen:negative" in p.quality_flags and p.features["vat_fen"] is None and p.features["tax_total_fen"] is None
    assert "credit_bureau.queries_3m:invalid" in p.quality_flags
    assert "collateral.appraised_value_fen:invalid" in p.quality_flags and len(p.collateral) == 1
    assert "invention_patents" not in p.features
    assert p.sources_read == tuple(sorted(s for s in ALL_SOURCES if s != "utilities"))


# --- every payload that is not an object becomes `{source}:invalid` ---------------------


@pytest.mark.parametrize("source", ALL_SOURCES)
@pytest.mark.parametrize("payload", [[1, 2], "tax", 7, 2.5, True, math.nan, []])
def test_a_payload_that_is_not_an_object_is_flagged(source: str, payload: Any) -> None:
    p = build_profile(USCC, AS_OF, {source: payload})
    assert f"{source}:invalid" in p.quality_flags
    assert p.features == {} and p.collateral == ()
    assert p.sources_read == (source,)


def test_the_briefs_example_invoices_list():
    p = build_profile(USCC, AS_OF, {"invoices": [1, 2]})
    assert p.quality_flags == ("tax:not_read", "invoices:invalid") + tuple(f"{s}:not_read" for s in ALL_SOURCES[2:])
    assert p.features == {} and p.sources_read == ("invoices",)


def test_payloads_must_be_a_mapping_of_catalog_sources():
    with pytest.raises(ValueError, match=r"payloads must map source names to payloads, got \[\('tax', \{\}\)\]"):
        build_profile(USCC, AS_OF, [("tax", {})])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'weather' is not a data source \(allowed: tax, invoices"):
        build_profile(USCC, AS_OF, {"tax": None, "weather": {}})
    with pytest.raises(ValueError) as e:
        build_profile(USCC, AS_OF, {"x" * 500: {}})
    assert len(str(e.value)) < 250  # the bad key is shown shortened


# --- integers: 0..MAX_SOURCE_INT, never bool or float ------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [(0, True), (1, True), (MAX_SOURCE_INT, True), (-1, False), (MAX_SOURCE_INT + 1, False), (10**400, False),
     (True, False), (False, False), (1.0, False), (math.inf, False), (math.nan, False), ("5", False), (None, False), ([3], False)],
)
def test_counts_and_amounts_are_whole_numbers_within_bounds(value: Any, ok: bool) -> None:
    p = build_profile(USCC, AS_OF, {"bank_flows": {"inflow_fen": value, "outflow_fen": 7}})
    assert p.features["inflow_fen_12m"] == (value if ok else None)
    assert p.features["outflow_fen_12m"] == 7
    reason = "negative" if value == -1 else "invalid"  # the reason is recorded (sandu.sources.schemas)
    assert (f"bank_flows.inflow_fen:{reason}" in p.quality_flags) is not ok


def test_an_absent_field_is_flagged_and_none():
    p = build_profile(USCC, AS_OF, {"invoices": {"customer_count": 3}})
    assert p.features == {"sales_invoice_fen_12m": None, "customer_count_12m": 3}
    assert p.quality_flags[-1] == "invoices.sales_invoice_fen:missing"


# --- ratios and growth: no division by zero, rounded to 6 places -------------------------


def test_ratios_with_zero_or_missing_denominators_are_absent():
    p = build_profile(USCC, AS_OF, {
        "social_insurance": {"headcount": 0, "tech_staff": 0, "headcount_12m_ago": 0, "arrears_months": 0},
        "utilities": {"electricity_kwh_12m": 5, "electricity_kwh_prev_12m": 0, "arrears": True},
    })
    f = p.features
    assert f["tech_staff_ratio"] is None and f["headcount_growth"] is None and f["electricity_growth"] is None
    assert f["utility_arrears"] is True
    p = build_profile(USCC, AS_OF, {
        "social_insurance": {"headcount": 3, "tech_staff": 1, "headcount_12m_ago": 2, "arrears_months": 1},
        "utilities": {"electricity_kwh_12m": 1, "electricity_kwh_prev_12m": 3, "arrears": False},
    })
    f = p.features
    assert f["tech_staff_ratio"] == 0.333333 and f["headcount_growth"] == 0.5 and f["electricity_growth"] == -0.666667
    one = build_profile(USCC, AS_OF, {"social_insurance": {"headcount": 1, "tech_staff": 1, "headcount_12m_ago": 1, "arrears_months": 0}})
    assert one.features["tech_staff_ratio"] == 1.0 and one.features["headcount_growth"] == 0.0
    assert f["si_arrears_months"] == 1 and f["utility_arrears"] is False
    p = build_profile(USCC, AS_OF, {"social_insurance": {"headcount": None, "tech_staff": 1, "headcount_12m_ago": 2, "arrears_months": 0},
                                    "utilities": {"electricity_kwh_12m": None, "electricity_kwh_prev_12m": 3, "arrears": False}})
    assert p.features["headcount_growth"] is None and p.features["electricity_growth"] is None and p.features["tech_staff_ratio"] is None


def test_revenue_ratios_need_a_positive_revenue():
    tax = {"tax_credit_grade": "B", "years": [tax_year(2023, 0), tax_year(2024, 0), tax_year(2025, 0)]}
    p = build_profile(USCC, AS_OF, {"tax": tax, "credit_bureau": {"loans_outstanding_fen": 5}, "bank_flows": {"inflow_fen": 9}})
    f = p.features
    assert f["revenue_fen"] == 0 and f["rd_ratio"] is None and f["cit_margin"] is None
    assert f["revenue_growth"] is None and f["revenue_growth_prev"] is None
    assert "debt_to_revenue" not in f and "flow_to_revenue" not in f
    tax = {"tax_credit_grade": "B", "years": [tax_year(2023, 3), tax_year(2024, 4), tax_year(2025, 8)]}
    p = build_profile(USCC, AS_OF, {"tax": tax, "credit_bureau": {"loans_outstanding_fen": 0}, "bank_flows": {"inflow_fen": 0}})
    f = p.features
    assert f["revenue_growth"] == 1.0 and f["revenue_growth_prev"] == 0.333333
    assert f["debt_to_revenue"] == 0.0 and f["flow_to_revenue"] == 0.0
    assert f["rd_ratio"] == 3.75 and f["cit_margin"] == 2.5 and f["tax_total_fen"] == 30
    p = build_profile(USCC, AS_OF, {"tax": tax, "credit_bureau": {"loans_outstanding_fen": None}, "bank_flows": {"inflow_fen": None}})
    assert "debt_to_revenue" not in p.features and "flow_to_revenue" not in p.features


# --- tax years -----------------------------------------------------------------------


def tax_flags(years: Any, grade: Any = "A") -> tuple[tuple[str, ...], dict[str, Any]]:
    p = build_profile(USCC, AS_OF, {"tax": {"tax_credit_grade": grade, "years": years}})
    return tuple(f for f in p.quality_flags if f.startswith("tax")), p.features


@pytest.mark.parametrize("years", [None, []])
def test_no_tax_years_is_missing(years: Any) -> None:
    assert tax_flags(years) == (("tax.years:missing",), {})
    p = build_profile(USCC, AS_OF, {"tax": {"tax_credit_grade": "A"}})
    assert p.quality_flags[-1] == "tax.years:missing" and p.features == {}


@pytest.mark.parametrize("years", ["2025", 2025, {"year": 2025}, True])
def test_tax_years_that_are_not_a_list_are_invalid(years: Any) -> None:
    assert tax_flags(years) == (("tax.years:invalid",), {})


def test_tax_years_are_read_up_to_the_limit():
    ok = [tax_year(2025 - k) for k in range(MAX_TAX_YEARS)]
    flags, f = tax_flags(ok)
    assert flags == () and f["revenue_fen"] == 1_000_000
    assert tax_flags(ok + [tax_year(2000)]) == ((f"tax.years:more_than_{MAX_TAX_YEARS}",), {})
    assert MAX_TAX_YEARS == 10


def test_latest_three_years_are_used_whatever_the_order():
    years = [tax_year(2025, 30), tax_year(2021, 1), tax_year(2023, 10), tax_year(2024, 20), tax_year(2022, 2)]
    flags, f = tax_flags(years)
    assert flags == ()
    assert (f["revenue_fen_y1"], f["revenue_fen_y2"], f["revenue_fen_y3"]) == (10, 20, 30)
    assert sorted(k for k in f if k.startswith("revenue_fen_")) == ["revenue_fen_y1", "revenue_fen_y2", "revenue_fen_y3"]


@pytest.mark.parametrize("key", ["revenue_fen", "vat_fen", "cit_fen", "rd_expense_fen"])
def test_a_malformed_amount_of_the_latest_year_is_flagged(key: str) -> None:
    flags, f = tax_flags([tax_year(2023), tax_year(2024), {**tax_year(2025), key: -1}])
    assert flags == (f"tax.years[2025].{key}:negative",)
    assert f["revenue_fen" if key == "revenue_fen" else key] is None
    flags, f = tax_flags([{**tax_year(2023), key: "1"}, tax_year(2024), tax_year(2025)])
    assert flags == (f"tax.years[2023].{key}:invalid",)  # every year's record is checked, though only the latest year's taxes are read
    assert f["vat_fen"] == 10 and (f["revenue_fen_y1"] is None) is (key == "revenue_fen")


def test_rd_growth_compares_the_latest_two_years_and_a_bad_previous_year_is_flagged() -> None:
    flags, f = tax_flags([tax_year(2023), {**tax_year(2024), "rd_expense_fen": 24}, tax_year(2025)])
    assert flags == () and (f["rd_expense_fen_prev"], f["rd_expense_fen"], f["rd_growth"]) == (24, 30, 0.25)
    flags, f = tax_flags([tax_year(2023), {**tax_year(2024), "rd_expense_fen": -1}, tax_year(2025)])
    assert flags == ("tax.years[2024].rd_expense_fen:negative",) and f["rd_expense_fen_prev"] is None and f["rd_growth"] is None
    _, f = tax_flags([tax_year(2023), {**tax_year(2024), "rd_expense_fen": 0}, tax_year(2025)])
    assert f["rd_expense_fen_prev"] == 0 and f["rd_growth"] is None  # growth from nothing is not a number
    flags, f = tax_flags([tax_year(2025)])
    assert flags == ("tax.years:fewer_than_3",) and f["rd_expense_fen_prev"] is None and f["rd_growth"] is None


@pytest.mark.parametrize(
    ("year", "reason"),
    [(1949, None), (1948, "invalid"), (2025, None), (2026, "future"), (9999, "future"), (True, "invalid"), (2025.0, "invalid"), ("2025", "invalid"), (None, "invalid")],
)
def test_a_tax_year_is_a_closed_calendar_year(year: Any, reason: str | None) -> None:
    flags, f = tax_flags([{**tax_year(2001, 7), "year": year}])
    if reason is None:
        assert flags == ("tax.years:fewer_than_3",) and f["revenue_fen"] == 7
    else:  # AS_OF is in 2026: that year is not closed
        named = f"tax.years[{year}]" if reason == "future" else "tax.year"  # a year that is a year is named
        assert (flags, f) == ((f"{named}:{reason}", "tax.years:missing"), {})


def test_malformed_year_items_are_flagged_and_skipped():
    flags, f = tax_flags([tax_year(2023, 1), "2024", [1], tax_year(2025, 3), {"revenue_fen": 9}])
    assert flags == ("tax.years:invalid", "tax.years:invalid", "tax.year:invalid", "tax.years:gap", "tax.years:fewer_than_3")
    assert (f["revenue_fen_y1"], f["revenue_fen_y3"]) == (1, 3) and "revenue_fen_y2" not in f  # 2024 is not held
    assert f["revenue_growth"] is None and f["revenue_growth_prev"] is None


def test_a_year_given_twice_differently_is_rejected_and_identically_kept_once():
    flags, f = tax_flags([tax_year(2024, 1), tax_year(2025, 2), tax_year(2025, 99)])
    assert flags == ("tax.years[2025]:conflict", "tax.years:fewer_than_3")
    assert f["revenue_fen"] == 1 and "revenue_fen_y2" not in f
    flags, f = tax_flags([tax_year(2024, 1), tax_year(2025, 2), tax_year(2025, 2)])
    assert flags == ("tax.years[2025]:duplicate", "tax.years:fewer_than_3")
    assert f["revenue_fen"] == 2


def test_when_no_year_item_is_valid_the_years_are_missing():
    assert tax_flags([1, {"year": "x"}]) == (("tax.years:invalid", "tax.year:invalid", "tax.years:missing"), {})


def test_fewer_than_three_years_fill_the_latest_slots():
    flags, f = tax_flags([tax_year(2025, 8)])
    assert flags == ("tax.years:fewer_than_3",)
    assert f["revenue_fen_y3"] == 8 and "revenue_fen_y2" not in f and f["revenue_growth"] is None
    flags, f = tax_flags([tax_year(2024, 4), tax_year(2025, 8)])
    assert flags == ("tax.years:fewer_than_3",)
    assert (f["revenue_fen_y2"], f["revenue_fen_y3"], f["revenue_growth"]) == (4, 8, 1.0) and f["revenue_growth_prev"] is None
    flags, _ = tax_flags([tax_year(2023), tax_year(2024), tax_year(2025)])
    assert flags == ()


@pytest.mark.parametrize("grade", ["A", "B", "M", "C", "D"])
def test_tax_grades_of_the_tax_bureau_are_read(grade: str) -> None:
    flags, f = tax_flags([tax_year(2023), tax_year(2024), tax_year(2025)], grade)
    assert flags == () and f["tax_credit_grade"] == grade


@pytest.mark.parametrize("grade", ["a", "E", "", None, 1, ["A"], {"A": 1}])
def test_other_tax_grades_are_invalid(grade: Any) -> None:
    flags, f = tax_flags([tax_year(2023), tax_year(2024), tax_year(2025)], grade)
    assert flags == ("tax.tax_credit_grade:invalid",) and f["tax_credit_grade"] is None


# --- certifications and arrears --------------------------------------------------------


def ip(certs: Any = None, **extra: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    payload = {"invention_patents": 1, "utility_models": 2, "software_copyrights": 3, **extra}
    if certs is not None:
        payload["certifications"] = certs
    p = build_profile(USCC, AS_OF, {"ip": payload})
    return tuple(f for f in p.quality_flags if f.startswith("ip")), p.features


def test_certifications_are_sorted_names():
    assert ip(["b", "a"]) == ((), {"invention_patents": 1, "utility_models": 2, "software_copyrights": 3, "certifications": ["a", "b"]})
    assert ip([])[0] == () and ip([])[1]["certifications"] == []


@pytest.mark.parametrize("certs", ["高新技术企业", {"a": 1}, 3])
def test_certifications_that_are_not_a_list_are_invalid(certs: Any) -> None:
    flags, f = ip(certs)
    assert flags == ("ip.certifications:invalid",) and f["certifications"] is None


def test_absent_certifications_are_invalid():
    flags, f = ip()
    assert flags == ("ip.certifications:missing",) and f["certifications"] is None


def test_certifications_that_are_not_names_are_flagged_and_the_rest_kept():
    flags, f = ip(["专精特新", 1, None, "", "x" * (MAX_SOURCE_TEXT + 1), "y" * MAX_SOURCE_TEXT])
    assert flags == ("ip.certifications:invalid",)
    assert f["certifications"] == ["y" * MAX_SOURCE_TEXT, "专精特新"]


def test_certifications_are_read_up_to_the_limit():
    names = [f"c{k:02d}" for k in range(MAX_CERTIFICATIONS + 1)]
    flags, f = ip(names[:MAX_CERTIFICATIONS])
    assert flags == () and f["certifications"] == names[:MAX_CERTIFICATIONS]
    flags, f = ip(names)
    assert flags == (f"ip.certifications:more_than_{MAX_CERTIFICATIONS}",) and f["certifications"] == names[:MAX_CERTIFICATIONS]
    assert MAX_CERTIFICATIONS == 20


@pytest.mark.parametrize(("arrears", "ok"), [(True, True), (False, True), (None, False), (0, False), (1, False), ("yes", False)])
def test_utility_arrears_is_a_yes_or_no(arrears: Any, ok: bool) -> None:
    p = build_profile(USCC, AS_OF, {"utilities": {"electricity_kwh_12m": 1, "electricity_kwh_prev_12m": 1, "arrears": arrears}})
    assert p.features["utility_arrears"] == (arrears if ok else None)
    assert ("utilities.arrears:invalid" in p.quality_flags) is not ok
    p = build_profile(USCC, AS_OF, {"utilities": {"electricity_kwh_12m": 1, "electricity_kwh_prev_12m": 1}})
    assert p.features["utility_arrears"] is None and "utilities.arrears:missing" in p.quality_flags


# --- collateral ----------------------------------------------------------------------


def asset(**kw: Any) -> dict[str, Any]:
    return {"id": "C1", "kind": "land_use_right", "appraised_value_fen": 100, "secured_debt_fen": 40, **kw}


def collateral(assets: Any) -> tuple[tuple[str, ...], tuple[Collateral, ...]]:
    p = build_profile(USCC, AS_OF, {"collateral": {"assets": assets}})
    return tuple(f for f in p.quality_flags if f.startswith("collateral")), p.collateral


def test_assets_become_collateral():
    assert collateral([asset(), asset(id="C2", kind="residential", secured_debt_fen=0)]) == (
        (), (Collateral("C1", "land_use_right", 100, 40), Collateral("C2", "residential", 100, 0))
    )
    assert collateral([]) == ((), ())


def test_an_asset_without_id_has_an_empty_id():
    a = asset()
    del a["id"]
    assert collateral([a]) == ((), (Collateral("", "land_use_right", 100, 40),))
    assert collateral([asset(id="")]) == ((), (Collateral("", "land_use_right", 100, 40),))


@pytest.mark.parametrize("assets", [None, "C1", {"id": "C1"}, 3])
def test_assets_that_are_not_a_list_are_invalid(assets: Any) -> None:
    assert collateral(assets) == (("collateral.assets:invalid",), ())
    p = build_profile(USCC, AS_OF, {"collateral": {}})
    assert "collateral.assets:missing" in p.quality_flags


@pytest.mark.parametrize(
    ("bad", "flag"),
    [
        (asset(kind=""), "collateral.kind:invalid"),
        (asset(kind=None), "collateral.kind:invalid"),
        (asset(kind=["x"]), "collateral.kind:invalid"),
        (asset(kind="k" * (MAX_SOURCE_TEXT + 1)), "collateral.kind:invalid"),
        (asset(id=7), "collateral.id:invalid"),
        (asset(id="i" * (MAX_SOURCE_TEXT + 1)), "collateral.id:invalid"),
        (asset(appraised_value_fen=-1), "collateral.appraised_value_fen:negative"),
        (asset(secured_debt_fen=True), "collateral.secured_debt_fen:invalid"),
        ("C1", "collateral.assets:invalid"),
        ([asset()], "collateral.assets:invalid"),
    ],
)
def test_a_malformed_asset_is_flagged_and_skipped(bad: Any, flag: str) -> None:
    flags, coll = collateral([bad, asset(id="C2")])
    assert flags == (flag,)
    assert coll == (Collateral("C2", "land_use_right", 100, 40),)


def test_texts_of_the_longest_allowed_length_are_kept():
    long_asset = asset(id="i" * MAX_SOURCE_TEXT, kind="k" * MAX_SOURCE_TEXT)
    assert collateral([long_asset]) == ((), (Collateral("i" * MAX_SOURCE_TEXT, "k" * MAX_SOURCE_TEXT, 100, 40),))
    assert MAX_SOURCE_TEXT == 64


def test_assets_are_read_up_to_the_limit():
    assets = [asset(id=f"C{k}") for k in range(MAX_COLLATERAL_ASSETS + 1)]
    flags, coll = collateral(assets[:MAX_COLLATERAL_ASSETS])
    assert flags == () and len(coll) == MAX_COLLATERAL_ASSETS
    flags, coll = collateral(assets)
    assert flags == (f"collateral.assets:more_than_{MAX_COLLATERAL_ASSETS}",)
    assert [c.id for c in coll] == [f"C{k}" for k in range(MAX_COLLATERAL_ASSETS)]
    assert MAX_COLLATERAL_ASSETS == 50


# --- property: whatever the sources return, a profile (never an exception) -------------

_FLAG = re.compile(
    r"[a-z_]+(\.years\[\d{4}\])?(\.[a-z0-9_]+)?:(not_read|no_record|invalid|missing|negative|fraction|unsupported|future|period|duplicate|conflict|gap|fewer_than_3|more_than_\d+)"
)

json_leaves = (
    st.none() | st.booleans() | st.integers() | st.integers(-3, MAX_SOURCE_INT + 3)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
)
json_values = st.recursive(
    json_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12
)


def like(value: Any) -> st.SearchStrategy[Any]:
    """Values shaped like `value` (same keys, list items alike), any part possibly garbage."""
    if isinstance(value, dict):
        shaped = st.fixed_dictionaries({}, optional={k: like(v) for k, v in value.items()})
    elif isinstance(value, list) and value:
        shaped = st.lists(like(value[0]), max_size=5)
    else:
        shaped = st.just(value)
    return st.one_of(shaped, shaped, shaped, json_values)


WELL_FORMED = s5_payloads()
arbitrary_payloads = st.fixed_dictionaries({}, optional={s: st.none() | like(WELL_FORMED[s]) for s in ALL_SOURCES})


def _is_feature_value(v: Any) -> bool:
    if isinstance(v, list):
        return all(isinstance(x, str) for x in v)
    return v is None or isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v))


@settings(max_examples=300, deadline=None)
@given(arbitrary_payloads)
def test_any_source_payloads_give_a_profile_that_hashes_stably_and_round_trips(payloads: dict[str, Any]) -> None:
    before = copy.deepcopy(payloads)
    p = build_profile(USCC, AS_OF, payloads)
    assert payloads == before  # the payloads are not touched
    again = build_profile(USCC, AS_OF, copy.deepcopy(payloads))
    assert again == p and again.sha256 == p.sha256 == canonical_sha256(p.to_json())
    assert all(_FLAG.fullmatch(f) for f in p.quality_flags), p.quality_flags
    assert all(_is_feature_value(v) for v in p.features.values()), p.features
    assert len(p.collateral) <= MAX_COLLATERAL_ASSETS
    assert all(0 <= c.appraised_value_fen <= MAX_SOURCE_INT and 0 <= c.secured_debt_fen <= MAX_SOURCE_INT for c in p.collateral)
    assert p.sources_read == tuple(sorted(payloads))
    stored = json.loads(json.dumps(p.to_json(), ensure_ascii=False))
    assert profile_from_json(stored, p.sha256) == p


@settings(max_examples=200, deadline=None)
@given(arbitrary_payloads, st.sampled_from(ALL_SOURCES), st.sets(st.sampled_from(ALL_SOURCES), max_size=3), st.data())
def test_checked_sources_with_one_source_changed_is_the_profile_of_the_changed_payloads(payloads, source, unavailable, data) -> None:
    payload = data.draw(st.none() | like(WELL_FORMED[source]), label="payload")
    unavailable = frozenset(unavailable - set(payloads) - {source})
    checked = CheckedSources(AS_OF, payloads, unavailable)
    assert checked.profile(USCC) == build_profile(USCC, AS_OF, payloads, unavailable)
    reads = checked.reads()  # what the counterfactual search's levers change: each payload as validated, in catalog order
    assert list(reads) == [s for s in ALL_SOURCES if s in payloads]
    assert reads == {s: validate(s, p, AS_OF)[0] if p is not None else None for s, p in payloads.items()}
    again = CheckedSources(AS_OF, reads, unavailable).profile(USCC)  # read again: the features and assets are the same
    assert (again.features, again.collateral) == (checked.profile(USCC).features, checked.profile(USCC).collateral)
    before = copy.deepcopy(payloads)
    changed = checked.changed(source, payload)  # read before or not: a source not read becomes read
    assert changed.profile(USCC) == build_profile(USCC, AS_OF, {**payloads, source: payload}, unavailable)
    assert payloads == before and checked.profile(USCC) == build_profile(USCC, AS_OF, payloads, unavailable)  # the base is not changed
    tried = changed.profile(USCC, hashed=False)  # the counterfactual search's: the same profile, not hashed
    assert tried.sha256 == "" and tried == dataclasses.replace(changed.profile(USCC), sha256="")
    if unavailable:
        with pytest.raises(ValueError, match="not a source that answered"):
            checked.changed(sorted(unavailable)[0], payload)


# --- replay: a stored snapshot is trusted only when it is exactly what was hashed -------


def stored_s5() -> tuple[dict[str, Any], str]:
    p = build_profile(USCC, AS_OF, s5_payloads())
    return json.loads(json.dumps(p.to_json())), p.sha256


def refused(data: Any, sha: str) -> ProfileIntegrityError:
    with pytest.raises(ProfileIntegrityError) as e:
        profile_from_json(data, sha)
    assert str(e.value).startswith("stored profile snapshot refused: ")
    assert len(str(e.value)) < 300
    return e.value


def test_a_stored_snapshot_is_rebuilt_with_its_hash():
    data, sha = stored_s5()
    p = profile_from_json(data, sha)
    assert p.sha256 == sha and p.as_of == AS_OF and p.collateral[0] == Collateral("C1", "industrial_property", 6_000_000_000, 1_500_000_000)
    assert p == build_profile(USCC, AS_OF, s5_payloads())


def test_an_unknown_schema_is_refused():
    data, sha = stored_s5()
    e = refused({**data, "schema": "profile-v3"}, sha)
    assert e.field == "schema" and "unknown profile schema 'profile-v3', expected one of 'profile-v1', 'profile-v2'" in str(e)
    assert refused({**data, "schema": ["profile-v2"]}, sha).field == "schema"
    e = refused({k: v for k, v in data.items() if k != "source_schema"}, sha)  # v2 names its payload schemas
    assert (e.field, e.reason) == ("source_schema", "is missing")
    assert refused({**data, "source_schema": 2026}, sha).field == "source_schema"
    e = refused({**data, "schema": "profile-v1"}, sha)  # v1 had no such field
    assert e.field == "'source_schema'" and "is not a field of profile-v1" in str(e)
    del data["schema"]
    assert refused(data, sha).field == "schema"


def test_a_profile_v1_snapshot_stored_before_v2_is_read_as_it_was_hashed():
    v2 = build_profile(USCC, AS_OF, s5_payloads())
    v1 = replace(v2, source_schema=None, sha256="")
    data = v1.to_json()
    assert data["schema"] == "profile-v1" and "source_schema" not in data
    sha = canonical_sha256(data)
    assert sha != v2.sha256  # the version is part of what is hashed
    back = profile_from_json(data, sha)
    assert back.source_schema is None and back.sha256 == sha and back.features == v2.features and back.to_json() == data
    assert refused({**data, "uscc": "x"}, sha).field == "sha256"


@pytest.mark.parametrize("key", ["uscc", "as_of", "features", "collateral", "quality_flags", "sources_read"])
def test_a_missing_field_is_refused(key: str) -> None:
    data, sha = stored_s5()
    del data[key]
    e = refused(data, sha)
    assert (e.field, e.reason) == (key, "is missing")
    assert str(e) == f"stored profile snapshot refused: {key}: is missing"


def test_an_unexpected_field_is_refused():
    data, sha = stored_s5()
    e = refused({**data, "note": "x"}, sha)
    assert e.field == "'note'" and "is not a field of profile-v2" in str(e)


@pytest.mark.parametrize(
    ("key", "value", "field", "says"),
    [
        ("uscc", 91, "uscc", "must be a string, got 91"),
        ("as_of", 20261031, "as_of", "must be an ISO date YYYY-MM-DD, got 20261031"),
        ("as_of", "20261031", "as_of", "must be an ISO date YYYY-MM-DD, got '20261031'"),
        ("as_of", "2026-02-30", "as_of", "must be an ISO date"),
        ("features", [], "features", "must be an object, got []"),
        ("collateral", {}, "collateral", "must be a list of assets"),
        ("collateral", [{"id": "C1"}], "collateral[0]", "must be an object with exactly id, kind, appraised_value_fen, secured_debt_fen, got {'id': 'C1'}"),
        ("collateral", ["C1"], "collateral[0]", "must be an object with exactly"),
        ("collateral", [{"id": 1, "kind": "k", "appraised_value_fen": 1, "secured_debt_fen": 1}], "collateral[0].id", "must be a string, got 1"),
        ("collateral", [{"id": "C", "kind": None, "appraised_value_fen": 1, "secured_debt_fen": 1}], "collateral[0].kind", "must be a string"),
        ("collateral", [{"id": "C", "kind": "k", "appraised_value_fen": -1, "secured_debt_fen": 1}], "collateral[0].appraised_value_fen",
         f"must be integer fen 0..{MAX_SOURCE_INT}, got -1"),
        ("collateral", [{"id": "C", "kind": "k", "appraised_value_fen": 1, "secured_debt_fen": 2.0}], "collateral[0].secured_debt_fen", "got 2.0"),
        ("quality_flags", "tax:not_read", "quality_flags", "must be a list of strings"),
        ("quality_flags", ["tax:not_read", 3], "quality_flags[1]", "must be a string, got 3"),
        ("sources_read", [None], "sources_read[0]", "must be a string, got None"),
    ],
)
def test_a_malformed_field_is_refused(key: str, value: Any, field: str, says: str) -> None:
    data, sha = stored_s5()
    e = refused({**data, key: value}, sha)
    assert e.field == field and says in str(e)


def test_lists_and_objects_of_a_stored_snapshot_are_bounded():
    data, sha = stored_s5()
    e = refused({**data, "quality_flags": ["x"] * (MAX_STORED_LIST + 1)}, sha)
    assert e.field == "quality_flags" and f"has {MAX_STORED_LIST + 1} items, more than {MAX_STORED_LIST}" in str(e)
    e = refused({**data, "features": {f"k{i}": 1 for i in range(MAX_STORED_LIST + 1)}}, sha)
    assert e.field == "features"
    # exactly at the bound the lists are read (and then the content hash decides)
    assert refused({**data, "sources_read": ["x"] * MAX_STORED_LIST}, sha).field == "sha256"
    assert MAX_STORED_LIST == 1_000


def test_feature_keys_must_be_strings_and_values_json():
    data, sha = stored_s5()
    e = refused({**data, "features": {**data["features"], 5: 1}}, sha)
    assert e.field == "features" and "keys must be strings, got 5" in str(e)
    e = refused({**data, "features": {"x": {1, 2}}}, sha)
    assert e.field == "features" and "are not JSON (TypeError)" in str(e)


def test_a_snapshot_that_is_not_an_object_is_refused():
    _, sha = stored_s5()
    e = refused(["profile-v1"], sha)
    assert e.field == "snapshot" and "must be an object, got ['profile-v1']" in str(e)


@pytest.mark.parametrize("sha", [None, "", "a" * 63, "a" * 65, "A" * 64, "g" * 64, b"a" * 64])
def test_the_expected_hash_must_be_a_sha256(sha: Any) -> None:
    data, _ = stored_s5()
    e = refused(data, sha)
    assert e.field == "expected_sha256" and f"must be 64 lowercase hex digits, got {sha!r}"[:60] in str(e)


def test_a_hash_that_differs_is_refused_naming_both():
    data, sha = stored_s5()
    other = "0" * 64
    e = refused(data, other)
    assert e.field == "sha256"
    assert f"content hashes to {sha[:16]}…, not the expected {'0' * 16}…" in str(e)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a leaf of a JSON value."""
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _paths(v, (*prefix, k))]
    if isinstance(value, list) and value:
        return [p for i, v in enumerate(value) for p in _paths(v, (*prefix, i))]
    return [prefix]


STORED, STORED_SHA = stored_s5()
LEAF_PATHS = _paths(STORED)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LEAF_PATHS), json_values)
def test_a_stored_snapshot_with_one_field_edited_is_refused(path: tuple[Any, ...], new: Any) -> None:
    data = copy.deepcopy(STORED)
    holder = data
    for step in path[:-1]:
        holder = holder[step]
    if holder[path[-1]] == new and type(holder[path[-1]]) is type(new):
        return  # not an edit
    holder[path[-1]] = new
    with pytest.raises(ProfileIntegrityError):
        profile_from_json(data, STORED_SHA)


def test_a_source_that_did_not_answer_is_a_flagged_gap_not_a_missing_read():
    payloads = {"tax": None, "invoices": None}
    p = build_profile("91330300MA2AXXXX0X", date(2026, 10, 31), payloads, unavailable={"credit_bureau", "ip"})
    assert "credit_bureau:unavailable" in p.quality_flags and "ip:unavailable" in p.quality_flags
    assert "credit_bureau:not_read" not in p.quality_flags and "utilities:not_read" in p.quality_flags
    assert p.sources_read == ("credit_bureau", "invoices", "ip", "tax")
    with pytest.raises(ValueError, match="also has a payload"):
        build_profile("91330300MA2AXXXX0X", date(2026, 10, 31), payloads, unavailable={"tax"})
    with pytest.raises(ValueError, match="is not a data source"):
        build_profile("91330300MA2AXXXX0X", date(2026, 10, 31), payloads, unavailable={"weather"})
