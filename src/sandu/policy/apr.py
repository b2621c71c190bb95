"""Annualized rate (年化利率) of a loan: the IRR of its cash flows, fees included.

Pure: no database, no settings, no clock, no I/O. Money is integer fen; rates
are `Decimal`. PBoC announcement 2021 No. 3 asks for the annualized rate of
every price shown, covering interest and the fees tied to the loan; this module
computes it for the four repayment methods of `sandu.ledger.schedule`.

The loan
--------
``principal_fen`` lent at the nominal annual ``rate_annual`` (a `Decimal` in
0..1) with day-count basis ``basis_days`` (360 or 365), for ``term_months``
(1..360) months, repaid by ``method``; fees are ``upfront_fee_fen`` (deducted
at disbursement, i.e. paid on day 0) and ``periodic_fee_fen`` (paid with every
payment), integers ≥ 0 and below the principal.

Cash flows (the borrower's side: + received, − paid)
----------------------------------------------------
Period 0 is the disbursement: + principal, − upfront fee. Periods 1..n are the
borrower's payments, each the interest of the period, the principal due and the
periodic fee. Each period has a length ``f_k`` in years:

* ``等额本息``, ``等额本金``, ``按月付息到期还本`` — the ledger's schedule,
  `sandu.ledger.schedule.build_schedule`, drawn on the start date and maturing
  ``term_months`` later (`sandu.domain.dates.add_months`), so every period is a
  full month whose interest the ledger computes as ``opening × rate / 12`` (it
  uses the basis only for broken periods, which this loan has none of); the
  instalments are rounded to the fen with the remainder in the last, exactly as
  they will be posted. ``f_k = 1/12``. The amounts do not depend on the start
  date, which only dates the table: without it the periods are numbered, not
  dated.
* ``随借随还`` — interest by the day (算头不算尾) on the principal, settled on
  the 20th of every month (or of Mar/Jun/Sep/Dec, ``settlement``); end of day
  settles the days through the 20th and the interest falls due on the 21st
  (结息日 D, 付息日 D + 1, as `sandu.servicing.close` posts it). So the payment
  dates are each 21st after ``start`` and before the maturity, then the
  maturity, when the principal is repaid with the interest of the days since
  the last 21st (利随本清 at maturity). A period of ``d`` days, from the previous
  payment date (or ``start``) to its payment date, carries the interest the
  ledger posts for ``principal × d`` fen-days,
  ``round_half_up(principal × rate × d / basis_days)``
  (`sandu.ledger.interest.interest_on_fen_days`), and ``f_k = d / 365``. The
  start date is required.

The rate
--------
The annualized rate ``i`` solves, with ``N`` the net amount received on day 0
(principal − upfront fee) and ``c_k`` the k-th payment,

    Σ_k c_k / Π_{j≤k} (1 + i·f_j) = N,

compounding at each payment: 12 × the monthly IRR for a monthly schedule, the
day-weighted equivalent for a line. The left side falls strictly as ``i``
grows and is at least ``N`` at ``i = 0`` (payments total at least the
principal), so the root is unique and ≥ 0. It is found by Newton's method kept
inside a shrinking bracket ``[0, MAX_ANNUALIZED_RATE]`` (a bisection whenever a
step would leave it) in 50-digit `Decimal` arithmetic, to well within 10⁻¹², in
at most `MAX_BISECTIONS` steps, then rounded half-even to `APR_PLACES` (6)
places. That rounding is checked exactly: the present value at the two
half-way points around the rounded value is compared with ``N`` in integer
arithmetic, so the result is the root correctly rounded even when the root lies
exactly on a half (as ``3.33 % × 365/360 = 3.37625 %`` does: → 3.3762 %).
A root above `MAX_ANNUALIZED_RATE` (100,000 %) is refused as a fee far out of
proportion to the loan.

Checks that follow from the definition (before the fen rounding): ``等额本息``,
``等额本金`` and ``按月付息到期还本`` without fees give back ``rate``; a
revolving line gives ``rate × 365 / basis_days`` — a period's interest is then
exactly ``principal·i·f_k``, so the loan is at par at that rate. The posted interest is
rounded to the fen each period; if ``e_k`` is that rounding (|e_k| ≤ ½ fen),
the payments at the nominal rate are worth ``principal + Σ e_k·v_k`` (``v_k``
the discount factor), so the annualized rate moves off the closed form by that
sum over the present value's slope — nothing when every interest is a whole
number of fen, of the order of 10⁻⁸ for loans of 100万 (10⁸ fen) and more,
but hundreds of units of the 6th place on a loan of 100 元 (12 months of
等额本息 at 4.35 % on 10,000 fen: 4.2926 %). The tests check the bound on
both sides.

`cash_flows` gives the table a decision page can show; `annualized_rate` is
computed from that same table.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from fractions import Fraction

from sandu.domain.dates import add_months
from sandu.domain.enums import Settlement
from sandu.domain.errors import InvalidInput, shorten, show
from sandu.domain.money import MAX_AMOUNT_FEN
from sandu.ledger.interest import ALLOWED_BASIS_DAYS, MAX_RATE_PLACES, interest_on_fen_days, settlement_dates
from sandu.ledger.schedule import MAX_ANNUALIZED_RATE, METHODS, REVOLVING, build_schedule

__all__ = [
    "APR_PLACES",
    "MAX_ANNUALIZED_RATE",
    "MAX_BISECTIONS",
    "MAX_TERM_MONTHS",
    "SETTLEMENT_DAY",
    "CashFlow",
    "FlowKind",
    "annualized_rate",
    "cash_flows",
]

APR_PLACES = 6
MAX_TERM_MONTHS = 360
SETTLEMENT_DAY = 20  # interest settles on the 20th (DOMAIN.md), falls due on the 21st
DAYS_PER_YEAR = 365  # the annualized rate's year, whatever the basis of the interest
MONTH = Fraction(1, 12)
MAX_BISECTIONS = 64  # 1000 / 2**50 < 10**-12: the bisection stops after 50

_QUANTUM = Decimal(1).scaleb(-APR_PLACES)
_HALF_QUANTUM = Fraction(1, 2 * 10**APR_PLACES)
_TOLERANCE = Decimal(1).scaleb(-12)
_STEP_DONE = Decimal(1).scaleb(-16)  # a Newton step this small: quadratic convergence puts the root far closer than _TOLERANCE
_FIRST_GUESS = Decimal("0.05")
_SOLVER = decimal.Context(prec=50, rounding=ROUND_HALF_EVEN, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])
# A monthly schedule priced without a start date is laid out from this date: its amounts do not depend on it.
_UNDATED_START = date(2001, 1, 1)


class FlowKind(StrEnum):
    DISBURSEMENT = "disbursement"  # + the principal, period 0
    UPFRONT_FEE = "upfront_fee"  # − deducted at disbursement, period 0
    INTEREST = "interest"  # − the period's interest (every period, 0 included)
    PRINCIPAL = "principal"  # − principal repaid (when any)
    PERIODIC_FEE = "periodic_fee"  # − the fee paid with each payment (when any)


@dataclass(frozen=True)
class CashFlow:
    """One row of a loan's cash flows, from the borrower's side (+ received, − paid).

    `period` 0 is the disbursement, 1..n the payments; `on` is its date (None
    for a monthly schedule priced without a start date); `years` is the length
    of the period that ends with it — 1/12 for a month, days/365 by the day, 0
    in period 0 — the ``f_k`` of the module docstring; `days` is that period's
    number of days when interest is counted by the day (else None).
    """

    period: int
    on: date | None
    kind: FlowKind
    amount_fen: int
    years: Fraction
    days: int | None = None


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_principal(value: object) -> int:
    allowed = f"integer fen 1..{MAX_AMOUNT_FEN}"
    if not _is_int(value):
        raise InvalidInput("principal_fen", f"must be a whole number of fen (int), got {show(value)}", allowed)
    assert isinstance(value, int)
    if value <= 0:
        raise InvalidInput("principal_fen", f"must be positive, got {value}", allowed)
    if value > MAX_AMOUNT_FEN:
        raise InvalidInput("principal_fen", f"must be at most {MAX_AMOUNT_FEN} fen, got {show(value)}", allowed)
    return value


def _check_fee(value: object, field: str, principal_fen: int) -> int:
    allowed = f"integer fen 0..{principal_fen - 1} (below the principal)"
    if not _is_int(value):
        raise InvalidInput(field, f"must be a whole number of fen (int), got {show(value)}", allowed)
    assert isinstance(value, int)
    if value < 0:
        raise InvalidInput(field, f"must not be negative, got {value}", allowed)
    if value >= principal_fen:
        raise InvalidInput(field, f"a fee of {show(value)} fen is not below the principal of {principal_fen} fen", allowed)
    return value


def _check_rate(value: object) -> Decimal:
    allowed = f"a Decimal in 0..1 with at most {MAX_RATE_PLACES} decimal places, e.g. Decimal('0.0435')"
    if not isinstance(value, Decimal):
        raise InvalidInput("rate_annual", f"must be a Decimal, got {show(value)}", allowed)
    if not value.is_finite():
        raise InvalidInput("rate_annual", f"must be a finite number, got {show(value)}", allowed)
    if value < 0:
        raise InvalidInput("rate_annual", f"must not be negative, got {shorten(str(value))}", allowed)
    if value > 1:
        raise InvalidInput("rate_annual", f"must be at most 1 (100 %), got {shorten(str(value))}", allowed)
    if 10**MAX_RATE_PLACES % value.as_integer_ratio()[1]:
        raise InvalidInput("rate_annual", f"has more than {MAX_RATE_PLACES} decimal places: {shorten(str(value))}", allowed)
    return value


def _check_basis(value: object) -> int:
    if not _is_int(value) or value not in ALLOWED_BASIS_DAYS:
        raise InvalidInput("basis_days", f"unsupported day-count basis {show(value)}", "360 or 365")
    assert isinstance(value, int)
    return value


def _check_term(value: object) -> int:
    allowed = f"an int 1..{MAX_TERM_MONTHS}"
    if not _is_int(value):
        raise InvalidInput("term_months", f"must be a whole number of months (int), got {show(value)}", allowed)
    assert isinstance(value, int)
    if not 1 <= value <= MAX_TERM_MONTHS:
        raise InvalidInput("term_months", f"term of {value} months is out of range", allowed)
    return value


def _check_method(value: object) -> str:
    if not isinstance(value, str) or value not in METHODS:
        raise InvalidInput("method", f"unknown repayment method {show(value)}", ", ".join(METHODS))
    return value


def _check_settlement(value: object) -> Settlement:
    allowed = " or ".join(f"'{s.value}'" for s in Settlement)
    if not isinstance(value, str) or value not in {s.value for s in Settlement}:
        raise InvalidInput("settlement", f"unknown settlement frequency {show(value)}", allowed)
    return Settlement(value)


def _check_start(value: object, method: str) -> date | None:
    if value is None and method == REVOLVING:
        raise InvalidInput("start", "a revolving line counts interest by the day from its start date, and none was given", "a datetime.date")
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        raise InvalidInput("start", f"expected a date, got {show(value)}", "a datetime.date (not a datetime), or None for a monthly schedule")
    return value


def _maturity(start: date, term_months: int) -> date:
    try:
        return add_months(start, term_months)
    except ValueError:  # past 9999-12-31
        raise InvalidInput("start", f"{start} + {term_months} months is past the end of the calendar",
                           f"a date at most {term_months} months before {date.max}") from None


# --------------------------------------------------------------------------
# cash flows
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Payment:
    on: date | None
    years: Fraction
    days: int | None
    interest_fen: int
    principal_fen: int


def _scheduled(method: str, principal_fen: int, rate: Decimal, term_months: int, basis_days: int, start: date | None) -> list[_Payment]:
    """The ledger's own schedule: every period a full month (module docstring)."""
    drawn_on = start or _UNDATED_START
    schedule = build_schedule(method, principal_fen, rate, drawn_on, _maturity(drawn_on, term_months), basis_days=basis_days)
    if len(schedule) != term_months or not all(item.full_month for item in schedule):
        raise AssertionError(f"a {term_months}-month schedule from {drawn_on} is not {term_months} full months")
    return [_Payment(item.due_on if start else None, MONTH, None, item.interest_fen, item.principal_fen) for item in schedule]


