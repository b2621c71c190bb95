"""Repayment schedules of loan drawings (借据), CNY conventions.

Pure functions: no clock, no I/O. Money is integer fen; rates are `Decimal`;
every intermediate is an exact integer or rational, rounded half-up to the fen
once per amount.

Methods
-------
The method names are the Chinese strings stored on credit lines:

* ``随借随还`` (revolving): interest by the day, settled on the 20th, principal
  any time up to maturity. It has **no schedule** (see `ledger.interest`);
  asking for one is refused.
* ``按月付息到期还本``: each period's interest; all principal in the last.
* ``等额本息`` (equal instalments): the annuity
  ``A = round_half_up(P·r·(1+r)^n / ((1+r)^n − 1))``, r = rate / 12, n the number
  of instalments (``A = round_half_up(P / n)`` at rate 0). Each instalment but
  the last repays ``A − round_half_up(opening × r)`` of principal — capped at the
  opening principal, which only bites when the instalment is a few fen (fewer
  fen than instalments), the later instalments then being 0. The last
  instalment repays whatever principal remains.
* ``等额本金`` (equal principal): each instalment but the last repays
  ``P // n``; the last repays the rest.

In every method the principal parts sum to the principal exactly, and the
opening principal of a period is the previous opening less the previous
principal part.

Due dates
---------
Instalments fall due monthly on the *due day* (``due_day``, by default the
drawing's day of month), clamped to the month's end and never drifting: a
drawing on 31 January falls due on 28/29 February, 31 March, 30 April, … The
due dates are every such date strictly after the drawing and strictly before
the maturity, then the maturity itself. So a maturity on a due day gives one
instalment per month; a maturity off the due day adds a short (broken) last
period; a due day other than the drawing's day makes the first period broken
(from the drawing to the first due day after it, possibly a single day — it is
not merged into the next period). The maturity must be after the drawing and
at most `MAX_TERM_MONTHS` (600, 50 years) months after it, day clamped; hence at
most `MAX_INSTALMENTS` = 601 instalments (600 months plus a broken period).

Interest of a period
--------------------
A period runs from its ``start_on`` (the drawing, or the previous due date) to
its ``due_on``; it is a **full month** when ``start_on`` is on the due day of its
month and ``due_on`` is the due day of the next month. A full month's interest
is ``opening × rate / 12``; a broken period's is ``opening × rate × days /
basis_days`` with ``days = due_on − start_on`` (算头不算尾, as in
`ledger.interest`, whose `period_interest_closed_form_fen` computes it). Both
are rounded half-up to the fen. In ``等额本息`` a broken period still repays
the annuity's principal part, so its total differs from ``A`` by the
difference between the day-count interest and ``round_half_up(opening × r)``.

Prepayment (提前还本)
---------------------
`reschedule_after_prepayment` keeps the instalments already due
(``due_on ≤ paid_on``) unchanged. The prepayment reduces the principal
outstanding after them; the remaining instalments keep their due dates,
their count (the maturity does not move) and their full-month/broken nature,
and are recomputed by the same rules on the reduced principal for their whole
periods (``等额本息``: a new annuity over the remaining instalments;
``等额本金``: equal parts of what remains; ``按月付息到期还本``: interest on the
lower principal, the rest at maturity). The interest that the prepaid
principal accrued in the current period, from its ``start_on`` to ``paid_on``,
is paid with the prepayment (利随本清) and is not in the schedule:
`prepayment_interest_fen` gives it, by actual days. Prepaying everything that
is outstanding leaves only the instalments already due. A rescheduled
schedule opens its first recomputed period with less than the instalment
before it left (the prepayment); `outstanding_after`, `due_through` and a
further prepayment accept that, `annualized_rate` wants a schedule without
prepayment.

Annualized rate (年化利率)
--------------------------
`annualized_rate` is the IRR of the borrower's cash flows (PBoC announcement
2021 No. 3, compound method): the principal less the fees received on the
drawing date, each instalment paid on its due date. The rate ``y`` compounds at
each due date: a full-month period discounts by ``1 + y / 12``, a broken period
of d days by ``1 + y × d / 365`` (a 365-day year). For a schedule of full months
this is 12 × the monthly IRR, so ``等额本息`` without fees gives back its nominal
rate up to the fen rounding, and a broken period priced on a 360-day basis
gives ``rate × 365 / 360``. The result is rounded half-up to 6 decimal places,
exactly: an integer bisection over the candidates, each compared with exact
integer arithmetic, at most 30 steps.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TypeGuard

from sandu.domain.errors import InvalidInput, shorten, show
from sandu.ledger.interest import (
    ALLOWED_BASIS_DAYS,
    MAX_PRINCIPAL_FEN,
    MAX_RATE_ANNUAL,
    MAX_RATE_PLACES,
    period_interest_closed_form_fen,
)

__all__ = [
    "ANNUALIZED_RATE_PLACES",
    "EQUAL_INSTALMENT",
    "EQUAL_PRINCIPAL",
    "INTEREST_ONLY",
    "MAX_ANNUALIZED_RATE",
    "MAX_INSTALMENTS",
    "MAX_TERM_MONTHS",
    "METHODS",
    "REVOLVING",
    "SCHEDULED_METHODS",
    "Instalment",
    "annualized_rate",
    "build_schedule",
    "due_through",
    "outstanding_after",
    "prepayment_interest_fen",
    "reschedule_after_prepayment",
]

REVOLVING = "随借随还"
INTEREST_ONLY = "按月付息到期还本"
EQUAL_INSTALMENT = "等额本息"
EQUAL_PRINCIPAL = "等额本金"
METHODS: tuple[str, ...] = (REVOLVING, INTEREST_ONLY, EQUAL_INSTALMENT, EQUAL_PRINCIPAL)
SCHEDULED_METHODS: tuple[str, ...] = (INTEREST_ONLY, EQUAL_INSTALMENT, EQUAL_PRINCIPAL)

MAX_TERM_MONTHS = 600  # 50 years
MAX_INSTALMENTS = MAX_TERM_MONTHS + 1  # 600 months and one broken period
ANNUALIZED_RATE_PLACES = 6
# The annualized rates `annualized_rate` resolves (100,000 % a year); above it the fees dwarf the loan.
MAX_ANNUALIZED_RATE = Decimal(1000)

_MONTHS_PER_YEAR = 12
_IRR_DAYS_PER_YEAR = 365
_IRR_STEPS = 10**ANNUALIZED_RATE_PLACES  # candidates per unit of rate
_IRR_MAX_STEP = int(MAX_ANNUALIZED_RATE) * _IRR_STEPS
# Bisection over the _IRR_MAX_STEP + 1 candidates 0.._IRR_MAX_STEP: ⌈log2(_IRR_MAX_STEP + 1)⌉ halvings.
_IRR_MAX_ITERATIONS = _IRR_MAX_STEP.bit_length()


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_date(value: object) -> TypeGuard[date]:
    return isinstance(value, date) and not isinstance(value, datetime)


def _check_date(value: object, field: str) -> date:
    if not _is_date(value):
        raise InvalidInput(field, f"expected a date, got {show(value)}", "datetime.date (not datetime)")
    return value


def _check_method(value: object) -> str:
    if not isinstance(value, str) or value not in METHODS:
        raise InvalidInput("repayment_method", f"unknown repayment method {show(value)}", ", ".join(METHODS))
    if value == REVOLVING:
        raise InvalidInput("repayment_method", "a revolving drawing has no schedule", ", ".join(SCHEDULED_METHODS))
    return value


def _check_principal(value: object) -> int:
    if not _is_int(value) or not 1 <= value <= MAX_PRINCIPAL_FEN:
        raise InvalidInput("principal_fen", f"principal must be a positive int in fen, got {show(value)}", f"1..{MAX_PRINCIPAL_FEN} fen")
    return value


def _check_rate(value: object) -> Decimal:
    allowed = f"Decimal in 0..{MAX_RATE_ANNUAL} with at most {MAX_RATE_PLACES} decimal places"
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInput("rate_annual", f"rate must be a finite Decimal, got {show(value)}", allowed)
    if not 0 <= value <= MAX_RATE_ANNUAL:
        raise InvalidInput("rate_annual", f"rate {shorten(str(value))} is out of range", allowed)
    if 10**MAX_RATE_PLACES % value.as_integer_ratio()[1]:
        raise InvalidInput("rate_annual", f"rate {shorten(str(value))} has too many decimal places", allowed)
    return value


def _check_basis(value: object) -> int:
    if not _is_int(value) or value not in ALLOWED_BASIS_DAYS:
        raise InvalidInput("basis_days", f"unsupported day-count basis {show(value)}", "360 or 365")
    return value


def _check_due_day(value: object, drawn_on: date) -> int:
    if value is None:
        return drawn_on.day
    if not _is_int(value) or not 1 <= value <= 31:
        raise InvalidInput("due_day", f"due day {show(value)} is not a day of month", "1..31 (clamped to the month's end), or None")
    return value


# --------------------------------------------------------------------------
# calendar
# --------------------------------------------------------------------------


def _month_index(d: date) -> int:
    return d.year * _MONTHS_PER_YEAR + d.month - 1


def _on_day(month_index: int, day: int) -> date:
    """Day `day` of the month `month_index`, clamped to the month's end."""
    year, month0 = divmod(month_index, _MONTHS_PER_YEAR)
    return date(year, month0 + 1, min(day, calendar.monthrange(year, month0 + 1)[1]))


