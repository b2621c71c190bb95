"""The declared schema of each source: every rule on both sides, garbage never raises,
and canonical payloads normalize to themselves (the profiles hash as they did before
the schemas existed)."""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.simulate.stories import STORY_ROWS
from sandu.simulate.universe import generate, row, source_payloads
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import build_profile, canonical_sha256
from sandu.sources.schemas import MAX_SOURCE_INT, MODELS, SCHEMA_VERSION, validate

AS_OF = date(2026, 10, 31)
S5 = dict(STORY_ROWS[4])


def tax_year(year: int, revenue_fen: Any = 1_000_000, **kw: Any) -> dict[str, Any]:
    return {"year": year, "revenue_fen": revenue_fen, "vat_fen": 10, "cit_fen": 20, "rd_expense_fen": 30, **kw}


def tax(*years: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {"tax_credit_grade": "A", "years": list(years), **envelope}


def flows(**kw: Any) -> dict[str, Any]:
    return {"months": 12, "inflow_fen": 100, "outflow_fen": 50, **kw}


def test_one_model_per_source_under_one_version_label():
    assert SCHEMA_VERSION == "sources@2026.2"
    assert tuple(MODELS) == ALL_SOURCES


# --- canonical payloads normalize to themselves: the profile is what it was -------------

# sha256 of the profiles as built before the schemas existed (fen only, no envelope), in the
# profile-v1 form (without `source_schema`): the five stories, and one digest over 200 rows of
# generate(200, 20261031, AS_OF). The content is pinned; profile-v2 adds only the schema label. S2, S3 and S5 were
# re-pinned when their bureau loans changed (policy 2026.12.10 deducts unsecured debt: see sandu/simulate/stories.py).
STORY_SHA256 = {
    "913303037081000153": "b12d7d1d055138c8a601f4df66488c55729580e4c5bb1b0e1850c8c2c11cd7fc",
    "91330324708100023B": "1966fe07713c1ef70afc4420e5397c310b58d8cc322dd3bb978fdcc5e3bf0987",
    "913303827081000316": "3d870041d2eef280c1c258cbfa183444416103e44a4a186db3fed6399505517c",
    "9133030370810004XG": "a2ec622426d8146ec1f1fd826170e1c8a5394744e84bbf6762570ffc0e4b026a",
    "913303277081000589": "c327b519c8dd34a561221ea4cadfef6626676677621f0e459152f7bf6c41df1a",
}
UNIVERSE_DIGEST = "b5c95f13d191f51502bddb20ea68119ed449f7f204b4a45e5131b99b00da0d57"
UNIVERSE_FIRST = "3650f339a7d0a8c50d3d6f1291d2536965032877053d8dced1b9290083d10aaf"


def _v1_sha256(p) -> str:
    """The hash of the profile's content in the profile-v1 form."""
    return canonical_sha256(replace(p, source_schema=None).to_json())


def test_canonical_payloads_of_200_rows_normalize_to_themselves_and_hash_as_before():
    table = generate(200, 20261031, AS_OF)
    shas = []
    for i in range(200):
        r = row(table, i)
        payloads = source_payloads(r, AS_OF)
        for source, payload in payloads.items():
            assert validate(source, payload, AS_OF) == (payload, []), (i, source)
        shas.append(_v1_sha256(build_profile(r["uscc"], AS_OF, payloads)))
    assert shas[0] == UNIVERSE_FIRST
    assert hashlib.sha256("".join(shas).encode()).hexdigest() == UNIVERSE_DIGEST


@pytest.mark.parametrize("story", STORY_ROWS, ids=lambda s: s["uscc"])
def test_the_stories_profiles_hash_as_before(story: dict[str, Any]) -> None:
    p = build_profile(story["uscc"], AS_OF, source_payloads(dict(story), AS_OF))
    assert _v1_sha256(p) == STORY_SHA256[story["uscc"]] and p.quality_flags == ()
    assert p.source_schema == SCHEMA_VERSION and p.sha256 == canonical_sha256(p.to_json()) != STORY_SHA256[story["uscc"]]


def _in_unit(payload: Any, unit: str) -> Any:
    """`payload` with every amount (``*_fen``) written as decimal text in `unit`."""
    per = {"yuan": 100, "wan": 1_000_000}[unit]
    if isinstance(payload, list):
        return [_in_unit(v, unit) for v in payload]
    if not isinstance(payload, dict):
        return payload
    return {k: str(Decimal(v) / per) if k.endswith("_fen") and isinstance(v, int) else _in_unit(v, unit) for k, v in payload.items()}


@pytest.mark.parametrize("unit", ["yuan", "wan"])
def test_a_payload_in_yuan_or_wan_gives_the_same_profile_as_in_fen(unit: str) -> None:
    fen = source_payloads(S5, AS_OF)
    other = {s: {**_in_unit(p, unit), "unit": unit, "currency": "CNY"} for s, p in fen.items()}
    assert other["tax"]["years"][0]["revenue_fen"] != fen["tax"]["years"][0]["revenue_fen"]
    assert build_profile(S5["uscc"], AS_OF, other) == build_profile(S5["uscc"], AS_OF, fen)


# --- units and currency ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "amount", "fen"),
    [
        ("fen", 123, 123),
        ("yuan", 12, 1_200),
        ("yuan", "12.34", 1_234),
        ("yuan", 12.34, 1_234),
        ("yuan", "0.01", 1),
        ("wan", 3, 3_000_000),
        ("wan", "1.234567", 1_234_567),
        ("wan", "0.000001", 1),
        ("wan", 0.5, 500_000),
    ],
)
def test_amounts_are_normalized_to_integer_fen_exactly(unit: str, amount: Any, fen: int) -> None:
    assert validate("bank_flows", flows(unit=unit, inflow_fen=amount), AS_OF) == ({"months": 12, "inflow_fen": fen, "outflow_fen": 50 * {"fen": 1, "yuan": 100, "wan": 1_000_000}[unit]}, [])


