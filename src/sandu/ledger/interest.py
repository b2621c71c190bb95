"""Interest accrual for revolving credit lines (随借随还), CNY conventions.

Pure functions: no clock, no I/O. Money is integer fen; rates are `Decimal`.

Conventions
-----------
* Daily rate = annual rate / basis days. The basis is 360 by default; 365 is
  the only other basis allowed.
* 算头不算尾 (count the first day, not the last): each calendar day accrues on
  that day's *closing* principal. So a drawing accrues on the day it is drawn,
  and a full repayment stops interest on the day it is repaid (the closing
  principal that day is 0). A drawing repaid in full on the same day accrues
  nothing.
* Nothing is rounded while interest accrues. Rounding to fen happens only when
  interest is posted: half-up (`ROUND_HALF_UP`), once, on the exact sum of the
  accruals being posted.

Exactness
---------
`principal × rate / basis` is often a non-terminating decimal (1/360 and
1/365 do not terminate), so a sum of per-day quotients, each cut off at some
precision, could land a hair on the wrong side of a half-fen. To avoid that:

* the exact value of one day's accrual is kept as a finite decimal *numerator*
  `closing_principal_fen × rate_annual` (`DailyAccrual.numerator`), which is
  always exact, divided by `basis_days` only once, when a sum is rounded;
* `DailyAccrual.interest_fen_exact` holds that day's quotient to 50
  significant digits (exact whenever it terminates). It is for display and
  audit only; `interest_to_post_fen` never adds these quotients up.

Hence, exactly, for any set of accruals with a single basis:
``interest_to_post_fen(accruals) == round_half_up(Σ closing_principal × rate / basis)``,
and for a constant principal over `days` days this equals
``period_interest_closed_form_fen(principal, rate, days, basis)``.

Settlement (结息日)
-------------------
Interest settles on day `day` (20 by default) of every month ('monthly') or of
March, June, September and December ('quarterly'). An interest period runs
from the day after one settlement date through the next settlement date,
both inclusive: the 21st through the 20th.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from math import lcm
from typing import TypeGuard

from sandu.domain.errors import InvalidInput, shorten, show
from sandu.domain.money import MAX_AMOUNT_FEN

__all__ = [
    "ALLOWED_BASIS_DAYS",
    "FREQUENCIES",
    "MAX_DAYS_PER_CALL",
    "MAX_FEN_DAYS",
    "MAX_PRINCIPAL_FEN",
    "MAX_RATE_ANNUAL",
    "MAX_RATE_PLACES",
    "PENALTY_UPLIFT_MAX",
    "PENALTY_UPLIFT_MIN",
    "DailyAccrual",
    "accrue",
    "closing_principals",
    "daily_interest_exact",
    "fen_days_charge",
    "interest_on_fen_days",
    "interest_to_post_fen",
    "penalty_rate",
    "period_containing",
    "period_interest_closed_form_fen",
    "settlement_dates",
]

ALLOWED_BASIS_DAYS: frozenset[int] = frozenset({360, 365})
MAX_DAYS_PER_CALL = 3660
# Sanity bounds for a pure engine, not legal or policy caps.
MAX_PRINCIPAL_FEN = MAX_AMOUNT_FEN
MAX_RATE_ANNUAL = Decimal(1)  # 100 % a year
MAX_RATE_PLACES = 18
PENALTY_UPLIFT_MIN = Decimal("0.30")
PENALTY_UPLIFT_MAX = Decimal("0.50")
FREQUENCIES: dict[str, int] = {"monthly": 1, "quarterly": 3}

_UPLIFT_PLACES = 6
_QUOTIENT_PREC = 50
# Enough digits for every exact product/sum the bounds above allow; the
# Inexact trap turns any silent rounding into an error instead.
_EXACT = decimal.Context(
    prec=120,
    rounding=ROUND_HALF_UP,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
_QUOTIENT = decimal.Context(prec=_QUOTIENT_PREC, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_date(value: object) -> TypeGuard[date]:
    return isinstance(value, date) and not isinstance(value, datetime)


def _check_date(value: object, field: str) -> date:
    if not _is_date(value):
        raise InvalidInput(field, f"expected a date, got {type(value).__name__}", "datetime.date (not datetime)")
    return value


def _check_principal(value: object, field: str) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_PRINCIPAL_FEN:
        raise InvalidInput(field, f"principal must be an int in fen, got {show(value)}", f"0..{MAX_PRINCIPAL_FEN} fen")
    return value


def _decimal_places(value: Decimal) -> int:
    """Significant places after the point of a finite Decimal (trailing zeros ignored)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing)) if any(digits) else 0


