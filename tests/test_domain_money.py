"""Tests for sandu.domain.money: integer fen, exact conversion, formatting, rates;
and, at the end, the rest of sandu.domain (errors, dates, enums, project, text)."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandu.domain.dates import BUSINESS_TZ, add_months, business_date
from sandu.domain.enums import LineStatus, OfferStatus, Outcome, Settlement, sql_in
from sandu.domain.errors import MAX_SHOWN_CHARS, Conflict, ConsentDenied, FieldError, InvalidInput, NotFound, NotPermitted, SanduError, shorten, show
from sandu.domain.money import (
    FEN_PER_WAN,
    FEN_PER_YI,
    FEN_PER_YUAN,
    MAX_AMOUNT_FEN,
    bp,
    format_capital,
    format_cn,
    format_rate_pct,
    format_wan,
    format_yuan,
    parse_rate,
    require_fen,
    round_half_up_fen,
    wan_to_fen,
    yuan_to_fen,
)
from sandu.domain.project import MAX_PROJECT_TENOR_YEARS, Project, project_from
from sandu.domain.text import plain_text

fen_amounts = st.integers(min_value=-(10**18), max_value=10**18)


def unformat(text: str) -> str:
    """Strip the currency symbol and thousands separators from formatted output."""
    return text.replace("¥", "").replace(",", "")


def test_constants() -> None:
    assert (FEN_PER_YUAN, FEN_PER_WAN, FEN_PER_YI) == (100, 1_000_000, 10_000_000_000)
    assert FEN_PER_WAN == 10_000 * FEN_PER_YUAN and FEN_PER_YI == 10_000 * FEN_PER_WAN


# --------------------------------------------------------------- require_fen


def test_require_fen_accepts_positive_int() -> None:
    assert require_fen(1) == 1
    assert require_fen(0, allow_zero=True) == 0
    assert require_fen(500, max_fen=500) == 500


@pytest.mark.parametrize(
    "value", [1.5, 3.0, True, False, Decimal("3"), "300", None, [1]]
)
def test_require_fen_rejects_non_int(value: object) -> None:
    with pytest.raises(InvalidInput) as info:
        require_fen(value, field="principal_fen")
    assert info.value.field == "principal_fen"
    assert "must be a whole number of fen (integer)" in info.value.message


def test_require_fen_message_shows_value() -> None:
    with pytest.raises(InvalidInput) as info:
        require_fen(1.5)
    assert info.value.field == "amount_fen"
    assert "must be a whole number of fen (integer), got 1.5" in info.value.message


def test_require_fen_rejects_negative_and_zero() -> None:
    with pytest.raises(InvalidInput) as info:
        require_fen(-100)
    assert "must be positive, got -100" in info.value.message
    with pytest.raises(InvalidInput, match="must be positive, got 0"):
        require_fen(0)
    with pytest.raises(InvalidInput, match="non-negative"):
        require_fen(-1, allow_zero=True)


def test_require_fen_max() -> None:
    with pytest.raises(InvalidInput) as info:
        require_fen(501, max_fen=500)
    assert "at most 500" in info.value.message
    assert info.value.allowed == "integer fen 1..500"


# --------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        ("300.50", 30_050),
        ("300.5", 30_050),
        ("300", 30_000),
        ("0.01", 1),
        ("-12.34", -1_234),
        ("3000000.00", 300_000_000),
        (Decimal("12.34"), 1_234),
        (Decimal("1.10") * Decimal("1.00"), 110),  # trailing zeros are exact
        (Decimal("1E+3"), 100_000),
        (7, 700),
    ],
)
def test_yuan_to_fen_examples(value: object, fen: int) -> None:
    assert yuan_to_fen(value) == fen  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("3,000,000.00", "thousands separators"),
        ("1.005", "fractional fen"),
        (Decimal("0.001"), "fractional fen"),
        (1.5, "floats are not accepted"),
        (3.0, "floats are not accepted"),
        (True, "must be a string, Decimal or integer"),
        (" 12", "whitespace"),
        ("12\n", "whitespace"),
        ("¥12", "plain decimal number"),
        ("1e3", "plain decimal number"),
        (".5", "plain decimal number"),
        ("5.", "plain decimal number"),
        ("+5", "plain decimal number"),
        ("", "plain decimal number"),
        ("１２", "plain decimal number"),  # full-width digits
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        (Decimal("1E-999999999"), "fractional fen"),
        (Decimal("1E+999999999"), "too large"),
    ],
)
def test_yuan_to_fen_rejects(value: object, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        yuan_to_fen(value)  # type: ignore[arg-type]
    assert info.value.field == "amount_yuan"
    assert reason in info.value.message


def test_yuan_to_fen_custom_field() -> None:
    with pytest.raises(InvalidInput) as info:
        yuan_to_fen("1.001", field="limit_yuan")
    assert info.value.field == "limit_yuan"


@pytest.mark.parametrize(
    ("value", "fen"),
    [("300", 300_000_000), ("0.000001", 1), ("1.5", 1_500_000), (Decimal("0.25"), 250_000), (2, 2_000_000)],
)
def test_wan_to_fen_examples(value: object, fen: int) -> None:
    assert wan_to_fen(value) == fen  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0.0000001", Decimal("1.0000005"), 1.5, "1,000"])
def test_wan_to_fen_rejects(value: object) -> None:
    with pytest.raises(InvalidInput) as info:
        wan_to_fen(value)  # type: ignore[arg-type]
    assert info.value.field == "amount_wan"


@given(fen_amounts)
def test_format_yuan_round_trip(fen: int) -> None:
    assert yuan_to_fen(unformat(format_yuan(fen))) == fen


@given(fen_amounts)
def test_decimal_yuan_round_trip(fen: int) -> None:
    assert yuan_to_fen(Decimal(fen) / 100) == fen
    assert wan_to_fen(Decimal(fen).scaleb(-6)) == fen


@given(fen_amounts)
def test_format_wan_six_places_round_trip(fen: int) -> None:
    assert wan_to_fen(unformat(format_wan(fen, places=6)).removesuffix("万")) == fen


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=1, max_value=9))
def test_sub_fen_fractions_always_rejected(fen: int, extra_digit: int) -> None:
    text = format_yuan(fen).replace("¥", "").replace(",", "") + str(extra_digit)
    with pytest.raises(InvalidInput, match="fractional fen"):
        yuan_to_fen(text)


# ----------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("amount", "fen"),
    [
        (Decimal("2.5"), 3),
        (Decimal("-2.5"), -3),
        (Decimal("2.4999"), 2),
        (Decimal("-2.4999"), -2),
        (Decimal("2.5000001"), 3),
        (Decimal("0.5"), 1),
        (Decimal("-0.5"), -1),
        (Decimal("0.4999999999"), 0),
        (Decimal("12345678901234567890.5"), 12345678901234567891),
        (Decimal("7"), 7),
        (7, 7),
    ],
)
def test_round_half_up_fen(amount: Decimal, fen: int) -> None:
    result = round_half_up_fen(amount)
    assert result == fen and type(result) is int


@pytest.mark.parametrize("amount", [2.5, Decimal("NaN"), "2.5", True])
def test_round_half_up_fen_rejects(amount: object) -> None:
    with pytest.raises(InvalidInput):
        round_half_up_fen(amount)  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_round_half_up_is_away_from_zero_on_halves(n: int) -> None:
    half = Decimal(n) + Decimal("0.5") if n >= 0 else Decimal(n) - Decimal("0.5")
    assert round_half_up_fen(half) == (n + 1 if n >= 0 else n - 1)


# --------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (300_000_000, "¥3,000,000.00"),
        (1_234, "¥12.34"),
        (-1_234, "-¥12.34"),
        (0, "¥0.00"),
        (1, "¥0.01"),
        (-5, "-¥0.05"),
        (123_456_789, "¥1,234,567.89"),
    ],
)
def test_format_yuan(fen: int, text: str) -> None:
    assert format_yuan(fen) == text


@pytest.mark.parametrize(
    ("fen", "places", "text"),
    [
        (300_000_000, 2, "300.00万"),
        (1_234_567, 2, "1.23万"),
        (1_235_000, 2, "1.24万"),  # half up
        (1_225_000, 2, "1.23万"),  # half up, not half even
        (-1_235_000, 2, "-1.24万"),
        (-1, 2, "0.00万"),  # no "-0.00"
        (12 * FEN_PER_YI // 10, 2, "12,000.00万"),  # ≥ 1亿 still in 万
        (300_000_000, 0, "300万"),
        (1, 6, "0.000001万"),
    ],
)
def test_format_wan(fen: int, places: int, text: str) -> None:
    assert format_wan(fen, places) == text


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (12 * FEN_PER_YI // 10, "1.20亿"),
        (FEN_PER_YI, "1.00亿"),
        (FEN_PER_YI - 1, "10,000.00万"),  # display rounding of 9,999.99999999万
        (300_000_000, "300.00万"),
        (FEN_PER_WAN, "1.00万"),
        (FEN_PER_WAN - 1, "9,999.99元"),
        (1_234, "12.34元"),
        (-1_234, "-12.34元"),
        (-3 * FEN_PER_YI, "-3.00亿"),
        (0, "0.00元"),
    ],
)
def test_format_cn(fen: int, text: str) -> None:
    assert format_cn(fen) == text


@pytest.mark.parametrize("func", [format_yuan, format_wan, format_cn])
@pytest.mark.parametrize("value", [1.5, Decimal("1"), True, "100"])
def test_formatters_reject_non_int(func, value: object) -> None:
    with pytest.raises(InvalidInput):
        func(value)


@pytest.mark.parametrize("places", [-1, 11, 2.0, True])
def test_format_wan_rejects_bad_places(places: object) -> None:
    with pytest.raises(InvalidInput) as info:
        format_wan(100, places)  # type: ignore[arg-type]
    assert info.value.field == "places"


# -------------------------------------------------------------------- rates


@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("0.0345", Decimal("0.0345")),
        ("3.45%", Decimal("0.0345")),
        ("100%", Decimal("1")),
        ("0", Decimal("0")),
        ("1", Decimal("1")),
        (Decimal("0.0345"), Decimal("0.0345")),
    ],
)
def test_parse_rate(value: object, rate: Decimal) -> None:
    result = parse_rate(value)  # type: ignore[arg-type]
    assert result == rate and isinstance(result, Decimal)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0.0345, "floats are not accepted"),
        ("-0.01", "must not be negative"),
        ("-3%", "must not be negative"),
        (Decimal("-0.01"), "must not be negative"),
        ("3.45", "at most 1 (100%)"),
        ("100.01%", "at most 1 (100%)"),
        (Decimal("1.5"), "at most 1 (100%)"),
        ("3.45 %", "must look like"),
        ("abc", "must look like"),
        (" 0.03", "must look like"),
        (3, "must be a string or Decimal"),
        (Decimal("NaN"), "finite"),
    ],
)
def test_parse_rate_rejects(value: object, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_rate(value, field="rate_penalty")  # type: ignore[arg-type]
    assert info.value.field == "rate_penalty"
    assert reason in info.value.message


@pytest.mark.parametrize(
    ("rate", "places", "text"),
    [
        (Decimal("0.0345"), 2, "3.45%"),
        (Decimal("0.03455"), 2, "3.46%"),  # half up
        (Decimal("0.03445"), 2, "3.45%"),  # half up, not half even
        (Decimal("0.1"), 2, "10.00%"),
        (Decimal("1"), 0, "100%"),
        (Decimal("0.0345"), 3, "3.450%"),
        (Decimal("-0.00001"), 2, "0.00%"),
    ],
)
def test_format_rate_pct(rate: Decimal, places: int, text: str) -> None:
    assert format_rate_pct(rate, places) == text


@given(st.integers(min_value=0, max_value=10_000))
def test_rate_round_trip_via_percent(n: int) -> None:
    rate = bp(n)
    assert parse_rate(format_rate_pct(rate)) == rate
    assert parse_rate(str(rate)) == rate


def test_bp() -> None:
    assert bp(345) == Decimal("0.0345")
    assert bp(25) == Decimal("0.0025")
    assert bp(-50) == Decimal("-0.005")
    assert bp(0) == 0
    with pytest.raises(InvalidInput):
        bp(1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        bp(True)  # type: ignore[arg-type]


# ------------------------------------- every error names the field, why, and what is allowed

YUAN = "a string like '300.50', a Decimal or an int, with at most 2 decimal places"
WAN = "a string like '300.5', a Decimal or an int, with at most 6 decimal places (1 fen)"
RATE = "a fraction 0..1 like '0.0345', a percent like '3.45%', or a Decimal"
FEN_DEC = "a finite Decimal amount in fen"
FEN_INT = "an integer amount of fen"
PLACES = "an integer 0..10"

MONEY_ERRORS = [
    (require_fen, (1.5,), {}, "amount_fen", "must be a whole number of fen (integer), got 1.5", "integer fen 1 or more"),
    (require_fen, (None,), {"field": "p", "allow_zero": True, "max_fen": 9}, "p", "must be a whole number of fen (integer), got None", "integer fen 0..9"),
    (require_fen, (-1,), {}, "amount_fen", "must be positive, got -1", "integer fen 1 or more"),
    (require_fen, (0,), {}, "amount_fen", "must be positive, got 0", "integer fen 1 or more"),
    (require_fen, (-1,), {"allow_zero": True}, "amount_fen", "must be non-negative, got -1", "integer fen 0 or more"),
    (require_fen, (501,), {"max_fen": 500}, "amount_fen", "must be at most 500 fen (¥5.00), got 501", "integer fen 1..500"),
    (require_fen, (1,), {"max_fen": 0}, "amount_fen", "must be at most 0 fen (¥0.00), got 1", "integer fen 1..0"),
    (yuan_to_fen, ("0" * 40 + "1",), {}, "amount_yuan", "is too long (41 characters)", YUAN),
    (yuan_to_fen, ("1,000",), {}, "amount_yuan", "thousands separators (',') are not accepted, got '1,000'", YUAN),
    (yuan_to_fen, ("1，000",), {}, "amount_yuan", "thousands separators (',') are not accepted, got '1，000'", YUAN),
    (yuan_to_fen, (" 1",), {}, "amount_yuan", "must not contain surrounding whitespace, got ' 1'", YUAN),
    (yuan_to_fen, ("1e3",), {}, "amount_yuan", "must be a plain decimal number like '300.50', got '1e3'", YUAN),
    (yuan_to_fen, (1.5,), {}, "amount_yuan", "floats are not accepted (inexact), got 1.5; pass a string or Decimal", YUAN),
    (yuan_to_fen, (None,), {}, "amount_yuan", "must be a string, Decimal or integer, got None", YUAN),
    (yuan_to_fen, ([1],), {}, "amount_yuan", "must be a string, Decimal or integer, got [1]", YUAN),
    (yuan_to_fen, ("1.0010",), {}, "amount_yuan", "has a fraction smaller than 1 fen (fractional fen), got '1.0010'", YUAN),
    (yuan_to_fen, (Decimal("NaN"),), {}, "amount_yuan", "must be a finite number, got NaN", YUAN),
    (yuan_to_fen, ("1.001",), {}, "amount_yuan", "has a fraction smaller than 1 fen (fractional fen), got '1.001'", YUAN),
    (yuan_to_fen, ("-1.001",), {}, "amount_yuan", "has a fraction smaller than 1 fen (fractional fen), got '-1.001'", YUAN),
    (yuan_to_fen, (Decimal("1E+28"),), {}, "amount_yuan", "is too large, got Decimal('1E+28')", YUAN),
    (yuan_to_fen, (Decimal("1E-999999999"),), {}, "amount_yuan", "has a fraction smaller than 1 fen (fractional fen), got Decimal('1E-999999999')", YUAN),
    (yuan_to_fen, (Decimal("0.001"),), {}, "amount_yuan", "has a fraction smaller than 1 fen (fractional fen), got Decimal('0.001')", YUAN),
    (wan_to_fen, ("0.0000001",), {}, "amount_wan", "has a fraction smaller than 1 fen (fractional fen), got '0.0000001'", WAN),
    (wan_to_fen, ("1,0",), {"field": "w"}, "w", "thousands separators (',') are not accepted, got '1,0'", WAN),
    (wan_to_fen, (Decimal("1E+24"),), {}, "amount_wan", "is too large, got Decimal('1E+24')", WAN),
    (round_half_up_fen, (2.5,), {}, "amount_fen", "floats are not accepted (inexact), got 2.5; pass a string or Decimal", FEN_DEC),
    (round_half_up_fen, ("2.5",), {"field": "interest_fen"}, "interest_fen", "must be a Decimal, got '2.5'", FEN_DEC),
    (round_half_up_fen, (Decimal("Infinity"),), {}, "amount_fen", "must be a finite number, got Infinity", FEN_DEC),
    (round_half_up_fen, (Decimal("1E+30"),), {}, "amount_fen", "is too large, got Decimal('1E+30')", FEN_DEC),
    (round_half_up_fen, (Decimal("-1E+30"),), {}, "amount_fen", "is too large, got Decimal('-1E+30')", FEN_DEC),
    (format_yuan, (1.5,), {}, "fen", "must be an integer, got 1.5", FEN_INT),
    (format_wan, (True,), {}, "fen", "must be an integer, got True", FEN_INT),
    (format_wan, (1, -1), {}, "places", "must be between 0 and 10, got -1", PLACES),
    (format_wan, (1, 11), {}, "places", "must be between 0 and 10, got 11", PLACES),
    (format_wan, (1, 2.0), {}, "places", "must be an integer, got 2.0", PLACES),
    (format_cn, ("1",), {}, "fen", "must be an integer, got '1'", FEN_INT),
    (parse_rate, ("0." + "0" * 38 + "1",), {}, "rate_annual", "is too long (41 characters)", RATE),
    (parse_rate, ("-1",), {}, "rate_annual", "must not be negative, got '-1'", RATE),
    (parse_rate, ("1.5%%",), {}, "rate_annual", "must look like '0.0345' or '3.45%', got '1.5%%'", RATE),
    (parse_rate, ("2",), {}, "rate_annual", "must be at most 1 (100%), got 2; write percentages as '3.45%'", RATE),
    (parse_rate, ("100.1%",), {}, "rate_annual", "must be at most 1 (100%), got 1.001; write percentages as '3.45%'", RATE),
    (parse_rate, (Decimal("-0.1"),), {}, "rate_annual", "must not be negative, got -0.1", RATE),
    (parse_rate, (3,), {}, "rate_annual", "must be a string or Decimal, got 3", RATE),
    (parse_rate, (0.1,), {}, "rate_annual", "floats are not accepted (inexact), got 0.1; pass a string or Decimal", RATE),
    (parse_rate, (Decimal("NaN"),), {}, "rate_annual", "must be a finite number, got NaN", RATE),
    (format_rate_pct, (0.1,), {}, "rate", "must be a Decimal, got 0.1", "a finite Decimal fraction"),
    (format_rate_pct, (Decimal("Infinity"),), {}, "rate", "must be a finite number, got Infinity", "a finite Decimal fraction"),
    (format_rate_pct, (Decimal("0.1"), 11), {}, "places", "must be between 0 and 10, got 11", PLACES),
    (bp, (1.5,), {}, "bp", "must be an integer, got 1.5", "an integer number of basis points"),
]


@pytest.mark.parametrize(("func", "args", "kwargs", "field", "reason", "allowed"), MONEY_ERRORS)
def test_money_errors_name_the_field_the_reason_and_what_is_allowed(func, args, kwargs, field, reason, allowed) -> None:
    with pytest.raises(InvalidInput) as info:
        func(*args, **kwargs)
    e = info.value
    assert (e.field, e.reason, e.allowed) == (field, reason, allowed)
    assert e.message == f"{field}: {reason} (allowed: {allowed})"


def test_bounds_are_inclusive():
    assert yuan_to_fen("0" * 39 + "1") == 100  # 40 characters
    assert parse_rate("0." + "0" * 37 + "1") == Decimal("1E-38")  # 40 characters
    assert yuan_to_fen(Decimal("1E+27")) == 10**29  # 30 digits of fen
    assert wan_to_fen(Decimal("1E+23")) == 10**29
    assert round_half_up_fen(Decimal("9.4E+29")) == 94 * 10**28
    assert round_half_up_fen(Decimal("-1E+29")) == -(10**29)
    assert format_wan(1, 10) == "0.0000010000万" and format_wan(1, 0) == "0万"
    assert format_rate_pct(Decimal("0.1"), 10) == "10.0000000000%" and format_rate_pct(Decimal("0.123"), 0) == "12%"
    assert require_fen(500, max_fen=500) == 500 and require_fen(10**30) == 10**30
    assert parse_rate("1") == 1 and parse_rate("0") == 0 and parse_rate(Decimal(1)) == 1 and parse_rate("100%") == 1


def test_zero_has_no_sign():
    assert yuan_to_fen("-0.00") == 0 and yuan_to_fen(Decimal("-0")) == 0 and wan_to_fen("0") == 0
    assert format_cn(-1) == "-0.01元" and format_wan(-1, 1) == "0.0万" and format_rate_pct(Decimal("-0.0000001"), 2) == "0.00%"


def test_exact_conversions_use_every_digit():
    assert yuan_to_fen("12345678901234567890.12") == 1234567890123456789012
    big = yuan_to_fen("12345678901234567890.120")
    assert big == 1234567890123456789012 and type(big) is int
    assert yuan_to_fen(Decimal("1.2300")) == 123 and yuan_to_fen("-7.0") == -700
    assert yuan_to_fen("-0.10") == -10 and yuan_to_fen("1.1") == 110 and yuan_to_fen("1.20") == 120
    assert wan_to_fen("0.000010") == 10 and wan_to_fen("-2.5") == -2_500_000
    assert yuan_to_fen(Decimal("1.00E+2")) == 10_000
    assert format_wan(10**18, 6) == "1,000,000,000,000.000000万"
    assert format_cn(-(10**18)) == "-100,000,000.00亿"
    assert format_rate_pct(Decimal("123456789.123456789"), 9) == "12,345,678,912.345678900%".replace(",", "")


# =============================================================================================
# The rest of sandu.domain (errors, dates, enums, project, text). These tests live here because the
# mutation run's test selection (pyproject [tool.mutmut]) reads only test_domain_{ids,money,text}.py
# for sandu.domain; the modules are small and shared by the money rules above.


def test_show_keeps_short_reprs_and_cuts_long_ones_to_50():
    assert MAX_SHOWN_CHARS == 50
    assert show("abc") == "'abc'" and show(None) == "None" and show(12) == "12"
    exactly = "x" * 48  # repr adds two quotes: 50 characters
    assert show(exactly) == repr(exactly)
    longer = "x" * 49  # 51 characters of repr
    assert show(longer) == "'" + "x" * 46 + "..." and len(show(longer)) == 50
    assert len(show(list(range(10_000)))) == 50


def test_shorten_cuts_text_without_quotes():
    assert shorten("x" * 50) == "x" * 50
    assert shorten("x" * 51) == "x" * 47 + "..."
    assert shorten("") == ""


def test_sandu_errors_carry_a_code_a_status_and_the_field():
    e = SanduError("went wrong", field="f", allowed="a")
    assert (str(e), e.message, e.field, e.allowed, e.code, e.http_status) == ("went wrong", "went wrong", "f", "a", "error", 400)
    assert e.to_dict() == {"code": "error", "field": "f", "message": "went wrong", "allowed": "a", "rule": None}
    refused = NotPermitted(None, "may not", "someone else", rule="maker_checker.reviewer")
    assert refused.to_dict() == {"code": "not_permitted", "field": None, "message": "may not (allowed: someone else) [rule maker_checker.reviewer]",
                                 "allowed": "someone else", "rule": "maker_checker.reviewer"}
    assert str(refused) == refused.message and refused.http_status == 403
    bare = SanduError("x")
    assert (bare.field, bare.allowed) == (None, None)


def test_field_errors_say_field_reason_and_allowed():
    e = FieldError("rate", "must be positive", "0..1")
    assert (e.message, e.field, e.reason, e.allowed) == ("rate: must be positive (allowed: 0..1)", "rate", "must be positive", "0..1")
    assert FieldError("rate", "is missing").message == "rate: is missing"
    assert FieldError("rate", "is missing", "").message == "rate: is missing"
    assert (InvalidInput.code, InvalidInput.http_status) == ("invalid_input", 422)
    assert (Conflict.code, Conflict.http_status) == ("conflict", 409)
    assert (ConsentDenied.code, ConsentDenied.http_status) == ("consent_denied", 403)
    assert InvalidInput("f", "r", "a").to_dict() == {"code": "invalid_input", "field": "f", "message": "f: r (allowed: a)", "allowed": "a", "rule": None}


def test_not_found_names_the_entity_and_a_short_key():
    e = NotFound("decision", "abc")
    assert (e.message, e.field, e.entity, e.key, e.code, e.http_status) == ("decision abc does not exist", "decision", "decision", "abc", "not_found", 404)
    assert NotFound("enterprise", "9133", field="uscc").field == "uscc"
    assert NotFound("line", "k" * 100).message == "line " + "k" * 47 + "... does not exist"


def test_the_business_date_is_beijing_time():
    assert str(BUSINESS_TZ) == "Asia/Shanghai"
    utc = _dt.timezone.utc
    assert business_date(_dt.datetime(2026, 11, 29, 15, 59, 59, tzinfo=utc)) == _dt.date(2026, 11, 29)
    assert business_date(_dt.datetime(2026, 11, 29, 16, 0, tzinfo=utc)) == _dt.date(2026, 11, 30)
    with pytest.raises(ValueError) as e:
        business_date(_dt.datetime(2026, 11, 29, 12, 0))
    assert str(e.value) == "business_date needs an aware datetime (sandu keeps time in UTC)"


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        ((2026, 1, 31), 1, (2026, 2, 28)),
        ((2028, 1, 31), 1, (2028, 2, 29)),
        ((2026, 1, 15), 0, (2026, 1, 15)),
        ((2026, 11, 30), 1, (2026, 12, 30)),
        ((2026, 12, 31), 1, (2027, 1, 31)),
        ((2026, 12, 31), 2, (2027, 2, 28)),
        ((2026, 1, 15), -1, (2025, 12, 15)),
        ((2026, 3, 31), -1, (2026, 2, 28)),
        ((2026, 5, 20), 12, (2027, 5, 20)),
        ((2026, 5, 20), 25, (2028, 6, 20)),
    ],
)
def test_add_months_clamps_to_the_months_last_day(start, months, end) -> None:
    assert add_months(_dt.date(*start), months) == _dt.date(*end)


@given(st.dates(min_value=_dt.date(1900, 1, 1), max_value=_dt.date(2200, 12, 31)), st.integers(-600, 600))
def test_add_months_lands_in_the_right_month_on_the_nearest_day(d: _dt.date, months: int) -> None:
    out = add_months(d, months)
    assert out.year * 12 + out.month == d.year * 12 + d.month + months
    assert out.day == d.day or (out.day < d.day and (out + _dt.timedelta(days=1)).day == 1)


def test_the_closed_sets_of_states():
    assert [m.value for m in Outcome] == ["approve", "partial", "refer", "decline"]
    assert [m.value for m in OfferStatus] == ["offered", "referred", "accepted"]
    assert [m.value for m in LineStatus] == ["active", "frozen", "expired", "closed"]
    assert [m.value for m in Settlement] == ["monthly", "quarterly"]
    assert sql_in("status", LineStatus) == "status IN ('active','frozen','expired','closed')"


PROJECT = {"name": "年产2.7万吨紧固件建设项目", "capex_fen": 13_600 * FEN_PER_WAN, "annual_cash_flow_fen": 2_600 * FEN_PER_WAN, "tenor_years": 7}


def test_a_project_is_built_from_plain_data_and_back():
    p = project_from(dict(PROJECT))
    assert p == Project(**PROJECT) and p.to_json() == PROJECT
    edge = {**PROJECT, "capex_fen": MAX_AMOUNT_FEN, "annual_cash_flow_fen": 1, "tenor_years": MAX_PROJECT_TENOR_YEARS, "name": "x" * 120}
    assert project_from(edge).to_json() == edge
    assert project_from({**PROJECT, "tenor_years": 1}).tenor_years == 1


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"tenor_years": 0}, "project.tenor_years", "Input should be greater than or equal to 1"),
        ({"tenor_years": 31}, "project.tenor_years", "Input should be less than or equal to 30"),
        ({"capex_fen": 0}, "project.capex_fen", "Input should be greater than or equal to 1"),
        ({"capex_fen": MAX_AMOUNT_FEN + 1}, "project.capex_fen", "Input should be less than or equal to 1000000000000000"),
        ({"annual_cash_flow_fen": True}, "project.annual_cash_flow_fen", "Input should be a valid integer"),
        ({"name": "x" * 121}, "project.name", "String should have at most 120 characters"),
        ({"name": "厂\x00房"}, "project.name", "contains a control character (U+0000) at position 2"),
        ({"owner": "x"}, "project.owner", "Unexpected keyword argument"),
    ],
)
def test_a_project_refuses_bad_fields_naming_them(change: dict, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        project_from({**PROJECT, **change})
    assert (info.value.field, info.value.reason) == (field, reason)


def test_a_project_that_is_not_an_object_or_has_odd_keys_is_refused():
    with pytest.raises(InvalidInput) as info:
        project_from(["x"], field="application.project")  # type: ignore[arg-type]
    assert info.value.field == "application.project"
    assert info.value.reason == "must be an object with name, capex_fen, annual_cash_flow_fen, tenor_years"
    with pytest.raises(InvalidInput) as info:
        project_from({**PROJECT, 5: 1})  # type: ignore[dict-item]
    assert info.value.field == "project" and "keywords must be strings" in info.value.reason
    with pytest.raises(InvalidInput) as info:
        project_from({k: v for k, v in PROJECT.items() if k != "capex_fen"}, field="p")
    assert (info.value.field, info.value.reason) == ("p.capex_fen", "Field required")


def test_formatting_defaults_to_two_places():
    assert format_wan(1_234_567) == "1.23万"
    assert format_rate_pct(Decimal("0.034567")) == "3.46%"


def test_formatting_keeps_every_digit_of_huge_values():
    rate = Decimal("123456789012345678901234567.5")
    assert format_rate_pct(rate, 10) == "12345678901234567890123456750.0000000000%"
    assert format_wan(10**30 + 5, 6) == "1,000,000,000,000,000,000,000,000.000005万"


PLAIN = "1..120 printable characters, no control or invisible characters, no leading or trailing spaces"


@pytest.mark.parametrize(
    ("value", "kwargs", "reason", "allowed"),
    [
        (["x"], {}, "must be text, got ['x']", PLAIN),
        ("", {}, "must not be empty", PLAIN),
        ("x" * 121, {}, "has 121 characters, more than 120", PLAIN),
        ("abc", {"max_length": 2}, "has 3 characters, more than 2", PLAIN.replace("120", "2")),
        ("a\x00b", {}, "contains a control character (U+0000) at position 2", PLAIN),
        ("\u200b", {}, "contains an invisible formatting character (U+200B) at position 1", PLAIN),
        ("公司\ue000", {}, "contains a private-use character (U+E000) at position 3", PLAIN),
        ("a\u2028", {}, "contains a line separator (U+2028) at position 2", PLAIN),
        ("a\u2029", {}, "contains a paragraph separator (U+2029) at position 2", PLAIN),
        ("a ", {}, "starts or ends with white space", PLAIN),
    ],
)
def test_plain_text_errors_name_the_field_reason_and_allowed(value, kwargs, reason, allowed) -> None:
    with pytest.raises(InvalidInput) as info:
        plain_text(value, "officer_note", **kwargs)
    assert (info.value.field, info.value.reason, info.value.allowed) == ("officer_note", reason, allowed)


def test_plain_text_keeps_good_text_up_to_its_limit():
    assert plain_text("ab", "f", max_length=2) == "ab"
    assert plain_text("x" * 120, "f") == "x" * 120


# -- 人民币大写 ----------------------------------------------------------------------------------


_DIGITS = {c: k for k, c in enumerate("零壹贰叁肆伍陆柒捌玖")}


def _read_capital(text: str) -> int:
    """An independent reader of 大写, fen: sections by 万亿/亿/万, places by 仟佰拾, then 元角分."""
    assert text.endswith(("整", "分")), text
    yuan_text, _, rest = text.partition("元") if "元" in text else ("", "", text)
    def section(t: str) -> int:
        total, digit = 0, 0
        for ch in t:
            if ch in _DIGITS:
                digit = _DIGITS[ch]
            else:
                total += digit * {"仟": 1000, "佰": 100, "拾": 10}[ch]
                digit = 0
        return total + digit
    yuan = 0
    t = yuan_text.replace("零", "")
    for unit, scale in (("万亿", 10**12), ("亿", 10**8), ("万", 10**4)):
        if unit in t:
            head, t = t.split(unit, 1)
            yuan += section(head) * scale
    yuan += section(t)
    jiao = fen = 0
    rest = rest.removesuffix("整").lstrip("零")
    if "角" in rest:
        jiao = _DIGITS[rest[rest.index("角") - 1]]
    if "分" in rest:
        fen = _DIGITS[rest[rest.index("分") - 1]]
    return yuan * 100 + jiao * 10 + fen


@pytest.mark.parametrize(("fen", "text"), [
    (0, "零元整"), (5, "伍分"), (50, "伍角整"), (55, "伍角伍分"), (100, "壹元整"), (1_000, "壹拾元整"), (10_005, "壹佰元零伍分"),
    (123_450, "壹仟贰佰叁拾肆元伍角整"), (100_500, "壹仟零伍元整"), (1_001_000, "壹万零壹拾元整"), (300_000_000, "叁佰万元整"),
    (10_000_000_100, "壹亿零壹元整"), (10_001_000_000, "壹亿零壹万元整"), (100_000_000_100, "壹拾亿零壹元整"), (4_160_000_00, "肆佰壹拾陆万元整"),
    (1_000_010_000, "壹仟万零壹佰元整"), (101_00, "壹佰零壹元整"),
])
def test_capitals_are_written_as_a_bank_writes_them(fen, text):
    assert format_capital(fen) == text


@given(st.integers(min_value=0, max_value=MAX_AMOUNT_FEN - 1))
def test_capitals_read_back_to_the_amount(fen):
    text = format_capital(fen)
    assert _read_capital(text) == fen, text
    assert "零零" not in text and not text.startswith("零") or fen < 100


@pytest.mark.parametrize("bad", [-1, 1.5, True, "100"])
def test_capitals_refuse_what_is_not_a_non_negative_fen_amount(bad):
    with pytest.raises(InvalidInput):
        format_capital(bad)