def _by_the_day(principal_fen: int, rate: Decimal, term_months: int, basis_days: int, start: date, settlement: Settlement) -> list[_Payment]:
    """Interest settled on the 20th, due on the 21st; the principal and the rest of the interest at maturity."""
    maturity = _maturity(start, term_months)
    paydays = [day + timedelta(days=1) for day in settlement_dates(start, maturity, settlement.value, SETTLEMENT_DAY)]
    paydays = [day for day in paydays if day < maturity] + [maturity]
    payments: list[_Payment] = []
    previous = start
    for payday in paydays:
        days = (payday - previous).days
        interest = interest_on_fen_days(principal_fen * days, rate, basis_days)
        payments.append(_Payment(payday, Fraction(days, DAYS_PER_YEAR), days, interest, principal_fen if payday == maturity else 0))
        previous = payday
    return payments


def cash_flows(
    principal_fen: int,
    rate_annual: Decimal,
    term_months: int,
    method: str,
    *,
    basis_days: int = 360,
    upfront_fee_fen: int = 0,
    periodic_fee_fen: int = 0,
    start: date | None = None,
    settlement: str = Settlement.MONTHLY,
) -> tuple[CashFlow, ...]:
    """The loan's cash flows, period by period, from the borrower's side (module docstring).

    Period 0: the disbursement (+) and the upfront fee (−, when any). Each later
    period: its interest (−, always listed), principal (−, when any) and
    periodic fee (−, when any). `start` is required for ``随借随还``; for the
    monthly schedules it only dates the rows. `settlement` ('monthly' or
    'quarterly') matters only for ``随借随还``.
    """
    principal_fen = _check_principal(principal_fen)
    rate = _check_rate(rate_annual)
    term = _check_term(term_months)
    method = _check_method(method)
    basis = _check_basis(basis_days)
    upfront = _check_fee(upfront_fee_fen, "upfront_fee_fen", principal_fen)
    periodic = _check_fee(periodic_fee_fen, "periodic_fee_fen", principal_fen)
    frequency = _check_settlement(settlement)
    start = _check_start(start, method)
    if method == REVOLVING:
        assert start is not None
        payments = _by_the_day(principal_fen, rate, term, basis, start, frequency)
    else:
        payments = _scheduled(method, principal_fen, rate, term, basis, start)

    rows = [CashFlow(0, start, FlowKind.DISBURSEMENT, principal_fen, Fraction(0))]
    if upfront:
        rows.append(CashFlow(0, start, FlowKind.UPFRONT_FEE, -upfront, Fraction(0)))
    for period, p in enumerate(payments, start=1):
        rows.append(CashFlow(period, p.on, FlowKind.INTEREST, -p.interest_fen, p.years, p.days))
        if p.principal_fen:
            rows.append(CashFlow(period, p.on, FlowKind.PRINCIPAL, -p.principal_fen, p.years, p.days))
        if periodic:
            rows.append(CashFlow(period, p.on, FlowKind.PERIODIC_FEE, -periodic, p.years, p.days))
    if sum(row.amount_fen for row in rows if row.kind in (FlowKind.DISBURSEMENT, FlowKind.PRINCIPAL)) != 0:
        raise AssertionError("the principal repaid is not the principal lent")
    return tuple(rows)


