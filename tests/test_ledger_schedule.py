"""Repayment schedules (`sandu.ledger.schedule`).

References are independent of the code under test: due dates by scanning the
calendar day by day, the annuity and every interest amount as `Fraction`s, the
annualized rate by discounting the cash flows forward with `Fraction`s. Worked
examples are checked by hand in their comments; every refusal is checked for
its field, reason and what is allowed, with both sides of each limit.
"""

from __future__ import annotations

import calendar
import copy
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sandu.domain.errors import InvalidInput
from sandu.ledger.interest import MAX_PRINCIPAL_FEN
from sandu.ledger.schedule import (
    EQUAL_INSTALMENT,
    EQUAL_PRINCIPAL,
    INTEREST_ONLY,
    MAX_INSTALMENTS,
    MAX_TERM_MONTHS,
    METHODS,
    REVOLVING,
    SCHEDULED_METHODS,
    Instalment,
    annualized_rate,
    build_schedule,
    due_through,
    outstanding_after,
    prepayment_interest_fen,
    reschedule_after_prepayment,
)

D = Decimal
RATE_ALLOWED = "Decimal in 0..1 with at most 18 decimal places"
DATE_ALLOWED = "datetime.date (not datetime)"
SCHEDULE_ALLOWED = "a non-empty tuple of Instalment, as build_schedule returns"


def invalid(call: Callable[[], object], field: str, reason: str, allowed: str | None) -> InvalidInput:
    """Run `call`, expect InvalidInput, and check exactly what the user is told."""
    with pytest.raises(InvalidInput) as info:
        call()
    error = info.value
    assert (error.field, error.reason, error.allowed) == (field, reason, allowed)
    assert error.message == f"{field}: {reason}" + (f" (allowed: {allowed})" if allowed else "")
    return error


# --------------------------------------------------------------------------
# independent references
# --------------------------------------------------------------------------


def rhu(x: Fraction) -> int:
    """Round a non-negative Fraction half-up."""
    assert x >= 0
    return int((x + Fraction(1, 2)).__floor__())