def _check_rate(value: object, field: str = "rate_annual", places: int = MAX_RATE_PLACES) -> Decimal:
    allowed = f"Decimal in 0..{MAX_RATE_ANNUAL} with at most {places} decimal places"
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInput(field, f"rate must be a finite Decimal, got {show(value)}", allowed)
    if not Decimal(0) <= value <= MAX_RATE_ANNUAL:
        raise InvalidInput(field, f"rate {shorten(str(value))} is out of range", allowed)
    if _decimal_places(value) > places:
        raise InvalidInput(field, f"rate {shorten(str(value))} has too many decimal places", allowed)
    return value


def _check_basis(value: object) -> int:
    if not _is_int(value) or value not in ALLOWED_BASIS_DAYS:
        raise InvalidInput("basis_days", f"unsupported day-count basis {show(value)}", "360 or 365")
    return value


def _check_frequency(value: object) -> int:
    if not isinstance(value, str) or value not in FREQUENCIES:
        raise InvalidInput("frequency", f"unknown settlement frequency {show(value)}", "'monthly' or 'quarterly'")
    return FREQUENCIES[value]


def _check_settlement_day(value: object) -> int:
    if not _is_int(value) or not 1 <= value <= 28:
        raise InvalidInput("day", f"settlement day {show(value)} does not exist in every month", "1..28")
    return value


# --------------------------------------------------------------------------
# exact arithmetic
# --------------------------------------------------------------------------


def _round_half_up_ratio(numerator: int, denominator: int) -> int:
    """Round numerator/denominator to an int, halves away from zero."""
    if denominator <= 0:
        raise AssertionError(f"denominator must be positive, got {denominator}")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def _round_half_up_div(numerator: Decimal, divisor: int) -> int:
    """Round the exact quotient of a finite Decimal by a positive int, half-up."""
    num, den = numerator.as_integer_ratio()
    return _round_half_up_ratio(num, den * divisor)


def _numerator(principal_fen: int, rate_annual: Decimal) -> Decimal:
    """principal × rate, exactly."""
    return _EXACT.multiply(Decimal(principal_fen), rate_annual)


# --------------------------------------------------------------------------
# accrual
# --------------------------------------------------------------------------


def daily_interest_exact(principal_fen: int, rate_annual: Decimal, basis_days: int = 360) -> Decimal:
    """One day's interest in fen, `principal × rate / basis`, unrounded.

    Exact when the quotient terminates, otherwise correct to 50 significant
    digits. Use it to show or store a day's accrual; to post interest, use
    `interest_to_post_fen`, which divides exact numerators once.
    """
    _check_principal(principal_fen, "principal_fen")
    _check_rate(rate_annual)
    _check_basis(basis_days)
    return _QUOTIENT.divide(_numerator(principal_fen, rate_annual), Decimal(basis_days))


@dataclass(frozen=True)
class DailyAccrual:
    """Interest accrued on one calendar day on that day's closing principal.

    `interest_fen_exact` is `closing_principal_fen × rate_annual / basis_days`
    to 50 significant digits (see the module docstring); the exact value is
    `numerator / basis_days`.
    """

    day: date
    closing_principal_fen: int
    rate_annual: Decimal
    basis_days: int
    interest_fen_exact: Decimal

    def __post_init__(self) -> None:
        _check_date(self.day, "day")
        expected = daily_interest_exact(self.closing_principal_fen, self.rate_annual, self.basis_days)
        if self.interest_fen_exact != expected:
            raise AssertionError(f"accrual for {self.day} is {self.interest_fen_exact}, expected {expected}")

    @property
    def numerator(self) -> Decimal:
        """closing principal × annual rate, exact (fen·rate, before ÷ basis)."""
        return _numerator(self.closing_principal_fen, self.rate_annual)


def _check_range(start: date, end: date) -> int:
    _check_date(start, "start")
    _check_date(end, "end")
    if end < start:
        raise InvalidInput("end", f"end {end} is before start {start}", f"a date on or after {start}")
    days = (end - start).days + 1
    if days > MAX_DAYS_PER_CALL:
        raise InvalidInput("end", f"range of {days} days is too long", f"at most {MAX_DAYS_PER_CALL} days per call")
    return days


