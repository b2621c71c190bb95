"""Calendar arithmetic shared by origination and servicing."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sandu.domain.errors import Conflict, show

# The bank's business calendar runs on Beijing time: value dates, end of day and
# "today" are dates there, whatever the server's clock zone.
BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def business_date(moment: datetime) -> date:
    """The business date of an aware timestamp."""
    if moment.tzinfo is None:
        raise ValueError("business_date needs an aware datetime (sandu keeps time in UTC)")
    return moment.astimezone(BUSINESS_TZ).date()


ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_iso_date(value: object) -> date:
    """A calendar date written YYYY-MM-DD, nothing else: not a number (0 is not
    1970-01-01), not a timestamp, not another layout. Raises ValueError with the reason."""
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError(f"must be a date written YYYY-MM-DD, got {show(value)}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a calendar date") from None


def require_not_future(day: date, now: datetime, field: str) -> date:
    """`day` if it is not after the business date of `now`; else `Conflict` naming
    `field`. The one home of "never in the future" for value dates, as-of dates and
    end-of-day dates. A conflict (409), not a malformed value: the same date is
    accepted once the business date has reached it."""
    today = business_date(now)
    if day > today:
        raise Conflict(field, f"{day.isoformat()} is after the business date {today.isoformat()}", f"{today.isoformat()} or earlier")
    return day


def add_months(d: date, months: int) -> date:
    """Same day `months` later, clamped to the month's last day (1-31 → 1-28..31)."""
    y, m0 = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m0 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))