def month_len(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def add_months(d: date, months: int, day: int) -> date:
    years, month0 = divmod(d.month - 1 + months, 12)
    year = d.year + years
    return date(year, month0 + 1, min(day, month_len(year, month0 + 1)))


def is_due_day(d: date, day: int) -> bool:
    return d.day == min(day, month_len(d.year, d.month))


def reference_periods(drawn_on: date, maturity_on: date, day: int) -> list[tuple[date, date, bool]]:
    """Scan the calendar day by day: every due-day date strictly between, then the maturity."""
    dues = []
    d = drawn_on + timedelta(days=1)
    while d < maturity_on:
        if is_due_day(d, day):
            dues.append(d)
        d += timedelta(days=1)
    dues.append(maturity_on)
    periods = []
    start = drawn_on
    for due in dues:
        nxt = start + timedelta(days=1)
        while not is_due_day(nxt, day):
            nxt += timedelta(days=1)
        periods.append((start, due, is_due_day(start, day) and due == nxt))
        start = due
    return periods


def annuity(principal: int, rate: Decimal, n: int) -> Fraction:
    r = Fraction(rate) / 12
    if r == 0:
        return Fraction(principal, n)
    g = (1 + r) ** n
    return principal * r * g / (g - 1)


def period_interest(opening: int, rate: Decimal, start: date, due: date, full: bool, basis: int = 360) -> int:
    if full:
        return rhu(opening * Fraction(rate) / 12)
    return rhu(opening * Fraction(rate) * (due - start).days / basis)


def present_value(schedule: tuple[Instalment, ...], y: Fraction) -> Fraction:
    """Discount forward: factor of instalment k = Π_{j≤k} 1/(1 + y·τ_j)."""
    pv, factor = Fraction(0), Fraction(1)
    for item in schedule:
        tau = Fraction(1, 12) if item.full_month else Fraction((item.due_on - item.start_on).days, 365)
        factor /= 1 + y * tau
        pv += item.total_fen * factor
    return pv


def check_invariants(schedule: tuple[Instalment, ...], principal: int, drawn_on: date, maturity_on: date) -> None:
    assert schedule, "a schedule has at least one instalment"
    assert sum(i.principal_fen for i in schedule) == principal
    assert [i.seq for i in schedule] == list(range(1, len(schedule) + 1))
    assert schedule[0].start_on == drawn_on and schedule[0].opening_principal_fen == principal
    assert schedule[-1].due_on == maturity_on
    assert schedule[-1].principal_fen == schedule[-1].opening_principal_fen
    for prev, item in zip(schedule, schedule[1:], strict=False):
        assert prev.due_on < item.due_on
        assert item.start_on == prev.due_on
        assert item.opening_principal_fen == prev.opening_principal_fen - prev.principal_fen
    for item in schedule:
        assert item.principal_fen >= 0 and item.interest_fen >= 0 and item.opening_principal_fen >= 0
        assert item.total_fen == item.principal_fen + item.interest_fen


# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------

SPECIAL_STARTS = [date(2024, 2, 29), date(2024, 1, 31), date(2025, 1, 31), date(2026, 2, 28), date(2026, 4, 30),
                  date(2026, 12, 31), date(2027, 1, 29), date(2028, 2, 29), date(2026, 1, 1), date(2026, 8, 31)]
principals = st.integers(1, 10**12)
rates = st.integers(0, 240_000).map(lambda k: Decimal(k).scaleb(-6))  # 0 .. 24 %, up to 6 places
terms = st.integers(1, 360)
starts = st.one_of(st.sampled_from(SPECIAL_STARTS), st.dates(date(2000, 1, 1), date(2060, 12, 31)))
methods = st.sampled_from(SCHEDULED_METHODS)


# --------------------------------------------------------------------------
# properties of every schedule
# --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(method=methods, principal=principals, rate=rates, term=terms, start=starts)
def test_whole_month_schedules(method: str, principal: int, rate: Decimal, term: int, start: date) -> None:
    maturity = add_months(start, term, start.day)
    schedule = build_schedule(method, principal, rate, start, maturity)
    check_invariants(schedule, principal, start, maturity)
    assert len(schedule) == term
    for k, item in enumerate(schedule, start=1):
        assert item.due_on == add_months(start, k, start.day)  # never drifts after a short month
        assert item.full_month
        assert item.interest_fen == period_interest(item.opening_principal_fen, rate, item.start_on, item.due_on, True)
    body, last = schedule[:-1], schedule[-1]
    if method == INTEREST_ONLY:
        assert all(i.principal_fen == 0 for i in body) and last.principal_fen == principal
    elif method == EQUAL_PRINCIPAL:
        assert all(i.principal_fen == principal // term for i in body)
        assert last.principal_fen == principal - (term - 1) * (principal // term)
    else:
        a = rhu(annuity(principal, rate, term))
        for item in body:  # the annuity, unless capped at what is left (instalments of a few fen)
            assert item.total_fen == a or (item.principal_fen == item.opening_principal_fen and item.total_fen < a)
        assert last.principal_fen == last.opening_principal_fen


@settings(max_examples=100, deadline=None)
@given(principal=st.integers(10**8, 10**12), rate=rates, term=terms, start=starts)
def test_equal_instalments_equal_the_rounded_annuity(principal: int, rate: Decimal, term: int, start: date) -> None:
    maturity = add_months(start, term, start.day)
    schedule = build_schedule(EQUAL_INSTALMENT, principal, rate, start, maturity)
    a = rhu(annuity(principal, rate, term))
    assert [i.total_fen for i in schedule[:-1]] == [a] * (term - 1)
    for item in schedule[:-1]:
        assert item.principal_fen == a - rhu(item.opening_principal_fen * Fraction(rate) / 12)
    assert schedule[-1].principal_fen == principal - sum(i.principal_fen for i in schedule[:-1])


@settings(max_examples=150, deadline=None)
@given(method=methods, principal=principals, rate=rates, start=starts, days=st.integers(1, 3 * 366),
       due_day=st.one_of(st.none(), st.integers(1, 31)), basis=st.sampled_from([360, 365]))
def test_any_maturity_and_due_day(method: str, principal: int, rate: Decimal, start: date, days: int,
                                  due_day: int | None, basis: int) -> None:
    maturity = start + timedelta(days=days)
    schedule = build_schedule(method, principal, rate, start, maturity, due_day=due_day, basis_days=basis)
    check_invariants(schedule, principal, start, maturity)
    expected = reference_periods(start, maturity, start.day if due_day is None else due_day)
    assert [(i.start_on, i.due_on, i.full_month) for i in schedule] == expected
    for item in schedule:
        assert item.interest_fen == period_interest(item.opening_principal_fen, rate, item.start_on, item.due_on, item.full_month, basis)
    if method == EQUAL_PRINCIPAL:
        assert all(i.principal_fen == principal // len(schedule) for i in schedule[:-1])
    if method == EQUAL_INSTALMENT:  # broken periods repay the annuity's principal part too
        a = rhu(annuity(principal, rate, len(schedule)))
        for item in schedule[:-1]:
            part = a - rhu(item.opening_principal_fen * Fraction(rate) / 12)
            assert item.principal_fen == min(part, item.opening_principal_fen)


# --------------------------------------------------------------------------
# worked examples
# --------------------------------------------------------------------------


def test_worked_example_equal_instalments_1_2_million_over_12_months() -> None:
    # 120万 at 4.35 % over 12 months: r = 0.003625, (1+r)^12 = 1.044377…, A = 1,200,000 × r × g / (g − 1)
    # = 102,371.88 yuan (a loan calculator gives 102,371.88). Month 1 interest 1,200,000 × 0.003625 = 4,350.00;
    # principal 102,371.88 − 4,350.00 = 98,021.88; month 2 interest 1,101,978.12 × 0.003625 = 3,994.67.
    schedule = build_schedule(EQUAL_INSTALMENT, 120_000_000, D("0.0435"), date(2026, 1, 15), date(2027, 1, 15))
    assert len(schedule) == 12
    assert [i.total_fen for i in schedule[:-1]] == [10_237_188] * 11
    assert (schedule[0].interest_fen, schedule[0].principal_fen) == (435_000, 9_802_188)
    assert (schedule[1].opening_principal_fen, schedule[1].interest_fen) == (110_197_812, 399_467)
    # last: what remains, 10,200,213 fen, plus 10,200,213 × 0.003625 = 36,975.77 → 36,976
    assert (schedule[-1].principal_fen, schedule[-1].interest_fen, schedule[-1].total_fen) == (10_200_213, 36_976, 10_237_189)
    assert sum(i.interest_fen for i in schedule) == 2_846_257
    assert [i.due_on for i in schedule] == [date(2026, m, 15) for m in range(2, 13)] + [date(2027, 1, 15)]


def test_worked_example_equal_principal_with_remainder() -> None:
    # 1,000,001 fen over 3 months at 12 %: parts 333,333 / 333,333 / 333,335; interest 1 % a month on the opening.
    schedule = build_schedule(EQUAL_PRINCIPAL, 1_000_001, D("0.12"), date(2026, 3, 10), date(2026, 6, 10))
    assert [i.principal_fen for i in schedule] == [333_333, 333_333, 333_335]
    assert [i.opening_principal_fen for i in schedule] == [1_000_001, 666_668, 333_335]
    assert [i.interest_fen for i in schedule] == [10_000, 6_667, 3_333]  # 10,000.01 / 6,666.68 / 3,333.35


def test_worked_example_interest_only() -> None:
    # 50万 at 3.6 %: 1,500 yuan a month; all principal with the last.
    schedule = build_schedule(INTEREST_ONLY, 50_000_000, D("0.036"), date(2026, 5, 20), date(2026, 8, 20))
    assert [(i.principal_fen, i.interest_fen) for i in schedule] == [(0, 150_000), (0, 150_000), (50_000_000, 150_000)]


def test_month_end_start_never_drifts() -> None:
    schedule = build_schedule(INTEREST_ONLY, 1_000_000, D("0.06"), date(2026, 1, 31), date(2026, 7, 31))
    assert [i.due_on for i in schedule] == [date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31),
                                            date(2026, 6, 30), date(2026, 7, 31)]
    assert all(i.full_month and i.interest_fen == 5_000 for i in schedule)


def test_a_29_february_start() -> None:
    schedule = build_schedule(EQUAL_PRINCIPAL, 1_300_000, D("0.06"), date(2024, 2, 29), date(2025, 3, 29))
    assert len(schedule) == 13 and all(i.full_month for i in schedule)
    assert [i.due_on for i in schedule][10:] == [date(2025, 1, 29), date(2025, 2, 28), date(2025, 3, 29)]
    assert [i.principal_fen for i in schedule] == [100_000] * 13
    # ending on 28 February 2025, the last due day of that month: still a whole month
    short = build_schedule(INTEREST_ONLY, 1_000_000, D("0.06"), date(2024, 2, 29), date(2025, 2, 28))
    assert len(short) == 12 and short[-1].full_month and short[-1].interest_fen == 5_000


def test_broken_last_period_on_both_sides_of_a_month_end() -> None:
    start, rate, p = date(2026, 1, 28), D("0.072"), 3_600_000  # 720 fen a day on basis 360, 21,600 a month
    on_day = build_schedule(INTEREST_ONLY, p, rate, start, date(2026, 2, 28))
    assert [(i.due_on, i.full_month, i.interest_fen) for i in on_day] == [(date(2026, 2, 28), True, 21_600)]
    before = build_schedule(INTEREST_ONLY, p, rate, start, date(2026, 2, 27))  # 30 days, no due day inside
    assert [(i.due_on, i.full_month, i.interest_fen) for i in before] == [(date(2026, 2, 27), False, 30 * 720)]
    after = build_schedule(INTEREST_ONLY, p, rate, start, date(2026, 3, 1))  # a month, then 1 day
    assert [(i.due_on, i.full_month, i.interest_fen) for i in after] == [(date(2026, 2, 28), True, 21_600), (date(2026, 3, 1), False, 720)]
    # across the end of January: 31 → 3 February is 3 days; basis 365 counts the same days
    across = build_schedule(INTEREST_ONLY, 36_500_000, rate, date(2025, 12, 31), date(2026, 2, 3), basis_days=365)
    assert [(i.due_on, i.full_month) for i in across] == [(date(2026, 1, 31), True), (date(2026, 2, 3), False)]
    assert across[-1].interest_fen == 3 * 7_200  # 36,500,000 × 0.072 / 365 = 7,200 a day


def test_due_day_other_than_the_drawing_day() -> None:
    p, rate = 3_600_000, D("0.072")
    schedule = build_schedule(INTEREST_ONLY, p, rate, date(2026, 1, 10), date(2026, 4, 20), due_day=20)
    assert [(i.start_on, i.due_on, i.full_month) for i in schedule] == [
        (date(2026, 1, 10), date(2026, 1, 20), False), (date(2026, 1, 20), date(2026, 2, 20), True),
        (date(2026, 2, 20), date(2026, 3, 20), True), (date(2026, 3, 20), date(2026, 4, 20), True)]
    assert schedule[0].interest_fen == 10 * 720
    # broken at both ends; drawn the day before the due day: a one-day first period
    both = build_schedule(INTEREST_ONLY, p, rate, date(2026, 1, 19), date(2026, 3, 10), due_day=20)
    assert [(i.due_on, i.full_month, i.interest_fen) for i in both] == [
        (date(2026, 1, 20), False, 720), (date(2026, 2, 20), True, 21_600), (date(2026, 3, 10), False, 18 * 720)]
    # drawn on the due day itself: no broken period
    on = build_schedule(INTEREST_ONLY, p, rate, date(2026, 1, 20), date(2026, 2, 20), due_day=20)
    assert [(i.due_on, i.full_month) for i in on] == [(date(2026, 2, 20), True)]
    # due day 31 from 28 February: the drawing is on that month's due day, a whole month to 31 March
    end = build_schedule(INTEREST_ONLY, p, rate, date(2026, 2, 28), date(2026, 4, 30), due_day=31)
    assert [(i.due_on, i.full_month) for i in end] == [(date(2026, 3, 31), True), (date(2026, 4, 30), True)]
    # due day 28 from 31 January: 31 Jan is not a due day, so the 28 days to 28 February are counted
    odd = build_schedule(INTEREST_ONLY, p, rate, date(2026, 1, 31), date(2026, 3, 28), due_day=28)
    assert [(i.due_on, i.full_month, i.interest_fen) for i in odd] == [(date(2026, 2, 28), False, 28 * 720), (date(2026, 3, 28), True, 21_600)]


def test_equal_instalments_with_a_broken_first_period() -> None:
    # 12,000,000 fen at 12 % over a 10-day stub and 2 months: A = 12,000,000 × 0.01 × 1.01³ / (1.01³ − 1) = 120,000 × 34.0022111… = 4,080,265.33 → 4,080,265
    schedule = build_schedule(EQUAL_INSTALMENT, 12_000_000, D("0.12"), date(2026, 1, 10), date(2026, 3, 20), due_day=20)
    first = schedule[0]
    assert (first.full_month, first.principal_fen) == (False, 4_080_265 - 120_000)
    assert first.interest_fen == 40_000  # 12,000,000 × 0.12 × 10 / 360
    assert first.total_fen == 4_000_265
    assert schedule[1].total_fen == 4_080_265 and schedule[1].full_month


def test_zero_rate() -> None:
    for method in SCHEDULED_METHODS:
        schedule = build_schedule(method, 1_000, D(0), date(2026, 1, 1), date(2026, 4, 1))
        assert all(i.interest_fen == 0 for i in schedule)
        assert sum(i.principal_fen for i in schedule) == 1_000
    assert [i.principal_fen for i in build_schedule(EQUAL_INSTALMENT, 1_000, D(0), date(2026, 1, 1), date(2026, 4, 1))] == [333, 333, 334]
    assert [i.principal_fen for i in build_schedule(EQUAL_INSTALMENT, 1_001, D(0), date(2026, 1, 1), date(2026, 4, 1))] == [334, 334, 333]
    assert [i.principal_fen for i in build_schedule(EQUAL_INSTALMENT, 1_002, D("0E-10"), date(2026, 1, 1), date(2026, 4, 1))] == [334, 334, 334]


def test_annuity_rounds_half_up() -> None:
    # 5 fen over 2 months at 0 %: 2.5 → 3, then the 2 left
    assert [i.principal_fen for i in build_schedule(EQUAL_INSTALMENT, 5, D(0), date(2026, 1, 1), date(2026, 3, 1))] == [3, 2]
    # 2,400 fen at 12 % over 2 months: A = 2,400 × 0.01 × 1.0201 / 0.0201 = 1,218.0597 → 1,218; interest 24 then 11.82 → 12
    schedule = build_schedule(EQUAL_INSTALMENT, 2_400, D("0.12"), date(2026, 1, 1), date(2026, 3, 1))
    assert [(i.principal_fen, i.interest_fen) for i in schedule] == [(1_194, 24), (1_206, 12)]
    # interest of 0.5 fen rounds up: 50 fen at 12 % for a month
    assert build_schedule(INTEREST_ONLY, 50, D("0.12"), date(2026, 1, 1), date(2026, 2, 1))[0].interest_fen == 1
    assert build_schedule(INTEREST_ONLY, 49, D("0.12"), date(2026, 1, 1), date(2026, 2, 1))[0].interest_fen == 0


def test_equal_instalments_of_a_few_fen_are_capped_at_what_is_left() -> None:
    # 7 fen over 10 months at 0 %: the annuity 0.7 rounds to 1, so the principal runs out after 7 instalments
    schedule = build_schedule(EQUAL_INSTALMENT, 7, D(0), date(2026, 1, 1), date(2026, 11, 1))
    assert [i.principal_fen for i in schedule] == [1] * 7 + [0] * 3
    assert [i.opening_principal_fen for i in schedule] == [7, 6, 5, 4, 3, 2, 1, 0, 0, 0]
    check_invariants(schedule, 7, date(2026, 1, 1), date(2026, 11, 1))


# --------------------------------------------------------------------------
# term and calendar limits
# --------------------------------------------------------------------------


def test_one_day_term_and_maturity_must_be_after_the_drawing() -> None:
    one = build_schedule(EQUAL_INSTALMENT, 3_600_000, D("0.072"), date(2026, 1, 1), date(2026, 1, 2))
    assert [(i.principal_fen, i.interest_fen, i.full_month) for i in one] == [(3_600_000, 720, False)]
    for maturity in (date(2026, 1, 1), date(2025, 12, 31)):
        invalid(lambda m=maturity: build_schedule(EQUAL_INSTALMENT, 100, D("0.1"), date(2026, 1, 1), m), "maturity_on",
                f"maturity {maturity} is not after the drawing 2026-01-01", "a date after 2026-01-01")


@pytest.mark.parametrize(("drawn_on", "last_ok"), [(date(2026, 1, 15), date(2076, 1, 15)), (date(2024, 2, 29), date(2074, 2, 28)),
                                                   (date(2026, 1, 31), date(2076, 1, 31)), (date(2025, 3, 31), date(2075, 3, 31))])
def test_term_limit_of_600_months(drawn_on: date, last_ok: date) -> None:
    schedule = build_schedule(EQUAL_PRINCIPAL, 600_000, D("0.05"), drawn_on, last_ok)
    assert len(schedule) == MAX_TERM_MONTHS and all(i.full_month for i in schedule)
    check_invariants(schedule, 600_000, drawn_on, last_ok)
    too_late = last_ok + timedelta(days=1)
    invalid(lambda: build_schedule(EQUAL_PRINCIPAL, 600_000, D("0.05"), drawn_on, too_late), "maturity_on",
            f"maturity {too_late} is more than 600 months after {drawn_on}", "at most 600 months (50 years) after the drawing")
    a_month_late = add_months(last_ok, 1, last_ok.day)
    with pytest.raises(InvalidInput):
        build_schedule(EQUAL_PRINCIPAL, 600_000, D("0.05"), drawn_on, a_month_late)


def test_the_longest_schedule_has_601_instalments() -> None:
    schedule = build_schedule(EQUAL_INSTALMENT, 10**12, D("0.24"), date(2026, 1, 10), date(2076, 1, 10), due_day=20)
    assert len(schedule) == MAX_INSTALMENTS == 601
    assert not schedule[0].full_month and not schedule[-1].full_month
    check_invariants(schedule, 10**12, date(2026, 1, 10), date(2076, 1, 10))


def test_end_of_the_calendar() -> None:
    for due_day in (30, 31, None):
        schedule = build_schedule(EQUAL_INSTALMENT, 100, D("0.1"), date(9999, 12, 30), date(9999, 12, 31), due_day=due_day)
        assert [(i.start_on, i.due_on, i.full_month) for i in schedule] == [(date(9999, 12, 30), date(9999, 12, 31), False)]
    schedule = build_schedule(INTEREST_ONLY, 100, D("0.1"), date(9999, 1, 31), date(9999, 12, 31))
    assert len(schedule) == 11 and all(i.full_month for i in schedule)


# --------------------------------------------------------------------------
# refusals of build_schedule
# --------------------------------------------------------------------------


def build(**overrides: object) -> tuple[Instalment, ...]:
    args: dict[str, object] = {"method": EQUAL_INSTALMENT, "principal_fen": 100_000, "rate_annual": D("0.05"),
                               "drawn_on": date(2026, 1, 15), "maturity_on": date(2027, 1, 15)}
    args.update(overrides)
    return build_schedule(**args)  # type: ignore[arg-type]


def test_revolving_has_no_schedule() -> None:
    allowed = "按月付息到期还本, 等额本息, 等额本金"
    invalid(lambda: build(method=REVOLVING), "repayment_method", "a revolving drawing has no schedule", allowed)
    assert METHODS == ("随借随还", "按月付息到期还本", "等额本息", "等额本金")


@pytest.mark.parametrize(("method", "shown"), [("等额本息 ", "'等额本息 '"), ("equal", "'equal'"), ("", "''"), (None, "None"), (1, "1"),
                                               ("等额本金" * 20, "'" + "等额本金" * 11 + "等额..."), (["等额本息"], "['等额本息']")])
def test_unknown_methods(method: object, shown: str) -> None:
    invalid(lambda: build(method=method), "repayment_method", f"unknown repayment method {shown}", "随借随还, 按月付息到期还本, 等额本息, 等额本金")


@pytest.mark.parametrize("principal", [0, -1, MAX_PRINCIPAL_FEN + 1, True, 100.0, "100"])
def test_principal_refused(principal: object) -> None:
    invalid(lambda: build(principal_fen=principal), "principal_fen", f"principal must be a positive int in fen, got {principal!r}",
            f"1..{MAX_PRINCIPAL_FEN} fen")


def test_principal_limits_accepted() -> None:
    assert build(principal_fen=1)[-1].principal_fen == 1
    check_invariants(build(principal_fen=MAX_PRINCIPAL_FEN, rate_annual=D(1)), MAX_PRINCIPAL_FEN, date(2026, 1, 15), date(2027, 1, 15))


@pytest.mark.parametrize(("rate", "reason"), [
    (D("1.000000000000000001"), "rate 1.000000000000000001 is out of range"),
    (D("-0.000001"), "rate -0.000001 is out of range"),
    (D("0.1234567890123456789"), "rate 0.1234567890123456789 has too many decimal places"),
    (D("5E-19"), "rate 5E-19 has too many decimal places"),
    (0.05, "rate must be a finite Decimal, got 0.05"),
    ("0.05", "rate must be a finite Decimal, got '0.05'"),
    (D("NaN"), "rate must be a finite Decimal, got Decimal('NaN')"),
    (D("-Infinity"), "rate must be a finite Decimal, got Decimal('-Infinity')"),
])
def test_rate_refused(rate: object, reason: str) -> None:
    invalid(lambda: build(rate_annual=rate), "rate_annual", reason, RATE_ALLOWED)


def test_rate_limits_accepted() -> None:
    assert build(rate_annual=D(1), method=INTEREST_ONLY)[0].interest_fen == rhu(Fraction(100_000, 12))
    assert build(rate_annual=D("0.123456789012345678"), method=INTEREST_ONLY)[0].interest_fen == rhu(100_000 * Fraction("0.123456789012345678") / 12)
    assert build(rate_annual=D("0.05000000000000000000000"))[0].interest_fen == rhu(Fraction(5_000, 12))


@pytest.mark.parametrize("basis", [366, 364, 0, "360", True, 360.0])
def test_basis_refused(basis: object) -> None:
    invalid(lambda: build(basis_days=basis), "basis_days", f"unsupported day-count basis {basis!r}", "360 or 365")


@pytest.mark.parametrize("due_day", [0, 32, -1, True, 15.0, "15"])
def test_due_day_refused(due_day: object) -> None:
    invalid(lambda: build(due_day=due_day), "due_day", f"due day {due_day!r} is not a day of month", "1..31 (clamped to the month's end), or None")


def test_due_day_limits_accepted() -> None:
    assert build(due_day=1)[0].due_on == date(2026, 2, 1)
    assert build(due_day=31)[0].due_on == date(2026, 1, 31)


@pytest.mark.parametrize("field", ["drawn_on", "maturity_on"])
@pytest.mark.parametrize("value", ["2026-01-15", datetime(2026, 1, 15), None, 20260115])
def test_dates_refused(field: str, value: object) -> None:
    invalid(lambda: build(**{field: value}), field, f"expected a date, got {value!r}", DATE_ALLOWED)


def test_long_bad_values_are_shortened() -> None:
    error = invalid(lambda: build(principal_fen="9" * 500), "principal_fen", "principal must be a positive int in fen, got '" + "9" * 46 + "...",
                    f"1..{MAX_PRINCIPAL_FEN} fen")
    assert len(error.message) < 200
    error = invalid(lambda: build(rate_annual=D("0." + "1" * 300)), "rate_annual", "rate 0." + "1" * 45 + "... has too many decimal places", RATE_ALLOWED)


# --------------------------------------------------------------------------
# the Instalment record and schedules given back to the engine
# --------------------------------------------------------------------------


def inst(**overrides: object) -> Instalment:
    args: dict[str, object] = {"seq": 1, "due_on": date(2026, 2, 1), "principal_fen": 10, "interest_fen": 1,
                               "opening_principal_fen": 10, "start_on": date(2026, 1, 1), "full_month": True}
    args.update(overrides)
    return Instalment(**args)  # type: ignore[arg-type]


def test_instalment_is_frozen_and_totals() -> None:
    item = inst(principal_fen=7, interest_fen=3)
    assert item.total_fen == 10
    with pytest.raises(AttributeError):
        item.principal_fen = 1  # type: ignore[misc]


def test_instalment_limits_accepted() -> None:
    inst(seq=MAX_INSTALMENTS)
    inst(principal_fen=0, opening_principal_fen=0, interest_fen=0, due_on=date(2026, 1, 2))
    inst(opening_principal_fen=MAX_PRINCIPAL_FEN, principal_fen=MAX_PRINCIPAL_FEN, interest_fen=MAX_PRINCIPAL_FEN, full_month=False)


@pytest.mark.parametrize(("overrides", "field", "reason", "allowed"), [
    ({"seq": 0}, "seq", "instalment number 0 is out of range", "1..601"),
    ({"seq": 602}, "seq", "instalment number 602 is out of range", "1..601"),
    ({"seq": True}, "seq", "instalment number True is out of range", "1..601"),
    ({"start_on": "2026-01-01"}, "start_on", "expected a date, got '2026-01-01'", DATE_ALLOWED),
    ({"due_on": datetime(2026, 2, 1)}, "due_on", "expected a date, got datetime.datetime(2026, 2, 1, 0, 0)", DATE_ALLOWED),
    ({"due_on": date(2026, 1, 1)}, "due_on", "due date 2026-01-01 is not after the period's start 2026-01-01", "a date after 2026-01-01"),
    ({"opening_principal_fen": -1}, "opening_principal_fen", "opening principal must be an int in fen, got -1", f"0..{MAX_PRINCIPAL_FEN} fen"),
    ({"opening_principal_fen": MAX_PRINCIPAL_FEN + 1}, "opening_principal_fen",
     f"opening principal must be an int in fen, got {MAX_PRINCIPAL_FEN + 1}", f"0..{MAX_PRINCIPAL_FEN} fen"),
    ({"opening_principal_fen": 10.0}, "opening_principal_fen", "opening principal must be an int in fen, got 10.0", f"0..{MAX_PRINCIPAL_FEN} fen"),
    ({"principal_fen": 11}, "principal_fen", "principal part 11 is not within the opening principal", "0..10 fen"),
    ({"principal_fen": -1}, "principal_fen", "principal part -1 is not within the opening principal", "0..10 fen"),
    ({"principal_fen": False}, "principal_fen", "principal part False is not within the opening principal", "0..10 fen"),
    ({"interest_fen": -1}, "interest_fen", "interest must be an int in fen, got -1", f"0..{MAX_PRINCIPAL_FEN} fen"),
    ({"interest_fen": MAX_PRINCIPAL_FEN + 1}, "interest_fen", f"interest must be an int in fen, got {MAX_PRINCIPAL_FEN + 1}",
     f"0..{MAX_PRINCIPAL_FEN} fen"),
    ({"interest_fen": "1"}, "interest_fen", "interest must be an int in fen, got '1'", f"0..{MAX_PRINCIPAL_FEN} fen"),
    ({"full_month": 1}, "full_month", "expected a bool, got 1", "True or False"),
])
def test_instalment_refused(overrides: dict[str, object], field: str, reason: str, allowed: str) -> None:
    invalid(lambda: inst(**overrides), field, reason, allowed)


SAMPLE = build_schedule(EQUAL_PRINCIPAL, 300, D("0.12"), date(2026, 1, 1), date(2026, 4, 1))  # 100 a month


def replaced(schedule: tuple[Instalment, ...], index: int, **changes: object) -> tuple[Instalment, ...]:
    fields = {k: getattr(schedule[index], k) for k in Instalment.__dataclass_fields__}
    fields.update(changes)
    return schedule[:index] + (Instalment(**fields),) + schedule[index + 1:]  # type: ignore[arg-type]


BAD_SCHEDULES = [
    ((), "expected instalments, got ()", SCHEDULE_ALLOWED),
    ([], "expected instalments, got []", SCHEDULE_ALLOWED),
    (None, "expected instalments, got None", SCHEDULE_ALLOWED),
    (SAMPLE[0], f"expected instalments, got {repr(SAMPLE[0])[:47]}...", SCHEDULE_ALLOWED),
    ((SAMPLE[0], "x"), "item #1 is not an Instalment: 'x'", SCHEDULE_ALLOWED),
    (SAMPLE[1:], "item #0 has seq 2", "seq 1, 2, 3, … in order"),
    ((SAMPLE[0], SAMPLE[2]), "item #1 has seq 3", "seq 1, 2, 3, … in order"),
    (replaced(SAMPLE, 1, start_on=date(2026, 1, 15)),
     "instalment 2 starts on 2026-01-15, not on the previous due date 2026-02-01", "each period starts on the previous due date"),
    (replaced(SAMPLE, 1, opening_principal_fen=201), "instalment 2 opens with 201 fen, more than the 200 fen left",
     "opening ≤ previous opening − previous principal part"),
    (replaced(SAMPLE, 2, opening_principal_fen=101, principal_fen=101), "instalment 3 opens with 101 fen, more than the 100 fen left",
     "opening ≤ previous opening − previous principal part"),
    (SAMPLE + (SAMPLE[-1],) * (MAX_INSTALMENTS - 2), "602 instalments are too many", "at most 601"),
]


@pytest.mark.parametrize(("schedule", "reason", "allowed"), BAD_SCHEDULES)
def test_bad_schedules_refused_everywhere(schedule: object, reason: str, allowed: str) -> None:
    when = date(2026, 2, 15)
    invalid(lambda: outstanding_after(schedule, when), "schedule", reason, allowed)  # type: ignore[arg-type]
    invalid(lambda: due_through(schedule, when), "schedule", reason, allowed)  # type: ignore[arg-type]
    invalid(lambda: reschedule_after_prepayment(schedule, paid_on=when, prepaid_principal_fen=1, method=EQUAL_PRINCIPAL,  # type: ignore[arg-type]
                                                rate_annual=D("0.12")), "schedule", reason, allowed)
    invalid(lambda: prepayment_interest_fen(schedule, paid_on=when, prepaid_principal_fen=1, rate_annual=D("0.12")),  # type: ignore[arg-type]
            "schedule", reason, allowed)
    invalid(lambda: annualized_rate(300, date(2026, 1, 1), schedule), "schedule", reason, allowed)  # type: ignore[arg-type]


def test_schedules_after_a_prepayment_are_read_but_not_priced() -> None:
    # 100 fen prepaid on 15 February: the third instalment opens with 99, one less than the 100 left
    prepaid = replaced(SAMPLE, 2, opening_principal_fen=99, principal_fen=99)
    assert outstanding_after(prepaid, date(2026, 3, 1)) == 99
    assert due_through(prepaid, date(2026, 4, 1)) == (299, 6)
    again = reschedule_after_prepayment(prepaid, paid_on=date(2026, 3, 10), prepaid_principal_fen=99, method=EQUAL_PRINCIPAL, rate_annual=D("0.12"))
    assert again == prepaid[:2]
    invalid(lambda: annualized_rate(300, date(2026, 1, 1), prepaid), "schedule", "instalment 3 opens with 99 fen, not the 100 fen left",
            "a schedule without prepayment: opening = previous opening − previous principal part")
    # the last instalment leaves principal unpaid (all of it prepaid the day after its period began): read, not priced
    short = replaced(SAMPLE, 2, principal_fen=99)
    assert outstanding_after(short, date(2026, 3, 1)) == 99
    invalid(lambda: annualized_rate(300, date(2026, 1, 1), short), "schedule", "the last instalment does not repay the principal outstanding",
            "a schedule without prepayment: the last principal part = its opening principal")


def test_the_longest_schedule_is_read() -> None:
    longest = build_schedule(INTEREST_ONLY, 100, D(0), date(2026, 1, 10), date(2076, 1, 10), due_day=20)
    assert len(longest) == MAX_INSTALMENTS
    assert outstanding_after(list(longest), date(2076, 1, 9)) == 100
    assert due_through(longest, date(2076, 1, 10)) == (100, 0)


# --------------------------------------------------------------------------
# what is due, what is outstanding
# --------------------------------------------------------------------------


def test_outstanding_and_due_on_both_sides_of_a_due_date() -> None:
    # 300 fen, 100 a month; interest 3, 2, 1
    assert [i.interest_fen for i in SAMPLE] == [3, 2, 1]
    cases = [(date(2025, 12, 31), 300, (0, 0)), (date(2026, 1, 1), 300, (0, 0)), (date(2026, 1, 31), 300, (0, 0)),
             (date(2026, 2, 1), 200, (100, 3)), (date(2026, 2, 28), 200, (100, 3)), (date(2026, 3, 1), 100, (200, 5)),
             (date(2026, 3, 31), 100, (200, 5)), (date(2026, 4, 1), 0, (300, 6)), (date(2030, 1, 1), 0, (300, 6))]
    for on, outstanding, due in cases:
        assert outstanding_after(SAMPLE, on) == outstanding, on
        assert due_through(SAMPLE, on) == due, on


@pytest.mark.parametrize("on", ["2026-02-01", datetime(2026, 2, 1), None])
def test_outstanding_and_due_refuse_non_dates(on: object) -> None:
    invalid(lambda: outstanding_after(SAMPLE, on), "on", f"expected a date, got {on!r}", DATE_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: due_through(SAMPLE, on), "on", f"expected a date, got {on!r}", DATE_ALLOWED)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(method=methods, principal=principals, rate=rates, start=starts, days=st.integers(1, 800), offset=st.integers(-5, 810))
def test_due_and_outstanding_partition_the_schedule(method: str, principal: int, rate: Decimal, start: date, days: int, offset: int) -> None:
    schedule = build_schedule(method, principal, rate, start, start + timedelta(days=days))
    on = start + timedelta(days=offset)
    principal_due, interest_due = due_through(schedule, on)
    assert principal_due + outstanding_after(schedule, on) == principal
    assert principal_due == sum(i.principal_fen for i in schedule if i.due_on <= on)
    assert interest_due == sum(i.interest_fen for i in schedule if i.due_on <= on)


# --------------------------------------------------------------------------
# prepayment
# --------------------------------------------------------------------------

START, MATURITY, RATE = date(2026, 1, 31), date(2027, 1, 31), D("0.06")


@pytest.mark.parametrize("method", SCHEDULED_METHODS)
def test_prepayment_on_a_due_date_equals_a_new_schedule_from_that_date(method: str) -> None:
    schedule = build_schedule(method, 12_000_000, RATE, START, MATURITY)
    paid_on = schedule[3].due_on  # 30 April 2026
    outstanding = outstanding_after(schedule, paid_on)
    new = reschedule_after_prepayment(schedule, paid_on=paid_on, prepaid_principal_fen=3_000_000, method=method, rate_annual=RATE)
    assert new[:4] == schedule[:4]
    assert [i.due_on for i in new] == [i.due_on for i in schedule]
    fresh = build_schedule(method, outstanding - 3_000_000, RATE, paid_on, MATURITY, due_day=31)
    assert [(i.due_on, i.principal_fen, i.interest_fen, i.opening_principal_fen, i.full_month) for i in new[4:]] == \
           [(i.due_on, i.principal_fen, i.interest_fen, i.opening_principal_fen, i.full_month) for i in fresh]
    assert [i.seq for i in new] == list(range(1, 13))
    assert sum(i.principal_fen for i in new) + 3_000_000 == 12_000_000
    assert new[4].opening_principal_fen == new[3].opening_principal_fen - new[3].principal_fen - 3_000_000
    assert prepayment_interest_fen(schedule, paid_on=paid_on, prepaid_principal_fen=3_000_000, rate_annual=RATE) == 0


@pytest.mark.parametrize("method", SCHEDULED_METHODS)
def test_prepayment_between_due_dates(method: str) -> None:
    schedule = build_schedule(method, 12_000_000, RATE, START, MATURITY)
    before = copy.deepcopy(schedule)
    paid_on = date(2026, 5, 10)  # 10 days into the 4th period, 30 April → 31 May
    outstanding = schedule[3].opening_principal_fen
    new = reschedule_after_prepayment(schedule, paid_on=paid_on, prepaid_principal_fen=2_000_001, method=method, rate_annual=RATE)
    assert schedule == before
    assert new[:3] == schedule[:3]
    rest = new[3:]
    assert [(i.start_on, i.due_on, i.full_month) for i in rest] == [(i.start_on, i.due_on, i.full_month) for i in schedule[3:]]
    left = outstanding - 2_000_001
    assert rest[0].opening_principal_fen == left and sum(i.principal_fen for i in rest) == left
    for item in rest:  # interest on the reduced principal, whole periods
        assert item.interest_fen == rhu(item.opening_principal_fen * Fraction(RATE) / 12)
    if method == EQUAL_INSTALMENT:
        a = rhu(annuity(left, RATE, 9))
        assert [i.total_fen for i in rest[:-1]] == [a] * 8
    elif method == EQUAL_PRINCIPAL:
        assert [i.principal_fen for i in rest[:-1]] == [left // 9] * 8
    else:
        assert [i.principal_fen for i in rest] == [0] * 8 + [left]
    # interest on the prepaid principal for the 10 days from 30 April: 2,000,001 × 0.06 × 10 / 360 = 3,333.335 → 3,333
    assert prepayment_interest_fen(schedule, paid_on=paid_on, prepaid_principal_fen=2_000_001, rate_annual=RATE) == 3_333
    assert prepayment_interest_fen(schedule, paid_on=paid_on, prepaid_principal_fen=2_000_001, rate_annual=RATE, basis_days=365) == \
        rhu(2_000_001 * Fraction(RATE) * 10 / 365)


@pytest.mark.parametrize("method", SCHEDULED_METHODS)
@pytest.mark.parametrize("paid_on", [date(2026, 4, 30), date(2026, 5, 10), date(2026, 1, 31)])
def test_full_prepayment_leaves_no_future_instalment(method: str, paid_on: date) -> None:
    schedule = build_schedule(method, 12_000_000, RATE, START, MATURITY)
    outstanding = outstanding_after(schedule, paid_on)
    new = reschedule_after_prepayment(schedule, paid_on=paid_on, prepaid_principal_fen=outstanding, method=method, rate_annual=RATE)
    assert new == tuple(i for i in schedule if i.due_on <= paid_on)
    if new:  # what a full prepayment leaves is still a schedule the engine reads
        assert outstanding_after(new, paid_on) == 0 and due_through(new, paid_on) == due_through(schedule, paid_on)
    invalid(lambda: reschedule_after_prepayment(schedule, paid_on=paid_on, prepaid_principal_fen=outstanding + 1, method=method, rate_annual=RATE),
            "prepaid_principal_fen", f"prepayment of {outstanding + 1} fen exceeds the {outstanding} fen outstanding after {paid_on}", f"1..{outstanding} fen")


def test_prepayment_on_the_drawing_day() -> None:
    schedule = build_schedule(EQUAL_INSTALMENT, 1_200_000, RATE, START, MATURITY)
    new = reschedule_after_prepayment(schedule, paid_on=START, prepaid_principal_fen=200_000, method=EQUAL_INSTALMENT, rate_annual=RATE)
    assert new == build_schedule(EQUAL_INSTALMENT, 1_000_000, RATE, START, MATURITY)
    assert prepayment_interest_fen(schedule, paid_on=START, prepaid_principal_fen=200_000, rate_annual=RATE) == 0
    assert prepayment_interest_fen(schedule, paid_on=START + timedelta(days=1), prepaid_principal_fen=360_000, rate_annual=RATE) == 60
    before = START - timedelta(days=1)
    for call in (lambda: reschedule_after_prepayment(schedule, paid_on=before, prepaid_principal_fen=1, method=EQUAL_INSTALMENT, rate_annual=RATE),
                 lambda: prepayment_interest_fen(schedule, paid_on=before, prepaid_principal_fen=1, rate_annual=RATE)):
        invalid(call, "paid_on", f"prepayment on {before} is before the drawing on {START}", f"a date on or after {START}")


def test_prepayment_keeps_broken_periods_broken() -> None:
    schedule = build_schedule(EQUAL_INSTALMENT, 3_600_000, D("0.072"), date(2026, 1, 10), date(2026, 4, 5), due_day=20)
    assert [i.full_month for i in schedule] == [False, True, True, False]
    new = reschedule_after_prepayment(schedule, paid_on=date(2026, 1, 15), prepaid_principal_fen=1_800_000, method=EQUAL_INSTALMENT,
                                      rate_annual=D("0.072"))
    assert [(i.start_on, i.due_on, i.full_month) for i in new] == [(i.start_on, i.due_on, i.full_month) for i in schedule]
    assert new[0].interest_fen == 10 * 360  # 1,800,000 × 0.072 / 360 = 360 a day, 10 days
    for item in new:
        assert item.interest_fen == period_interest(item.opening_principal_fen, D("0.072"), item.start_on, item.due_on, item.full_month)
    assert (new[-1].due_on - new[-1].start_on).days == 16
    assert prepayment_interest_fen(schedule, paid_on=date(2026, 1, 15), prepaid_principal_fen=1_800_000, rate_annual=D("0.072")) == 5 * 360
    new365 = reschedule_after_prepayment(schedule, paid_on=date(2026, 1, 15), prepaid_principal_fen=1_800_000, method=EQUAL_INSTALMENT,
                                         rate_annual=D("0.072"), basis_days=365)
    assert new365[0].interest_fen == rhu(1_800_000 * Fraction("0.072") * 10 / 365)


def test_prepayment_after_the_last_due_date_is_refused() -> None:
    reason = "prepayment of 1 fen exceeds the 0 fen outstanding after 2026-04-01"
    allowed = "none: no principal is outstanding after 2026-04-01"
    invalid(lambda: reschedule_after_prepayment(SAMPLE, paid_on=date(2026, 4, 1), prepaid_principal_fen=1, method=EQUAL_PRINCIPAL,
                                                rate_annual=D("0.12")), "prepaid_principal_fen", reason, allowed)
    invalid(lambda: reschedule_after_prepayment(SAMPLE, paid_on=date(2026, 4, 1), prepaid_principal_fen=0, method=EQUAL_PRINCIPAL,
                                                rate_annual=D("0.12")), "prepaid_principal_fen", "prepayment must be a positive int in fen, got 0", allowed)
    # the day before the last due date, 100 fen are still outstanding
    assert reschedule_after_prepayment(SAMPLE, paid_on=date(2026, 3, 31), prepaid_principal_fen=100, method=EQUAL_PRINCIPAL,
                                       rate_annual=D("0.12")) == SAMPLE[:2]


@pytest.mark.parametrize("amount", [0, -1, True, 1.0, "1", None])
def test_prepayment_amount_refused_and_nothing_changes(amount: object) -> None:
    schedule = build_schedule(EQUAL_INSTALMENT, 12_000_000, RATE, START, MATURITY)
    before = copy.deepcopy(schedule)
    reason = f"prepayment must be a positive int in fen, got {amount!r}"
    outstanding = schedule[3].opening_principal_fen
    for call in (lambda: reschedule_after_prepayment(schedule, paid_on=date(2026, 5, 10), prepaid_principal_fen=amount,  # type: ignore[arg-type]
                                                     method=EQUAL_INSTALMENT, rate_annual=RATE),
                 lambda: prepayment_interest_fen(schedule, paid_on=date(2026, 5, 10), prepaid_principal_fen=amount, rate_annual=RATE)):  # type: ignore[arg-type]
        invalid(call, "prepaid_principal_fen", reason, f"1..{outstanding} fen")
    assert schedule == before


def test_prepayment_refuses_bad_method_rate_basis_and_date() -> None:
    kwargs: dict[str, object] = {"paid_on": date(2026, 2, 15), "prepaid_principal_fen": 1, "method": EQUAL_PRINCIPAL, "rate_annual": D("0.12")}
    invalid(lambda: reschedule_after_prepayment(SAMPLE, **{**kwargs, "method": REVOLVING}),  # type: ignore[arg-type]
            "repayment_method", "a revolving drawing has no schedule", "按月付息到期还本, 等额本息, 等额本金")
    invalid(lambda: reschedule_after_prepayment(SAMPLE, **{**kwargs, "method": "x"}),  # type: ignore[arg-type]
            "repayment_method", "unknown repayment method 'x'", "随借随还, 按月付息到期还本, 等额本息, 等额本金")
    invalid(lambda: reschedule_after_prepayment(SAMPLE, **{**kwargs, "rate_annual": 0.12}),  # type: ignore[arg-type]
            "rate_annual", "rate must be a finite Decimal, got 0.12", RATE_ALLOWED)
    invalid(lambda: reschedule_after_prepayment(SAMPLE, **{**kwargs, "basis_days": 366}),  # type: ignore[arg-type]
            "basis_days", "unsupported day-count basis 366", "360 or 365")
    invalid(lambda: reschedule_after_prepayment(SAMPLE, **{**kwargs, "paid_on": "2026-02-15"}),  # type: ignore[arg-type]
            "paid_on", "expected a date, got '2026-02-15'", DATE_ALLOWED)
    invalid(lambda: prepayment_interest_fen(SAMPLE, paid_on=date(2026, 2, 15), prepaid_principal_fen=1, rate_annual=D(2)),
            "rate_annual", "rate 2 is out of range", RATE_ALLOWED)
    invalid(lambda: prepayment_interest_fen(SAMPLE, paid_on=date(2026, 2, 15), prepaid_principal_fen=1, rate_annual=D(0), basis_days=0),
            "basis_days", "unsupported day-count basis 0", "360 or 365")
    invalid(lambda: prepayment_interest_fen(SAMPLE, paid_on=datetime(2026, 2, 15), prepaid_principal_fen=1, rate_annual=D(0)),
            "paid_on", "expected a date, got datetime.datetime(2026, 2, 15, 0, 0)", DATE_ALLOWED)


@settings(max_examples=150, deadline=None)
@given(method=methods, principal=st.integers(1, 10**12), rate=rates, term=st.integers(1, 120), start=starts,
       when=st.fractions(0, 1), share=st.fractions(0, 1))
def test_reschedule_properties(method: str, principal: int, rate: Decimal, term: int, start: date, when: Fraction, share: Fraction) -> None:
    maturity = add_months(start, term, start.day)
    schedule = build_schedule(method, principal, rate, start, maturity)
    days = (maturity - start).days
    paid_on = start + timedelta(days=min(days - 1, int(days * when)))
    outstanding = outstanding_after(schedule, paid_on)
    assume(outstanding > 0)
    prepaid = max(1, int(outstanding * share))
    new = reschedule_after_prepayment(schedule, paid_on=paid_on, prepaid_principal_fen=prepaid, method=method, rate_annual=rate)
    kept = [i for i in schedule if i.due_on <= paid_on]
    assert list(new[: len(kept)]) == kept
    rest = new[len(kept):]
    left = outstanding - prepaid
    if left == 0:
        assert rest == ()
        return
    assert [i.due_on for i in rest] == [i.due_on for i in schedule[len(kept):]]
    assert sum(i.principal_fen for i in rest) == left and rest[-1].principal_fen == rest[-1].opening_principal_fen
    assert [i.seq for i in new] == list(range(1, len(schedule) + 1))
    for prev, item in zip(new, new[1:], strict=False):
        drop = prepaid if item.seq == len(kept) + 1 else 0
        assert item.opening_principal_fen == prev.opening_principal_fen - prev.principal_fen - drop
    for item in rest:
        assert item.principal_fen >= 0 and item.interest_fen == period_interest(item.opening_principal_fen, rate, item.start_on, item.due_on, True)
    if method == EQUAL_PRINCIPAL:
        assert all(i.principal_fen == left // len(rest) for i in rest[:-1])
    if method == INTEREST_ONLY:
        assert all(i.principal_fen == 0 for i in rest[:-1])
    accrued = (paid_on - rest[0].start_on).days
    assert prepayment_interest_fen(schedule, paid_on=paid_on, prepaid_principal_fen=prepaid, rate_annual=rate) == \
        rhu(prepaid * Fraction(rate) * accrued / 360)
    # a second prepayment on the rescheduled schedule
    if rest[-1].principal_fen > 1:
        again = reschedule_after_prepayment(new, paid_on=rest[-1].start_on, prepaid_principal_fen=1, method=method, rate_annual=rate)
        assert sum(i.principal_fen for i in again) == principal - prepaid - 1


# --------------------------------------------------------------------------
# annualized rate (年化利率)
# --------------------------------------------------------------------------


def brackets(schedule: tuple[Instalment, ...], received: int, rate: Decimal) -> bool:
    """`rate` is the IRR rounded half-up to 6 places: the IRR lies in [rate − ½·10⁻⁶, rate + ½·10⁻⁶)."""
    half = Fraction(1, 2 * 10**6)
    low, high = Fraction(rate) - half, Fraction(rate) + half
    return present_value(schedule, low) >= received > present_value(schedule, high)


def test_annualized_rate_of_equal_instalments_is_the_nominal_rate() -> None:
    schedule = build_schedule(EQUAL_INSTALMENT, 120_000_000, D("0.0435"), date(2026, 1, 15), date(2027, 1, 15))
    assert annualized_rate(120_000_000, date(2026, 1, 15), schedule) == D("0.043500")
    assert str(annualized_rate(120_000_000, date(2026, 1, 15), schedule)) == "0.043500"


@settings(max_examples=60, deadline=None)
@given(principal=st.integers(10**8, 10**12), rate=st.integers(1, 240_000).map(lambda k: Decimal(k).scaleb(-6)),
       term=st.integers(1, 360), start=starts)
def test_annualized_rate_without_fees_is_nominal(principal: int, rate: Decimal, term: int, start: date) -> None:
    schedule = build_schedule(EQUAL_INSTALMENT, principal, rate, start, add_months(start, term, start.day))
    assert annualized_rate(principal, start, schedule) == rate


@settings(max_examples=60, deadline=None)
@given(method=methods, principal=st.integers(100, 10**10), rate=rates, start=starts, days=st.integers(1, 800),
       due_day=st.one_of(st.none(), st.integers(1, 31)), fee_share=st.fractions(0, Fraction(1, 2)), more=st.integers(0, 10**6))
def test_annualized_rate_solves_the_cash_flows_and_grows_with_fees(method: str, principal: int, rate: Decimal, start: date, days: int,
                                                                  due_day: int | None, fee_share: Fraction, more: int) -> None:
    schedule = build_schedule(method, principal, rate, start, start + timedelta(days=days), due_day=due_day)
    fees = int(principal * fee_share)
    y = rate_or_above_cap(principal, start, schedule, fees)
    higher = rate_or_above_cap(principal, start, schedule, min(principal - 1, fees + more))
    if y is None:
        assert higher is None
    else:
        assert y.as_tuple().exponent == -6
        assert higher is None or higher >= y


def rate_or_above_cap(principal: int, start: date, schedule: tuple[Instalment, ...], fees: int) -> Decimal | None:
    """The annualized rate, checked against the cash flows; None when refused as above 1000 (100,000 %)."""
    try:
        y = annualized_rate(principal, start, schedule, fees)
    except InvalidInput as error:  # a big fee on a short period: beyond the rates resolved
        assert error.field == "fees_fen"
        assert present_value(schedule, Fraction(1000) + Fraction(1, 2 * 10**6)) >= principal - fees
        return None
    assert 0 <= y <= 1000 and brackets(schedule, principal - fees, y)
    return y


def test_annualized_rate_of_a_broken_period_on_basis_360() -> None:
    # one 15-day period: P + P × r × 15/360 repaid; y × 15/365 = r × 15/360, y = r × 365/360 = 0.0435 × 365/360 = 0.044104…
    schedule = build_schedule(INTEREST_ONLY, 7_200_000_000, D("0.0435"), date(2026, 1, 10), date(2026, 1, 25))
    assert schedule[0].interest_fen == 13_050_000
    assert annualized_rate(7_200_000_000, date(2026, 1, 10), schedule) == D("0.044104")
    on_365 = build_schedule(INTEREST_ONLY, 7_300_000_000, D("0.0435"), date(2026, 1, 10), date(2026, 1, 25), basis_days=365)
    assert annualized_rate(7_300_000_000, date(2026, 1, 10), on_365) == D("0.043500")


def test_annualized_rate_with_a_fee_by_hand() -> None:
    # 1,000,000 fen for one month at 12 %: repay 1,010,000; a 10,000 fee leaves 990,000 received.
    # 990,000 × (1 + y/12) = 1,010,000 → y = 12 × 20,000 / 990,000 = 0.24242424… → 0.242424
    schedule = build_schedule(INTEREST_ONLY, 1_000_000, D("0.12"), date(2026, 1, 1), date(2026, 2, 1))
    assert annualized_rate(1_000_000, date(2026, 1, 1), schedule) == D("0.120000")
    assert annualized_rate(1_000_000, date(2026, 1, 1), schedule, 10_000) == D("0.242424")
    # half-up at the 7th place: 12 × 1,000,000 / 1,000,000 … choose received so that y = 0.0000005 exactly
    # 24,000,000 fen received, 24,000,001 repaid after a month: y = 12 / 24,000,000 = 0.0000005 → 0.000001
    exact_half = (Instalment(1, date(2026, 2, 1), 24_000_000, 1, 24_000_000, date(2026, 1, 1), True),)
    assert annualized_rate(24_000_000, date(2026, 1, 1), exact_half) == D("0.000001")
    below_half = (Instalment(1, date(2026, 2, 1), 24_000_001, 1, 24_000_001, date(2026, 1, 1), True),)
    assert annualized_rate(24_000_001, date(2026, 1, 1), below_half) == D("0.000000")


def test_annualized_rate_limit() -> None:
    # 1,012 fen repaid after a month without interest; 12 received: 12 × (1 + y/12) = 1,012 → y = 1,000 exactly
    schedule = build_schedule(EQUAL_PRINCIPAL, 1_012, D(0), date(2026, 1, 1), date(2026, 2, 1))
    assert annualized_rate(1_012, date(2026, 1, 1), schedule, 1_000) == D("1000.000000")
    invalid(lambda: annualized_rate(1_012, date(2026, 1, 1), schedule, 1_001), "fees_fen", "the annualized rate is above 100000%",
            "cash flows whose annualized rate is at most 100000%")
    # one step beyond: 1,012,000,001 fen repaid after a month on 12,000,000 received is y = 1,000.000001 exactly;
    # 12,000,001 received gives y = 12 × 1,000,000,000 / 12,000,001 = 999.99991666… → 999.999917
    beyond = build_schedule(INTEREST_ONLY, 1_012_000_001, D(0), date(2026, 1, 1), date(2026, 2, 1))
    assert annualized_rate(1_012_000_001, date(2026, 1, 1), beyond, 1_000_000_000) == D("999.999917")
    invalid(lambda: annualized_rate(1_012_000_001, date(2026, 1, 1), beyond, 1_000_000_001), "fees_fen", "the annualized rate is above 100000%",
            "cash flows whose annualized rate is at most 100000%")
    greedy = (Instalment(1, date(2026, 2, 1), 1, 10**6, 1, date(2026, 1, 1), True),)
    invalid(lambda: annualized_rate(1, date(2026, 1, 1), greedy), "schedule", "the annualized rate is above 100000%",
            "cash flows whose annualized rate is at most 100000%")


def test_annualized_rate_refusals() -> None:
    invalid(lambda: annualized_rate(301, date(2026, 1, 1), SAMPLE), "schedule",
            "the schedule repays 300 fen drawn on 2026-01-01, not 301 fen drawn on 2026-01-01", "the schedule of this drawing")
    invalid(lambda: annualized_rate(300, date(2026, 1, 2), SAMPLE), "schedule",
            "the schedule repays 300 fen drawn on 2026-01-01, not 300 fen drawn on 2026-01-02", "the schedule of this drawing")
    for fees in (-1, 300, 1.0, True, None):
        invalid(lambda f=fees: annualized_rate(300, date(2026, 1, 1), SAMPLE, f), "fees_fen",  # type: ignore[misc]
                f"fees must be an int in fen below the principal, got {fees!r}", "0..299 fen")
    assert annualized_rate(300, date(2026, 1, 1), SAMPLE, 250) > annualized_rate(300, date(2026, 1, 1), SAMPLE, 249)
    invalid(lambda: annualized_rate(0, date(2026, 1, 1), SAMPLE), "principal_fen", "principal must be a positive int in fen, got 0",
            f"1..{MAX_PRINCIPAL_FEN} fen")
    invalid(lambda: annualized_rate(300, "2026-01-01", SAMPLE), "drawn_on", "expected a date, got '2026-01-01'", DATE_ALLOWED)  # type: ignore[arg-type]