def _check_term(drawn_on: date, maturity_on: date) -> None:
    if maturity_on <= drawn_on:
        raise InvalidInput("maturity_on", f"maturity {maturity_on} is not after the drawing {drawn_on}", f"a date after {drawn_on}")
    months = _month_index(maturity_on) - _month_index(drawn_on)
    if months > MAX_TERM_MONTHS or (months == MAX_TERM_MONTHS and maturity_on > _on_day(_month_index(maturity_on), drawn_on.day)):
        raise InvalidInput("maturity_on", f"maturity {maturity_on} is more than {MAX_TERM_MONTHS} months after {drawn_on}",
                           f"at most {MAX_TERM_MONTHS} months (50 years) after the drawing")


def _periods(drawn_on: date, maturity_on: date, due_day: int) -> list[tuple[date, date, bool]]:
    """(start_on, due_on, full_month) of each period; see the module docstring."""
    dues = [due for index in range(_month_index(drawn_on), _month_index(maturity_on) + 1)
            if drawn_on < (due := _on_day(index, due_day)) < maturity_on]
    dues.append(maturity_on)
    periods: list[tuple[date, date, bool]] = []
    start = drawn_on
    for due in dues:
        index = _month_index(start)
        full = start == _on_day(index, due_day) and _month_index(due) == index + 1 and due == _on_day(index + 1, due_day)
        periods.append((start, due, full))
        start = due
    return periods


