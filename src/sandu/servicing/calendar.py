"""The business calendar: which date money moves on, and which dates end of day has closed.

The one rule (stated in the README): end of day closes a business date D — never a date
after the calendar date (unless the clock is simulated), never one before the last date
closed — and every movement after it is value-dated D + 1 or later. So the business date
of a movement is

    max(the calendar date in Beijing, the last closed date + 1)

and a movement may also be value-dated earlier, down to the day after the last date
closed for its line, never later than the business date.

A *simulated* clock (``SANDU_CLOCK=simulated``, for demos, tests and training) makes the
calendar date the business date itself: time stands still until end of day closes a date,
and end of day may close dates ahead of the real calendar, so that a whole loan life can be
replayed. Only a store marked as a demo or test store may run on it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandu.domain.dates import BUSINESS_TZ, business_date
from sandu.domain.enums import StoreKind
from sandu.domain.errors import Conflict, InvalidInput, show
from sandu.store import models as m
from sandu.store.db import UnitOfWork

CALENDAR_ID = 1
SIMULATED_KINDS = (StoreKind.DEMO, StoreKind.TEST)


class SimulatedClockRefused(RuntimeError):
    """The store is not a demo or test store, so it may not run on the simulated clock."""


def calendar_row(session: Session, *, lock: bool = False) -> m.BusinessCalendar:
    stmt = select(m.BusinessCalendar).where(m.BusinessCalendar.id == CALENDAR_ID)
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt.execution_options(populate_existing=True))
    assert row is not None, "the business calendar has its one row (migration 0005)"
    return row


def last_closed_on(session: Session) -> date | None:
    return calendar_row(session).last_closed_on


def business_today(session: Session, now: datetime) -> date:
    """The business date of a movement made at `now` (the module's one rule)."""
    return business_day(now, last_closed_on(session))


def business_day(now: datetime, last_closed: date | None) -> date:
    """The later of the calendar date of `now` in Beijing and the day after the last date closed."""
    today = business_date(now)
    return today if last_closed is None else max(today, last_closed + timedelta(days=1))


def require_value_date(day: object, today: date, field: str = "on_date") -> date:
    """`day` as a value date: a calendar date, not after the business date `today`."""
    if not isinstance(day, date) or isinstance(day, datetime):
        raise InvalidInput(field, f"must be a calendar date, got {show(day)}", "YYYY-MM-DD")
    if day > today:
        raise Conflict(field, f"{day.isoformat()} is after the business date {today.isoformat()}", f"{today.isoformat()} or earlier")
    return day


def mark_store(session: Session, kind: StoreKind) -> None:
    """Say what the store holds (`sandu demo` marks a demo store, the tests a test store)."""
    calendar_row(session, lock=True).store_kind = StoreKind(kind).value


def simulated_clock(uow: UnitOfWork, real_clock: Callable[[], datetime]) -> Callable[[], datetime]:
    """A clock that stands on the business date: the real time of day, on the day after the
    last date closed (the real date while nothing is closed). Refuses a production store."""

    def read() -> tuple[str, date | None]:
        with uow.read() as session:
            row = calendar_row(session)
            return row.store_kind, row.last_closed_on

    checked = False

    def now() -> datetime:
        nonlocal checked
        real = real_clock()
        kind, closed = read()
        if not checked:  # checked on first use: the schema may be created after the runtime
            if kind not in SIMULATED_KINDS:
                raise SimulatedClockRefused(
                    f"SANDU_CLOCK=simulated needs a demo or test store; this store is marked {kind!r} "
                    "(run `sandu demo` for a demo store, or unset SANDU_CLOCK)")
            checked = True
        if closed is None:
            return real
        local = real.astimezone(BUSINESS_TZ)
        return datetime.combine(closed + timedelta(days=1), local.timetz()).astimezone(real.tzinfo)

    return now
