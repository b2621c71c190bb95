"""End of day: closing business dates, in order, in bounded batches that resume after a crash.

`plan` says which dates a request to close through D closes: every date after the last one
closed, through D, in order — never a date after the calendar date (unless the clock is
simulated), never one before the last date closed (a `Conflict`); D itself when it is the
last date closed is nothing to do (idempotent). The first end of day ever closes D alone:
lines behind it are caught up day by day on the way.

For each date, `begin` opens (or resumes) its run in `eod_runs`. The run row is the lock:
whoever holds its lease runs the date; another process asking while the lease is live gets a
`Conflict`, and a run whose holder died (its lease ran out) is taken over from its checkpoint.
A holder on the same host whose process is gone (killed) is taken over at once. Each `batch` is one transaction: it locks the run row, takes the next lines after the checkpoint
that are not yet closed through the date (at most `limit`, locked in id order), closes them
(`close.close_day`, set-based), and moves the checkpoint — all committed together, so a crash
loses at most the batch in flight and nothing half done. `finish` locks the calendar, closes any
line left behind (opened meanwhile below the checkpoint), and records the date as closed.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandu.domain.dates import business_date
from sandu.domain.enums import EodStatus, LineStatus
from sandu.domain.errors import Conflict, InvalidInput, show
from sandu.servicing.calendar import calendar_row
from sandu.servicing.close import ClassRules, CloseStats, close_day
from sandu.store import models as m
from sandu.store.db import insert_if_absent

MAX_DATES = 3660  # dates one request may close (ten years of a simulated replay)
LEASE = timedelta(minutes=5)  # a run's holder renews it with every batch


def new_owner() -> str:
    """A run's holder: this host and process, and a unique id (so that a successor on the same host can tell
    that the holder died, e.g. killed, and take over without waiting for its lease to run out)."""
    return f"{socket.gethostname()[:16]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_is_gone(holder: str) -> bool:
    """Whether `holder` ran on this host in a process that no longer exists (never true for another host's)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:16] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def plan(session: Session, target: object, now: datetime, *, simulated: bool) -> list[date]:
    """The dates to close, in order, to close through `target`."""
    if not isinstance(target, date) or isinstance(target, datetime):
        raise InvalidInput("business_date", f"must be a calendar date, got {show(target)}", "YYYY-MM-DD")
    today = business_date(now)
    if not simulated and target > today:
        raise Conflict("business_date", f"{target} is after the calendar date {today}", f"{today} or earlier (a simulated clock may run ahead)")
    last = calendar_row(session).last_closed_on
    if last is not None and target < last:
        raise Conflict("business_date", f"{target} is before {last}, the last date closed", f"{last} or later")
    first = target if last is None else last + timedelta(days=1)
    days = (target - first).days + 1
    if days > MAX_DATES:
        raise Conflict("business_date", f"closing through {target} closes {days} dates", f"at most {MAX_DATES} at a time: {first + timedelta(days=MAX_DATES - 1)} or earlier")
    return [first + timedelta(days=k) for k in range(days)]


@dataclass
class Progress:
    day: date
    lines_left: int  # lines not yet closed through the day (an estimate for the progress bar)
    resumed: bool
    done: bool  # the date was already closed


def _open_lines(day: date):
    return (m.CreditLine.status != LineStatus.CLOSED, m.CreditLine.accrued_through < day)


def begin(session: Session, day: date, owner: str, now: datetime) -> Progress:
    """Open or take over the run of `day`; refuses while another holder's lease is live."""
    insert_if_absent(session, m.EodRun, key="business_date", row={
        "business_date": day, "status": EodStatus.RUNNING.value, "last_line_id": 0, "lines_done": 0, "days_accrued": 0,
        "interest_posted_fen": 0, "owner": owner, "lease_until": now + LEASE, "started_at": now, "finished_at": None})
    run = _run(session, day)
    if run.status == EodStatus.DONE:
        return Progress(day, 0, resumed=False, done=True)
    resumed = run.owner != owner or run.lines_done > 0
    if run.owner != owner:
        if run.lease_until > now and not _holder_is_gone(run.owner):
            raise Conflict("business_date", f"end of day for {day} is running elsewhere (its lease runs until {run.lease_until:%H:%M:%S} UTC)",
                           "wait for it to finish, or run again after the lease ends")
        run.owner = owner
    run.lease_until = now + LEASE
    left = int(session.scalar(select(func.count()).select_from(m.CreditLine).where(*_open_lines(day))) or 0)
    return Progress(day, left, resumed=resumed, done=False)


def _run(session: Session, day: date) -> m.EodRun:
    run = session.scalar(select(m.EodRun).where(m.EodRun.business_date == day).with_for_update().execution_options(populate_existing=True))
    assert run is not None, f"the run of {day} exists"
    return run


def _hold(session: Session, day: date, owner: str, now: datetime) -> m.EodRun:
    run = _run(session, day)
    if run.owner != owner:
        raise Conflict("business_date", f"end of day for {day} was taken over by another run", "let that run finish")
    run.lease_until = now + LEASE
    return run


def _close_lines(session: Session, day: date, line_ids: list[int], now: datetime, rules: ClassRules) -> CloseStats:
    """Close `day` for the locked `line_ids`, catching up each line behind it day by day (oldest first)."""
    stats = CloseStats()
    behind = dict(session.execute(select(m.CreditLine.id, m.CreditLine.accrued_through).where(m.CreditLine.id.in_(line_ids))).all())
    steps = 0
    while behind:
        steps += 1
        assert steps <= MAX_DATES + 1, "catching lines up is bounded"
        oldest = min(behind.values())
        group = [i for i, through in behind.items() if through == oldest]
        closing = oldest + timedelta(days=1)
        part = close_day(session, day=closing, line_ids=group, now=now, rules=rules)
        if closing != day:
            part.lines = 0  # a catch-up day: a line is counted once, on the day itself
        stats.add(part)
        for i in group:
            if closing == day:
                del behind[i]
            else:
                behind[i] = closing
    return stats


def batch(session: Session, day: date, owner: str, now: datetime, rules: ClassRules, limit: int) -> CloseStats | None:
    """One batch of `day`'s run: the next `limit` lines after the checkpoint; None when none is left."""
    run = _hold(session, day, owner, now)
    ids = list(session.scalars(select(m.CreditLine.id).where(m.CreditLine.id > run.last_line_id, *_open_lines(day))
                               .order_by(m.CreditLine.id).limit(limit).with_for_update()))
    if not ids:
        return None
    stats = _close_lines(session, day, ids, now, rules)
    run.last_line_id = ids[-1]
    run.lines_done += stats.lines
    run.days_accrued += stats.drawings_accrued
    run.interest_posted_fen += sum(stats.charged_fen.values())
    return stats


def finish(session: Session, day: date, owner: str, now: datetime, rules: ClassRules, limit: int) -> tuple[CloseStats, bool]:
    """Close the lines left behind the checkpoint (at most `limit`) and, when none is left, record `day` as closed.
    Returns (what was closed, whether the date is closed)."""
    calendar = calendar_row(session, lock=True)  # one date closes at a time
    run = _hold(session, day, owner, now)
    ids = list(session.scalars(select(m.CreditLine.id).where(*_open_lines(day)).order_by(m.CreditLine.id).limit(limit + 1).with_for_update()))
    stats = _close_lines(session, day, ids[:limit], now, rules) if ids else CloseStats()
    run.lines_done += stats.lines
    if len(ids) > limit:
        return stats, False
    assert calendar.last_closed_on is None or calendar.last_closed_on < day, "a date is closed once"
    run.status, run.finished_at, run.lease_until = EodStatus.DONE.value, now, now
    calendar.last_closed_on = day
    return stats, True
