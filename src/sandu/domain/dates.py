"""Calendar arithmetic shared by origination and servicing."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from zoneinfo import ZoneInfo

# The bank's business calendar runs on Beijing time: value dates, end of day and
# "today" are dates there, whatever the server's clock zone.
BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def business_date(moment: datetime) -> date:
    """The business date of an aware timestamp."""
    if moment.tzinfo is None:
        raise ValueError("business_date needs an aware datetime (sandu keeps time in UTC)")
    return moment.astimezone(BUSINESS_TZ).date()


def add_months(d: date, months: int) -> date:
    """Same day `months` later, clamped to the month's last day (1-31 → 1-28..31)."""
    y, m0 = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m0 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))
