"""Servicing of credit lines (随借随还) on the double-entry ledger.

Every amount that moves is a balanced journal entry with an idempotency key.
The line row is locked (PostgreSQL: SELECT … FOR UPDATE; SQLite: the write
transaction is BEGIN IMMEDIATE) before its balance is checked, so concurrent
draws can never take the drawn principal above the limit; the database's check
constraint is the last line of defence.

Time: movements are dated (`on_date`), never in the future and never before
the line's last movement, so the ledger is a history that only grows forward.
Interest accrues by the day on the closing principal (算头不算尾) and is posted,
rounded half-up once, on each settlement day (the 20th of the line's settlement
months) and on repayment. Whatever touches a line first brings it up to date:
accrual and every settlement day passed since (`bring_up_to_date`), so a
missed end of day never skips a settlement.

Idempotency keys are the caller's, scoped to the line: stored as
`c:{line}:{key}`; the system's own entries use the `sys:` namespace, which no
caller key can reach.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from sandu.domain.dates import add_months, business_date, require_not_future
from sandu.domain.enums import LineStatus
from sandu.domain.errors import Conflict, InvalidInput, NotFound, show
from sandu.domain.keys import MAX_ROW_ID, is_row_id
from sandu.domain.money import MAX_AMOUNT_FEN, require_fen
from sandu.ledger import journal as jl
from sandu.ledger.allocation import allocate
from sandu.ledger.interest import DailyAccrual, accrue, interest_to_post_fen, period_containing, settlement_dates
from sandu.origination.service import committed_limit_fen, lock_enterprise
from sandu.servicing.states import LineAction, next_state
from sandu.servicing.views import EntryView, JournalPage, LineView, PostingView
from sandu.store import models as m
from sandu.store.db import keyset_page

MAX_KEY_LENGTH = 120
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]+")

ENTRIES_KEY = "sandu_ledger_entries"  # the kinds of the entries a transaction wrote
EOD_LOCK_KEY = 0x5A4D_0000  # + the date's ordinal: one advisory lock per business date


def _request_sha256(**fields: object) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _client_key(line_id: int, key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(key):
        raise InvalidInput("idempotency_key", f"got {show(key)}", f"1..{MAX_KEY_LENGTH} characters of A-Z a-z 0-9 _ . : -")
    return f"c:{line_id}:{key}"


def _check_date(value: object, field: str) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidInput(field, f"must be a calendar date, got {show(value)}", "YYYY-MM-DD")
    return value


def get_line(session: Session, line_id: int, *, lock: bool = False) -> m.CreditLine:
    """The line, re-read from the database; `lock` takes its row lock for a write."""
    if not is_row_id(line_id):
        raise InvalidInput("line_id", f"must be a line number, got {show(line_id)}", f"1..{MAX_ROW_ID}")
    stmt = select(m.CreditLine).where(m.CreditLine.id == line_id)
    if lock:
        stmt = stmt.with_for_update()
    line = session.scalar(stmt.execution_options(populate_existing=True))
    if line is None:
        raise NotFound("credit line", line_id, field="line_id")
    return line


def lock_line(session: Session, line_id: int) -> m.CreditLine:
    return get_line(session, line_id, lock=True)


def _existing(session: Session, key: str, request_sha256: str, shown_key: str) -> m.JournalEntryRow | None:
    row = session.scalar(select(m.JournalEntryRow).where(m.JournalEntryRow.idempotency_key == key))
    if row is not None and row.request_sha256 != request_sha256:
        raise Conflict("idempotency_key", f"{shown_key!r} was already used for a different request", "a new key for a new request")
    return row


def _write(session: Session, entry: jl.JournalEntry, line_id: int, request_sha256: str, now: datetime) -> m.JournalEntryRow:
    assert sum(p.amount_fen for p in entry.postings) == 0, "journal entry must balance"
    row = m.JournalEntryRow(
        idempotency_key=entry.idempotency_key,
        request_sha256=request_sha256,
        kind=entry.kind,
        line_id=line_id,
        effective_date=entry.effective_date,
        memo=entry.memo,
        created_at=now,
    )
    session.add(row)
    session.flush()
    session.add_all(m.PostingRow(entry_id=row.id, account=p.account, amount_fen=p.amount_fen) for p in entry.postings)
    session.flush()
    session.info.setdefault(ENTRIES_KEY, []).append(entry.kind)  # counted once committed
    return row


def account_balance(session: Session, account: str, through: date | None = None) -> int:
    q = select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0)).where(m.PostingRow.account == account)
    if through is not None:
        q = q.join(m.JournalEntryRow, m.JournalEntryRow.id == m.PostingRow.entry_id).where(m.JournalEntryRow.effective_date <= through)
    return int(session.scalar(q) or 0)


def _account(line: m.CreditLine, bucket: str) -> str:
    return jl.loan_account(str(line.id), bucket)


def _assert_principal(session: Session, line: m.CreditLine) -> None:
    ledger = account_balance(session, _account(line, "principal"))
    assert ledger == line.drawn_principal_fen, f"line {line.id}: ledger principal {ledger} ≠ drawn {line.drawn_principal_fen}"
    assert 0 <= line.drawn_principal_fen <= line.limit_fen, f"line {line.id}: drawn outside 0..limit"


def _earliest_allowed(session: Session, line: m.CreditLine) -> date:
    last = session.scalar(select(func.max(m.JournalEntryRow.effective_date)).where(m.JournalEntryRow.line_id == line.id))
    floor = line.opened_on if last is None else max(line.opened_on, last)
    if line.accrued_through is not None:
        floor = max(floor, line.accrued_through + timedelta(days=1))
    return floor


def _begin(
    op: str, session: Session, line_id: int, amount_fen: int, on_date: date | None, key: str, now: datetime, lock_enterprise_first: bool = False
) -> tuple[m.CreditLine, date, str, str, m.JournalEntryRow | None]:
    """Validate a money movement, lock its line, and find an earlier request with
    the same idempotency key (same body: replay; other body: Conflict).
    Returns (line, effective day, request hash, stored key, earlier entry)."""
    require_fen(amount_fen, field="amount_fen", max_fen=MAX_AMOUNT_FEN)
    stored_key = _client_key(line_id, key)
    day = require_not_future(_check_date(on_date, "on_date"), now, "on_date") if on_date is not None else business_date(now)
    if lock_enterprise_first:  # the enterprise before the line, always: no two writers wait on each other
        lock_enterprise(session, get_line(session, line_id).enterprise_id)
    line = lock_line(session, line_id)
    digest = _request_sha256(op=op, line=line_id, amount=amount_fen, on=on_date)  # hashed as sent
    return line, day, digest, stored_key, _existing(session, stored_key, digest, key)


def _check_not_backdated(session: Session, line: m.CreditLine, day: date) -> None:
    floor = _earliest_allowed(session, line)
    if day < floor:
        raise Conflict("on_date", f"line {line.id} has movements or accrued interest through {floor - timedelta(days=1)}", f"{floor} or later")


@dataclass(frozen=True)
class DrawResult:
    drawing: m.Drawing
    replayed: bool


def _drawn_ever_fen(session: Session, line: m.CreditLine) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(m.Drawing.amount_fen), 0)).where(m.Drawing.line_id == line.id)) or 0)


def available_fen(session: Session, line: m.CreditLine, on: date) -> int:
    """What may be drawn on `on`: nothing outside the line's validity; else, revolving:
    limit − principal outstanding; non-revolving: limit − everything ever drawn."""
    if line.status != LineStatus.ACTIVE or not line.opened_on <= on < line.expires_on:
        return 0
    used = line.drawn_principal_fen if line.revolving else _drawn_ever_fen(session, line)
    return max(0, line.limit_fen - used)


def draw(
    session: Session, *, line_id: int, amount_fen: int, on_date: date | None, idempotency_key: str, now: datetime, drawn_by: int | None = None
) -> DrawResult:
    """Borrow any time: disburse `amount_fen` from the line's available limit."""
    line, day, digest, key, prior = _begin("draw", session, line_id, amount_fen, on_date, idempotency_key, now, lock_enterprise_first=True)
    if prior is not None:
        drawing = session.scalar(select(m.Drawing).where(m.Drawing.entry_id == prior.id))
        assert drawing is not None
        return DrawResult(drawing, replayed=True)
    _assert_principal(session, line)
    next_state(line.status, LineAction.DRAW, line.id)
    if not line.opened_on <= day < line.expires_on:
        raise Conflict("on_date", f"line {line.id} is valid from {line.opened_on} until {line.expires_on}", f"{line.opened_on}..{line.expires_on - timedelta(days=1)}")
    _check_not_backdated(session, line, day)
    bring_up_to_date(session, line, day - timedelta(days=1), now)
    arrears = interest_in_arrears_fen(session, line, day)
    if arrears > 0:
        raise Conflict("line_id", f"interest of {arrears} fen is in arrears; drawing is blocked until it is paid", "repay the interest first")
    available = available_fen(session, line, day)
    if amount_fen > available:
        raise Conflict("amount_fen", f"draw of {amount_fen} fen exceeds the available limit of {available} fen", f"1..{available} fen")
    headroom = enterprise_headroom_fen(session, line.enterprise_id)
    if headroom is not None and amount_fen > headroom:
        raise Conflict("amount_fen", f"draw of {amount_fen} fen would take the enterprise above its comprehensive limit: {headroom} fen left",
                       f"1..{headroom} fen")
    row = _write(session, jl.draw_entry(str(line.id), amount_fen, day, key), line.id, digest, now)
    line.drawn_principal_fen += amount_fen
    drawing = m.Drawing(
        line_id=line.id,
        entry_id=row.id,
        amount_fen=amount_fen,
        drawn_on=day,
        maturity_on=min(add_months(day, line.max_drawing_months), line.expires_on),
        drawn_at=now,
        drawn_by=drawn_by,
    )
    session.add(drawing)
    session.flush()
    _assert_principal(session, line)
    return DrawResult(drawing, replayed=False)