# --------------------------------------------------------------------------
# the rate
# --------------------------------------------------------------------------


def _present_value(payments: Sequence[tuple[int, Fraction]], rate: Decimal) -> tuple[Decimal, Decimal]:
    """Σ c_k / Π_{j≤k}(1 + rate·f_j) and its slope in the rate, in 50-digit Decimal, by Horner from the last
    payment: with g = 1 + rate·f, v ← (v + c) / g and v' ← (v' − v·f) / g."""
    with decimal.localcontext(_SOLVER):
        value = slope = Decimal(0)
        for paid_fen, years in reversed(payments):
            g = (years.denominator + rate * years.numerator) / years.denominator
            value = (value + paid_fen) / g
            slope = (slope - value * years.numerator / years.denominator) / g
    return value, slope


def _compare_exactly(payments: Sequence[tuple[int, Fraction]], received_fen: int, rate: Fraction) -> int:
    """The sign of (present value at `rate`) − `received_fen`, in exact integer arithmetic."""
    num, den = 0, 1  # the present value so far, num / den, den > 0
    a, b = rate.numerator, rate.denominator
    for paid_fen, years in reversed(payments):
        scale = b * years.denominator  # 1 + rate·years = (scale + a·p) / scale, > 0 for any rate > −1
        num, den = (num + paid_fen * den) * scale, den * (scale + a * years.numerator)
    difference = num - received_fen * den
    return (difference > 0) - (difference < 0)


