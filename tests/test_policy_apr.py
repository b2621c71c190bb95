"""The annualized rate (年化利率), `sandu.policy.apr`.

References are independent of the code under test: every rate is checked to
bracket the root of the cash flows with exact `Fraction` arithmetic (the root
lies within half a unit of the 6th place, half-even on a tie); the worked
example's instalments are computed here with `Fraction`s and its rate by a
plain-float Newton iteration; a revolving line's payment dates are found by
walking the calendar day by day.

On the closed forms and the fen
-------------------------------
Before rounding to the fen, the definition gives back the nominal rate for the
monthly schedules and ``rate × 365 / basis`` for a line: each period's
interest is then exactly ``principal·i·f_k``, so the loan is at par. The ledger
posts every period's interest rounded half-up to the fen, off by ``e_k`` with
|e_k| ≤ ½ fen; following the balance from period to period, the payments at
the closed-form rate ``c`` are then worth ``principal + E`` with
``E = Σ e_k·v_k`` (``v_k`` the discount factor of period k). So:

* ``E = 0`` (every interest a whole number of fen) → the root is ``c`` exactly,
  and the result is ``c`` rounded half-even, a tie included;
* ``E > 0`` → the root is above ``c``; ``E < 0`` → below;
* |root − c| ≤ |E| / S, with S the slope −dPV/di at the larger of the two
  (the present value is convex and falling, so its slope is smallest there);
  |E| ≤ ½ Σ v_k fen. That is the tolerance the fen rounding implies. For
  loans of 100万 (10⁸ fen) and more it is below 10⁻⁷, which cannot move a rate
  of at most 6 places (the nominal rate of the monthly schedules, or a /365
  line's) off itself; a /360 line's ``rate × 365/360`` may lie within 10⁻⁷ of a
  half-way point, where the fen decides the 6th place.
"""

from __future__ import annotations

import ast
import math
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import sandu.policy.apr as apr_module
from sandu.domain.errors import InvalidInput
from sandu.domain.money import MAX_AMOUNT_FEN
from sandu.ledger.schedule import EQUAL_INSTALMENT, EQUAL_PRINCIPAL, INTEREST_ONLY, METHODS, REVOLVING, SCHEDULED_METHODS, build_schedule
from sandu.ledger.schedule import annualized_rate as ledger_annualized_rate
from sandu.policy.apr import MAX_ANNUALIZED_RATE, MAX_TERM_MONTHS, CashFlow, FlowKind, annualized_rate, cash_flows

D = Decimal
Q = Fraction(1, 10**6)  # one unit of the 6th place
HALF = Q / 2
MONTH = Fraction(1, 12)

rates = st.integers(0, 10**6).map(lambda k: D(k).scaleb(-6))  # 0 .. 100 %, up to 6 places
market_rates = st.integers(0, 240_000).map(lambda k: D(k).scaleb(-6))  # 0 .. 24 %
bases = st.sampled_from((360, 365))
starts = st.one_of(st.sampled_from((date(2026, 1, 20), date(2026, 1, 21), date(2026, 1, 31), date(2024, 2, 29), date(2026, 12, 20))),
                   st.dates(date(2000, 1, 1), date(2060, 12, 31)))
settlements = st.sampled_from(("monthly", "quarterly"))


# --------------------------------------------------------------------------
# independent references
# --------------------------------------------------------------------------


def rhu(x: Fraction) -> int:
    """Round a non-negative Fraction half-up."""
    return math.floor(x + Fraction(1, 2))


def round_even(x: Fraction) -> Decimal:
    """A Fraction rounded half-even to 6 places, exactly."""
    scaled = x / Q
    low = math.floor(scaled)
    k = low + 1 if scaled - low > Fraction(1, 2) or (scaled - low == Fraction(1, 2) and low % 2) else low
    return D(k).scaleb(-6)


def payments_of(flows: tuple[CashFlow, ...]) -> tuple[int, list[tuple[int, Fraction]]]:
    """(received on day 0, [(paid, f_k) per period 1..n]) from the table."""
    received = sum(f.amount_fen for f in flows if f.period == 0)
    periods = sorted({f.period for f in flows if f.period})
    assert periods == list(range(1, len(periods) + 1)), "every period has a row"
    payments = []
    for k in periods:
        rows = [f for f in flows if f.period == k]
        assert len({(f.years, f.on, f.days) for f in rows}) == 1, "the rows of a period agree on its date and length"
        payments.append((-sum(f.amount_fen for f in rows), rows[0].years))
    return received, payments