def _deltas_by_offset(events: Sequence[tuple[date, int]], start: date, days: int) -> list[int]:
    """Net principal change per day offset from `start`; events after the range are ignored."""
    if not isinstance(events, Iterable):
        raise InvalidInput("events", f"expected a sequence of (date, delta_fen) pairs, got {type(events).__name__}",
                           "(date, int) pairs")
    deltas = [0] * days
    for index, event in enumerate(events):
        if not isinstance(event, tuple) or len(event) != 2:
            raise InvalidInput("events", f"event #{index} is not a (date, delta_fen) pair", "(date, int)")
        when, delta = event
        _check_date(when, "events")
        if not _is_int(delta):
            raise InvalidInput("events", f"event #{index} delta {show(delta)} is not an int", "int fen")
        if when < start:
            raise InvalidInput("events", f"event #{index} on {when} is before start {start}",
                               "fold earlier events into opening_principal_fen")
        offset = (when - start).days
        if offset < days:
            deltas[offset] += delta
    return deltas


def closing_principals(
    events: Sequence[tuple[date, int]],
    start: date,
    end: date,
    opening_principal_fen: int = 0,
) -> list[tuple[date, int]]:
    """Closing principal for each day from `start` to `end`, both inclusive.

    `events` are `(date, delta_fen)` principal changes: positive for a drawing,
    negative for a repayment, several per day allowed, in any order; only each
    day's net change matters. `opening_principal_fen` is the principal at the
    close of the day before `start`, so events dated before `start` are
    rejected and events after `end` are ignored.
    """
    days = _check_range(start, end)
    principal = _check_principal(opening_principal_fen, "opening_principal_fen")
    result: list[tuple[date, int]] = []
    for offset, delta in enumerate(_deltas_by_offset(events, start, days)):
        principal += delta
        day = start + timedelta(days=offset)
        if principal < 0:
            raise AssertionError(f"closing principal on {day} is negative: {principal} fen")
        result.append((day, principal))
    return result


def accrue(
    events: Sequence[tuple[date, int]],
    start: date,
    end: date,
    rate_annual: Decimal,
    basis_days: int = 360,
    opening_principal_fen: int = 0,
) -> list[DailyAccrual]:
    """Daily accruals from `start` to `end` inclusive (算头不算尾, see module doc)."""
    _check_rate(rate_annual)
    _check_basis(basis_days)
    return [
        DailyAccrual(
            day=day,
            closing_principal_fen=principal,
            rate_annual=rate_annual,
            basis_days=basis_days,
            interest_fen_exact=daily_interest_exact(principal, rate_annual, basis_days),
        )
        for day, principal in closing_principals(events, start, end, opening_principal_fen)
    ]


