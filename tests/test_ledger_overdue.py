"""Overdue aging, penalty and compound interest, and the five categories
(`sandu.ledger.overdue`).

Amounts are checked against an independent `Fraction` model (closing balances
walked day by day, settlement periods found without `interest`), every
boundary on both sides, and every refusal by its exact message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.domain.errors import InvalidInput
from sandu.ledger.interest import MAX_PRINCIPAL_FEN, DailyAccrual, accrue, interest_to_post_fen
from sandu.ledger.overdue import (
    DEFAULT_THRESHOLDS,
    MAX_DAYS,
    MAX_ITEMS,
    OverdueAmounts,
    OverduePolicy,
    RiskClass,
    accrue_compound,
    accrue_penalty,
    days_past_due,
    next_class,
    overdue_amounts,
    penalty_closed_form_fen,
    post_by_period,
    rule_class,
    worst,
)

D = Decimal
N, SM, SUB, DBT, LOSS = RiskClass.NORMAL, RiskClass.SPECIAL_MENTION, RiskClass.SUBSTANDARD, RiskClass.DOUBTFUL, RiskClass.LOSS
POLICY = OverduePolicy()
DUE = date(2026, 3, 20)
LEAP = date(2028, 2, 29)
AMOUNT_ALLOWED = f"0..{MAX_PRINCIPAL_FEN} fen"
ACCRUALS = (accrue_penalty, accrue_compound)
EVENTS_FIELD = {accrue_penalty: "overdue_principal_events", accrue_compound: "overdue_interest_events"}


def invalid(call: Callable[[], object], field: str, reason: str, allowed: str | None) -> None:
    """Run `call`, expect InvalidInput, and check exactly what the user is told."""
    with pytest.raises(InvalidInput) as info:
        call()
    error = info.value
    assert (error.field, error.reason, error.allowed) == (field, reason, allowed)
    assert error.message == f"{field}: {reason}" + (f" (allowed: {allowed})" if allowed else "")


def round_half_up(x: Fraction) -> int:
    assert x >= 0
    return int((x + Fraction(1, 2)).__floor__())


def monthly_settlement(d: date) -> date:
    """The 20th on or after `d` (a reference independent of `interest`)."""
    if d.day <= 20:
        return date(d.year, d.month, 20)
    return date(d.year + d.month // 12, d.month % 12 + 1, 20)


def quarterly_settlement(d: date) -> date:
    s = monthly_settlement(d)
    while s.month % 3 != 0:
        s = monthly_settlement(s + timedelta(days=1))
    return s


def reference_closings(events: list[tuple[date, int]], start: date, days: int, opening: int) -> list[tuple[date, int]]:
    balance, result = opening, []
    for k in range(days):
        day = start + timedelta(days=k)
        balance += sum(delta for when, delta in events if when == day)
        result.append((day, balance))
    return result


rates = st.integers(0, 240_000).map(lambda n: D(n).scaleb(-6))  # 0 .. 24 %, six places
uplifts = st.integers(30_000, 50_000).map(lambda n: D(n).scaleb(-5))  # 30 .. 50 %
amounts = st.integers(1, 10**12)
# 400 days from any of these starts include 29 February 2028.
starts = st.dates(min_value=LEAP - timedelta(days=399), max_value=LEAP)
bases = st.sampled_from([360, 365])


# --------------------------------------------------------------------------
# penalty and compound interest against the Fraction model
# --------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(amount=amounts, rate=rates, uplift=uplifts, start=starts, basis=bases, accrue_fn=st.sampled_from(ACCRUALS))
def test_constant_overdue_amount_over_400_days_matches_the_closed_form(
    amount: int, rate: Decimal, uplift: Decimal, start: date, basis: int, accrue_fn: Callable[..., list[DailyAccrual]]
) -> None:
    end = start + timedelta(days=399)
    assert start <= LEAP <= end
    accruals = accrue_fn([(start, amount)], start, end, rate, basis, uplift)
    daily = Fraction(amount) * Fraction(rate) * (1 + Fraction(uplift)) / basis
    assert [a.day for a in accruals] == [start + timedelta(days=k) for k in range(400)]
    assert {a.closing_principal_fen for a in accruals} == {amount}
    assert {a.rate_annual for a in accruals} == {rate * (1 + uplift)}
    assert interest_to_post_fen(accruals) == round_half_up(daily * 400) == penalty_closed_form_fen(amount, rate, uplift, 400, basis)
    # Posted once per monthly period (21st → 20th): each period is its own closed form.
    days_in: dict[date, int] = {}
    for a in accruals:
        days_in[monthly_settlement(a.day)] = days_in.get(monthly_settlement(a.day), 0) + 1
    expected = [(s, round_half_up(daily * n)) for s, n in sorted(days_in.items())]
    assert post_by_period(accruals) == expected
    assert expected == [(s, penalty_closed_form_fen(amount, rate, uplift, n, basis)) for s, n in sorted(days_in.items())]
    assert sum(n for _, n in days_in.items()) == 400


@st.composite
def balance_paths(draw: st.DrawFn) -> tuple[date, int, list[tuple[date, int]]]:
    """An opening balance and events that keep the overdue balance ≥ 0."""
    start = draw(starts)
    opening = draw(st.integers(0, 10**12))
    moves = draw(st.lists(st.tuples(st.integers(0, 420), amounts, st.booleans()), max_size=12))
    balance, events = opening, []
    for offset, amount, repay in sorted(moves, key=lambda m: m[0]):
        delta = -min(amount, balance) if repay else amount
        balance += delta
        events.append((start + timedelta(days=offset), delta))
    return start, opening, draw(st.permutations(events))


@settings(max_examples=120, deadline=None)
@given(path=balance_paths(), rate=rates, uplift=uplifts, basis=bases, accrue_fn=st.sampled_from(ACCRUALS))
def test_varying_overdue_balance_matches_the_fraction_model(
    path: tuple[date, int, list[tuple[date, int]]], rate: Decimal, uplift: Decimal, basis: int,
    accrue_fn: Callable[..., list[DailyAccrual]],
) -> None:
    start, opening, events = path
    end = start + timedelta(days=399)
    accruals = accrue_fn(events, start, end, rate, basis, uplift, opening)
    closings = reference_closings(events, start, 400, opening)
    assert [(a.day, a.closing_principal_fen) for a in accruals] == closings
    per_fen = Fraction(rate) * (1 + Fraction(uplift)) / basis
    assert interest_to_post_fen(accruals) == round_half_up(sum(Fraction(c) for _, c in closings) * per_fen)
    by_period: dict[date, Fraction] = {}
    for day, closing in closings:
        s = quarterly_settlement(day)
        by_period[s] = by_period.get(s, Fraction(0)) + closing * per_fen
    assert post_by_period(accruals, "quarterly") == [(s, round_half_up(x)) for s, x in sorted(by_period.items())]


def test_penalty_closed_form_by_hand() -> None:
    # 10,000 yuan at 3.6 %: penalty rate 5.4 % (uplift 50 %) or 4.68 % (30 %), 30 days on 360.
    assert penalty_closed_form_fen(1_000_000, D("0.036"), D("0.5"), 30) == 4500
    assert penalty_closed_form_fen(1_000_000, D("0.036"), D("0.3"), 30) == 3900
    assert penalty_closed_form_fen(1_000_000, D("0.036"), D("0.3"), 30, 365) == 3847  # 3846.575…
    # 12 % × 1.5 = 18 %: one day on 1000 fen is exactly half a fen, rounded up; 999 fen is below it.
    assert penalty_closed_form_fen(1000, D("0.12"), D("0.5"), 1) == 1
    assert penalty_closed_form_fen(999, D("0.12"), D("0.5"), 1) == 0
    assert interest_to_post_fen(accrue_penalty([(DUE, 1000)], DUE, DUE, D("0.12"), 360, D("0.5"))) == 1
    assert interest_to_post_fen(accrue_compound([(DUE, 999)], DUE, DUE, D("0.12"), 360, D("0.5"))) == 0
    invalid(lambda: penalty_closed_form_fen(1, D("0.1"), D("0.51"), 1), "uplift", "uplift 0.51 is out of range", "Decimal in 0.30..0.50")


@pytest.mark.parametrize("accrue_fn", ACCRUALS)
def test_accrues_from_the_first_overdue_day_until_the_day_before_repayment(accrue_fn: Callable[..., list[DailyAccrual]]) -> None:
    first = DUE + timedelta(days=1)  # due on DUE, unpaid: overdue from DUE+1
    repaid = DUE + timedelta(days=5)
    accruals = accrue_fn([(first, 360_000), (repaid, -360_000)], DUE, DUE + timedelta(days=7), D("0.1"), 360, D("0.5"))
    assert [a.closing_principal_fen for a in accruals] == [0, 360_000, 360_000, 360_000, 360_000, 0, 0, 0]
    assert [a.interest_fen_exact for a in accruals] == [0, 150, 150, 150, 150, 0, 0, 0]
    assert interest_to_post_fen(accruals) == 600
    # A balance carried in: opening_fen, and the same days on a plain accrual at the penalty rate.
    carried = accrue_fn([(repaid, -360_000)], first, DUE + timedelta(days=7), D("0.1"), 360, D("0.5"), opening_fen=360_000)
    assert carried == accrue([(repaid, -360_000)], first, DUE + timedelta(days=7), D("0.15"), 360, 360_000)


@pytest.mark.parametrize("accrue_fn", ACCRUALS)
def test_accrual_refusals_name_the_field(accrue_fn: Callable[..., list[DailyAccrual]]) -> None:
    field = EVENTS_FIELD[accrue_fn]
    ok: dict[str, object] = {"start": DUE, "end": DUE + timedelta(days=2), "contract_rate": D("0.1"), "basis_days": 360, "uplift": D("0.4")}

    def call(events: object = (), **changes: object) -> Callable[[], object]:
        return lambda: accrue_fn(events, **{**ok, **changes})

    invalid(call(contract_rate=D("1.01")), "contract_rate", "rate 1.01 is out of range", "Decimal in 0..1 with at most 12 decimal places")
    invalid(call(uplift=D("0.29")), "uplift", "uplift 0.29 is out of range", "Decimal in 0.30..0.50")
    invalid(call(basis_days=364), "basis_days", "unsupported day-count basis 364", "360 or 365")
    invalid(call(opening_fen=-1), "opening_fen", "principal must be an int in fen, got -1", AMOUNT_ALLOWED)
    invalid(call(opening_fen=MAX_PRINCIPAL_FEN + 1), "opening_fen", f"principal must be an int in fen, got {MAX_PRINCIPAL_FEN + 1}", AMOUNT_ALLOWED)
    invalid(call(end=DUE - timedelta(days=1)), "end", f"end 2026-03-19 is before start {DUE}", f"a date on or after {DUE}")
    invalid(call([(DUE - timedelta(days=1), 5)]), field, f"event #0 on 2026-03-19 is before start {DUE}", "fold earlier events into opening_fen")
    invalid(call([(DUE, 5.0)]), field, "event #0 delta 5.0 is not an int", "int fen")
    invalid(call(42), field, "expected a sequence of (date, delta_fen) pairs, got int", "(date, int) pairs")
    # The balance may reach 0 and the maximum, not go past either, on any day of the range.
    balance_allowed = f"0..{MAX_PRINCIPAL_FEN} fen: repay at most what is overdue"
    day2 = DUE + timedelta(days=1)
    invalid(call([(DUE, 100), (day2, -101)]), field, f"the overdue balance at the close of {day2} would be -1 fen", balance_allowed)
    invalid(call([(DUE, -1)]), field, f"the overdue balance at the close of {DUE} would be -1 fen", balance_allowed)
    invalid(call([(day2, 1)], opening_fen=MAX_PRINCIPAL_FEN), field,
            f"the overdue balance at the close of {day2} would be {MAX_PRINCIPAL_FEN + 1} fen", balance_allowed)
    assert [a.closing_principal_fen for a in call([(DUE, 100), (day2, -100)])()] == [100, 0, 0]  # type: ignore[attr-defined]
    assert [a.closing_principal_fen for a in call([(day2, -1)], opening_fen=MAX_PRINCIPAL_FEN)()] == [  # type: ignore[attr-defined]
        MAX_PRINCIPAL_FEN, MAX_PRINCIPAL_FEN - 1, MAX_PRINCIPAL_FEN - 1]
    # Events after the range are ignored, also when they would empty the balance.
    assert len(call([(DUE + timedelta(days=9), -1)])()) == 3  # type: ignore[arg-type]


def test_post_by_period() -> None:
    accruals = accrue_penalty([(date(2026, 4, 18), 720_000)], date(2026, 4, 18), date(2026, 6, 22), D("0.1"), 360, D("0.5"))
    # 0.15 / 360 × 720,000 = 300 fen a day: 18th–20th April, 21 April–20 May (30 days), 21 May–20 June (31), 21–22 June.
    assert post_by_period(accruals) == [(date(2026, 4, 20), 900), (date(2026, 5, 20), 9000),
                                        (date(2026, 6, 20), 9300), (date(2026, 7, 20), 600)]
    assert post_by_period(list(reversed(accruals)), "monthly") == post_by_period(accruals)
    assert post_by_period(accruals, "quarterly") == [(date(2026, 6, 20), 19200), (date(2026, 9, 20), 600)]
    assert post_by_period(accruals, "monthly", 18) == [(date(2026, 4, 18), 300), (date(2026, 5, 18), 9000),
                                                       (date(2026, 6, 18), 9300), (date(2026, 7, 18), 1200)]
    assert post_by_period(tuple(accruals[:1])) == [(date(2026, 4, 20), 300)]
    assert post_by_period([]) == []
    invalid(lambda: post_by_period(iter(accruals)), "accruals", "expected a list of DailyAccrual, got list_iterator",  # type: ignore[arg-type]
            "list of DailyAccrual")
    invalid(lambda: post_by_period([accruals[0], "x"]), "accruals", "accrual #1 is a str", "DailyAccrual")  # type: ignore[list-item]
    invalid(lambda: post_by_period([None] * (MAX_ITEMS + 1)), "accruals", f"{MAX_ITEMS + 1} accruals are too many", f"at most {MAX_ITEMS}")  # type: ignore[list-item]
    invalid(lambda: post_by_period([None] * MAX_ITEMS), "accruals", "accrual #0 is a NoneType", "DailyAccrual")  # type: ignore[list-item]
    invalid(lambda: post_by_period(accruals, "weekly"), "frequency", "unknown settlement frequency 'weekly'", "'monthly' or 'quarterly'")
    invalid(lambda: post_by_period(accruals, "monthly", 29), "day", "settlement day 29 does not exist in every month", "1..28")


# --------------------------------------------------------------------------
# days past due
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "grace", "dpd"),
    [(-1, 0, 0), (0, 0, 0), (1, 0, 1), (2, 0, 2), (400, 0, 400),
     (0, 5, 0), (5, 5, 0), (6, 5, 6), (7, 5, 7),
     (30, 30, 0), (31, 30, 31), (-3, 30, 0)],
)
def test_days_past_due_on_both_sides_of_the_due_date_and_the_grace(offset: int, grace: int, dpd: int) -> None:
    assert days_past_due(DUE, DUE + timedelta(days=offset), grace) == dpd


def test_days_past_due_extremes_and_nothing_unpaid() -> None:
    assert days_past_due(None, DUE, 0) == 0
    assert days_past_due(None, DUE, 30) == 0
    assert days_past_due(date.min, date.max, 30) == MAX_DAYS
    assert days_past_due(date.max, date.max, 30) == 0
    assert days_past_due(date.max, date.min, 0) == 0


@pytest.mark.parametrize("grace", [-1, 31, True, 1.0, "1"])
def test_days_past_due_refuses_a_bad_grace(grace: object) -> None:
    invalid(lambda: days_past_due(DUE, DUE, grace), "grace_days", f"grace period {grace!r} is out of range", "int 0..30 days")  # type: ignore[arg-type]
    invalid(lambda: days_past_due(None, DUE, grace), "grace_days", f"grace period {grace!r} is out of range", "int 0..30 days")  # type: ignore[arg-type]


def test_days_past_due_refuses_bad_dates() -> None:
    allowed = "datetime.date (not datetime)"
    invalid(lambda: days_past_due(DUE, datetime(2026, 3, 21), 0), "today", "expected a date, got datetime", allowed)
    invalid(lambda: days_past_due(None, "2026-03-21", 0), "today", "expected a date, got str", allowed)  # type: ignore[arg-type]
    invalid(lambda: days_past_due("2026-03-20", DUE, 0), "oldest_unpaid_due_on", "expected a date, got str", allowed)  # type: ignore[arg-type]


@given(due=st.dates(date(2000, 1, 1), date(2100, 1, 1)), offset=st.integers(-50, 500), grace=st.integers(0, 30))
def test_days_past_due_counts_from_the_day_after_the_due_date_once_grace_is_lost(due: date, offset: int, grace: int) -> None:
    today = due + timedelta(days=offset)
    dpd = days_past_due(due, today, grace)
    after = days_past_due(due, today + timedelta(days=1), grace)
    assert dpd == 0 or dpd > grace
    assert (dpd > 0) == (offset > grace)
    if dpd > 0:
        assert dpd == offset and after == dpd + 1
    elif after > 0:  # the first overdue day: grace + 1 days past due
        assert after == grace + 1 and offset == grace


# --------------------------------------------------------------------------
# overdue amounts of a drawing
# --------------------------------------------------------------------------

SCHEDULE = [(date(2026, 1, 20), 1000, 50), (date(2026, 2, 20), 1000, 40), (date(2026, 3, 20), 1000, 30)]


@pytest.mark.parametrize(
    ("principal_paid", "interest_paid", "today", "grace", "expected"),
    [
        (0, 0, date(2026, 1, 19), 0, (0, 0, None)),
        (0, 0, date(2026, 1, 20), 0, (0, 0, date(2026, 1, 20))),  # due, not yet overdue
        (0, 0, date(2026, 1, 21), 0, (1000, 50, date(2026, 1, 20))),
        (0, 0, date(2026, 1, 25), 5, (0, 0, date(2026, 1, 20))),  # in grace
        (0, 0, date(2026, 1, 26), 5, (1000, 50, date(2026, 1, 20))),
        (1500, 50, date(2026, 2, 20), 0, (0, 0, date(2026, 2, 20))),
        (1500, 50, date(2026, 2, 21), 0, (500, 40, date(2026, 2, 20))),
        (999, 50, date(2026, 2, 21), 0, (1001, 40, date(2026, 1, 20))),
        (1000, 49, date(2026, 3, 21), 0, (2000, 71, date(2026, 1, 20))),  # 1 fen of January's interest
        (1000, 50, date(2026, 3, 21), 0, (2000, 70, date(2026, 2, 20))),
        (2000, 89, date(2026, 3, 21), 0, (1000, 31, date(2026, 2, 20))),
        (3000, 120, date(2026, 3, 21), 0, (0, 0, None)),
        (3000, 0, date(2026, 3, 21), 0, (0, 120, date(2026, 1, 20))),  # principal paid, interest not
        (3000, 120, date(2026, 1, 1), 0, (0, 0, None)),  # all paid in advance
    ],
)
def test_overdue_amounts(principal_paid: int, interest_paid: int, today: date, grace: int, expected: tuple[int, int, date | None]) -> None:
    result = overdue_amounts(SCHEDULE, principal_paid, interest_paid, today, grace)
    assert result == expected and isinstance(result, OverdueAmounts)
    assert overdue_amounts(tuple(reversed(SCHEDULE)), principal_paid, interest_paid, today, grace) == result
    assert (result.principal_fen, result.interest_fen, result.oldest_unpaid_due_on) == expected


def test_same_day_instalments_fall_overdue_together() -> None:
    same_day = [(DUE, 300, 0), (DUE, 100, 7), (DUE - timedelta(days=31), 50, 5)]
    assert overdue_amounts(same_day, 50, 5, DUE, 0) == (0, 0, DUE)
    assert overdue_amounts(same_day, 250, 5, DUE + timedelta(days=1), 0) == (200, 7, DUE)
    assert overdue_amounts(same_day, 450, 11, DUE + timedelta(days=1), 0) == (0, 1, DUE)


def test_overdue_amounts_refusals() -> None:
    today = date(2026, 3, 21)
    shape = "a list of (due_on, principal_due_fen, interest_due_fen)"
    invalid(lambda: overdue_amounts(iter(SCHEDULE), 0, 0, today, 0), "instalments_due",  # type: ignore[arg-type]
            "expected a sequence of instalments, got list_iterator", shape)
    invalid(lambda: overdue_amounts([(DUE, 1)], 0, 0, today, 0), "instalments_due", "instalment #0 is not a (date, int, int) triple", shape)  # type: ignore[list-item]
    invalid(lambda: overdue_amounts([*SCHEDULE, [DUE, 1, 1]], 0, 0, today, 0), "instalments_due",  # type: ignore[list-item]
            "instalment #3 is not a (date, int, int) triple", shape)
    invalid(lambda: overdue_amounts([("2026-03-20", 1, 1)], 0, 0, today, 0), "instalments_due",  # type: ignore[list-item]
            "expected a date, got str", "datetime.date (not datetime)")
    for bad in (-1, MAX_PRINCIPAL_FEN + 1, True, 1.0):
        for item in ((DUE, bad, 0), (DUE, 0, bad)):
            invalid(lambda item=item: overdue_amounts([item], 0, 0, today, 0), "instalments_due",  # type: ignore[misc]
                    f"instalment #0 amount {bad!r} is out of range", "int " + AMOUNT_ALLOWED)
    assert overdue_amounts([(DUE, MAX_PRINCIPAL_FEN, MAX_PRINCIPAL_FEN)], 0, 0, today, 0) == (MAX_PRINCIPAL_FEN, MAX_PRINCIPAL_FEN, DUE)
    invalid(lambda: overdue_amounts([None] * (MAX_ITEMS + 1), 0, 0, today, 0), "instalments_due",  # type: ignore[list-item]
            f"{MAX_ITEMS + 1} instalments are too many", f"at most {MAX_ITEMS}")
    invalid(lambda: overdue_amounts([None] * MAX_ITEMS, 0, 0, today, 0), "instalments_due",  # type: ignore[list-item]
            "instalment #0 is not a (date, int, int) triple", shape)
    for paid in (3001, -1, True):
        invalid(lambda paid=paid: overdue_amounts(SCHEDULE, paid, 0, today, 0), "principal_paid_fen",  # type: ignore[misc]
                f"paid {paid!r} fen is not within what is scheduled", "int 0..3000 fen")
    invalid(lambda: overdue_amounts(SCHEDULE, 0, 121, today, 0), "interest_paid_fen",
            "paid 121 fen is not within what is scheduled", "int 0..120 fen")
    invalid(lambda: overdue_amounts(SCHEDULE, 0, 0, datetime(2026, 3, 21), 0), "today", "expected a date, got datetime",
            "datetime.date (not datetime)")
    invalid(lambda: overdue_amounts(SCHEDULE, 0, 0, today, 31), "grace_days", "grace period 31 is out of range", "int 0..30 days")
    assert overdue_amounts([], 0, 0, today, 0) == (0, 0, None)


instalment_lists = st.lists(
    st.tuples(st.dates(date(2026, 1, 1), date(2027, 12, 31)), st.integers(0, 10**9), st.integers(0, 10**7)), max_size=15)


@given(instalments=instalment_lists, paid=st.tuples(st.floats(0, 1), st.floats(0, 1)),
       today=st.dates(date(2025, 12, 1), date(2028, 1, 31)), grace=st.integers(0, 30))
def test_overdue_amounts_match_a_cumulative_model(
    instalments: list[tuple[date, int, int]], paid: tuple[float, float], today: date, grace: int
) -> None:
    ordered = sorted(instalments, key=lambda i: i[0])
    total_p, total_i = sum(i[1] for i in ordered), sum(i[2] for i in ordered)
    paid_p, paid_i = int(total_p * paid[0]), int(total_i * paid[1])  # test data only; the engine sees ints
    result = overdue_amounts(instalments, paid_p, paid_i, today, grace)
    # Instalment k is paid by whatever of the payment exceeds everything scheduled before it.
    overdue_p = overdue_i = 0
    oldest = None
    before_p = before_i = 0
    for due_on, p, i in ordered:
        unpaid_p = p - min(p, max(0, paid_p - before_p))
        unpaid_i = i - min(i, max(0, paid_i - before_i))
        before_p, before_i = before_p + p, before_i + i
        if unpaid_p + unpaid_i and due_on <= today:
            oldest = due_on if oldest is None else oldest
            if (today - due_on).days > grace:
                overdue_p, overdue_i = overdue_p + unpaid_p, overdue_i + unpaid_i
    assert result == (overdue_p, overdue_i, oldest)
    assert (result.principal_fen + result.interest_fen > 0) == (days_past_due(result.oldest_unpaid_due_on, today, grace) > 0)


# --------------------------------------------------------------------------
# policy
# --------------------------------------------------------------------------


def test_policy_defaults_follow_domain_md() -> None:
    assert (POLICY.penalty_uplift, POLICY.grace_days, POLICY.thresholds, POLICY.upgrade_after_days) == (D("0.50"), 0, (0, 90, 270, 360), 90)
    assert DEFAULT_THRESHOLDS == (0, 90, 270, 360)
    with pytest.raises(FrozenInstanceError):
        POLICY.grace_days = 1  # type: ignore[misc]


@pytest.mark.parametrize("uplift", [D("0.30"), D("0.3"), D("0.50"), D("0.400001")])
def test_policy_uplift_within_bounds(uplift: Decimal) -> None:
    assert OverduePolicy(penalty_uplift=uplift).penalty_uplift == uplift


@pytest.mark.parametrize(
    ("uplift", "reason", "allowed"),
    [
        (D("0.29"), "uplift 0.29 is out of range", "Decimal in 0.30..0.50"),
        (D("0.2999999"), "uplift 0.2999999 is out of range", "Decimal in 0.30..0.50"),
        (D("0.51"), "uplift 0.51 is out of range", "Decimal in 0.30..0.50"),
        (D("0.5000001"), "uplift 0.5000001 is out of range", "Decimal in 0.30..0.50"),
        (D("0.4000001"), "uplift 0.4000001 has too many decimal places", "at most 6"),
        (0.4, "uplift must be a finite Decimal, got 0.4", "Decimal in 0.30..0.50"),
        (D("NaN"), "uplift must be a finite Decimal, got Decimal('NaN')", "Decimal in 0.30..0.50"),
    ],
)
def test_policy_uplift_out_of_bounds(uplift: object, reason: str, allowed: str) -> None:
    invalid(lambda: OverduePolicy(penalty_uplift=uplift), "penalty_uplift", reason, allowed)  # type: ignore[arg-type]


def test_policy_grace_bounds() -> None:
    assert OverduePolicy(grace_days=0).grace_days == 0
    assert OverduePolicy(grace_days=30).grace_days == 30
    for grace in (-1, 31, True, 2.0):
        invalid(lambda grace=grace: OverduePolicy(grace_days=grace), "grace_days",  # type: ignore[misc]
                f"grace period {grace!r} is out of range", "int 0..30 days")


THRESHOLDS_ALLOWED = "4 strictly increasing ints in 0..3650, the DPD above which 关注, 次级, 可疑, 损失 apply"


def test_policy_thresholds_bounds() -> None:
    assert OverduePolicy(thresholds=[0, 1, 2, 3]).thresholds == (0, 1, 2, 3)  # type: ignore[arg-type]
    assert OverduePolicy(thresholds=(5, 90, 270, 3650)).thresholds == (5, 90, 270, 3650)
    assert isinstance(OverduePolicy(thresholds=[0, 1, 2, 3]).thresholds, tuple)  # type: ignore[arg-type]
    cases = [
        ((0, 90, 270), "expected 4 day counts, got (0, 90, 270)"),
        ((0, 90, 270, 360, 400), "expected 4 day counts, got (0, 90, 270, 360, 400)"),
        ("0123", "expected 4 day counts, got '0123'"),
        ({0, 1, 2, 3}, "expected 4 day counts, got {0, 1, 2, 3}"),
        ((-1, 90, 270, 360), "threshold #0 -1 is out of range"),
        ((0, 90, 270, 3651), "threshold #3 3651 is out of range"),
        ((0, 90.0, 270, 360), "threshold #1 90.0 is out of range"),
        ((True, 90, 270, 360), "threshold #0 True is out of range"),
        ((0, 0, 270, 360), "threshold #1 (0) is not above #0 (0)"),
        ((0, 90, 89, 360), "threshold #2 (89) is not above #1 (90)"),
        ((0, 90, 270, 270), "threshold #3 (270) is not above #2 (270)"),
    ]
    for thresholds, reason in cases:
        invalid(lambda t=thresholds: OverduePolicy(thresholds=t), "thresholds", reason, THRESHOLDS_ALLOWED)  # type: ignore[misc]


def test_policy_upgrade_window_bounds() -> None:
    assert OverduePolicy(upgrade_after_days=1).upgrade_after_days == 1
    assert OverduePolicy(upgrade_after_days=3650).upgrade_after_days == 3650
    for days in (0, 3651, -90, True, 90.0):
        invalid(lambda days=days: OverduePolicy(upgrade_after_days=days), "upgrade_after_days",  # type: ignore[misc]
                f"upgrade window {days!r} is out of range", "int 1..3650 days")


# --------------------------------------------------------------------------
# the five categories
# --------------------------------------------------------------------------


def test_risk_class_order_values_and_labels() -> None:
    assert list(RiskClass) == [N, SM, SUB, DBT, LOSS]
    assert [c.value for c in RiskClass] == ["normal", "special_mention", "substandard", "doubtful", "loss"]
    assert [c.label_zh for c in RiskClass] == ["正常", "关注", "次级", "可疑", "损失"]
    assert [c.rank for c in RiskClass] == [0, 1, 2, 3, 4]
    assert sorted([LOSS, N, DBT, SUB, SM]) == [N, SM, SUB, DBT, LOSS]  # by severity, not spelling
    assert max(N, LOSS) is LOSS and min(N, LOSS) is N
    for a in RiskClass:
        for b in RiskClass:
            assert (a < b, a <= b, a > b, a >= b, a == b) == (a.rank < b.rank, a.rank <= b.rank, a.rank > b.rank, a.rank >= b.rank, a.rank == b.rank)
    assert RiskClass("doubtful") is DBT and DBT == "doubtful"


@pytest.mark.parametrize("compare", [lambda a, b: a < b, lambda a, b: a <= b, lambda a, b: a > b, lambda a, b: a >= b])
def test_risk_class_compares_only_with_risk_classes(compare: Callable[[object, object], bool]) -> None:
    for other, name in (("loss", "str"), (3, "int"), (None, "NoneType")):
        with pytest.raises(TypeError, match=f"^a RiskClass compares only with a RiskClass, not {name}$"):
            compare(N, other)
    with pytest.raises(TypeError, match="^a RiskClass compares only with a RiskClass, not str$"):
        compare("loss", N)


@pytest.mark.parametrize(
    ("dpd", "expected"),
    [(0, N), (1, SM), (90, SM), (91, SUB), (270, SUB), (271, DBT), (360, DBT), (361, LOSS), (MAX_DAYS, LOSS)],
)
def test_rule_class_default_thresholds(dpd: int, expected: RiskClass) -> None:
    assert rule_class(dpd, POLICY) is expected


@pytest.mark.parametrize(
    ("dpd", "expected"),
    [(0, N), (30, N), (31, SM), (60, SM), (61, SUB), (120, SUB), (121, DBT), (180, DBT), (181, LOSS)],
)
def test_rule_class_custom_thresholds(dpd: int, expected: RiskClass) -> None:
    assert rule_class(dpd, OverduePolicy(thresholds=(30, 60, 120, 180))) is expected


@pytest.mark.parametrize("dpd", [-1, MAX_DAYS + 1, True, 1.0, "5"])
def test_rule_class_refuses_a_bad_dpd(dpd: object) -> None:
    invalid(lambda: rule_class(dpd, POLICY), "dpd", f"day count {dpd!r} is out of range", f"int 0..{MAX_DAYS}")  # type: ignore[arg-type]


def test_rule_class_refuses_a_bad_policy() -> None:
    invalid(lambda: rule_class(0, {"grace_days": 0}), "policy", "expected an OverduePolicy, got dict", "OverduePolicy")  # type: ignore[arg-type]
    invalid(lambda: next_class(None, 0, 0, None, None), "policy", "expected an OverduePolicy, got NoneType", "OverduePolicy")  # type: ignore[arg-type]


@given(dpd=st.integers(0, 5000), t=st.lists(st.integers(0, 3650), min_size=4, max_size=4, unique=True).map(sorted))
def test_rule_class_is_monotone_and_counts_thresholds_passed(dpd: int, t: list[int]) -> None:
    policy = OverduePolicy(thresholds=tuple(t))  # type: ignore[arg-type]
    assert rule_class(dpd, policy).rank == len([x for x in t if dpd > x])
    assert rule_class(dpd, policy) <= rule_class(dpd + 1, policy)


def test_next_class_first_time_and_downgrades_at_once() -> None:
    assert next_class(None, 0, 0, None, POLICY) is N
    assert next_class(None, 91, 0, None, POLICY) is SUB
    assert next_class(None, 0, 0, DBT, POLICY) is DBT
    assert next_class(N, 1, 0, None, POLICY) is SM
    assert next_class(N, 91, 0, None, POLICY) is SUB
    assert next_class(SM, 361, 0, None, POLICY) is LOSS  # several steps in one day
    assert next_class(SUB, 91, 0, None, POLICY) is SUB
    assert next_class(DBT, 30, 0, None, POLICY) is DBT  # still overdue: no improvement


def test_next_class_officer_floor_is_worse_only() -> None:
    assert next_class(N, 0, 400, DBT, POLICY) is DBT  # an officer may classify worse than the rule
    assert next_class(N, 91, 0, N, POLICY) is SUB  # never better than the rule
    assert next_class(SUB, 0, 90, SM, POLICY) is SM  # an improvement stops at the floor
    assert next_class(SUB, 0, 90, SUB, POLICY) is SUB
    assert next_class(LOSS, 0, 90, SUB, POLICY) is DBT
    assert next_class(SUB, 0, 90, LOSS, POLICY) is LOSS


@pytest.mark.parametrize(
    ("previous", "days_current", "expected"),
    [(SUB, 0, SUB), (SUB, 1, SUB), (SUB, 89, SUB), (SUB, 90, SM), (SUB, 91, SUB), (SUB, 179, SUB), (SUB, 180, SM),
     (LOSS, 90, DBT), (SM, 90, N), (N, 90, N), (DBT, 270, SUB)],
)
def test_next_class_improves_one_step_per_window(previous: RiskClass, days_current: int, expected: RiskClass) -> None:
    assert next_class(previous, 0, days_current, None, POLICY) is expected


def test_next_class_custom_window() -> None:
    policy = OverduePolicy(upgrade_after_days=30)
    assert [next_class(SUB, 0, d, None, policy) for d in (29, 30, 31, 45, 60)] == [SUB, SM, SUB, SUB, SM]
    daily = OverduePolicy(upgrade_after_days=1)
    assert [next_class(LOSS, 0, d, None, daily) for d in (0, 1, 2)] == [LOSS, DBT, DBT]


def test_a_cured_loss_returns_to_normal_one_step_per_window() -> None:
    cls: RiskClass | None = None
    for dpd in range(0, 401):
        cls = next_class(cls, dpd, 0, None, POLICY)
    assert cls is LOSS
    changes = []
    for days_current in range(1, 400):
        new = next_class(cls, 0, days_current, None, POLICY)
        if new is not cls:
            changes.append((days_current, new))
        cls = new
    assert changes == [(90, DBT), (180, SUB), (270, SM), (360, N)]


def test_next_class_refusals() -> None:
    invalid(lambda: next_class(N, 1, 1, None, POLICY), "days_current", "1 days current while 1 days past due", "0 while DPD > 0")
    invalid(lambda: next_class(N, 0, -1, None, POLICY), "days_current", "day count -1 is out of range", f"int 0..{MAX_DAYS}")
    invalid(lambda: next_class(N, 0, MAX_DAYS + 1, None, POLICY), "days_current", f"day count {MAX_DAYS + 1} is out of range", f"int 0..{MAX_DAYS}")
    assert next_class(N, 0, MAX_DAYS, None, POLICY) is N
    invalid(lambda: next_class(N, -1, 0, None, POLICY), "dpd", "day count -1 is out of range", f"int 0..{MAX_DAYS}")
    invalid(lambda: next_class("normal", 0, 0, None, POLICY), "previous", "expected a RiskClass, got 'normal'", "a RiskClass or None")  # type: ignore[arg-type]
    invalid(lambda: next_class(N, 0, 0, 3, POLICY), "officer_floor", "expected a RiskClass, got 3", "a RiskClass or None")  # type: ignore[arg-type]


floors = st.one_of(st.none(), st.sampled_from(list(RiskClass)))


@settings(max_examples=200)
@given(days=st.lists(st.tuples(st.booleans(), floors), min_size=1, max_size=500), window=st.integers(1, 120))
def test_next_class_over_a_loan_life(days: list[tuple[bool, RiskClass | None]], window: int) -> None:
    """Each day the loan either stays unpaid (DPD grows) or is brought current."""
    policy = OverduePolicy(upgrade_after_days=window)
    previous: RiskClass | None = None
    dpd = current = 0
    for unpaid, floor in days:
        dpd, current = (dpd + 1, 0) if unpaid else (0, current + 1)
        cls = next_class(previous, dpd, current, floor, policy)
        lowest = max(rule_class(dpd, policy), floor or N)
        assert cls >= lowest
        if previous is None or previous <= lowest:
            assert cls is lowest
        elif cls < previous:
            assert cls.rank == previous.rank - 1 and current % window == 0 and current > 0
        else:
            assert cls is previous and (current == 0 or current % window != 0)
        previous = cls


def test_worst() -> None:
    assert worst([N, LOSS, SM]) is LOSS
    assert worst([SM, N]) is SM
    assert worst([N]) is N
    assert worst(c for c in (SUB, DBT, N)) is DBT
    assert worst([N] * MAX_ITEMS) is N
    invalid(lambda: worst([N] * (MAX_ITEMS + 1)), "classes", f"more than {MAX_ITEMS} classes", f"at most {MAX_ITEMS}")
    invalid(lambda: worst([]), "classes", "no classes given", "one or more RiskClass")
    invalid(lambda: worst([N, "loss"]), "classes", "expected a RiskClass, got 'loss'", "a RiskClass")  # type: ignore[list-item]
    invalid(lambda: worst(7), "classes", "expected RiskClass values, got int", "one or more RiskClass")  # type: ignore[arg-type]
