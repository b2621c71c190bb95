"""Tests for sandu.domain.money: integer fen, exact conversion, formatting, rates."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandu.domain.errors import InvalidInput
from sandu.domain.money import (
    FEN_PER_WAN,
    FEN_PER_YI,
    FEN_PER_YUAN,
    bp,
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