def interest_to_post_fen(accruals: Iterable[DailyAccrual]) -> int:
    """Interest to post, in fen: the exact sum of the accruals, rounded half-up once.

    Numerators are summed exactly per basis, then brought over the least
    common multiple of the bases present, so mixing 360 and 365 stays exact.
    """
    if not isinstance(accruals, Iterable):
        raise InvalidInput("accruals", f"expected DailyAccrual records, got {type(accruals).__name__}")
    by_basis: dict[int, Decimal] = {}
    for accrual in accruals:
        if not isinstance(accrual, DailyAccrual):
            raise InvalidInput("accruals", f"expected DailyAccrual, got {type(accrual).__name__}")
        by_basis[accrual.basis_days] = _EXACT.add(by_basis.get(accrual.basis_days, Decimal(0)), accrual.numerator)
    if not by_basis:
        return 0
    common = lcm(*by_basis)
    total = Decimal(0)
    for basis, numerator in by_basis.items():
        total = _EXACT.add(total, _EXACT.multiply(numerator, Decimal(common // basis)))
    return _round_half_up_div(total, common)


def period_interest_closed_form_fen(
    principal_fen: int, rate_annual: Decimal, days: int, basis_days: int = 360
) -> int:
    """round_half_up(principal × rate × days / basis), computed exactly."""
    _check_principal(principal_fen, "principal_fen")
    _check_rate(rate_annual)
    _check_basis(basis_days)
    if not _is_int(days) or not 0 <= days <= MAX_DAYS_PER_CALL:
        raise InvalidInput("days", f"day count {show(days)} is out of range", f"0..{MAX_DAYS_PER_CALL}")
    numerator = _EXACT.multiply(_numerator(principal_fen, rate_annual), Decimal(days))
    return _round_half_up_div(numerator, basis_days)


MAX_FEN_DAYS = MAX_PRINCIPAL_FEN * MAX_DAYS_PER_CALL


def interest_on_fen_days(fen_days: int, rate_annual: Decimal, basis_days: int = 360) -> int:
    """round_half_up(fen_days × rate / basis), exactly: the interest to charge for accruals
    kept as one integer, the sum over days of each day's closing balance (fen-days).

    For one rate and basis this equals `interest_to_post_fen` of the matching daily
    accruals (Σ closing × rate / basis is (Σ closing) × rate / basis), and for a
    constant balance over `days` days `period_interest_closed_form_fen`.
    """
    fen_days = _check_fen_days(fen_days)
    return fen_days_charge(rate_annual, basis_days)(fen_days)


def _check_fen_days(fen_days: object) -> int:
    if not _is_int(fen_days) or not 0 <= fen_days <= MAX_FEN_DAYS:
        raise InvalidInput("fen_days", f"fen-days must be an int, got {show(fen_days)}", f"0..{MAX_FEN_DAYS}")
    return fen_days


def fen_days_charge(rate_annual: Decimal, basis_days: int = 360) -> Callable[[int], int]:
    """`interest_on_fen_days` at one rate and basis, checked once: for end of day, which charges
    many drawings at a few rates. The rate is an exact integer ratio, so the result is exact."""
    _check_rate(rate_annual)
    _check_basis(basis_days)
    numerator, denominator = rate_annual.as_integer_ratio()
    denominator *= basis_days

    def charge(fen_days: int) -> int:
        return _round_half_up_ratio(_check_fen_days(fen_days) * numerator, denominator)

    return charge


# --------------------------------------------------------------------------
# settlement calendar
# --------------------------------------------------------------------------


def _month_index(d: date) -> int:
    return d.year * 12 + (d.month - 1)


def _settlement_on(month_index: int, day: int) -> date:
    year, month0 = divmod(month_index, 12)
    if not 1 <= year <= 9999:
        raise InvalidInput("date", "settlement date falls outside the supported calendar", "years 1..9999")
    return date(year, month0 + 1, day)


def _is_settlement_month(month_index: int, step: int) -> bool:
    # Quarterly settlements are in Mar/Jun/Sep/Dec, i.e. month0 in {2, 5, 8, 11}.
    return step == 1 or (month_index % 12) % 3 == 2


def _next_settlement(d: date, step: int, day: int) -> date:
    """The first settlement date on or after `d`."""
    index = _month_index(d) if d.day <= day else _month_index(d) + 1
    while not _is_settlement_month(index, step):
        index += 1
    return _settlement_on(index, day)


def settlement_dates(start: date, end: date, frequency: str, day: int = 20) -> list[date]:
    """Settlement dates in [start, end], both inclusive, in ascending order."""
    _check_date(start, "start")
    _check_date(end, "end")
    step = _check_frequency(frequency)
    day = _check_settlement_day(day)
    if end < start:
        raise InvalidInput("end", f"end {end} is before start {start}", f"a date on or after {start}")
    if start > date(date.max.year, 12, day):  # December settles under both frequencies
        return []
    result: list[date] = []
    index = _month_index(_next_settlement(start, step, day))
    while index <= _month_index(end):
        current = _settlement_on(index, day)
        if current > end:
            break
        result.append(current)
        index += step
    return result


def period_containing(d: date, frequency: str, day: int = 20) -> tuple[date, date]:
    """(period_start, period_end) of the interest period containing `d`.

    `period_end` is the first settlement date on or after `d`; `period_start`
    is the day after the settlement date before it (the 21st for day=20).
    """
    _check_date(d, "d")
    step = _check_frequency(frequency)
    day = _check_settlement_day(day)
    period_end = _next_settlement(d, step, day)
    previous = _settlement_on(_month_index(period_end) - step, day)
    return previous + timedelta(days=1), period_end


# --------------------------------------------------------------------------
# penalty (罚息)
# --------------------------------------------------------------------------


def penalty_rate(contract_rate: Decimal, uplift: Decimal) -> Decimal:
    """Penalty rate = contract rate × (1 + uplift), uplift in [0.30, 0.50], exact."""
    # Leave room for the uplift's places so the result is always accruable.
    _check_rate(contract_rate, "contract_rate", MAX_RATE_PLACES - _UPLIFT_PLACES)
    allowed = f"Decimal in {PENALTY_UPLIFT_MIN}..{PENALTY_UPLIFT_MAX}"
    if not isinstance(uplift, Decimal) or not uplift.is_finite():
        raise InvalidInput("uplift", f"uplift must be a finite Decimal, got {show(uplift)}", allowed)
    if not PENALTY_UPLIFT_MIN <= uplift <= PENALTY_UPLIFT_MAX:
        raise InvalidInput("uplift", f"uplift {shorten(str(uplift))} is out of range", allowed)
    if _decimal_places(uplift) > _UPLIFT_PLACES:
        raise InvalidInput("uplift", f"uplift {shorten(str(uplift))} has too many decimal places", f"at most {_UPLIFT_PLACES}")
    return _EXACT.multiply(contract_rate, _EXACT.add(Decimal(1), uplift))