def enterprise_headroom_fen(session: Session, enterprise_id: int) -> int | None:
    """What the enterprise may still draw across all its lines under the comprehensive limit of
    its decision in force (None for an enterprise without one, e.g. lines older than decisions)."""
    ent = session.get(m.Enterprise, enterprise_id)
    assert ent is not None, "a line's enterprise exists"
    if ent.live_decision_id is None:
        return None
    decision = session.get(m.Decision, ent.live_decision_id)
    assert decision is not None, "the decision in force exists"
    drawn = session.scalar(select(func.coalesce(func.sum(m.CreditLine.drawn_principal_fen), 0)).where(m.CreditLine.enterprise_id == enterprise_id))
    return max(0, decision.comprehensive_limit_fen - int(drawn or 0))


def interest_in_arrears_fen(session: Session, line: m.CreditLine, on_date: date) -> int:
    """Interest posted on or before the last settlement day before `on_date` and
    still unpaid. Interest of the current period is not yet due."""
    period_start, _ = period_containing(on_date, line.settlement_frequency)
    due_through = period_start - timedelta(days=1)
    base = (
        select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0))
        .join(m.JournalEntryRow, m.JournalEntryRow.id == m.PostingRow.entry_id)
        .where(m.PostingRow.account == _account(line, "interest"))
    )
    due = int(session.scalar(base.where(m.PostingRow.amount_fen > 0, m.JournalEntryRow.effective_date <= due_through)) or 0)
    paid = -int(session.scalar(base.where(m.PostingRow.amount_fen < 0)) or 0)
    return max(0, due - paid)