# --------------------------------------------------------------------------
# the instalment
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Instalment:
    """One instalment: on `due_on`, pay `principal_fen` + `interest_fen`.

    The period runs from `start_on` (the drawing, or the previous due date) to
    `due_on`; `full_month` says whether its interest is a month's (rate / 12)
    or counted by days. `opening_principal_fen` is the principal outstanding at
    the start of the period.
    """

    seq: int
    due_on: date
    principal_fen: int
    interest_fen: int
    opening_principal_fen: int
    start_on: date
    full_month: bool

    def __post_init__(self) -> None:
        if not _is_int(self.seq) or not 1 <= self.seq <= MAX_INSTALMENTS:
            raise InvalidInput("seq", f"instalment number {show(self.seq)} is out of range", f"1..{MAX_INSTALMENTS}")
        _check_date(self.start_on, "start_on")
        _check_date(self.due_on, "due_on")
        if self.due_on <= self.start_on:
            raise InvalidInput("due_on", f"due date {self.due_on} is not after the period's start {self.start_on}", f"a date after {self.start_on}")
        opening = self.opening_principal_fen
        if not _is_int(opening) or not 0 <= opening <= MAX_PRINCIPAL_FEN:
            raise InvalidInput("opening_principal_fen", f"opening principal must be an int in fen, got {show(opening)}", f"0..{MAX_PRINCIPAL_FEN} fen")
        if not _is_int(self.principal_fen) or not 0 <= self.principal_fen <= opening:
            raise InvalidInput("principal_fen", f"principal part {show(self.principal_fen)} is not within the opening principal",
                               f"0..{opening} fen")
        if not _is_int(self.interest_fen) or not 0 <= self.interest_fen <= MAX_PRINCIPAL_FEN:
            raise InvalidInput("interest_fen", f"interest must be an int in fen, got {show(self.interest_fen)}", f"0..{MAX_PRINCIPAL_FEN} fen")
        if not isinstance(self.full_month, bool):
            raise InvalidInput("full_month", f"expected a bool, got {show(self.full_month)}", "True or False")

    @property
    def total_fen(self) -> int:
        """What falls due on `due_on`: principal part + interest."""
        return self.principal_fen + self.interest_fen


