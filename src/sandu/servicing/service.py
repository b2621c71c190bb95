"""Servicing of revolving lines (随借随还) on the double-entry ledger.

Every amount that moves is a balanced journal entry with an idempotency key.
The line row is locked (PostgreSQL: SELECT … FOR UPDATE; SQLite: the write
transaction is BEGIN IMMEDIATE) before its balance is checked, so concurrent
draws can never take the drawn principal above the limit; the database's check
constraint is the last line of defence. Interest accrues by the day on the
closing principal and is posted, rounded half-up once, on repayment and on the
settlement day (the 20th).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from sandu.domain.dates import add_months
from sandu.domain.errors import Conflict, InvalidInput, NotFound
from sandu.domain.money import require_fen
from sandu.ledger import journal as jl
from sandu.ledger.allocation import allocate
from sandu.ledger.interest import DailyAccrual, accrue, interest_to_post_fen, period_containing, settlement_dates
from sandu.store import models as m

MAX_KEY_LENGTH = 200
MAX_LINES_PER_EOD = 1_000_000
SETTLEMENT_FREQUENCY = "monthly"
EOD_LOCK_KEY = 0x5A4D_0000  # + the date's ordinal: one advisory lock per business date


def _request_sha256(**fields: object) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput("idempotency_key", "must be a non-empty string", f"1..{MAX_KEY_LENGTH} characters")
    return key


def _check_date(value: object, field: str) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidInput(field, f"must be a calendar date, got {value!r}", "YYYY-MM-DD")
    return value


def lock_line(session: Session, line_id: int) -> m.CreditLine:
    if isinstance(line_id, bool) or not isinstance(line_id, int):
        raise InvalidInput("line_id", f"must be an integer, got {line_id!r}")
    stmt = select(m.CreditLine).where(m.CreditLine.id == line_id).with_for_update()
    line = session.scalar(stmt.execution_options(populate_existing=True))
    if line is None:
        raise NotFound("credit line", line_id, field="line_id")
    return line


def _existing(session: Session, key: str, request_sha256: str) -> m.JournalEntryRow | None:
    row = session.scalar(select(m.JournalEntryRow).where(m.JournalEntryRow.idempotency_key == key))
    if row is not None and row.request_sha256 != request_sha256:
        raise Conflict("idempotency_key", f"{key!r} was already used for a different request", "a new key for a new request")
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
    return row


def account_balance(session: Session, account: str, through: date | None = None) -> int:
    q = select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0)).where(m.PostingRow.account == account)
    if through is not None:
        q = q.join(m.JournalEntryRow, m.JournalEntryRow.id == m.PostingRow.entry_id).where(m.JournalEntryRow.effective_date <= through)
    return int(session.scalar(q) or 0)


def _principal_account(line: m.CreditLine) -> str:
    return jl.loan_account(str(line.id), "principal")


def _assert_principal(session: Session, line: m.CreditLine) -> None:
    ledger = account_balance(session, _principal_account(line))
    assert ledger == line.drawn_principal_fen, f"line {line.id}: ledger principal {ledger} ≠ drawn {line.drawn_principal_fen}"
    assert 0 <= line.drawn_principal_fen <= line.limit_fen, f"line {line.id}: drawn outside 0..limit"


def _begin(
    op: str, session: Session, line_id: int, amount_fen: int, on_date: date, key: str
) -> tuple[m.CreditLine, str, m.JournalEntryRow | None]:
    """Validate a money movement's arguments, lock its line, and find an earlier
    request with the same idempotency key (same body: replay; other body: Conflict)."""
    require_fen(amount_fen, field="amount_fen")
    _check_date(on_date, "on_date")
    _check_key(key)
    line = lock_line(session, line_id)
    digest = _request_sha256(op=op, line=line_id, amount=amount_fen, on=on_date)
    return line, digest, _existing(session, key, digest)


@dataclass(frozen=True)
class DrawResult:
    drawing: m.Drawing
    replayed: bool


def draw(session: Session, *, line_id: int, amount_fen: int, on_date: date, idempotency_key: str, now: datetime) -> DrawResult:
    """Borrow any time: disburse `amount_fen` from the line's available limit."""
    line, digest, prior = _begin("draw", session, line_id, amount_fen, on_date, idempotency_key)
    if prior is not None:
        drawing = session.scalar(select(m.Drawing).where(m.Drawing.entry_id == prior.id))
        assert drawing is not None
        return DrawResult(drawing, replayed=True)
    _assert_principal(session, line)
    if line.status != "active":
        raise Conflict("line_id", f"line {line.id} is {line.status}", "an active line")
    if not line.opened_on <= on_date < line.expires_on:
        raise Conflict("on_date", f"line {line.id} is valid from {line.opened_on} until {line.expires_on}", f"{line.opened_on}..{line.expires_on - timedelta(days=1)}")
    if line.accrued_through is not None and on_date <= line.accrued_through:
        raise Conflict("on_date", f"interest is already accrued through {line.accrued_through}", f"a date after {line.accrued_through}")
    arrears = interest_in_arrears_fen(session, line, on_date)
    if arrears > 0:
        raise Conflict("line_id", f"interest of {arrears} fen is in arrears; drawing is blocked until it is paid", "repay the interest first")
    available = line.limit_fen - line.drawn_principal_fen
    if amount_fen > available:
        raise Conflict("amount_fen", f"draw of {amount_fen} fen exceeds the available limit of {available} fen", f"1..{available} fen")
    entry = jl.draw_entry(str(line.id), amount_fen, on_date, idempotency_key)
    row = _write(session, entry, line.id, digest, now)
    line.drawn_principal_fen += amount_fen
    drawing = m.Drawing(
        line_id=line.id,
        entry_id=row.id,
        amount_fen=amount_fen,
        drawn_on=on_date,
        maturity_on=min(add_months(on_date, line.max_drawing_months), line.expires_on),
        drawn_at=now,
    )
    session.add(drawing)
    session.flush()
    _assert_principal(session, line)
    return DrawResult(drawing, replayed=False)