@pytest.mark.parametrize(
    ("unit", "amount"), [("yuan", "12.345"), ("yuan", 12.345), ("yuan", "0.001"), ("wan", "1.2345678"), ("wan", 0.0000001), ("fen", 1.5)]
)
def test_an_amount_finer_than_a_fen_is_rejected_never_rounded(unit: str, amount: Any) -> None:
    out, issues = validate("bank_flows", flows(unit=unit, inflow_fen=amount), AS_OF)
    assert out is not None and out["inflow_fen"] is None
    assert issues == ["bank_flows.inflow_fen:" + ("invalid" if unit == "fen" else "fraction")]  # fen amounts are integers


@pytest.mark.parametrize("amount", ["1e3", " 12", "12,5", "NaN", "", "1" * 41, True, None, [1], float("inf"), float("nan")])
def test_an_amount_in_yuan_is_a_number_or_decimal_text(amount: Any) -> None:
    out, issues = validate("bank_flows", flows(unit="yuan", inflow_fen=amount), AS_OF)
    assert out is not None and out["inflow_fen"] is None and issues == ["bank_flows.inflow_fen:invalid"]


def test_amounts_above_the_largest_are_rejected_in_any_unit():
    assert validate("bank_flows", flows(inflow_fen=MAX_SOURCE_INT), AS_OF)[1] == []
    assert validate("bank_flows", flows(inflow_fen=MAX_SOURCE_INT + 1), AS_OF)[1] == ["bank_flows.inflow_fen:invalid"]
    assert validate("bank_flows", flows(unit="wan", inflow_fen=str(MAX_SOURCE_INT)), AS_OF)[1] == ["bank_flows.inflow_fen:invalid"]
    assert validate("bank_flows", flows(unit="wan", inflow_fen=1e300), AS_OF)[1] == ["bank_flows.inflow_fen:invalid"]


@pytest.mark.parametrize("unit", ["fen", "yuan", "wan"])
def test_negative_amounts_are_rejected_in_any_unit(unit: str) -> None:
    assert validate("bank_flows", flows(unit=unit, inflow_fen=0), AS_OF)[1] == []
    out, issues = validate("bank_flows", flows(unit=unit, inflow_fen=-1), AS_OF)
    assert out is not None and out["inflow_fen"] is None and issues == ["bank_flows.inflow_fen:negative"]