def present_value(payments: list[tuple[int, Fraction]], i: Fraction) -> Fraction:
    """Σ c_k / Π_{j≤k}(1 + i·f_j), exactly, discounting forward."""
    value, discount = Fraction(0), Fraction(1)
    for paid, years in payments:
        discount /= 1 + i * years
        value += paid * discount
    return value


def slope(payments: list[tuple[int, Fraction]], i: Fraction) -> Fraction:
    """−d PV / d i: Σ c_k · Π_{j≤k}(1 + i·f_j)⁻¹ · Σ_{j≤k} f_j / (1 + i·f_j)."""
    total, discount, time = Fraction(0), Fraction(1), Fraction(0)
    for paid, years in payments:
        discount /= 1 + i * years
        time += years / (1 + i * years)
        total += paid * discount * time
    return total


def check_brackets(flows: tuple[CashFlow, ...], rate: Decimal) -> None:
    """`rate` is the root of the cash flows rounded half-even to 6 places."""
    assert rate.as_tuple().exponent == -6
    received, payments = payments_of(flows)
    low = present_value(payments, Fraction(rate) - HALF) - received  # ≥ 0: the root is at or above rate − ½
    high = present_value(payments, Fraction(rate) + HALF) - received  # ≤ 0: the root is at or below rate + ½
    assert low >= 0 >= high
    if low == 0 or high == 0:  # the root is half-way: the even neighbour
        assert int(rate.scaleb(6)) % 2 == 0


def fen_rounding(flows: tuple[CashFlow, ...], closed: Fraction, rate: Decimal) -> tuple[Fraction, Fraction]:
    """(E, tolerance): what the payments at the closed-form rate are worth above what was received, and
    the bound |root − closed| ≤ |E| / slope that E implies (module docstring)."""
    received, payments = payments_of(flows)
    excess = present_value(payments, closed) - received
    discounts, factor = Fraction(0), Fraction(1)
    for _, years in payments:
        factor /= 1 + closed * years
        discounts += factor
    assert abs(excess) <= discounts / 2, "each period's interest is off by at most half a fen"
    top = max(closed, Fraction(rate) + HALF)  # at least the root (check_brackets), so the slope there is the smallest
    return excess, abs(excess) / slope(payments, top)


def distance_to_half_way(x: Fraction) -> Fraction:
    scaled = x / Q
    return abs(scaled - math.floor(scaled) - Fraction(1, 2)) * Q


def closed_form(method: str, rate: Decimal, basis: int) -> Fraction:
    return Fraction(rate) * 365 / basis if method == REVOLVING else Fraction(rate)


def add_months(d: date, months: int) -> date:
    years, month0 = divmod(d.month - 1 + months, 12)
    year = d.year + years
    last = (date(year + (month0 + 1) // 12, (month0 + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month0 + 1, min(d.day, last))


def walk_paydays(start: date, maturity: date, quarterly: bool) -> list[date]:
    """Every 21st strictly between start and maturity (of Mar/Jun/Sep/Dec if quarterly), then the maturity."""
    days, d = [], start + timedelta(days=1)
    while d < maturity:
        if d.day == 21 and (not quarterly or d.month in (3, 6, 9, 12)):
            days.append(d)
        d += timedelta(days=1)
    return days + [maturity]


def invalid(call: Callable[[], object], field: str, reason: str, allowed: str) -> None:
    with pytest.raises(InvalidInput) as info:
        call()
    assert (info.value.field, info.value.reason, info.value.allowed) == (field, reason, allowed)
    assert info.value.message == f"{field}: {reason} (allowed: {allowed})"


# --------------------------------------------------------------------------
# closed forms
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method", SCHEDULED_METHODS)
@pytest.mark.parametrize("basis", [360, 365])
def test_a_monthly_schedule_without_fees_gives_back_its_rate(method: str, basis: int) -> None:
    # the basis does not enter a schedule of full months (interest = opening × rate / 12)
    assert annualized_rate(120_000_000, D("0.0435"), 12, method, basis_days=basis) == D("0.043500")
    assert str(annualized_rate(120_000_000, D("0.0435"), 12, method, basis_days=basis)) == "0.043500"


def test_a_revolving_line_gives_rate_times_365_over_its_basis() -> None:
    start = date(2025, 1, 10)
    assert annualized_rate(3_600_000, D("0.0360"), 3, REVOLVING, start=start) == D("0.036500")  # 3.6 % × 365/360
    assert annualized_rate(3_650_000, D("0.0360"), 3, REVOLVING, start=start, basis_days=365) == D("0.036000")
    # 3.33 % × 365/360 = 3.37625 % exactly: half-way, so half-even keeps the 2 (half-up would say 3.3763 %)
    assert annualized_rate(3_600_000, D("0.0333"), 12, REVOLVING, start=start) == D("0.033762")
    # 3.15 % × 365/360 = 3.19375 %: half-way, the even neighbour is up
    assert annualized_rate(3_600_000, D("0.0315"), 12, REVOLVING, start=start) == D("0.031938")
    assert annualized_rate(3_600_000, D(0), 12, REVOLVING, start=start) == D("0.000000")


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 1000), rate=rates, term=st.integers(1, 60), basis=bases, start=starts, settlement=settlements)
def test_a_line_whose_interest_is_whole_fen_gives_exactly_the_closed_form(m: int, rate: Decimal, term: int, basis: int, start: date,
                                                                          settlement: str) -> None:
    principal = m * 10**6 * basis  # principal × rate × days / basis is a whole number of fen for a 6-place rate
    got = annualized_rate(principal, rate, term, REVOLVING, basis_days=basis, start=start, settlement=settlement)
    assert got == round_even(Fraction(rate) * 365 / basis)
    if basis == 365:
        assert got == rate


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 10**4), rate=rates, term=st.integers(1, MAX_TERM_MONTHS), basis=bases)
def test_interest_only_whose_interest_is_whole_fen_gives_exactly_its_rate(m: int, rate: Decimal, term: int, basis: int) -> None:
    principal = m * 12 * 10**6  # principal × rate / 12 is a whole number of fen for a 6-place rate
    assert annualized_rate(principal, rate, term, INTEREST_ONLY, basis_days=basis) == rate