def accrue_line(session: Session, line: m.CreditLine, through: date) -> int:
    """Accrue each day up to `through` on that day's closing principal; returns days accrued."""
    start = line.opened_on if line.accrued_through is None else line.accrued_through + timedelta(days=1)
    end = min(through, line.expires_on - timedelta(days=1)) if line.drawn_principal_fen == 0 else through
    if end < start:
        return 0
    principal = _account(line, "principal")
    opening = account_balance(session, principal, through=start - timedelta(days=1))
    rows = session.execute(
        select(m.JournalEntryRow.effective_date, m.PostingRow.amount_fen)
        .join(m.PostingRow, m.PostingRow.entry_id == m.JournalEntryRow.id)
        .where(m.PostingRow.account == principal, m.JournalEntryRow.effective_date >= start, m.JournalEntryRow.effective_date <= end)
    ).all()
    accruals = accrue([(d, a) for d, a in rows], start, end, line.rate_annual, line.basis_days, opening_principal_fen=opening)
    session.add_all(
        m.InterestAccrual(
            line_id=line.id,
            day=a.day,
            closing_principal_fen=a.closing_principal_fen,
            rate_annual=a.rate_annual,
            basis_days=a.basis_days,
            interest_exact=a.interest_fen_exact,
            posted_entry_id=None,
        )
        for a in accruals
        if a.closing_principal_fen > 0
    )
    line.accrued_through = end
    session.flush()
    return len(accruals)