@pytest.mark.parametrize("unit", ["FEN", "kg", "元", "", None, 1])
def test_an_unknown_unit_rejects_every_amount_of_the_payload(unit: Any) -> None:
    out, issues = validate("credit_bureau", {"unit": unit, "loans_outstanding_fen": 1, "secured_debt_fen": 2, "overdue_count_24m": 3,
                                             "max_overdue_days_24m": 4, "queries_3m": 5}, AS_OF)
    assert issues == ["credit_bureau.unit:unsupported"]
    assert out == {"loans_outstanding_fen": None, "secured_debt_fen": None, "overdue_count_24m": 3, "max_overdue_days_24m": 4, "queries_3m": 5}


BUREAU = {"loans_outstanding_fen": 1, "secured_debt_fen": 2, "overdue_count_24m": 3, "max_overdue_days_24m": 4, "queries_3m": 5}


@pytest.mark.parametrize(("sent", "kept", "issues"), [
    ({}, {}, []),  # not reported: left out, so the payload normalizes (and hashes) as it did before the field existed
    ({"court_enforcements": 0}, {"court_enforcements": 0}, []),
    ({"court_enforcements": 2}, {"court_enforcements": 2}, []),
    ({"court_enforcements": -1}, {"court_enforcements": None}, ["credit_bureau.court_enforcements:negative"]),
    ({"court_enforcements": "two"}, {"court_enforcements": None}, ["credit_bureau.court_enforcements:invalid"]),
])
def test_the_bureaus_court_enforcements_are_a_count_read_only_when_reported(sent, kept, issues) -> None:
    out, found = validate("credit_bureau", {**BUREAU, **sent}, AS_OF)
    assert out == {**BUREAU, **kept} and found == issues


@pytest.mark.parametrize(("currency", "ok"), [("CNY", True), ("USD", False), ("cny", False), ("RMB", False), ("", False), (None, False), (156, False)])
def test_only_renminbi_is_read(currency: Any, ok: bool) -> None:
    out, issues = validate("bank_flows", flows(currency=currency), AS_OF)
    assert out is not None and (out["inflow_fen"] == 100) is ok
    assert issues == ([] if ok else ["bank_flows.currency:unsupported"])
    p = build_profile(S5["uscc"], AS_OF, {"collateral": {"currency": currency, "assets": [{"id": "C1", "kind": "k", "appraised_value_fen": 9, "secured_debt_fen": 1}]}})
    assert len(p.collateral) == (1 if ok else 0)
    assert ("collateral.currency:unsupported" in p.quality_flags) is not ok


def test_tax_amounts_follow_the_payloads_unit():
    out, issues = validate("tax", tax(tax_year(2023), tax_year(2024), tax_year(2025, "1.5"), unit="wan"), AS_OF)
    assert issues == [] and out is not None
    assert out["years"][-1]["revenue_fen"] == 1_500_000 and out["years"][-1]["vat_fen"] == 10_000_000
    out, issues = validate("tax", tax(tax_year(2023), tax_year(2024), tax_year(2025), currency="HKD"), AS_OF)
    assert issues == ["tax.currency:unsupported"] and out is not None
    assert all(y["revenue_fen"] is None and y["vat_fen"] is None for y in out["years"])


# --- types: an int is an int -------------------------------------------------------------


@pytest.mark.parametrize(("value", "reason"), [(3, None), (0, None), (True, "invalid"), (False, "invalid"), (3.0, "invalid"), ("3", "invalid"), (-3, "negative")])
def test_a_count_is_an_int_never_a_bool_or_float(value: Any, reason: str | None) -> None:
    payload = {"headcount": value, "tech_staff": 1, "headcount_12m_ago": 1, "arrears_months": 0}
    out, issues = validate("social_insurance", payload, AS_OF)
    assert out is not None and out["headcount"] == (value if reason is None else None)
    assert issues == ([] if reason is None else [f"social_insurance.headcount:{reason}"])


def test_a_required_field_absent_is_missing_and_an_optional_one_is_not():
    out, issues = validate("invoices", {"sales_invoice_fen": 5}, AS_OF)
    assert issues == ["invoices.customer_count:missing"]
    assert out == {"months": 12, "sales_invoice_fen": 5, "customer_count": None, "sales_invoice_count": None}


def test_unknown_keys_are_ignored_and_the_envelope_is_dropped():
    out, issues = validate("bank_flows", flows(note="x", unit="fen", currency="CNY", as_of="2026-10-31"), AS_OF)
    assert (out, issues) == ({"months": 12, "inflow_fen": 100, "outflow_fen": 50}, [])