@settings(max_examples=80, deadline=None)
@given(method=st.sampled_from(METHODS), principal=st.integers(10**8, 10**12), rate=rates, term=st.integers(1, MAX_TERM_MONTHS),
       basis=bases, start=starts)
def test_loans_of_a_million_yuan_and_more_give_back_a_six_place_rate_exactly(method: str, principal: int, rate: Decimal, term: int,
                                                                            basis: int, start: date) -> None:
    # for a /360 line the closed form has more places (see test_the_fen_rounding_moves_the_rate_within_its_bound)
    if method == REVOLVING:
        basis, term = 365, min(term, 60)
    assert annualized_rate(principal, rate, term, method, basis_days=basis, start=start) == rate


@settings(max_examples=150, deadline=None)
@given(method=st.sampled_from(METHODS), principal=st.integers(1, 10**12), rate=rates, term=st.integers(1, 120), basis=bases,
       start=starts, settlement=settlements)
def test_the_fen_rounding_moves_the_rate_within_its_bound(method: str, principal: int, rate: Decimal, term: int, basis: int,
                                                          start: date, settlement: str) -> None:
    """Without fees, for every method (等额本金 included): the rate is the closed form up to the fen rounding's tolerance,
    on both sides, in the direction of E, and exactly the closed form when the tolerance cannot reach a half-way point."""
    kwargs = dict(basis_days=basis, start=start, settlement=settlement)
    flows = cash_flows(principal, rate, term, method, **kwargs)
    got = annualized_rate(principal, rate, term, method, **kwargs)
    check_brackets(flows, got)
    closed = closed_form(method, rate, basis)
    excess, tolerance = fen_rounding(flows, closed, got)
    assert closed - tolerance - HALF <= Fraction(got) <= closed + tolerance + HALF
    if excess >= 0:
        assert got >= round_even(closed)
    if excess <= 0:
        assert got <= round_even(closed)
    if excess == 0 or tolerance < distance_to_half_way(closed):
        assert got == round_even(closed)


def test_equal_principal_is_the_nominal_rate_up_to_the_fen() -> None:
    # 10,000 fen over 12 months at 4.35 %: 833 fen a month, 837 in the last; interest 36.25 → 36, 33.23 → 33, …
    flows = cash_flows(10_000, D("0.0435"), 12, EQUAL_PRINCIPAL)
    got = annualized_rate(10_000, D("0.0435"), 12, EQUAL_PRINCIPAL)
    excess, tolerance = fen_rounding(flows, Fraction(D("0.0435")), got)
    assert excess != 0 and got != D("0.043500")  # a few fen of rounding on 100 yuan show in the 6th place
    assert abs(Fraction(got) - Fraction(D("0.0435"))) <= tolerance + HALF
    # the same schedule of 100万 is the nominal rate
    assert annualized_rate(10**8, D("0.0435"), 12, EQUAL_PRINCIPAL) == D("0.043500")


# --------------------------------------------------------------------------
# fees
# --------------------------------------------------------------------------