def _unposted(session: Session, line: m.CreditLine) -> list[m.InterestAccrual]:
    return list(
        session.scalars(select(m.InterestAccrual).where(m.InterestAccrual.line_id == line.id, m.InterestAccrual.posted_entry_id.is_(None)))
    )


def _to_post_fen(accruals: list[m.InterestAccrual]) -> int:
    return interest_to_post_fen(DailyAccrual(a.day, a.closing_principal_fen, a.rate_annual, a.basis_days, a.interest_exact) for a in accruals)


def post_interest(session: Session, line: m.CreditLine, on_date: date, key: str, now: datetime) -> int:
    """Post all unposted accruals as one interest entry, rounded half-up once."""
    unposted = _unposted(session, line)
    amount = _to_post_fen(unposted)
    if amount == 0:
        return 0
    digest = _request_sha256(op="interest", line=line.id, days=[a.day for a in unposted])
    if _existing(session, key, digest, key) is not None:
        return 0
    row = _write(session, jl.interest_posting_entry(str(line.id), amount, on_date, key), line.id, digest, now)
    for a in unposted:
        a.posted_entry_id = row.id
    session.flush()
    return amount


def bring_up_to_date(session: Session, line: m.CreditLine, through: date, now: datetime) -> tuple[int, int]:
    """Accrue through `through`, posting interest on every settlement day passed
    on the way (so a missed end of day never skips a settlement).
    Returns (days accrued, fen posted)."""
    start = line.opened_on if line.accrued_through is None else line.accrued_through + timedelta(days=1)
    days = posted = 0
    for settlement in settlement_dates(start, through, line.settlement_frequency) if through >= start else []:
        days += accrue_line(session, line, settlement)
        posted += post_interest(session, line, settlement, f"sys:settle:{line.id}:{settlement}", now)
    days += accrue_line(session, line, through)
    return days, posted


@dataclass(frozen=True)
class RepayResult:
    allocations: dict[str, int]
    interest_posted_fen: int
    replayed: bool


def _replayed_repayment(session: Session, prior: m.JournalEntryRow, key: str) -> RepayResult:
    postings = session.scalars(select(m.PostingRow).where(m.PostingRow.entry_id == prior.id, m.PostingRow.amount_fen < 0))
    allocations = {p.account.rsplit(":", 1)[1]: -p.amount_fen for p in postings}
    interest = session.scalar(
        select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0))
        .join(m.JournalEntryRow, m.JournalEntryRow.id == m.PostingRow.entry_id)
        .where(m.JournalEntryRow.idempotency_key == f"{key}#interest", m.PostingRow.amount_fen > 0)
    )
    return RepayResult(allocations, int(interest or 0), replayed=True)


def repay(session: Session, *, line_id: int, amount_fen: int, on_date: date | None, idempotency_key: str, now: datetime) -> RepayResult:
    """Repay any time: interest accrued to yesterday first, then principal."""
    line, day, digest, key, prior = _begin("repay", session, line_id, amount_fen, on_date, idempotency_key, now)
    if prior is not None:
        return _replayed_repayment(session, prior, key)
    _assert_principal(session, line)
    next_state(line.status, LineAction.REPAY, line.id)
    _check_not_backdated(session, line, day)
    bring_up_to_date(session, line, day - timedelta(days=1), now)
    owed_interest = account_balance(session, _account(line, "interest")) + _to_post_fen(_unposted(session, line))
    owed = owed_interest + line.drawn_principal_fen
    if amount_fen > owed:
        raise Conflict("amount_fen", f"repayment of {amount_fen} fen exceeds the {owed} fen owed", f"1..{owed} fen")
    posted = post_interest(session, line, day, f"{key}#interest", now)
    outstanding = {"interest": account_balance(session, _account(line, "interest")), "principal": line.drawn_principal_fen}
    allocations = allocate(amount_fen, outstanding)
    _write(session, jl.repayment_entry(str(line.id), allocations, day, key), line.id, digest, now)
    line.drawn_principal_fen -= allocations.get("principal", 0)
    session.flush()
    _assert_principal(session, line)
    return RepayResult(allocations, posted, replayed=False)


@dataclass(frozen=True)
class EodBatch:
    lines: int  # lines brought up to date in this batch
    days_accrued: int
    interest_posted_fen: int
    last_line_id: int  # resume after this line; 0 when the batch was empty