# --- periods -----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["invoices", "bank_flows"])
@pytest.mark.parametrize(("months", "reason"), [(12, None), (11, "period"), (24, "period"), (0, "period"), (12.0, "invalid"), (True, "invalid"), ("12", "invalid")])
def test_a_12_month_figure_of_another_period_is_absent_not_annualised(source: str, months: Any, reason: str | None) -> None:
    payload = {"inflow_fen": 100, "outflow_fen": 50} if source == "bank_flows" else {"sales_invoice_fen": 100, "customer_count": 5}
    p = build_profile(S5["uscc"], AS_OF, {source: {**payload, "months": months}})
    values = [v for k, v in p.features.items()]
    assert (values == [None] * len(values)) is (reason is not None)
    assert (f"{source}.months:{reason}" in p.quality_flags) is (reason is not None)
    assert not [f for f in p.quality_flags if f.startswith(f"{source}.") and not f.startswith(f"{source}.months:")]


@pytest.mark.parametrize(("day", "ok"), [("2026-10-31", True), ("2025-12-31", True), ("2026-11-01", False)])
def test_figures_dated_after_the_profile_are_rejected_whole(day: str, ok: bool) -> None:
    out, issues = validate("bank_flows", flows(as_of=day), AS_OF)
    assert (out == {"months": 12, "inflow_fen": 100, "outflow_fen": 50}) is ok and (out is None) is not ok
    assert issues == ([] if ok else ["bank_flows.as_of:future"])


@pytest.mark.parametrize("day", ["2026-1-1", "20261031", "2026-02-30", 20261031, "yesterday"])
def test_a_source_date_that_is_not_iso_is_flagged(day: Any) -> None:
    out, issues = validate("bank_flows", flows(as_of=day), AS_OF)
    assert out == {"months": 12, "inflow_fen": 100, "outflow_fen": 50} and issues == ["bank_flows.as_of:invalid"]


@pytest.mark.parametrize(
    ("as_of", "year", "ok"),
    [(AS_OF, 2025, True), (AS_OF, 2026, False), (AS_OF, 2027, False), (date(2026, 1, 1), 2025, True), (date(2025, 12, 31), 2025, False)],
)
def test_a_tax_year_must_be_closed_at_the_profiles_date(as_of: date, year: int, ok: bool) -> None:
    out, issues = validate("tax", tax(tax_year(year)), as_of)
    assert out is not None and len(out["years"]) == (1 if ok else 0)
    assert issues == (["tax.years:fewer_than_3"] if ok else [f"tax.years[{year}]:future", "tax.years:missing"])


def test_the_simulated_years_are_the_three_closed_ones():
    years = [y["year"] for y in source_payloads(S5, AS_OF)["tax"]["years"]]
    assert years == [2023, 2024, 2025]
    assert validate("tax", source_payloads(S5, AS_OF)["tax"], AS_OF)[1] == []


def test_a_missing_middle_year_is_a_gap_and_its_growth_is_absent():
    p = build_profile(S5["uscc"], AS_OF, {"tax": tax(tax_year(2023, 100), tax_year(2025, 300))})
    flags = tuple(f for f in p.quality_flags if f.startswith("tax"))
    assert flags == ("tax.years:gap", "tax.years:fewer_than_3")
    f = p.features
    assert (f["revenue_fen_y1"], f["revenue_fen_y3"]) == (100, 300) and "revenue_fen_y2" not in f
    assert f["revenue_growth"] is None and f["revenue_growth_prev"] is None and f["rd_growth"] is None and f["rd_expense_fen_prev"] is None
    full = build_profile(S5["uscc"], AS_OF, {"tax": tax(tax_year(2023, 100), tax_year(2024, 200), tax_year(2025, 300))})
    assert not [f for f in full.quality_flags if f.startswith("tax")]
    assert full.features["revenue_growth"] == 0.5 and full.features["revenue_growth_prev"] == 1.0


def test_a_gap_before_the_latest_three_years_is_flagged_but_their_growth_read():
    p = build_profile(S5["uscc"], AS_OF, {"tax": tax(tax_year(2019), tax_year(2023, 100), tax_year(2024, 200), tax_year(2025, 300))})
    assert tuple(f for f in p.quality_flags if f.startswith("tax")) == ("tax.years:gap",)
    assert p.features["revenue_growth"] == 0.5