def test_worked_example_equal_instalments_with_a_one_percent_fee() -> None:
    """1万 (1,000,000 fen) over 12 months at 4.35 %, 1 % (10,000 fen) deducted at disbursement."""
    principal, rate, n = 1_000_000, Fraction(435, 10_000), 12
    r = rate / 12  # 0.3625 % a month
    growth = (1 + r) ** n
    instalment = rhu(principal * r * growth / (growth - 1))
    assert instalment == 85_310  # 853.10 元 a month (853.099…); interest 3,625 the first month
    paid, opening = [], principal
    for k in range(n):
        interest = rhu(opening * r)
        part = opening if k == n - 1 else instalment - interest
        paid.append(part + interest)
        opening -= part
    assert paid[:-1] == [85_310] * 11 and paid[-1] == 85_309  # 85,001 of principal left + 308 of interest
    # the oracle: plain floats, Newton on the monthly rate y of 990,000 = Σ paid_k / (1 + y)^k
    y = 0.005
    for _ in range(50):
        f = sum(p / (1 + y) ** k for k, p in enumerate(paid, 1)) - 990_000
        df = sum(-k * p / (1 + y) ** (k + 1) for k, p in enumerate(paid, 1))
        y -= f / df
    reference = 12 * y  # 6.2288… %
    got = annualized_rate(principal, D("0.0435"), n, EQUAL_INSTALMENT, upfront_fee_fen=10_000)
    assert abs(float(got) - reference) < 1e-6
    assert got == D("0.062288")
    flows = cash_flows(principal, D("0.0435"), n, EQUAL_INSTALMENT, upfront_fee_fen=10_000)
    assert [-sum(f.amount_fen for f in flows if f.period == k) for k in range(1, n + 1)] == paid
    check_brackets(flows, got)


def test_worked_example_interest_only_with_a_monthly_fee() -> None:
    # 1.2万 at 6 %: 6,000 fen of interest and 1,000 of fee a month on 1,200,000: a coupon of 7,000, i.e. 7 % at par
    assert annualized_rate(1_200_000, D("0.06"), 12, INTEREST_ONLY, periodic_fee_fen=1_000) == D("0.070000")
    # the same fee deducted once instead: worth less than twelve of them
    once = annualized_rate(1_200_000, D("0.06"), 12, INTEREST_ONLY, upfront_fee_fen=1_000)
    assert D("0.06") < once < D("0.07")


@settings(max_examples=80, deadline=None)
@given(method=st.sampled_from(METHODS), principal=st.integers(100, 10**12), rate=market_rates, term=st.integers(1, MAX_TERM_MONTHS),
       basis=bases, start=starts, first_bp=st.integers(1, 4000), more_bp=st.integers(1, 4000))
