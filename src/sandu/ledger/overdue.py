"""What happens when a payment is missed: overdue aging, penalty interest
(罚息), compound interest (复利) and the five-category risk classification
(五级分类). CNY conventions, see DOMAIN.md "Interest and servicing".

Pure functions: no clock, no I/O; the business date is always an argument.
Money is integer fen, rates are `Decimal`. Interest arithmetic is
`sandu.ledger.interest`'s: exact daily accruals, rounded half-up once when
posted.

Days past due (DPD, 逾期天数)
----------------------------
An amount due on day D and not paid by the close of D is overdue from D+1:
the due day itself is not overdue, so DPD is 0 on D and 1 on D+1. With a
grace period of g days (宽限期) DPD stays 0 through D+g; if the amount is
still unpaid on D+g+1 the grace is lost and DPD counts from D+1 again, so it
jumps from 0 to g+1. A loan's DPD is that of its oldest unpaid amount that has
fallen due.

Penalty and compound interest
-----------------------------
Penalty rate = contract rate × (1 + uplift), uplift 30–50 %
(`interest.penalty_rate`). Penalty interest (罚息) accrues at that rate on
overdue principal, compound interest (复利) at the same rate on overdue
interest, each from the first day the amount is overdue (D+1, also after a
lost grace period) up to, not including, the day it is repaid: the same
算头不算尾 daily accrual as ordinary interest (`interest.accrue`), on each
day's closing overdue balance. What counts as overdue interest (for example
whether penalty interest itself compounds) is the caller's choice of events.
Posting rounds once per settlement period (`post_by_period`).

Five categories (五级分类)
--------------------------
正常 < 关注 < 次级 < 可疑 < 损失 (`RiskClass`, ordered by severity). The
rule class for a DPD is the worst class whose threshold the DPD exceeds: by
default DPD > 0 is at least 关注, > 90 次级, > 270 可疑, > 360 损失.
`next_class` moves a drawing's class from one business date to the next:

* it is never better than the rule class nor than a loan officer's floor
  (an officer may classify worse than the rule, never better);
* a downgrade (worse) applies at once;
* an improvement is one step, on each day that completes a further
  `upgrade_after_days` consecutive days at DPD 0 (days_current = 90, 180, …
  by default), and never better than the rule class or the floor. Run once per
  business date, a class thus improves at most one step per window.

A credit line takes the worst class of its drawings (`worst`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from sandu.domain.errors import InvalidInput, show
from sandu.ledger.interest import (
    MAX_PRINCIPAL_FEN,
    PENALTY_UPLIFT_MAX,
    DailyAccrual,
    _check_basis,
    _check_date,
    _check_principal,
    _check_range,
    _deltas_by_offset,
    _is_int,
    accrue,
    interest_to_post_fen,
    penalty_rate,
    period_containing,
    period_interest_closed_form_fen,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MAX_DAYS",
    "MAX_GRACE_DAYS",
    "MAX_ITEMS",
    "MAX_THRESHOLD_DAYS",
    "OverdueAmounts",
    "OverduePolicy",
    "RiskClass",
    "accrue_compound",
    "accrue_penalty",
    "days_past_due",
    "next_class",
    "overdue_amounts",
    "penalty_closed_form_fen",
    "post_by_period",
    "rule_class",
    "worst",
]

MAX_GRACE_DAYS = 30
MAX_THRESHOLD_DAYS = 3650  # ten years: a sanity bound for thresholds and the upgrade window
MAX_DAYS = (date.max - date.min).days  # the longest span between two dates
MAX_ITEMS = 100_000  # instalments, classes or accruals in one call
# DPD above which a drawing is at least 关注, 次级, 可疑, 损失 (DOMAIN.md).
DEFAULT_THRESHOLDS: tuple[int, int, int, int] = (0, 90, 270, 360)
_RANKS = ("normal", "special_mention", "substandard", "doubtful", "loss")
_LABELS_ZH = {"normal": "正常", "special_mention": "关注", "substandard": "次级", "doubtful": "可疑", "loss": "损失"}


# --------------------------------------------------------------------------
# the five categories
# --------------------------------------------------------------------------


class RiskClass(StrEnum):
    """五级分类, ordered by severity: NORMAL < SPECIAL_MENTION < … < LOSS.

    `<`, `<=`, `>`, `>=` compare severity (not spelling) and only between
    RiskClass members; `max` is the worse of two classes.
    """

    NORMAL = "normal"
    SPECIAL_MENTION = "special_mention"
    SUBSTANDARD = "substandard"
    DOUBTFUL = "doubtful"
    LOSS = "loss"

    @property
    def rank(self) -> int:
        """0 for 正常 … 4 for 损失."""
        return _RANKS.index(self.value)

    @property
    def label_zh(self) -> str:
        """正常, 关注, 次级, 可疑 or 损失."""
        return _LABELS_ZH[self.value]

    def _other_rank(self, other: object) -> int:
        if not isinstance(other, RiskClass):
            raise TypeError(f"a RiskClass compares only with a RiskClass, not {type(other).__name__}")
        return other.rank

    def __lt__(self, other: object) -> bool:
        return self.rank < self._other_rank(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= self._other_rank(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > self._other_rank(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= self._other_rank(other)


_BY_RANK: tuple[RiskClass, ...] = tuple(RiskClass(value) for value in _RANKS)


def _check_class(value: object, field: str, allowed: str = "a RiskClass") -> RiskClass:
    if not isinstance(value, RiskClass):
        raise InvalidInput(field, f"expected a RiskClass, got {show(value)}", allowed)
    return value


def _check_optional_class(value: object, field: str) -> RiskClass | None:
    return None if value is None else _check_class(value, field, "a RiskClass or None")


# --------------------------------------------------------------------------
# policy
# --------------------------------------------------------------------------


def _check_grace(value: object, field: str = "grace_days") -> int:
    if not _is_int(value) or not 0 <= value <= MAX_GRACE_DAYS:
        raise InvalidInput(field, f"grace period {show(value)} is out of range", f"int 0..{MAX_GRACE_DAYS} days")
    return value


def _check_thresholds(value: object) -> tuple[int, int, int, int]:
    allowed = f"4 strictly increasing ints in 0..{MAX_THRESHOLD_DAYS}, the DPD above which 关注, 次级, 可疑, 损失 apply"
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise InvalidInput("thresholds", f"expected 4 day counts, got {show(value)}", allowed)
    for index, days in enumerate(value):
        if not _is_int(days) or not 0 <= days <= MAX_THRESHOLD_DAYS:
            raise InvalidInput("thresholds", f"threshold #{index} {show(days)} is out of range", allowed)
        if index > 0 and days <= value[index - 1]:
            raise InvalidInput("thresholds", f"threshold #{index} ({days}) is not above #{index - 1} ({value[index - 1]})", allowed)
    return (value[0], value[1], value[2], value[3])


@dataclass(frozen=True)
class OverduePolicy:
    """A product's overdue rules, as data (defaults from DOMAIN.md).

    * `penalty_uplift`: penalty rate = contract rate × (1 + uplift); a Decimal in
      0.30..0.50 with at most 6 decimal places.
    * `grace_days`: days after a due date during which an unpaid amount is not
      yet overdue (0..30).
    * `thresholds`: the DPD *above* which a drawing is at least 关注, 次级, 可疑
      and 损失; strictly increasing, 0..3650. A list is stored as a tuple.
    * `upgrade_after_days`: consecutive days at DPD 0 that earn a one-step
      improvement (1..3650).
    """

    penalty_uplift: Decimal = PENALTY_UPLIFT_MAX
    grace_days: int = 0
    thresholds: tuple[int, int, int, int] = DEFAULT_THRESHOLDS
    upgrade_after_days: int = 90

    def __post_init__(self) -> None:
        try:
            penalty_rate(Decimal(1), self.penalty_uplift)  # any contract rate: this checks the uplift
        except InvalidInput as error:
            raise InvalidInput("penalty_uplift", error.reason, error.allowed) from error
        _check_grace(self.grace_days)
        object.__setattr__(self, "thresholds", _check_thresholds(self.thresholds))
        upgrade = self.upgrade_after_days
        if not _is_int(upgrade) or not 1 <= upgrade <= MAX_THRESHOLD_DAYS:
            raise InvalidInput("upgrade_after_days", f"upgrade window {show(upgrade)} is out of range",
                               f"int 1..{MAX_THRESHOLD_DAYS} days")


def _check_policy(value: object) -> OverduePolicy:
    if not isinstance(value, OverduePolicy):
        raise InvalidInput("policy", f"expected an OverduePolicy, got {type(value).__name__}", "OverduePolicy")
    return value


# --------------------------------------------------------------------------
# days past due
# --------------------------------------------------------------------------


def _check_days(value: object, field: str) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_DAYS:
        raise InvalidInput(field, f"day count {show(value)} is out of range", f"int 0..{MAX_DAYS}")
    return value


def days_past_due(oldest_unpaid_due_on: date | None, today: date, grace_days: int) -> int:
    """Days past due on `today` of an amount due on `oldest_unpaid_due_on`.

    0 when nothing is unpaid (None), when the due date is today or later, or
    while within the grace period (through due date + `grace_days`).
    Otherwise `today − due date` in days: 1 on the day after the due date
    without grace; `grace_days + 1` on the first day after the grace period.
    """
    if oldest_unpaid_due_on is not None:
        _check_date(oldest_unpaid_due_on, "oldest_unpaid_due_on")
    _check_date(today, "today")
    grace = _check_grace(grace_days)
    if oldest_unpaid_due_on is None:
        return 0
    elapsed = (today - oldest_unpaid_due_on).days
    return elapsed if elapsed > grace else 0


NO_DUE = -1  # the vector form's "nothing unpaid"


def days_past_due_vector(oldest_unpaid_ordinal: np.ndarray, today: date, grace_days: np.ndarray) -> np.ndarray:
    """`days_past_due` for a column of drawings: their oldest unpaid due dates as proleptic ordinals
    (`date.toordinal`, `NO_DUE` for nothing unpaid) and their grace periods, on one `today`."""
    _check_date(today, "today")
    oldest, grace = np.asarray(oldest_unpaid_ordinal, dtype=np.int64), np.asarray(grace_days, dtype=np.int64)
    if oldest.shape != grace.shape:
        raise InvalidInput("grace_days", f"{grace.shape} values for {oldest.shape} drawings", "one grace period per drawing")
    if grace.size and (grace.min() < 0 or grace.max() > MAX_DAYS):
        raise InvalidInput("grace_days", "a grace period out of range", f"0..{MAX_DAYS}")
    elapsed = today.toordinal() - oldest
    return np.where((oldest != NO_DUE) & (elapsed > grace), elapsed, 0)


class OverdueAmounts(NamedTuple):
    """What a drawing owes past due on a date (`overdue_amounts`)."""

    principal_fen: int
    interest_fen: int
    oldest_unpaid_due_on: date | None


def _check_instalments(instalments_due: object) -> list[tuple[date, int, int]]:
    allowed = "a list of (due_on, principal_due_fen, interest_due_fen)"
    if not isinstance(instalments_due, (list, tuple)):
        raise InvalidInput("instalments_due", f"expected a sequence of instalments, got {type(instalments_due).__name__}", allowed)
    if len(instalments_due) > MAX_ITEMS:
        raise InvalidInput("instalments_due", f"{len(instalments_due)} instalments are too many", f"at most {MAX_ITEMS}")
    result: list[tuple[date, int, int]] = []
    for index, item in enumerate(instalments_due):
        if not isinstance(item, tuple) or len(item) != 3:
            raise InvalidInput("instalments_due", f"instalment #{index} is not a (date, int, int) triple", allowed)
        due_on, principal, interest = item
        _check_date(due_on, "instalments_due")
        for amount in (principal, interest):
            if not _is_int(amount) or not 0 <= amount <= MAX_PRINCIPAL_FEN:
                raise InvalidInput("instalments_due", f"instalment #{index} amount {show(amount)} is out of range",
                                   f"int 0..{MAX_PRINCIPAL_FEN} fen")
        result.append((due_on, principal, interest))
    result.sort()  # oldest first; same-day instalments fall due, and become overdue, together
    return result


def _check_paid(value: object, field: str, due_total: int) -> int:
    if not _is_int(value) or not 0 <= value <= due_total:
        raise InvalidInput(field, f"paid {show(value)} fen is not within what is scheduled", f"int 0..{due_total} fen")
    return value


def overdue_amounts(
    instalments_due: Sequence[tuple[date, int, int]],
    principal_paid_fen: int,
    interest_paid_fen: int,
    today: date,
    grace_days: int,
) -> OverdueAmounts:
    """Overdue principal, overdue interest and the oldest unpaid due date.

    Each instalment is `(due_on, principal_due_fen, interest_due_fen)`, in any
    order. What has been paid of principal, and separately of interest, pays
    the instalments oldest first (any surplus pays later ones in advance). An
    unpaid amount is overdue when its DPD on `today` is above 0 (past its due
    date and the grace period). `oldest_unpaid_due_on` is the earliest due date,
    on or before `today`, with anything unpaid (it may still be in grace), or
    None; `days_past_due(oldest_unpaid_due_on, today, grace_days)` is then the
    drawing's DPD.
    """
    instalments = _check_instalments(instalments_due)
    principal_left = _check_paid(principal_paid_fen, "principal_paid_fen", sum(item[1] for item in instalments))
    interest_left = _check_paid(interest_paid_fen, "interest_paid_fen", sum(item[2] for item in instalments))
    _check_date(today, "today")
    grace = _check_grace(grace_days)
    overdue_principal = overdue_interest = 0
    oldest: date | None = None
    for due_on, principal, interest in instalments:
        unpaid_principal = principal - min(principal, principal_left)
        unpaid_interest = interest - min(interest, interest_left)
        principal_left -= principal - unpaid_principal
        interest_left -= interest - unpaid_interest
        if due_on > today or unpaid_principal + unpaid_interest == 0:
            continue
        if oldest is None:
            oldest = due_on
        if days_past_due(due_on, today, grace) > 0:
            overdue_principal += unpaid_principal
            overdue_interest += unpaid_interest
    return OverdueAmounts(overdue_principal, overdue_interest, oldest)


# --------------------------------------------------------------------------
# penalty and compound interest
# --------------------------------------------------------------------------


def _accrue_overdue(
    events: Sequence[tuple[date, int]],
    field: str,
    start: date,
    end: date,
    contract_rate: Decimal,
    basis_days: int,
    uplift: Decimal,
    opening_fen: int,
) -> list[DailyAccrual]:
    rate = penalty_rate(contract_rate, uplift)
    _check_basis(basis_days)
    balance = _check_principal(opening_fen, "opening_fen")
    days = _check_range(start, end)
    try:
        deltas = _deltas_by_offset(events, start, days)
    except InvalidInput as error:  # the same check, told in this function's parameter names
        allowed = error.allowed and error.allowed.replace("opening_principal_fen", "opening_fen")
        raise InvalidInput(field, error.reason, allowed) from error
    for offset, delta in enumerate(deltas):
        balance += delta
        if not 0 <= balance <= MAX_PRINCIPAL_FEN:
            day = start + timedelta(days=offset)
            raise InvalidInput(field, f"the overdue balance at the close of {day} would be {balance} fen",
                               f"0..{MAX_PRINCIPAL_FEN} fen: repay at most what is overdue")
    return accrue(events, start, end, rate, basis_days, opening_fen)


def accrue_penalty(
    overdue_principal_events: Sequence[tuple[date, int]],
    start: date,
    end: date,
    contract_rate: Decimal,
    basis_days: int,
    uplift: Decimal,
    opening_fen: int = 0,
) -> list[DailyAccrual]:
    """Penalty interest (罚息) per day from `start` to `end`, both inclusive.

    `overdue_principal_events` are `(date, delta_fen)` changes of overdue
    principal: `+amount` on the first day an amount is overdue (D+1 for an
    amount due on D), `−amount` on the day it is repaid; `opening_fen` is the
    overdue principal at the close of the day before `start`. Each day accrues
    on its closing overdue principal at `penalty_rate(contract_rate, uplift)`.
    The balance may never fall below 0 (field named in the error).
    """
    return _accrue_overdue(overdue_principal_events, "overdue_principal_events", start, end,
                           contract_rate, basis_days, uplift, opening_fen)


def accrue_compound(
    overdue_interest_events: Sequence[tuple[date, int]],
    start: date,
    end: date,
    contract_rate: Decimal,
    basis_days: int,
    uplift: Decimal,
    opening_fen: int = 0,
) -> list[DailyAccrual]:
    """Compound interest (复利) per day on overdue interest, at the penalty rate.

    As `accrue_penalty`, with `(date, delta_fen)` changes of overdue interest:
    `+amount` on the first day interest is overdue, `−amount` when it is paid.
    """
    return _accrue_overdue(overdue_interest_events, "overdue_interest_events", start, end,
                           contract_rate, basis_days, uplift, opening_fen)


def penalty_closed_form_fen(
    principal_fen: int, contract_rate: Decimal, uplift: Decimal, days: int, basis_days: int = 360
) -> int:
    """round_half_up(amount × contract rate × (1 + uplift) × days / basis), exactly.

    The penalty (or compound) interest on a constant overdue amount over `days`
    days; equals `interest_to_post_fen` of the matching daily accruals.
    """
    return period_interest_closed_form_fen(principal_fen, penalty_rate(contract_rate, uplift), days, basis_days)


def post_by_period(accruals: Sequence[DailyAccrual], frequency: str = "monthly", day: int = 20) -> list[tuple[date, int]]:
    """(settlement date, fen to post) per interest period the accruals fall in.

    Accruals are grouped by the settlement period containing their day
    (`interest.period_containing`) and each group is rounded once
    (`interest_to_post_fen`). Sorted by settlement date; periods without
    accruals are left out.
    """
    if not isinstance(accruals, (list, tuple)):
        raise InvalidInput("accruals", f"expected a list of DailyAccrual, got {type(accruals).__name__}", "list of DailyAccrual")
    if len(accruals) > MAX_ITEMS:
        raise InvalidInput("accruals", f"{len(accruals)} accruals are too many", f"at most {MAX_ITEMS}")
    groups: dict[date, list[DailyAccrual]] = {}
    for index, accrual in enumerate(accruals):
        if not isinstance(accrual, DailyAccrual):
            raise InvalidInput("accruals", f"accrual #{index} is a {type(accrual).__name__}", "DailyAccrual")
        settles_on = period_containing(accrual.day, frequency, day)[1]
        groups.setdefault(settles_on, []).append(accrual)
    return [(settles_on, interest_to_post_fen(groups[settles_on])) for settles_on in sorted(groups)]


# --------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------


def rule_class(dpd: int, policy: OverduePolicy) -> RiskClass:
    """The class the rules give a drawing `dpd` days past due: one step worse
    for each threshold the DPD is above (default: 1 → 关注, 91 → 次级,
    271 → 可疑, 361 → 损失)."""
    _check_days(dpd, "dpd")
    thresholds = _check_policy(policy).thresholds
    return _BY_RANK[sum(1 for threshold in thresholds if dpd > threshold)]


def next_class(
    previous: RiskClass | None,
    dpd: int,
    days_current: int,
    officer_floor: RiskClass | None,
    policy: OverduePolicy,
) -> RiskClass:
    """A drawing's class today, from yesterday's class (`previous`, None the
    first time), today's DPD, the consecutive days at DPD 0 ending today
    (`days_current`, 0 when DPD > 0) and an officer's floor (None for none).

    The floor is the worse of the rule class and the officer's floor. A class
    better than the floor is raised to it at once; a class worse than the
    floor improves by one step, but only on a day when `days_current` is a
    positive multiple of `policy.upgrade_after_days`, and never past the floor.
    """
    previous = _check_optional_class(previous, "previous")
    floor = rule_class(dpd, policy)
    days_current = _check_days(days_current, "days_current")
    if dpd > 0 and days_current > 0:
        raise InvalidInput("days_current", f"{days_current} days current while {dpd} days past due",
                           "0 while DPD > 0")
    officer = _check_optional_class(officer_floor, "officer_floor")
    if officer is not None:
        floor = max(floor, officer)
    if previous is None or previous <= floor:
        return floor
    if days_current > 0 and days_current % policy.upgrade_after_days == 0:
        return max(_BY_RANK[previous.rank - 1], floor)
    return previous


def worst(classes: Iterable[RiskClass]) -> RiskClass:
    """The worst of one or more classes (a line takes its worst drawing's class)."""
    if not isinstance(classes, Iterable):
        raise InvalidInput("classes", f"expected RiskClass values, got {type(classes).__name__}", "one or more RiskClass")
    result: RiskClass | None = None
    for index, value in enumerate(classes):
        if index >= MAX_ITEMS:
            raise InvalidInput("classes", f"more than {MAX_ITEMS} classes", f"at most {MAX_ITEMS}")
        current = _check_class(value, "classes")
        result = current if result is None else max(result, current)
    if result is None:
        raise InvalidInput("classes", "no classes given", "one or more RiskClass")
    return result