def interest_in_arrears_fen(session: Session, line: m.CreditLine, on_date: date) -> int:
    """Interest posted on or before the last settlement day before `on_date` and
    still unpaid. Interest of the current period is not yet due."""
    period_start, _ = period_containing(on_date, SETTLEMENT_FREQUENCY)
    due_through = period_start - timedelta(days=1)
    account = jl.loan_account(str(line.id), "interest")
    base = (
        select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0))
        .join(m.JournalEntryRow, m.JournalEntryRow.id == m.PostingRow.entry_id)
        .where(m.PostingRow.account == account)
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
    principal = _principal_account(line)
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


def post_interest(session: Session, line: m.CreditLine, on_date: date, key: str, now: datetime) -> int:
    """Post all unposted accruals as one interest entry, rounded half-up once."""
    unposted = list(
        session.scalars(select(m.InterestAccrual).where(m.InterestAccrual.line_id == line.id, m.InterestAccrual.posted_entry_id.is_(None)))
    )
    if not unposted:
        return 0
    amount = interest_to_post_fen(
        DailyAccrual(a.day, a.closing_principal_fen, a.rate_annual, a.basis_days, a.interest_exact) for a in unposted
    )
    if amount == 0:
        return 0
    digest = _request_sha256(op="interest", line=line.id, days=[a.day for a in unposted])
    if _existing(session, key, digest) is not None:
        return 0
    entry = jl.interest_posting_entry(str(line.id), amount, on_date, key)
    row = _write(session, entry, line.id, digest, now)
    for a in unposted:
        a.posted_entry_id = row.id
    session.flush()
    return amount


@dataclass(frozen=True)
class RepayResult:
    allocations: dict[str, int]
    interest_posted_fen: int
    replayed: bool


def repay(session: Session, *, line_id: int, amount_fen: int, on_date: date, idempotency_key: str, now: datetime) -> RepayResult:
    """Repay any time: interest accrued to yesterday first, then principal."""
    line, digest, prior = _begin("repay", session, line_id, amount_fen, on_date, idempotency_key)
    if prior is not None:
        postings = session.scalars(select(m.PostingRow).where(m.PostingRow.entry_id == prior.id, m.PostingRow.amount_fen < 0))
        allocations = {p.account.rsplit(":", 1)[1]: -p.amount_fen for p in postings}
        interest_key = f"{idempotency_key}:interest"
        interest = session.scalar(
            select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0))
            .join(m.JournalEntryRow, m.JournalEntryRow.id == m.PostingRow.entry_id)
            .where(m.JournalEntryRow.idempotency_key == interest_key, m.PostingRow.amount_fen > 0)
        )
        return RepayResult(allocations, int(interest or 0), replayed=True)
    _assert_principal(session, line)
    if on_date < line.opened_on or (line.accrued_through is not None and on_date <= line.accrued_through):
        floor = line.opened_on if line.accrued_through is None else line.accrued_through + timedelta(days=1)
        raise Conflict("on_date", f"repayments on line {line.id} must be dated {floor} or later", f"{floor} or later")
    accrue_line(session, line, on_date - timedelta(days=1))
    # Check the amount against what is owed before anything is posted.
    owed_interest = account_balance(session, jl.loan_account(str(line.id), "interest")) + _unposted_interest_fen(session, line)
    owed = owed_interest + line.drawn_principal_fen
    if amount_fen > owed:
        raise Conflict("amount_fen", f"repayment of {amount_fen} fen exceeds the {owed} fen owed", f"1..{owed} fen")
    posted = post_interest(session, line, on_date, f"{idempotency_key}:interest", now)
    outstanding = {
        "interest": account_balance(session, jl.loan_account(str(line.id), "interest")),
        "principal": line.drawn_principal_fen,
    }
    allocations = allocate(amount_fen, outstanding)
    entry = jl.repayment_entry(str(line.id), allocations, on_date, idempotency_key)
    _write(session, entry, line.id, digest, now)
    line.drawn_principal_fen -= allocations.get("principal", 0)
    session.flush()
    _assert_principal(session, line)
    return RepayResult(allocations, posted, replayed=False)