def test_an_upfront_fee_raises_the_rate_and_a_bigger_fee_raises_it_more(method: str, principal: int, rate: Decimal, term: int,
                                                                       basis: int, start: date, first_bp: int, more_bp: int) -> None:
    """A fee of at least 1 bp of the principal moves the rate by more than a unit of the 6th place (even over 30 years at 0 %:
    10⁻⁴ / 30 years ≈ 3·10⁻⁶); a smaller one may vanish in the rounding, but never lowers the rate."""
    if method == REVOLVING:
        term = min(term, 60)
    fee = -(-principal * first_bp // 10_000)  # ⌈principal × bp⌉
    bigger = fee + -(-principal * more_bp // 10_000)
    kwargs = dict(basis_days=basis, start=start)
    no_fee = annualized_rate(principal, rate, term, method, **kwargs)
    with_fee = annualized_rate(principal, rate, term, method, upfront_fee_fen=fee, **kwargs)
    with_more = annualized_rate(principal, rate, term, method, upfront_fee_fen=bigger, **kwargs)
    assert no_fee < with_fee < with_more
    assert annualized_rate(principal, rate, term, method, upfront_fee_fen=1, **kwargs) >= no_fee
    check_brackets(cash_flows(principal, rate, term, method, upfront_fee_fen=fee, **kwargs), with_fee)


@settings(max_examples=60, deadline=None)
@given(method=st.sampled_from(METHODS), principal=st.integers(100, 10**12), rate=market_rates, term=st.integers(1, 60),
       basis=bases, start=starts, settlement=settlements, fee_bp=st.integers(1, 10))
def test_a_periodic_fee_raises_the_rate(method: str, principal: int, rate: Decimal, term: int, basis: int, start: date,
                                        settlement: str, fee_bp: int) -> None:
    fee = -(-principal * fee_bp // 10_000)
    kwargs = dict(basis_days=basis, start=start, settlement=settlement)
    no_fee = annualized_rate(principal, rate, term, method, **kwargs)
    got = annualized_rate(principal, rate, term, method, periodic_fee_fen=fee, **kwargs)
    assert no_fee < got < annualized_rate(principal, rate, term, method, periodic_fee_fen=2 * fee, **kwargs)
    check_brackets(cash_flows(principal, rate, term, method, periodic_fee_fen=fee, **kwargs), got)


@settings(max_examples=60, deadline=None)
@given(method=st.sampled_from(SCHEDULED_METHODS), principal=st.integers(1, 10**12), rate=rates, term=st.integers(1, MAX_TERM_MONTHS),
       basis=bases, start=starts, fee_share=st.fractions(0, Fraction(1, 2)))
def test_the_ledger_prices_the_same_schedule_alike(method: str, principal: int, rate: Decimal, term: int, basis: int, start: date,
                                                   fee_share: Fraction) -> None:
    """`sandu.ledger.schedule.annualized_rate` prices the posted schedule with its upfront fees; it rounds half-up, so the two
    differ only when the root is exactly half-way and the 6th place below is even."""
    fee = int(principal * fee_share)
    got = annualized_rate(principal, rate, term, method, basis_days=basis, upfront_fee_fen=fee, start=start)
    schedule = build_schedule(method, principal, rate, start, add_months(start, term), basis_days=basis)
    ledger = ledger_annualized_rate(principal, start, schedule, fee)
    if got != ledger:
        received, payments = payments_of(cash_flows(principal, rate, term, method, basis_days=basis, upfront_fee_fen=fee))
        assert ledger == got + Q and present_value(payments, Fraction(got) + HALF) == received


# --------------------------------------------------------------------------
# the cash-flow table
# --------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(method=st.sampled_from(SCHEDULED_METHODS), principal=st.integers(1, 10**12), rate=rates, term=st.integers(1, MAX_TERM_MONTHS),
       basis=bases, start=starts, upfront=st.integers(0, 99), periodic=st.integers(0, 99))
def test_a_monthly_table_is_the_ledgers_schedule(method: str, principal: int, rate: Decimal, term: int, basis: int, start: date,
                                                 upfront: int, periodic: int) -> None:
    assume(upfront < principal and periodic < principal)
    schedule = build_schedule(method, principal, rate, start, add_months(start, term), basis_days=basis)
    dated = cash_flows(principal, rate, term, method, basis_days=basis, start=start, upfront_fee_fen=upfront, periodic_fee_fen=periodic)
    undated = cash_flows(principal, rate, term, method, basis_days=basis, upfront_fee_fen=upfront, periodic_fee_fen=periodic)
    assert [(f.period, f.kind, f.amount_fen, f.years) for f in dated] == [(f.period, f.kind, f.amount_fen, f.years) for f in undated]
    assert {f.on for f in undated} == {None} and all(f.days is None for f in dated)
    opening = [f for f in dated if f.period == 0]
    assert opening[0] == CashFlow(0, start, FlowKind.DISBURSEMENT, principal, Fraction(0))
    assert opening[1:] == ([CashFlow(0, start, FlowKind.UPFRONT_FEE, -upfront, Fraction(0))] if upfront else [])
    for item in schedule:
        rows = {f.kind: f for f in dated if f.period == item.seq}
        assert {f.on for f in rows.values()} == {item.due_on} and {f.years for f in rows.values()} == {MONTH}
        assert rows[FlowKind.INTEREST].amount_fen == -item.interest_fen
        assert (rows[FlowKind.PRINCIPAL].amount_fen if FlowKind.PRINCIPAL in rows else 0) == -item.principal_fen
        assert (rows[FlowKind.PERIODIC_FEE].amount_fen if FlowKind.PERIODIC_FEE in rows else 0) == -periodic
        assert all(f.amount_fen for f in rows.values() if f.kind != FlowKind.INTEREST)
    assert dated[-1].period == term == len(schedule)


@settings(max_examples=60, deadline=None)
@given(principal=st.integers(1, 10**12), rate=rates, term=st.integers(1, 60), basis=bases, start=starts, settlement=settlements,
       periodic=st.integers(0, 99))
def test_a_revolving_table_settles_on_the_20th_and_pays_on_the_21st(principal: int, rate: Decimal, term: int, basis: int, start: date,
                                                                    settlement: str, periodic: int) -> None:
    assume(periodic < principal)
    flows = cash_flows(principal, rate, term, REVOLVING, basis_days=basis, start=start, settlement=settlement, periodic_fee_fen=periodic)
    maturity = add_months(start, term)
    paydays = walk_paydays(start, maturity, settlement == "quarterly")
    previous = start
    for k, payday in enumerate(paydays, 1):
        rows = {f.kind: f for f in flows if f.period == k}
        days = (payday - previous).days
        assert {(f.on, f.days, f.years) for f in rows.values()} == {(payday, days, Fraction(days, 365))}
        assert rows[FlowKind.INTEREST].amount_fen == -rhu(principal * Fraction(rate) * days / basis)  # 算头不算尾: start to payday − 1
        assert (rows[FlowKind.PRINCIPAL].amount_fen if FlowKind.PRINCIPAL in rows else 0) == (-principal if payday == maturity else 0)
        assert (rows[FlowKind.PERIODIC_FEE].amount_fen if FlowKind.PERIODIC_FEE in rows else 0) == -periodic
        previous = payday
    assert flows[-1].period == len(paydays)
    assert sum(f.days for f in flows if f.kind == FlowKind.INTEREST) == (maturity - start).days


def test_worked_example_revolving_line() -> None:
    # 3.6万 at 3.6 % /360 drawn 10 Jan 2025 for 3 months: 360 fen a day; settled on the 20th, paid on the 21st
    flows = cash_flows(3_600_000, D("0.036"), 3, REVOLVING, start=date(2025, 1, 10), upfront_fee_fen=36_000)
    assert [(f.period, f.on, f.kind.value, f.amount_fen, f.days) for f in flows] == [
        (0, date(2025, 1, 10), "disbursement", 3_600_000, None),
        (0, date(2025, 1, 10), "upfront_fee", -36_000, None),
        (1, date(2025, 1, 21), "interest", -3_960, 11),  # 10–20 Jan
        (2, date(2025, 2, 21), "interest", -11_160, 31),  # 21 Jan – 20 Feb
        (3, date(2025, 3, 21), "interest", -10_080, 28),  # 21 Feb – 20 Mar
        (4, date(2025, 4, 10), "interest", -7_200, 20),  # 21 Mar – 9 Apr, with the principal
        (4, date(2025, 4, 10), "principal", -3_600_000, 20),
    ]
    assert [f.years for f in flows if f.kind == FlowKind.INTEREST] == [Fraction(11, 365), Fraction(31, 365), Fraction(28, 365), Fraction(20, 365)]
    got = annualized_rate(3_600_000, D("0.036"), 3, REVOLVING, start=date(2025, 1, 10), upfront_fee_fen=36_000)
    check_brackets(flows, got)
    assert got == D("0.077553")  # 1 % over 90 days adds about 4 % a year (float bisection of these flows: 0.0775529…)


def test_revolving_edges_of_the_calendar() -> None:
    # drawn on a settlement day: that day's interest is settled the same evening, paid the next day
    flows = cash_flows(3_600_000, D("0.036"), 1, REVOLVING, start=date(2026, 1, 20))
    assert [(f.on, f.days) for f in flows if f.kind == FlowKind.INTEREST] == [(date(2026, 1, 21), 1), (date(2026, 2, 20), 30)]
    # maturity on the 21st: the last settlement's interest and the principal fall due together
    flows = cash_flows(3_600_000, D("0.036"), 1, REVOLVING, start=date(2026, 1, 21))
    assert [(f.on, f.kind.value, f.days) for f in flows if f.period] == [(date(2026, 2, 21), "interest", 31), (date(2026, 2, 21), "principal", 31)]
    # quarterly: only the 21st of Mar/Jun/Sep/Dec
    flows = cash_flows(3_600_000, D("0.036"), 12, REVOLVING, start=date(2026, 1, 5), settlement="quarterly")
    assert [f.on for f in flows if f.kind == FlowKind.INTEREST] == [date(2026, 3, 21), date(2026, 6, 21), date(2026, 9, 21),
                                                                    date(2026, 12, 21), date(2027, 1, 5)]
    # the longest line
    assert len([f for f in cash_flows(10**8, D("0.0435"), MAX_TERM_MONTHS, REVOLVING, start=date(2026, 1, 5)) if f.kind == FlowKind.INTEREST]) == 361


@settings(max_examples=60, deadline=None)
@given(method=st.sampled_from(METHODS), principal=st.integers(1, 10**12), rate=rates, term=st.integers(1, 60), basis=bases, start=starts,
       upfront_share=st.fractions(0, Fraction(9, 10)), periodic_share=st.fractions(0, Fraction(1, 100)))
def test_the_rate_is_the_root_of_the_table(method: str, principal: int, rate: Decimal, term: int, basis: int, start: date,
                                           upfront_share: Fraction, periodic_share: Fraction) -> None:
    kwargs = dict(basis_days=basis, start=start, upfront_fee_fen=int(principal * upfront_share), periodic_fee_fen=int(principal * periodic_share))
    try:
        got = annualized_rate(principal, rate, term, method, **kwargs)
    except InvalidInput as error:  # fees worth more than 100,000 % a year
        received, payments = payments_of(cash_flows(principal, rate, term, method, **kwargs))
        assert present_value(payments, Fraction(MAX_ANNUALIZED_RATE)) > received
        assert error.field in ("upfront_fee_fen", "periodic_fee_fen")
        return
    check_brackets(cash_flows(principal, rate, term, method, **kwargs), got)


# --------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------

RATE_ALLOWED = "a Decimal in 0..1 with at most 18 decimal places, e.g. Decimal('0.0435')"


def call(table: bool = False, **changes: object) -> Callable[[], object]:
    """annualized_rate (or cash_flows) of a 12-month 等额本息 of 1万 at 4.35 %, with `changes`."""
    args: dict[str, object] = dict(principal_fen=1_000_000, rate_annual=D("0.0435"), term_months=12, method=EQUAL_INSTALMENT)
    args.update(changes)
    return lambda: (cash_flows if table else annualized_rate)(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [
    dict(principal_fen=1), dict(principal_fen=MAX_AMOUNT_FEN), dict(rate_annual=D(0)), dict(rate_annual=D(1)),
    dict(rate_annual=D("0." + "0" * 17 + "1")), dict(term_months=1), dict(term_months=MAX_TERM_MONTHS), dict(basis_days=365),
    dict(upfront_fee_fen=999_999), dict(periodic_fee_fen=999_999), dict(settlement="quarterly"), dict(start=date(2026, 1, 31)),
])
def test_bounds_are_accepted_on_their_side(changes: dict[str, object]) -> None:
    flows = call(table=True, **changes)()
    assert isinstance(flows, tuple) and flows[0].kind == FlowKind.DISBURSEMENT
    if changes.get("upfront_fee_fen") == 999_999:  # 1 fen received: accepted as a loan, its rate is far beyond 100,000 %
        invalid(call(**changes), "upfront_fee_fen", "the fees make the annualized rate exceed 100000%", "fees whose annualized rate is at most 100000%")
    else:
        check_brackets(flows, call(**changes)())  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "field", "reason", "allowed"), [
    (dict(principal_fen=0), "principal_fen", "must be positive, got 0", f"integer fen 1..{MAX_AMOUNT_FEN}"),
    (dict(principal_fen=-5), "principal_fen", "must be positive, got -5", f"integer fen 1..{MAX_AMOUNT_FEN}"),
    (dict(principal_fen=MAX_AMOUNT_FEN + 1), "principal_fen", f"must be at most {MAX_AMOUNT_FEN} fen, got {MAX_AMOUNT_FEN + 1}",
     f"integer fen 1..{MAX_AMOUNT_FEN}"),
    (dict(principal_fen=1000.0), "principal_fen", "must be a whole number of fen (int), got 1000.0", f"integer fen 1..{MAX_AMOUNT_FEN}"),
    (dict(principal_fen=D("1000.5")), "principal_fen", "must be a whole number of fen (int), got Decimal('1000.5')", f"integer fen 1..{MAX_AMOUNT_FEN}"),
    (dict(principal_fen=True), "principal_fen", "must be a whole number of fen (int), got True", f"integer fen 1..{MAX_AMOUNT_FEN}"),
    (dict(upfront_fee_fen=-1), "upfront_fee_fen", "must not be negative, got -1", "integer fen 0..999999 (below the principal)"),
    (dict(upfront_fee_fen=1_000_000), "upfront_fee_fen", "a fee of 1000000 fen is not below the principal of 1000000 fen",
     "integer fen 0..999999 (below the principal)"),
    (dict(upfront_fee_fen=1.5), "upfront_fee_fen", "must be a whole number of fen (int), got 1.5", "integer fen 0..999999 (below the principal)"),
    (dict(upfront_fee_fen=False), "upfront_fee_fen", "must be a whole number of fen (int), got False", "integer fen 0..999999 (below the principal)"),
    (dict(periodic_fee_fen=-1), "periodic_fee_fen", "must not be negative, got -1", "integer fen 0..999999 (below the principal)"),
    (dict(periodic_fee_fen=1_000_000), "periodic_fee_fen", "a fee of 1000000 fen is not below the principal of 1000000 fen",
     "integer fen 0..999999 (below the principal)"),
    (dict(rate_annual=D("-0.000001")), "rate_annual", "must not be negative, got -0.000001", RATE_ALLOWED),
    (dict(rate_annual=D("1.000001")), "rate_annual", "must be at most 1 (100 %), got 1.000001", RATE_ALLOWED),
    (dict(rate_annual=0.0435), "rate_annual", "must be a Decimal, got 0.0435", RATE_ALLOWED),
    (dict(rate_annual="0.0435"), "rate_annual", "must be a Decimal, got '0.0435'", RATE_ALLOWED),
    (dict(rate_annual=0), "rate_annual", "must be a Decimal, got 0", RATE_ALLOWED),
    (dict(rate_annual=D("NaN")), "rate_annual", "must be a finite number, got Decimal('NaN')", RATE_ALLOWED),
    (dict(rate_annual=D("Infinity")), "rate_annual", "must be a finite number, got Decimal('Infinity')", RATE_ALLOWED),
    (dict(rate_annual=D("0." + "0" * 18 + "1")), "rate_annual", "has more than 18 decimal places: 1E-19", RATE_ALLOWED),
    (dict(basis_days=359), "basis_days", "unsupported day-count basis 359", "360 or 365"),
    (dict(basis_days=366), "basis_days", "unsupported day-count basis 366", "360 or 365"),
    (dict(basis_days=360.0), "basis_days", "unsupported day-count basis 360.0", "360 or 365"),
    (dict(term_months=0), "term_months", "term of 0 months is out of range", "an int 1..360"),
    (dict(term_months=MAX_TERM_MONTHS + 1), "term_months", "term of 361 months is out of range", "an int 1..360"),
    (dict(term_months=12.0), "term_months", "must be a whole number of months (int), got 12.0", "an int 1..360"),
    (dict(term_months=True), "term_months", "must be a whole number of months (int), got True", "an int 1..360"),
    (dict(method="等额"), "method", "unknown repayment method '等额'", ", ".join(METHODS)),
    (dict(method=None), "method", "unknown repayment method None", ", ".join(METHODS)),
    (dict(method=REVOLVING), "start", "a revolving line counts interest by the day from its start date, and none was given", "a datetime.date"),
    (dict(start="2026-01-01"), "start", "expected a date, got '2026-01-01'", "a datetime.date (not a datetime), or None for a monthly schedule"),
    (dict(start=datetime(2026, 1, 1)), "start", "expected a date, got datetime.datetime(2026, 1, 1, 0, 0)",
     "a datetime.date (not a datetime), or None for a monthly schedule"),
    (dict(start=date(9999, 1, 1)), "start", "9999-01-01 + 12 months is past the end of the calendar", "a date at most 12 months before 9999-12-31"),
    (dict(settlement="weekly"), "settlement", "unknown settlement frequency 'weekly'", "'monthly' or 'quarterly'"),
])
def test_bad_input_is_refused_naming_the_field(changes: dict[str, object], field: str, reason: str, allowed: str) -> None:
    invalid(call(**changes), field, reason, allowed)
    invalid(call(**changes, table=True), field, reason, allowed)


