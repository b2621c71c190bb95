"""Boundaries and error messages of `sandu.ledger.interest`.

Complements `test_ledger_engine.py`: every validation branch on both sides of
its limit, the exact message a user sees (field, reason, allowed), half-fen
rounding boundaries, and the settlement calendar against a brute-force
day-by-day reference (month ends, leap days, quarter months, the 20th itself).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.domain.errors import MAX_SHOWN_CHARS, InvalidInput
from sandu.ledger import interest as interest_module
from sandu.ledger.interest import (
    MAX_DAYS_PER_CALL,
    MAX_FEN_DAYS,
    MAX_PRINCIPAL_FEN,
    DailyAccrual,
    accrue,
    closing_principals,
    daily_interest_exact,
    interest_on_fen_days,
    interest_to_post_fen,
    penalty_rate,
    period_containing,
    period_interest_closed_form_fen,
    settlement_dates,
)

D = Decimal
START = date(2026, 1, 1)
RATE_ALLOWED = "Decimal in 0..1 with at most 18 decimal places"
DATE_ALLOWED = "datetime.date (not datetime)"


def invalid(call: Callable[[], object], field: str, reason: str, allowed: str | None) -> InvalidInput:
    """Run `call`, expect InvalidInput, and check exactly what the user is told."""
    with pytest.raises(InvalidInput) as info:
        call()
    error = info.value
    assert (error.field, error.reason, error.allowed) == (field, reason, allowed)
    assert error.message == f"{field}: {reason}" + (f" (allowed: {allowed})" if allowed else "")
    return error


def round_half_up(x: Fraction) -> int:
    assert x >= 0
    return int((x + Fraction(1, 2)).__floor__())


# --------------------------------------------------------------------------
# principal
# --------------------------------------------------------------------------


def close_to(value: Decimal, exact: Fraction) -> bool:
    """`value` is `exact` to 50 significant digits (what daily_interest_exact promises)."""
    return abs(Fraction(value) - exact) <= abs(exact) / 10**49


def test_principal_limit_is_inclusive() -> None:
    assert close_to(daily_interest_exact(MAX_PRINCIPAL_FEN, D(1), 360), Fraction(MAX_PRINCIPAL_FEN, 360))
    assert period_interest_closed_form_fen(MAX_PRINCIPAL_FEN, D("0.36"), 1) == MAX_PRINCIPAL_FEN // 1000
    assert daily_interest_exact(0, D("0.1")) == 0


@pytest.mark.parametrize("principal", [MAX_PRINCIPAL_FEN + 1, -1, True, 1.0, "100"])
def test_principal_out_of_range_or_not_int(principal: object) -> None:
    allowed = f"0..{MAX_PRINCIPAL_FEN} fen"
    reason = f"principal must be an int in fen, got {principal!r}"
    invalid(lambda: daily_interest_exact(principal, D("0.1")), "principal_fen", reason, allowed)  # type: ignore[arg-type]
    invalid(lambda: period_interest_closed_form_fen(principal, D("0.1"), 1), "principal_fen", reason, allowed)  # type: ignore[arg-type]
    invalid(lambda: closing_principals([], START, START, principal), "opening_principal_fen", reason, allowed)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# rate
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rate",
    [
        D(0),
        D("0E-40"),  # zero written with many places has no significant places
        D(1),
        D("1.000000000000000000000"),
        D("0.123456789012345678"),  # exactly 18 places
        D("0.05000000000000000000000"),  # 23 written places, 2 significant
        D("5E-18"),
    ],
)
def test_rates_accepted_at_the_limits(rate: Decimal) -> None:
    assert close_to(daily_interest_exact(1_000_000, rate), 1_000_000 * Fraction(rate) / 360)
    accrual = accrue([], START, START, rate, 360, 1_000_000)[0]
    assert accrual.rate_annual == rate and accrual.numerator == 1_000_000 * rate


@pytest.mark.parametrize(
    ("rate", "reason"),
    [
        (D("1.000000000000000001"), "rate 1.000000000000000001 is out of range"),
        (D("-0.000000000000000001"), "rate -1E-18 is out of range"),
        (D("2"), "rate 2 is out of range"),
        (D("0.1234567890123456789"), "rate 0.1234567890123456789 has too many decimal places"),
        (D("5E-19"), "rate 5E-19 has too many decimal places"),
        (D("0.00000000000000000010"), "rate 1.0E-19 has too many decimal places"),
        (0.0345, "rate must be a finite Decimal, got 0.0345"),
        ("0.0345", "rate must be a finite Decimal, got '0.0345'"),
        (D("NaN"), "rate must be a finite Decimal, got Decimal('NaN')"),
        (D("Infinity"), "rate must be a finite Decimal, got Decimal('Infinity')"),
    ],
)
def test_rates_rejected_with_reason(rate: object, reason: str) -> None:
    invalid(lambda: daily_interest_exact(100, rate), "rate_annual", reason, RATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: accrue([], START, START, rate), "rate_annual", reason, RATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: period_interest_closed_form_fen(1, rate, 1), "rate_annual", reason, RATE_ALLOWED)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# basis, settlement frequency and day
# --------------------------------------------------------------------------


@pytest.mark.parametrize("basis", [366, 364, 0, "360", True, 360.0])
def test_basis_rejected(basis: object) -> None:
    reason = f"unsupported day-count basis {basis!r}"
    invalid(lambda: daily_interest_exact(1, D("0.1"), basis), "basis_days", reason, "360 or 365")  # type: ignore[arg-type]
    invalid(lambda: period_interest_closed_form_fen(1, D("0.1"), 1, basis), "basis_days", reason, "360 or 365")  # type: ignore[arg-type]


@pytest.mark.parametrize("frequency", ["weekly", "Monthly", "", None, ["monthly"]])
def test_frequency_rejected(frequency: object) -> None:
    reason = f"unknown settlement frequency {frequency!r}"
    allowed = "'monthly' or 'quarterly'"
    invalid(lambda: settlement_dates(START, START, frequency), "frequency", reason, allowed)  # type: ignore[arg-type]
    invalid(lambda: period_containing(START, frequency), "frequency", reason, allowed)  # type: ignore[arg-type]


@pytest.mark.parametrize("day", [0, 29, 31, -1, True, 20.0])
def test_settlement_day_rejected(day: object) -> None:
    reason = f"settlement day {day!r} does not exist in every month"
    invalid(lambda: settlement_dates(START, START, "monthly", day), "day", reason, "1..28")  # type: ignore[arg-type]
    invalid(lambda: period_containing(START, "monthly", day), "day", reason, "1..28")  # type: ignore[arg-type]


def test_settlement_day_limits_accepted() -> None:
    assert settlement_dates(date(2024, 2, 1), date(2024, 3, 31), "monthly", 28) == [date(2024, 2, 28), date(2024, 3, 28)]
    assert settlement_dates(date(2024, 2, 1), date(2024, 3, 31), "monthly", 1) == [date(2024, 2, 1), date(2024, 3, 1)]
    assert period_containing(date(2024, 2, 29), "monthly", 28) == (date(2024, 2, 29), date(2024, 3, 28))


# --------------------------------------------------------------------------
# dates and ranges
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name"),
    [("2026-01-01", "str"), (datetime(2026, 1, 1), "datetime"), (None, "NoneType"), (20260101, "int")],
)
def test_non_dates_rejected_naming_the_field(value: object, type_name: str) -> None:
    reason = f"expected a date, got {type_name}"
    end = START + timedelta(days=3)
    invalid(lambda: closing_principals([], value, end), "start", reason, DATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: closing_principals([], START, value), "end", reason, DATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: accrue([], value, end, D("0.1")), "start", reason, DATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: settlement_dates(value, end, "monthly"), "start", reason, DATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: settlement_dates(START, value, "monthly"), "end", reason, DATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: period_containing(value, "monthly"), "d", reason, DATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: closing_principals([(value, 1)], START, end), "events", reason, DATE_ALLOWED)
    invalid(lambda: DailyAccrual(value, 0, D("0.1"), 360, D(0)), "day", reason, DATE_ALLOWED)  # type: ignore[arg-type]


def test_range_end_before_start() -> None:
    before = START - timedelta(days=1)
    reason, allowed = "end 2025-12-31 is before start 2026-01-01", "a date on or after 2026-01-01"
    invalid(lambda: closing_principals([], START, before), "end", reason, allowed)
    invalid(lambda: accrue([], START, before, D("0.1")), "end", reason, allowed)
    invalid(lambda: settlement_dates(START, before, "monthly"), "end", reason, allowed)


def test_single_day_ranges_are_allowed() -> None:
    assert closing_principals([(START, 5)], START, START) == [(START, 5)]
    assert settlement_dates(date(2026, 1, 20), date(2026, 1, 20), "monthly") == [date(2026, 1, 20)]
    assert settlement_dates(date(2026, 3, 20), date(2026, 3, 20), "quarterly") == [date(2026, 3, 20)]
    assert settlement_dates(date(2026, 1, 19), date(2026, 1, 19), "monthly") == []


def test_range_length_limit() -> None:
    assert len(accrue([], START, START + timedelta(days=MAX_DAYS_PER_CALL - 1), D("0.1"))) == MAX_DAYS_PER_CALL
    too_far = START + timedelta(days=MAX_DAYS_PER_CALL)
    allowed = f"at most {MAX_DAYS_PER_CALL} days per call"
    invalid(lambda: closing_principals([], START, too_far), "end", f"range of {MAX_DAYS_PER_CALL + 1} days is too long", allowed)
    invalid(lambda: accrue([], START, too_far, D("0.1")), "end", f"range of {MAX_DAYS_PER_CALL + 1} days is too long", allowed)


# --------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------


def test_event_shape_rejected_with_its_index() -> None:
    end = START + timedelta(days=5)
    ok = (START, 10)
    pair = "(date, int)"
    invalid(lambda: closing_principals([ok, [START, 5]], START, end), "events", "event #1 is not a (date, delta_fen) pair", pair)  # type: ignore[list-item]
    invalid(lambda: closing_principals([ok, ok, (START, 5, 1)], START, end), "events", "event #2 is not a (date, delta_fen) pair", pair)  # type: ignore[list-item]
    invalid(lambda: closing_principals([(START,)], START, end), "events", "event #0 is not a (date, delta_fen) pair", pair)  # type: ignore[list-item]
    invalid(lambda: closing_principals([ok, (START, 1.5)], START, end), "events", "event #1 delta 1.5 is not an int", "int fen")  # type: ignore[list-item]
    invalid(lambda: closing_principals([(START, True)], START, end), "events", "event #0 delta True is not an int", "int fen")
    invalid(lambda: closing_principals([ok, (START - timedelta(days=1), 10)], START, end), "events",
            "event #1 on 2025-12-31 is before start 2026-01-01", "fold earlier events into opening_principal_fen")
    invalid(lambda: closing_principals(5, START, end), "events",  # type: ignore[arg-type]
            "expected a sequence of (date, delta_fen) pairs, got int", "(date, int) pairs")


def test_events_on_the_first_and_last_day_count_the_day_after_does_not() -> None:
    end = START + timedelta(days=2)
    events = [(START, 100), (end, 7), (end + timedelta(days=1), 1000)]
    assert closing_principals(events, START, end) == [(START, 100), (START + timedelta(days=1), 100), (end, 107)]
    # Events may come as any iterable, e.g. a generator.
    assert closing_principals((e for e in events), START, end)[-1] == (end, 107)


def test_negative_closing_principal_is_an_invariant_breach() -> None:
    with pytest.raises(AssertionError, match="closing principal on 2026-01-02 is negative: -1 fen"):
        closing_principals([(START, 10), (START + timedelta(days=1), -11)], START, START + timedelta(days=2))


# --------------------------------------------------------------------------
# posting: half-fen boundaries, exact sums
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (1795, 0),  # 179.5 / 360 = 0.4986 fen
        (1799, 0),  # 0.49972 fen: just below half
        (1800, 1),  # 0.5 fen exactly: half rounds up
        (1801, 1),
        (5399, 1),  # 1.49972
        (5400, 2),  # 1.5
    ],
)
def test_one_day_half_fen_boundary(principal: int, expected: int) -> None:
    accruals = accrue([], START, START, D("0.1"), 360, principal)
    assert interest_to_post_fen(accruals) == expected
    assert period_interest_closed_form_fen(principal, D("0.1"), 1, 360) == expected
    assert expected == round_half_up(Fraction(principal) * Fraction(1, 10) / 360)


@pytest.mark.parametrize(("principal_360", "expected"), [(4931, 0), (4932, 1)])
def test_mixed_bases_on_both_sides_of_half(principal_360: int, expected: int) -> None:
    # 182 / 365 fen leaves 0.5 / 365 = 0.0013699 fen to the half; 0.4931 / 360 stays below it, 0.4932 / 360 passes it.
    accruals = accrue([], START, START, D("0.0001"), 360, principal_360) + accrue([], START, START, D(1), 365, 182)
    exact = principal_360 * Fraction(1, 10000) / 360 + Fraction(182, 365)
    assert interest_to_post_fen(accruals) == round_half_up(exact) == expected
    assert interest_to_post_fen(reversed(accruals)) == expected


def test_interest_to_post_rejects_non_accruals() -> None:
    accrual = accrue([], START, START, D("0.1"), 360, 100)[0]
    invalid(lambda: interest_to_post_fen([accrual, (START, 100)]), "accruals", "expected DailyAccrual, got tuple", None)  # type: ignore[list-item]
    invalid(lambda: interest_to_post_fen(5), "accruals", "expected DailyAccrual records, got int", None)  # type: ignore[arg-type]
    assert interest_to_post_fen(iter([accrual] * 18)) == 1  # 18 × 100 × 0.1 / 360 = 0.5


@st.composite
def accrual_lists(draw: st.DrawFn) -> list[DailyAccrual]:
    out = []
    for i in range(draw(st.integers(0, 40))):
        principal = draw(st.integers(0, 10**9))
        places = draw(st.integers(4, 6))
        rate = Decimal(draw(st.integers(0, 24 * 10 ** (places - 2)))).scaleb(-places)
        basis = draw(st.sampled_from([360, 365]))
        out.append(accrue([], START + timedelta(days=i), START + timedelta(days=i), rate, basis, principal)[0])
    return out


@settings(max_examples=300)
@given(accruals=accrual_lists())
def test_posting_mixed_bases_matches_fraction_reference(accruals: list[DailyAccrual]) -> None:
    exact = sum((Fraction(a.closing_principal_fen) * Fraction(a.rate_annual) / a.basis_days for a in accruals), Fraction(0))
    assert interest_to_post_fen(accruals) == round_half_up(exact)


def test_daily_accrual_rejects_a_value_that_is_not_the_exact_quotient() -> None:
    with pytest.raises(AssertionError, match=r"accrual for 2026-01-01 is 1, expected 0\.02777"):
        DailyAccrual(START, 100, D("0.1"), 360, D(1))
    assert DailyAccrual(START, 100, D("0.1"), 360, daily_interest_exact(100, D("0.1"))).numerator == D("10.0")


# --------------------------------------------------------------------------
# closed form: day count
# --------------------------------------------------------------------------


def test_closed_form_day_count_limits() -> None:
    assert period_interest_closed_form_fen(10**6, D("0.1"), 0) == 0
    assert period_interest_closed_form_fen(360, D("0.1"), MAX_DAYS_PER_CALL) == 366
    assert period_interest_closed_form_fen(360, D("0.1"), MAX_DAYS_PER_CALL, 365) == round_half_up(Fraction(36 * 3660, 365))
    allowed = f"0..{MAX_DAYS_PER_CALL}"
    for days in (MAX_DAYS_PER_CALL + 1, -1, True, 1.0, "3"):
        invalid(lambda d=days: period_interest_closed_form_fen(1, D("0.1"), d), "days",  # type: ignore[misc]
                f"day count {days!r} is out of range", allowed)


# --------------------------------------------------------------------------
# settlement calendar against a day-by-day reference
# --------------------------------------------------------------------------


def is_settlement_day(d: date, frequency: str, day: int) -> bool:
    return d.day == day and (frequency == "monthly" or d.month in (3, 6, 9, 12))


def reference_settlements(start: date, end: date, frequency: str, day: int) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)
            if is_settlement_day(start + timedelta(days=i), frequency, day)]


def reference_period(d: date, frequency: str, day: int) -> tuple[date, date]:
    end = d
    while not is_settlement_day(end, frequency, day):
        end += timedelta(days=1)
    previous = end - timedelta(days=1)
    while not is_settlement_day(previous, frequency, day):
        previous -= timedelta(days=1)
    return previous + timedelta(days=1), end


@settings(max_examples=300)
@given(
    start=st.dates(min_value=date(1999, 1, 1), max_value=date(2101, 12, 31)),
    length=st.integers(0, 800),
    frequency=st.sampled_from(["monthly", "quarterly"]),
    day=st.integers(1, 28),
)
def test_settlement_dates_match_day_by_day_reference(start: date, length: int, frequency: str, day: int) -> None:
    end = start + timedelta(days=length)
    assert settlement_dates(start, end, frequency, day) == reference_settlements(start, end, frequency, day)


@settings(max_examples=300)
@given(
    d=st.dates(min_value=date(1999, 1, 1), max_value=date(2101, 12, 31)),
    frequency=st.sampled_from(["monthly", "quarterly"]),
    day=st.integers(1, 28),
)
def test_period_containing_matches_day_by_day_reference(d: date, frequency: str, day: int) -> None:
    assert period_containing(d, frequency, day) == reference_period(d, frequency, day)


@pytest.mark.parametrize(
    ("d", "frequency", "expected"),
    [
        # the 19th, 20th and 21st of a settlement month
        (date(2026, 6, 19), "quarterly", (date(2026, 3, 21), date(2026, 6, 20))),
        (date(2026, 6, 20), "quarterly", (date(2026, 3, 21), date(2026, 6, 20))),
        (date(2026, 6, 21), "quarterly", (date(2026, 6, 21), date(2026, 9, 20))),
        # the 20th of a month that is not a quarter month is an ordinary day
        (date(2026, 5, 20), "quarterly", (date(2026, 3, 21), date(2026, 6, 20))),
        (date(2026, 2, 20), "quarterly", (date(2025, 12, 21), date(2026, 3, 20))),
        (date(2026, 11, 30), "quarterly", (date(2026, 9, 21), date(2026, 12, 20))),
        # month ends and leap days
        (date(2024, 2, 29), "monthly", (date(2024, 2, 21), date(2024, 3, 20))),
        (date(2024, 2, 29), "quarterly", (date(2023, 12, 21), date(2024, 3, 20))),
        (date(2026, 1, 31), "monthly", (date(2026, 1, 21), date(2026, 2, 20))),
        (date(2025, 12, 20), "monthly", (date(2025, 11, 21), date(2025, 12, 20))),
        (date(2025, 12, 21), "monthly", (date(2025, 12, 21), date(2026, 1, 20))),
    ],
)
def test_period_containing_around_the_20th(d: date, frequency: str, expected: tuple[date, date]) -> None:
    assert period_containing(d, frequency) == expected


def test_settlement_dates_quarter_months_only() -> None:
    assert settlement_dates(date(2026, 3, 21), date(2026, 6, 19), "quarterly") == []
    assert settlement_dates(date(2026, 3, 20), date(2026, 6, 20), "quarterly") == [date(2026, 3, 20), date(2026, 6, 20)]
    assert settlement_dates(date(2025, 11, 1), date(2026, 4, 1), "quarterly", 5) == [date(2025, 12, 5), date(2026, 3, 5)]


def test_calendar_edges() -> None:
    assert settlement_dates(date(9999, 12, 1), date(9999, 12, 31), "monthly") == [date(9999, 12, 20)]
    assert settlement_dates(date(9999, 12, 20), date(9999, 12, 31), "quarterly") == [date(9999, 12, 20)]
    assert settlement_dates(date(9999, 12, 21), date(9999, 12, 31), "monthly") == []
    assert settlement_dates(date(9999, 12, 21), date(9999, 12, 31), "quarterly", 21) == [date(9999, 12, 21)]
    assert period_containing(date(9999, 12, 20), "monthly") == (date(9999, 11, 21), date(9999, 12, 20))
    assert period_containing(date(1, 1, 21), "monthly") == (date(1, 1, 21), date(1, 2, 20))
    assert settlement_dates(date(1, 1, 1), date(1, 3, 31), "quarterly") == [date(1, 3, 20)]
    reason, allowed = "settlement date falls outside the supported calendar", "years 1..9999"
    invalid(lambda: period_containing(date(9999, 12, 21), "monthly"), "date", reason, allowed)
    invalid(lambda: period_containing(date(9999, 12, 21), "quarterly"), "date", reason, allowed)
    invalid(lambda: period_containing(date(1, 1, 20), "monthly"), "date", reason, allowed)
    invalid(lambda: period_containing(date(1, 3, 20), "quarterly"), "date", reason, allowed)


# --------------------------------------------------------------------------
# penalty rate
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contract", "uplift"),
    [
        (D("0.0345"), D("0.30")),
        (D("0.0345"), D("0.50")),
        (D("0.123456789012"), D("0.312345")),  # 12 + 6 places: still accruable
        (D("0.04"), D("0.4000000000")),  # trailing zeros are not places
        (D(1), D("0.5")),
        (D(0), D("0.3")),
    ],
)
def test_penalty_rate_is_exact_and_accruable(contract: Decimal, uplift: Decimal) -> None:
    rate = penalty_rate(contract, uplift)
    assert Fraction(rate) == Fraction(contract) * (1 + Fraction(uplift))
    if rate <= 1:
        assert daily_interest_exact(360, rate) == rate


def test_penalty_rate_rejections() -> None:
    allowed = "Decimal in 0.30..0.50"
    invalid(lambda: penalty_rate(D("0.04"), D("0.2999999")), "uplift", "uplift 0.2999999 is out of range", allowed)
    invalid(lambda: penalty_rate(D("0.04"), D("0.500001")), "uplift", "uplift 0.500001 is out of range", allowed)
    invalid(lambda: penalty_rate(D("0.04"), D("0.3000001")), "uplift", "uplift 0.3000001 has too many decimal places", "at most 6")
    for bad in (0.4, "0.4", D("NaN"), D("-Infinity")):
        invalid(lambda b=bad: penalty_rate(D("0.04"), b), "uplift",  # type: ignore[misc]
                f"uplift must be a finite Decimal, got {bad!r}", allowed)
    contract_allowed = "Decimal in 0..1 with at most 12 decimal places"
    invalid(lambda: penalty_rate(D("0.0123456789012"), D("0.4")), "contract_rate",
            "rate 0.0123456789012 has too many decimal places", contract_allowed)
    invalid(lambda: penalty_rate(D("-0.04"), D("0.4")), "contract_rate", "rate -0.04 is out of range", contract_allowed)
    invalid(lambda: penalty_rate(0.04, D("0.4")), "contract_rate", "rate must be a finite Decimal, got 0.04", contract_allowed)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# errors never echo long input
# --------------------------------------------------------------------------


def test_errors_echo_at_most_a_short_part_of_bad_input() -> None:
    long_text = "x" * 10_000
    long_rate = D("0." + "1" * 500)
    calls = [
        lambda: daily_interest_exact(long_text, D("0.1")),
        lambda: daily_interest_exact(1, long_text),
        lambda: daily_interest_exact(1, long_rate),
        lambda: daily_interest_exact(1, D("1" * 500)),
        lambda: daily_interest_exact(1, D("0.1"), long_text),
        lambda: settlement_dates(START, START, long_text),
        lambda: settlement_dates(START, START, "monthly", long_text),
        lambda: closing_principals([(START, long_text)], START, START),
        lambda: period_interest_closed_form_fen(1, D("0.1"), long_text),
        lambda: penalty_rate(D("0.04"), long_text),
        lambda: penalty_rate(D("0.04"), D("0.3" + "0" * 500 + "1")),
        lambda: penalty_rate(D("0.04"), D("9" * 500)),
    ]
    for call in calls:
        with pytest.raises(InvalidInput) as info:
            call()  # type: ignore[no-untyped-call]
        assert len(info.value.message) < 120 + MAX_SHOWN_CHARS, info.value.message


# --------------------------------------------------------------------------
# interest on fen-days: accruals kept as one integer
# --------------------------------------------------------------------------

FEN_DAYS_ALLOWED = f"0..{MAX_FEN_DAYS}"


def rates(max_places: int = 18) -> st.SearchStrategy[Decimal]:
    """Rates in 0..1 with 0..`max_places` decimal places, the range `_check_rate` accepts."""
    return st.integers(0, max_places).flatmap(lambda places: st.integers(0, 10**places).map(lambda n: Decimal(n).scaleb(-places)))


def test_max_fen_days_is_the_largest_principal_over_the_longest_range() -> None:
    assert MAX_FEN_DAYS == MAX_PRINCIPAL_FEN * MAX_DAYS_PER_CALL == 3_660 * 10**15
    assert {"MAX_FEN_DAYS", "interest_on_fen_days"} <= set(interest_module.__all__)


@st.composite
def principal_histories(draw: st.DrawFn) -> tuple[list[tuple[date, int]], date, int]:
    """(events, end, opening principal) from START: drawings and repayments that never take the principal below 0."""
    days = draw(st.integers(1, 400))
    principal = opening = draw(st.integers(0, 10**11))
    events = []
    for offset in sorted(draw(st.lists(st.integers(0, days + 5), max_size=12))):  # a few events after the range: ignored
        delta = draw(st.integers(-principal, 10**11))
        principal += delta
        events.append((START + timedelta(days=offset), delta))
    return events, START + timedelta(days=days - 1), opening


@settings(max_examples=300)
@given(history=principal_histories(), rate=rates(), basis=st.sampled_from([360, 365]))
def test_fen_days_give_the_interest_of_posting_the_daily_accruals(
        history: tuple[list[tuple[date, int]], date, int], rate: Decimal, basis: int) -> None:
    events, end, opening = history
    accruals = accrue(events, START, end, rate, basis, opening)
    fen_days = sum(a.closing_principal_fen for a in accruals)
    assert interest_on_fen_days(fen_days, rate, basis) == interest_to_post_fen(accruals)
    assert interest_on_fen_days(fen_days, rate, basis) == round_half_up(fen_days * Fraction(rate) / basis)


@settings(max_examples=300)
@given(principal=st.integers(0, MAX_PRINCIPAL_FEN), days=st.integers(0, MAX_DAYS_PER_CALL), rate=rates(), basis=st.sampled_from([360, 365]))
def test_fen_days_of_a_constant_principal_give_the_closed_form(principal: int, days: int, rate: Decimal, basis: int) -> None:
    expected = period_interest_closed_form_fen(principal, rate, days, basis)
    assert interest_on_fen_days(principal * days, rate, basis) == expected
    assert expected == round_half_up(principal * days * Fraction(rate) / basis)


@pytest.mark.parametrize("principal", [1800, 1799, 5400, 1, 10**6])
def test_fen_days_of_a_constant_principal_match_accrue_over_a_month(principal: int) -> None:
    accruals = accrue([], START, date(2026, 1, 31), D("0.0345"), 360, principal)
    assert interest_on_fen_days(31 * principal, D("0.0345")) == interest_to_post_fen(accruals)


@pytest.mark.parametrize(
    ("fen_days", "rate", "basis", "expected"),
    [
        (1799, D("0.1"), 360, 0),  # 1799 / 3600 = 0.49972: just below half
        (1800, D("0.1"), 360, 1),  # 0.5 exactly: half rounds up
        (1801, D("0.1"), 360, 1),
        (5399, D("0.1"), 360, 1),  # 1.49972
        (5400, D("0.1"), 360, 2),  # 1.5
        (1824, D("0.1"), 365, 0),  # 1824 / 3650 = 0.49973
        (1825, D("0.1"), 365, 1),  # 0.5 exactly
        (182, D(1), 365, 0),  # 0.49863
        (183, D(1), 365, 1),  # 0.50137
        (179, D(1), 360, 0),  # 0.49722
        (180, D(1), 360, 1),  # 0.5 exactly
        # a half at the top of the range, where a float would have lost the last fen-day long ago
        (3_659_999_999_999_999_399, D("0.1"), 360, 1_016_666_666_666_666),
        (3_659_999_999_999_999_400, D("0.1"), 360, 1_016_666_666_666_667),
        # rates of 18 places: 3.6E-16 / 360 is 1E-18 fen per fen-day
        (MAX_FEN_DAYS, D("1E-18"), 360, 0),  # 0.0102 fen
        (25 * 10**17 - 1, D("3.60E-16"), 360, 2),  # 2.499999999999999999
        (25 * 10**17, D("3.60E-16"), 360, 3),  # 2.5 exactly
        # 1 / (360 × 10^18) fen on either side of a half: only exact arithmetic (here 35+ digits) sees it
        (9_900_990_099_009_901, D("0.999999999999999899"), 360, 27_502_750_275_027),  # …027.5 − 1/(360e18)
        (510_022_271_714_922_049, D("0.999999999999999551"), 360, 1_416_728_532_541_449),  # …449.5 − 1/(360e18)
        (2_902_268_760_907_504_363, D("0.999999999999999427"), 360, 8_061_857_669_187_508),  # …507.5 + 1/(360e18)
    ],
)
def test_fen_days_round_half_up_at_the_boundaries(fen_days: int, rate: Decimal, basis: int, expected: int) -> None:
    assert fen_days <= MAX_FEN_DAYS
    assert round_half_up(fen_days * Fraction(rate) / basis) == expected
    assert interest_on_fen_days(fen_days, rate, basis) == expected


def test_fen_days_limits_are_inclusive() -> None:
    assert interest_on_fen_days(MAX_FEN_DAYS, D(1), 360) == round_half_up(Fraction(MAX_FEN_DAYS, 360)) == 10_166_666_666_666_667
    assert interest_on_fen_days(MAX_FEN_DAYS, D(1), 365) == round_half_up(Fraction(MAX_FEN_DAYS, 365))
    assert interest_on_fen_days(MAX_FEN_DAYS, D("0.123456789012345678"), 365) == round_half_up(
        MAX_FEN_DAYS * Fraction(D("0.123456789012345678")) / 365)
    assert interest_on_fen_days(1, D(1), 360) == 0
    assert interest_on_fen_days(0, D(1), 360) == 0
    assert interest_on_fen_days(10**6, D(0), 365) == 0


@given(rate=rates(), basis=st.sampled_from([360, 365]))
def test_zero_fen_days_is_zero_interest(rate: Decimal, basis: int) -> None:
    assert interest_on_fen_days(0, rate, basis) == 0


def test_fen_days_basis_defaults_to_360() -> None:
    assert interest_on_fen_days(1800, D("0.1")) == 1  # 0.5 on 360 days; on 365 it would be 0.49315 → 0
    assert interest_on_fen_days(1800, D("0.1"), 365) == 0


@pytest.mark.parametrize("fen_days", [-1, MAX_FEN_DAYS + 1, 10**30, True, False, 1.0, 0.0, "5", D(5), None])
def test_fen_days_rejected(fen_days: object) -> None:
    invalid(lambda: interest_on_fen_days(fen_days, D("0.1"), 360), "fen_days",  # type: ignore[arg-type]
            f"fen-days must be an int, got {fen_days!r}", FEN_DAYS_ALLOWED)


def test_fen_days_are_checked_before_the_rate_and_the_basis() -> None:
    invalid(lambda: interest_on_fen_days(-1, D(2), 366), "fen_days", "fen-days must be an int, got -1", FEN_DAYS_ALLOWED)
    invalid(lambda: interest_on_fen_days(1, D(2), 366), "rate_annual", "rate 2 is out of range", RATE_ALLOWED)


@pytest.mark.parametrize(
    ("rate", "reason"),
    [
        (D("1.000000000000000001"), "rate 1.000000000000000001 is out of range"),
        (D("-0.000000000000000001"), "rate -1E-18 is out of range"),
        (D("0.1234567890123456789"), "rate 0.1234567890123456789 has too many decimal places"),
        (D("5E-19"), "rate 5E-19 has too many decimal places"),
        (0.0345, "rate must be a finite Decimal, got 0.0345"),
        ("0.0345", "rate must be a finite Decimal, got '0.0345'"),
        (None, "rate must be a finite Decimal, got None"),
        (D("NaN"), "rate must be a finite Decimal, got Decimal('NaN')"),
        (D("Infinity"), "rate must be a finite Decimal, got Decimal('Infinity')"),
    ],
)
def test_fen_days_rate_rejected(rate: object, reason: str) -> None:
    invalid(lambda: interest_on_fen_days(100, rate), "rate_annual", reason, RATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: interest_on_fen_days(0, rate), "rate_annual", reason, RATE_ALLOWED)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [D(1), D("1.000000000000000000000"), D("0.123456789012345678"), D("5E-18"), D("0E-40")])
def test_fen_days_rate_accepted_at_the_limits(rate: Decimal) -> None:
    assert interest_on_fen_days(10**12, rate) == round_half_up(10**12 * Fraction(rate) / 360)


@pytest.mark.parametrize("basis", [366, 364, 0, -360, "360", True, 360.0, None])
def test_fen_days_basis_rejected(basis: object) -> None:
    invalid(lambda: interest_on_fen_days(100, D("0.1"), basis), "basis_days",  # type: ignore[arg-type]
            f"unsupported day-count basis {basis!r}", "360 or 365")


def test_fen_days_errors_echo_at_most_a_short_part_of_bad_input() -> None:
    for call in (
        lambda: interest_on_fen_days("x" * 10_000, D("0.1")),
        lambda: interest_on_fen_days(10**1_000, D("0.1")),
        lambda: interest_on_fen_days(1, D("0." + "1" * 500)),
        lambda: interest_on_fen_days(1, D("0.1"), "x" * 10_000),
    ):
        with pytest.raises(InvalidInput) as info:
            call()  # type: ignore[no-untyped-call]
        assert len(info.value.message) < 120 + MAX_SHOWN_CHARS, info.value.message