def _unposted_interest_fen(session: Session, line: m.CreditLine) -> int:
    unposted = session.scalars(
        select(m.InterestAccrual).where(m.InterestAccrual.line_id == line.id, m.InterestAccrual.posted_entry_id.is_(None))
    )
    return interest_to_post_fen(DailyAccrual(a.day, a.closing_principal_fen, a.rate_annual, a.basis_days, a.interest_exact) for a in unposted)


def run_eod(session: Session, *, business_date: date, now: datetime) -> dict[str, int]:
    """End of day: accrue every active line through `business_date`; on the
    settlement day post the period's interest. Idempotent: a second run for the
    same date changes nothing."""
    _check_date(business_date, "business_date")
    if session.get_bind().dialect.name == "postgresql":
        # One end of day per date at a time; SQLite's BEGIN IMMEDIATE already serialises writers.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EOD_LOCK_KEY + business_date.toordinal()})
    ids = list(session.scalars(select(m.CreditLine.id).where(m.CreditLine.status == "active").order_by(m.CreditLine.id).limit(MAX_LINES_PER_EOD)))
    days = posted = 0
    settle = bool(settlement_dates(business_date, business_date, SETTLEMENT_FREQUENCY))
    for line_id in ids:
        line = lock_line(session, line_id)  # waits for an in-flight draw or repayment on the line
        if line.status != "active" or (line.accrued_through is not None and line.accrued_through >= business_date):
            continue
        days += accrue_line(session, line, business_date)
        if settle:
            posted += post_interest(session, line, business_date, f"eod:{business_date}:interest:{line.id}", now)
    return {"lines": len(ids), "days_accrued": days, "interest_posted_fen": posted}


@dataclass(frozen=True)
class LineView:
    line: m.CreditLine
    available_fen: int
    principal_fen: int
    interest_posted_fen: int
    interest_accrued_exact: Decimal


def line_view(session: Session, line_id: int) -> LineView:
    line = session.get(m.CreditLine, line_id) if isinstance(line_id, int) and not isinstance(line_id, bool) else None
    if line is None:
        raise NotFound("credit line", line_id, field="line_id")
    _assert_principal(session, line)
    accrued = session.scalars(
        select(m.InterestAccrual.interest_exact).where(m.InterestAccrual.line_id == line.id, m.InterestAccrual.posted_entry_id.is_(None))
    )
    return LineView(
        line=line,
        available_fen=line.limit_fen - line.drawn_principal_fen,
        principal_fen=line.drawn_principal_fen,
        interest_posted_fen=account_balance(session, jl.loan_account(str(line.id), "interest")),
        interest_accrued_exact=sum(accrued, Decimal(0)),
    )


def journal_of(session: Session, line_id: int, limit: int = 500) -> list[tuple[m.JournalEntryRow, list[m.PostingRow]]]:
    entries = list(
        session.scalars(select(m.JournalEntryRow).where(m.JournalEntryRow.line_id == line_id).order_by(m.JournalEntryRow.id).limit(limit))
    )
    out = []
    for e in entries:
        postings = list(session.scalars(select(m.PostingRow).where(m.PostingRow.entry_id == e.id).order_by(m.PostingRow.id)))
        assert sum(p.amount_fen for p in postings) == 0, f"entry {e.id} does not balance"
        out.append((e, postings))
    return out