def test_the_last_date_of_the_calendar_is_reachable() -> None:
    flows = cash_flows(3_600_000, D("0.0435"), 12, REVOLVING, start=date(9998, 12, 31))
    assert flows[-1].on == date(9999, 12, 31)
    assert annualized_rate(3_600_000, D("0.0435"), 12, REVOLVING, start=date(9998, 12, 31)) == D("0.044104")  # 4.35 % × 365/360
    assert annualized_rate(1_000_000, D("0.0435"), 12, EQUAL_INSTALMENT, start=date(9998, 12, 31)) == D("0.043500")


def test_fees_beyond_100000_percent_a_year_are_refused_on_both_sides_of_the_limit() -> None:
    # one month, no interest: 253,000 fen repaid for 3,000 received is 12 × (253,000 / 3,000 − 1) = 1000 (100,000 %) exactly
    assert annualized_rate(253_000, D(0), 1, INTEREST_ONLY, upfront_fee_fen=250_000) == D("1000.000000")
    reason, allowed = "the fees make the annualized rate exceed 100000%", "fees whose annualized rate is at most 100000%"
    invalid(lambda: annualized_rate(253_000, D(0), 1, INTEREST_ONLY, upfront_fee_fen=250_001), "upfront_fee_fen", reason, allowed)


# --------------------------------------------------------------------------
# purity
# --------------------------------------------------------------------------


def test_the_engine_imports_only_the_standard_library_and_pure_sandu_modules() -> None:
    tree = ast.parse(Path(apr_module.__file__).read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    ours = {m for m in imported if m.split(".")[0] == "sandu"}
    assert ours <= {"sandu.domain.dates", "sandu.domain.enums", "sandu.domain.errors", "sandu.domain.money", "sandu.ledger.interest",
                    "sandu.ledger.schedule"}
    assert {m.split(".")[0] for m in imported - ours} <= set(sys.stdlib_module_names) | {"__future__"}