def _check_schedule(schedule: object, *, complete: bool = False) -> tuple[Instalment, ...]:
    """The instalments of `schedule`, checked to chain: seq 1, 2, …; each period starts on the previous
    due date; each opening principal is at most what the previous instalment left (less after a
    prepayment). `complete` also requires no prepayment: each opening is exactly what was left and
    the last instalment repays all that remains, as `build_schedule` returns."""
    allowed = "a non-empty tuple of Instalment, as build_schedule returns"
    if not isinstance(schedule, (tuple, list)) or not schedule:
        raise InvalidInput("schedule", f"expected instalments, got {show(schedule)}", allowed)
    if len(schedule) > MAX_INSTALMENTS:
        raise InvalidInput("schedule", f"{len(schedule)} instalments are too many", f"at most {MAX_INSTALMENTS}")
    previous: Instalment | None = None
    for index, item in enumerate(schedule):
        if not isinstance(item, Instalment):
            raise InvalidInput("schedule", f"item #{index} is not an Instalment: {show(item)}", allowed)
        if item.seq != index + 1:
            raise InvalidInput("schedule", f"item #{index} has seq {item.seq}", "seq 1, 2, 3, … in order")
        if previous is not None:
            if item.start_on != previous.due_on:
                raise InvalidInput("schedule", f"instalment {item.seq} starts on {item.start_on}, not on the previous due date {previous.due_on}",
                                   "each period starts on the previous due date")
            left = previous.opening_principal_fen - previous.principal_fen
            if item.opening_principal_fen > left:
                raise InvalidInput("schedule", f"instalment {item.seq} opens with {item.opening_principal_fen} fen, more than the {left} fen left",
                                   "opening ≤ previous opening − previous principal part")
            if complete and item.opening_principal_fen != left:
                raise InvalidInput("schedule", f"instalment {item.seq} opens with {item.opening_principal_fen} fen, not the {left} fen left",
                                   "a schedule without prepayment: opening = previous opening − previous principal part")
        previous = item
    if complete and schedule[-1].principal_fen != schedule[-1].opening_principal_fen:
        raise InvalidInput("schedule", "the last instalment does not repay the principal outstanding",
                           "a schedule without prepayment: the last principal part = its opening principal")
    return tuple(schedule)


# --------------------------------------------------------------------------
# amortization
# --------------------------------------------------------------------------