def lines_due_for_eod(session: Session, business_date: date, after_line_id: int = 0) -> int:
    """How many active lines with id > `after_line_id` have not been brought up to date through `business_date`."""
    q = select(func.count()).select_from(m.CreditLine).where(m.CreditLine.id > after_line_id, *_due_for_eod(business_date))
    return int(session.scalar(q) or 0)


def _due_for_eod(business_date: date) -> tuple:
    """Lines end of day has work on: not brought up to date through the date, or to be expired —
    open lines, and expired ones while principal is still drawn on them."""
    open_states = (LineStatus.ACTIVE, LineStatus.FROZEN)
    return (
        m.CreditLine.status.in_(open_states) | ((m.CreditLine.status == LineStatus.EXPIRED) & (m.CreditLine.drawn_principal_fen > 0)),
        (m.CreditLine.accrued_through.is_(None)) | (m.CreditLine.accrued_through < business_date)
        | (m.CreditLine.status.in_(open_states) & (m.CreditLine.expires_on <= business_date + timedelta(days=1))),
    )


def run_eod(session: Session, *, business_date: date, now: datetime, after_line_id: int = 0, limit: int | None = None) -> EodBatch:
    """End of day for the active lines with id > `after_line_id` (at most `limit`,
    all when None): bring each up to date through `business_date` (accrual, and
    posting on settlement days). Idempotent: a line already brought up to date
    is not touched again, so a second run for the same date changes nothing.
    One run per date at a time (PostgreSQL: an advisory lock; SQLite: one writer)."""
    require_not_future(_check_date(business_date, "business_date"), now, "business_date")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput("limit", f"got {show(limit)}", "a positive number of lines")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EOD_LOCK_KEY + business_date.toordinal()})
    query = select(m.CreditLine.id).where(m.CreditLine.id > after_line_id, *_due_for_eod(business_date)).order_by(m.CreditLine.id)
    ids = list(session.scalars(query if limit is None else query.limit(limit)))
    days = posted = done = 0
    for line_id in ids:
        line = lock_line(session, line_id)  # waits for an in-flight draw or repayment on the line
        if line.status == LineStatus.CLOSED:
            continue  # changed since the query
        if line.accrued_through is None or line.accrued_through < business_date:
            line_days, line_posted = bring_up_to_date(session, line, business_date, now)
            days, posted = days + line_days, posted + line_posted
        if line.status in (LineStatus.ACTIVE, LineStatus.FROZEN) and business_date + timedelta(days=1) >= line.expires_on:
            line.status = next_state(line.status, LineAction.EXPIRE, line.id)  # its last valid day is over
        done += 1
    session.flush()
    return EodBatch(done, days, posted, ids[-1] if ids else 0)


MAX_JOURNAL_PAGE = 500


def journal_of(
    session: Session, line_id: int, after_id: int = 0, limit: int = 100
) -> tuple[list[tuple[m.JournalEntryRow, list[m.PostingRow]]], int | None]:
    """One page of a line's journal, oldest first, entries with id > `after_id`.
    Returns (entries, the `after_id` of the next page or None on the last page)."""
    page, next_after = keyset_page(session, select(m.JournalEntryRow).where(m.JournalEntryRow.line_id == line_id), m.JournalEntryRow.id,
                                   after=after_id, limit=limit, max_limit=MAX_JOURNAL_PAGE)
    postings: dict[int, list[m.PostingRow]] = {e.id: [] for e in page}
    for p in session.scalars(select(m.PostingRow).where(m.PostingRow.entry_id.in_(list(postings))).order_by(m.PostingRow.id)):
        postings[p.entry_id].append(p)
    for e in page:
        assert sum(p.amount_fen for p in postings[e.id]) == 0, f"entry {e.id} does not balance"
    return [(e, postings[e.id]) for e in page], next_after


_LINE_COLUMNS = ("id", "product", "limit_fen", "drawn_principal_fen", "basis_days", "repayment_method", "revolving",
                 "settlement_frequency", "opened_on", "expires_on", "status", "accrued_through")


def line_view(session: Session, line_id: int, today: date) -> LineView:
    """A line as its owner sees it on `today`: balances, availability, interest posted and accrued."""
    line = get_line(session, line_id)
    _assert_principal(session, line)
    return LineView(
        **{c: getattr(line, c) for c in _LINE_COLUMNS},
        rate_annual=str(line.rate_annual),
        available_fen=available_fen(session, line, today),
        interest_posted_fen=account_balance(session, _account(line, "interest")),
        interest_accrued_fen=_to_post_fen(_unposted(session, line)),
    )