def _is_even(value: Decimal) -> bool:
    return int(value.scaleb(APR_PLACES)) % 2 == 0


def _round_exactly(payments: Sequence[tuple[int, Fraction]], received_fen: int, approx: Decimal) -> Decimal:
    """The root rounded half-even to APR_PLACES: `approx` (within 10⁻¹² of it) quantized, then
    checked by exact comparisons at the half-way points on either side (the present value falls
    with the rate: above `received` means the root is further up)."""
    rounded = approx.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    for _ in range(3):  # `approx` is so close that one correction is the most ever needed
        below = _compare_exactly(payments, received_fen, Fraction(rounded) - _HALF_QUANTUM)
        above = _compare_exactly(payments, received_fen, Fraction(rounded) + _HALF_QUANTUM)
        if below < 0:
            rounded -= _QUANTUM
        elif above > 0:
            rounded += _QUANTUM
        elif below == 0:  # the root is exactly half-way below: the even neighbour
            return rounded if _is_even(rounded) else rounded - _QUANTUM
        elif above == 0:
            return rounded if _is_even(rounded) else rounded + _QUANTUM
        else:
            return rounded
    raise AssertionError(f"rounding {approx} to {APR_PLACES} places did not settle")


def _solve(flows: Sequence[CashFlow], field: str) -> Decimal:
    received = sum(row.amount_fen for row in flows if row.period == 0)
    last = flows[-1].period
    payments: list[tuple[int, Fraction]] = [(0, Fraction(0))] * last
    for row in flows:
        if row.period:
            paid, _ = payments[row.period - 1]
            payments[row.period - 1] = (paid - row.amount_fen, row.years)
    if received <= 0 or any(paid < 0 or years <= 0 for paid, years in payments) or sum(paid for paid, _ in payments) < received:
        raise AssertionError("cash flows are not a loan: something received, more paid back, every period of positive length")
    if _compare_exactly(payments, received, Fraction(MAX_ANNUALIZED_RATE)) > 0:
        raise InvalidInput(field, f"the fees make the annualized rate exceed {MAX_ANNUALIZED_RATE:.0%}",
                           f"fees whose annualized rate is at most {MAX_ANNUALIZED_RATE:.0%}")
    low, high = Decimal(0), MAX_ANNUALIZED_RATE  # the present value is ≥ received at low, ≤ at high
    guess = _FIRST_GUESS
    with decimal.localcontext(_SOLVER):
        for _ in range(MAX_BISECTIONS):  # Newton's steps inside the bracket; a bisection when a step would leave it
            value, slope = _present_value(payments, guess)
            if value > received:
                low = guess
            else:
                high = guess
            step = guess - (value - received) / slope if slope < 0 else None
            if step is None or not low <= step <= high:
                step = (low + high) / 2
            if abs(step - guess) <= _STEP_DONE or high - low <= _TOLERANCE:
                return _round_exactly(payments, received, step)
            guess = step
    raise AssertionError(f"the solver did not converge in {MAX_BISECTIONS} steps")


def annualized_rate(
    principal_fen: int,
    rate_annual: Decimal,
    term_months: int,
    method: str,
    *,
    basis_days: int = 360,
    upfront_fee_fen: int = 0,
    periodic_fee_fen: int = 0,
    start: date | None = None,
    settlement: str = Settlement.MONTHLY,
) -> Decimal:
    """年化利率: the IRR of `cash_flows` (same arguments) on a 365-day year, rounded half-even to
    `APR_PLACES` places (module docstring). Refuses bad input with `InvalidInput`."""
    flows = cash_flows(principal_fen, rate_annual, term_months, method, basis_days=basis_days, upfront_fee_fen=upfront_fee_fen,
                       periodic_fee_fen=periodic_fee_fen, start=start, settlement=settlement)
    return _solve(flows, "upfront_fee_fen" if upfront_fee_fen else "periodic_fee_fen")