def _round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, for numerator ≥ 0 < denominator."""
    return (2 * numerator + denominator) // (2 * denominator)


def _annuity_fen(principal_fen: int, rate_annual: Decimal, instalments: int) -> int:
    """round_half_up(P·r(1+r)^n / ((1+r)^n − 1)), r = rate / 12, exactly; P / n at rate 0."""
    num, den = rate_annual.as_integer_ratio()
    if num == 0:
        return _round_half_up(principal_fen, instalments)
    den *= _MONTHS_PER_YEAR  # r = num / den
    growth = (den + num) ** instalments  # (1 + r)^n = growth / den^n
    return _round_half_up(principal_fen * num * growth, den * (growth - den**instalments))


def _period_interest_fen(opening_fen: int, rate_annual: Decimal, start_on: date, due_on: date, full_month: bool, basis_days: int) -> int:
    if full_month:
        num, den = rate_annual.as_integer_ratio()
        return _round_half_up(opening_fen * num, den * _MONTHS_PER_YEAR)
    return period_interest_closed_form_fen(opening_fen, rate_annual, (due_on - start_on).days, basis_days)


def _amortize(method: str, principal_fen: int, rate_annual: Decimal, periods: Sequence[tuple[date, date, bool]],
              basis_days: int, first_seq: int) -> tuple[Instalment, ...]:
    """Instalments repaying `principal_fen` over `periods` by `method`, numbered from `first_seq`."""
    count = len(periods)
    annuity = _annuity_fen(principal_fen, rate_annual, count)  # 等额本息 only; a few big-int products
    num, den = rate_annual.as_integer_ratio()
    opening = principal_fen
    result: list[Instalment] = []
    for index, (start_on, due_on, full_month) in enumerate(periods):
        if index == count - 1:
            part = opening
        elif method == EQUAL_INSTALMENT:
            part = min(annuity - _round_half_up(opening * num, den * _MONTHS_PER_YEAR), opening)
        elif method == EQUAL_PRINCIPAL:
            part = principal_fen // count
        else:  # INTEREST_ONLY
            part = 0
        result.append(Instalment(
            seq=first_seq + index,
            due_on=due_on,
            principal_fen=part,
            interest_fen=_period_interest_fen(opening, rate_annual, start_on, due_on, full_month, basis_days),
            opening_principal_fen=opening,
            start_on=start_on,
            full_month=full_month,
        ))
        opening -= part
    return tuple(result)


def build_schedule(
    method: str,
    principal_fen: int,
    rate_annual: Decimal,
    drawn_on: date,
    maturity_on: date,
    *,
    basis_days: int = 360,
    due_day: int | None = None,
) -> tuple[Instalment, ...]:
    """The repayment schedule of a drawing of `principal_fen` on `drawn_on` (see the module docstring)."""
    method = _check_method(method)
    principal_fen = _check_principal(principal_fen)
    rate_annual = _check_rate(rate_annual)
    drawn_on = _check_date(drawn_on, "drawn_on")
    maturity_on = _check_date(maturity_on, "maturity_on")
    _check_term(drawn_on, maturity_on)
    basis_days = _check_basis(basis_days)
    anchor = _check_due_day(due_day, drawn_on)
    return _amortize(method, principal_fen, rate_annual, _periods(drawn_on, maturity_on, anchor), basis_days, first_seq=1)


# --------------------------------------------------------------------------
# prepayment
# --------------------------------------------------------------------------


def _split_for_prepayment(schedule: object, paid_on: object, prepaid_principal_fen: object,
                          ) -> tuple[tuple[Instalment, ...], tuple[Instalment, ...], int]:
    """(instalments due through paid_on, the rest, principal outstanding after the prepayment)."""
    items = _check_schedule(schedule)
    paid_on = _check_date(paid_on, "paid_on")
    if paid_on < items[0].start_on:
        raise InvalidInput("paid_on", f"prepayment on {paid_on} is before the drawing on {items[0].start_on}", f"a date on or after {items[0].start_on}")
    kept = tuple(item for item in items if item.due_on <= paid_on)
    remaining = items[len(kept):]
    outstanding = sum(item.principal_fen for item in remaining)
    if not _is_int(prepaid_principal_fen) or prepaid_principal_fen <= 0:
        raise InvalidInput("prepaid_principal_fen", f"prepayment must be a positive int in fen, got {show(prepaid_principal_fen)}",
                           f"1..{outstanding} fen" if outstanding else f"none: no principal is outstanding after {paid_on}")
    if prepaid_principal_fen > outstanding:
        raise InvalidInput("prepaid_principal_fen", f"prepayment of {prepaid_principal_fen} fen exceeds the {outstanding} fen outstanding after {paid_on}",
                           f"1..{outstanding} fen" if outstanding else f"none: no principal is outstanding after {paid_on}")
    return kept, remaining, outstanding - prepaid_principal_fen


def reschedule_after_prepayment(
    schedule: Sequence[Instalment],
    *,
    paid_on: date,
    prepaid_principal_fen: int,
    method: str,
    rate_annual: Decimal,
    basis_days: int = 360,
) -> tuple[Instalment, ...]:
    """The schedule after `prepaid_principal_fen` of principal is prepaid on `paid_on`.

    Instalments due on or before `paid_on` are kept as they are; the rest keep
    their due dates and are recomputed on the reduced principal (module
    docstring, "Prepayment"). The input is not changed.
    """
    method = _check_method(method)
    rate_annual = _check_rate(rate_annual)
    basis_days = _check_basis(basis_days)
    kept, remaining, left = _split_for_prepayment(schedule, paid_on, prepaid_principal_fen)
    if left == 0:
        return kept
    periods = [(item.start_on, item.due_on, item.full_month) for item in remaining]
    return kept + _amortize(method, left, rate_annual, periods, basis_days, first_seq=len(kept) + 1)


def prepayment_interest_fen(
    schedule: Sequence[Instalment],
    *,
    paid_on: date,
    prepaid_principal_fen: int,
    rate_annual: Decimal,
    basis_days: int = 360,
) -> int:
    """Interest paid with a prepayment: the prepaid principal × rate × days / basis, rounded half-up,
    over the days from the start of the current period to `paid_on` (0 on a due date)."""
    rate_annual = _check_rate(rate_annual)
    basis_days = _check_basis(basis_days)
    _, remaining, _ = _split_for_prepayment(schedule, paid_on, prepaid_principal_fen)
    days = (paid_on - remaining[0].start_on).days
    return period_interest_closed_form_fen(prepaid_principal_fen, rate_annual, days, basis_days)


# --------------------------------------------------------------------------
# what is due, what is outstanding
# --------------------------------------------------------------------------


def outstanding_after(schedule: Sequence[Instalment], on: date) -> int:
    """Principal not yet due on `on`: the principal parts of the instalments due after `on`."""
    items = _check_schedule(schedule)
    on = _check_date(on, "on")
    return sum(item.principal_fen for item in items if item.due_on > on)


def due_through(schedule: Sequence[Instalment], on: date) -> tuple[int, int]:
    """(principal, interest) of the instalments due on or before `on`."""
    items = _check_schedule(schedule)
    on = _check_date(on, "on")
    due = [item for item in items if item.due_on <= on]
    return sum(item.principal_fen for item in due), sum(item.interest_fen for item in due)


# --------------------------------------------------------------------------
# annualized rate (年化利率)
# --------------------------------------------------------------------------


def _discounts_to_at_least(items: Sequence[Instalment], received_fen: int, step: int) -> bool:
    """Whether the instalments discounted at y = (step − ½) / 10**6 are worth at least `received_fen`.

    Exact: Horner from the last instalment, V_k = (total_k + V_{k+1}) / (1 + y·τ_k),
    carried as an integer fraction num / den without reduction.
    """
    y_num, y_den = 2 * step - 1, 2 * _IRR_STEPS
    num, den = 0, 1
    for item in reversed(items):
        if item.full_month:
            factor_num, factor_den = y_den * _MONTHS_PER_YEAR + y_num, y_den * _MONTHS_PER_YEAR
        else:
            days = (item.due_on - item.start_on).days
            factor_num, factor_den = y_den * _IRR_DAYS_PER_YEAR + y_num * days, y_den * _IRR_DAYS_PER_YEAR
        num, den = (num + item.total_fen * den) * factor_den, den * factor_num
    return num >= received_fen * den


def annualized_rate(principal_fen: int, drawn_on: date, schedule: Sequence[Instalment], fees_fen: int = 0) -> Decimal:
    """年化利率: the IRR of the schedule's cash flows, fees paid on the drawing date (module docstring).

    Rounded half-up to `ANNUALIZED_RATE_PLACES` places; non-decreasing in `fees_fen`.
    """
    principal_fen = _check_principal(principal_fen)
    drawn_on = _check_date(drawn_on, "drawn_on")
    items = _check_schedule(schedule, complete=True)
    if items[0].opening_principal_fen != principal_fen or items[0].start_on != drawn_on:
        raise InvalidInput("schedule", f"the schedule repays {items[0].opening_principal_fen} fen drawn on {items[0].start_on}, "
                           f"not {principal_fen} fen drawn on {drawn_on}", "the schedule of this drawing")
    if not _is_int(fees_fen) or not 0 <= fees_fen < principal_fen:
        raise InvalidInput("fees_fen", f"fees must be an int in fen below the principal, got {show(fees_fen)}", f"0..{principal_fen - 1} fen")
    received = principal_fen - fees_fen
    # The rate y* solves PV(y*) = received, PV decreasing; rounded half-up it is the largest
    # step k with y* ≥ (k − ½)/10**6, i.e. PV((k − ½)/10**6) ≥ received. Step 0 always holds
    # (the instalments total at least the principal).
    low, high = 0, _IRR_MAX_STEP + 1  # the predicate holds at low; it must fail at high
    if _discounts_to_at_least(items, received, high):
        raise InvalidInput("fees_fen" if fees_fen else "schedule", f"the annualized rate is above {MAX_ANNUALIZED_RATE:%}",
                           f"cash flows whose annualized rate is at most {MAX_ANNUALIZED_RATE:%}")
    for _ in range(_IRR_MAX_ITERATIONS):
        middle = (low + high) // 2
        if _discounts_to_at_least(items, received, middle):
            low = middle
        else:
            high = middle
        if high - low == 1:
            return Decimal(low).scaleb(-ANNUALIZED_RATE_PLACES)
    raise AssertionError(f"bisection did not converge in {_IRR_MAX_ITERATIONS} steps")