def journal_page(session: Session, line_id: int, after_id: int = 0, limit: int = 100) -> JournalPage:
    """One page of a line's journal as shown to its owner (404 for an unknown line)."""
    get_line(session, line_id)
    entries, next_after_id = journal_of(session, line_id, after_id=after_id, limit=limit)
    return JournalPage(
        entries=[
            EntryView(
                id=e.id, kind=e.kind, effective_date=e.effective_date, idempotency_key=e.idempotency_key,
                postings=[PostingView(account=p.account, amount_fen=p.amount_fen) for p in ps],
            )
            for e, ps in entries
        ],
        next_after_id=next_after_id,
    )


# --- the life of a line: freeze, unfreeze, renew, reduce, close --------------------------------


def _locked_for_change(session: Session, line_id: int) -> m.CreditLine:
    line = get_line(session, line_id)
    lock_enterprise(session, line.enterprise_id)  # the enterprise before the line, always
    return lock_line(session, line_id)


def freeze_line(session: Session, *, line_id: int) -> m.CreditLine:
    """Block drawing (repaying stays allowed), e.g. on an early-warning signal."""
    line = _locked_for_change(session, line_id)
    line.status = next_state(line.status, LineAction.FREEZE, line.id)
    return line


def unfreeze_line(session: Session, *, line_id: int) -> m.CreditLine:
    line = _locked_for_change(session, line_id)
    line.status = next_state(line.status, LineAction.UNFREEZE, line.id)
    return line


def reduce_limit(session: Session, *, line_id: int, limit_fen: int) -> m.CreditLine:
    """Lower a line's limit, never below the principal drawn on it."""
    require_fen(limit_fen, field="limit_fen", allow_zero=True, max_fen=MAX_AMOUNT_FEN)
    line = _locked_for_change(session, line_id)
    next_state(line.status, LineAction.REDUCE, line.id)
    if limit_fen >= line.limit_fen:
        raise Conflict("limit_fen", f"{limit_fen} fen is not below the line's limit of {line.limit_fen} fen", f"less than {line.limit_fen} fen")
    if limit_fen < line.drawn_principal_fen:
        raise Conflict("limit_fen", f"{line.drawn_principal_fen} fen is drawn on the line", f"{line.drawn_principal_fen}..{line.limit_fen - 1} fen")
    line.limit_fen = limit_fen
    _assert_principal(session, line)
    return line


def renew_line(session: Session, *, line_id: int, today: date) -> m.CreditLine:
    """Renew into a new term of the product's validity, from today or the end of the current
    term, whichever is later — when the enterprise's decision in force still covers the line."""
    line = _locked_for_change(session, line_id)
    line.status = next_state(line.status, LineAction.RENEW, line.id)
    ent = session.get(m.Enterprise, line.enterprise_id)
    offer = session.get(m.Offer, line.offer_id)
    assert ent is not None and offer is not None, "a line has its enterprise and offer"
    decision = session.get(m.Decision, offer.decision_id)
    assert decision is not None, "an offer has its decision"
    live = session.get(m.Decision, ent.live_decision_id) if ent.live_decision_id else None
    if live is None or committed_limit_fen(session, ent.id) > live.comprehensive_limit_fen:
        raise Conflict("line_id", "the enterprise's decision in force does not cover its lines: measure again first", "a line within the comprehensive limit")
    terms = next(o for o in decision.result["offers"] if o["product"] == line.product)
    line.expires_on = add_months(max(today, line.expires_on), terms["validity_months"])
    return line


def close_line(session: Session, *, line_id: int) -> m.CreditLine:
    """Close a line on which nothing is owed: no principal, no interest posted or accrued."""
    line = _locked_for_change(session, line_id)
    next_state(line.status, LineAction.CLOSE, line.id)
    owed_interest = account_balance(session, _account(line, "interest")) + _to_post_fen(_unposted(session, line))
    if line.drawn_principal_fen or owed_interest:
        raise Conflict("line_id", f"{line.drawn_principal_fen} fen of principal and {owed_interest} fen of interest are owed on the line",
                       "a line on which nothing is owed")
    line.status = LineStatus.CLOSED
    return line