def test_a_year_given_twice_identically_is_kept_once_and_differently_rejected():
    out, issues = validate("tax", tax(tax_year(2023), tax_year(2024), tax_year(2025), tax_year(2025)), AS_OF)
    assert issues == ["tax.years[2025]:duplicate"] and out is not None and [y["year"] for y in out["years"]] == [2023, 2024, 2025]
    out, issues = validate("tax", tax(tax_year(2023), tax_year(2024), tax_year(2025), tax_year(2025, 7)), AS_OF)
    assert issues == ["tax.years[2025]:conflict", "tax.years:fewer_than_3"] and out is not None
    assert [y["year"] for y in out["years"]] == [2023, 2024]  # neither version of 2025 is trusted
    out, issues = validate("tax", tax(tax_year(2024), tax_year(2023), tax_year(2024, 7), tax_year(2024), tax_year(2025)), AS_OF)
    assert issues == ["tax.years[2024]:conflict", "tax.years[2024]:conflict", "tax.years:gap", "tax.years:fewer_than_3"] and out is not None
    assert [y["year"] for y in out["years"]] == [2023, 2025]


def test_the_same_year_in_another_unit_is_the_same_record():
    out, issues = validate("tax", tax(tax_year(2023), tax_year(2024), tax_year(2025, "1"), tax_year(2025, 1), unit="yuan"), AS_OF)
    assert issues == ["tax.years[2025]:duplicate"] and out is not None and out["years"][-1]["revenue_fen"] == 100


def test_every_years_fields_are_checked_and_named():
    out, issues = validate("tax", tax(tax_year(2023, -1), tax_year(2024, cit_fen=None), tax_year(2025, vat_fen=1.5)), AS_OF)
    assert issues == ["tax.years[2023].revenue_fen:negative", "tax.years[2024].cit_fen:invalid", "tax.years[2025].vat_fen:invalid"]
    assert out is not None and [y["year"] for y in out["years"]] == [2023, 2024, 2025]


# --- garbage: never raises; every issue names its source and field ----------------------

ISSUE = re.compile(
    r"(?P<source>[a-z_]+)(\.years\[(?P<year>\d{4})\])?(\.(?P<field>[a-z0-9_]+))?:"
    r"(invalid|missing|negative|fraction|unsupported|future|period|duplicate|conflict|gap|fewer_than_3|more_than_\d+)"
)
leaves = (
    st.none() | st.booleans() | st.integers() | st.integers(-3, 30) | st.integers(2019, 2027)
    | st.floats(allow_nan=True, allow_infinity=True) | st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | st.text(max_size=8) | st.sampled_from(["CNY", "USD", "fen", "yuan", "wan", "2026-10-31", "2026-11-01", "A", "12.345"])
)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
WELL_FORMED = source_payloads(S5, AS_OF)


def like(value: Any) -> st.SearchStrategy[Any]:
    """Values shaped like `value` (same keys, plus an envelope), any part possibly garbage."""
    if isinstance(value, dict):
        optional = {k: like(v) for k, v in value.items()}
        shaped = st.fixed_dictionaries({}, optional={**optional, "unit": leaves, "currency": leaves, "as_of": leaves, "months": leaves})
    elif isinstance(value, list) and value:
        shaped = st.lists(like(value[0]), max_size=5)
    else:
        shaped = st.just(value)
    return st.one_of(shaped, shaped, shaped, values)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALL_SOURCES).flatmap(lambda s: st.tuples(st.just(s), like(WELL_FORMED[s]))))
def test_any_payload_is_read_or_flagged_never_raised(case: tuple[str, Any]) -> None:
    source, payload = case
    before = copy.deepcopy(payload)
    out, issues = validate(source, payload, AS_OF)
    assert payload == before  # not touched
    for issue in issues:
        m = ISSUE.fullmatch(issue)
        assert m and m["source"] == source, issue
        assert m["field"] is not None or m["year"] is not None or issue == f"{source}:invalid", issue  # names a field, a year, or the payload
    assert (out is None) is (not isinstance(payload, dict) or f"{source}.as_of:future" in issues)
    if out is not None:
        assert validate(source, out, AS_OF)[0] == out  # a normalized payload reads as itself
        for key, value in out.items():
            if key.endswith("_fen"):
                assert value is None or (type(value) is int and 0 <= value <= MAX_SOURCE_INT)
