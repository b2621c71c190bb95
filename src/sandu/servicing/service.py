"""Servicing of credit lines and their drawings (借据) on the double-entry ledger.

Every amount that moves is a balanced journal entry with an idempotency key. A movement
locks the enterprise (a draw) and the line (SELECT … FOR UPDATE on PostgreSQL; SQLite's
writer holds the store) before it reads the balances it checks; the balances a write
needs are kept on the rows (`Drawing` per bucket, `CreditLine.drawn_principal_fen`) and
proven equal to the journal by `ledger_check` — never summed from the history on a write.
A draw or a repayment is three statements on PostgreSQL — lock, read, write (the entry and
the rows it changes together, `servicing.writes`) — with Core statements compiled once.

Time (see `servicing.calendar`): a movement is value-dated on the business date or earlier,
never on or before the last date closed for its line (`CreditLine.accrued_through`). A line
that end of day has not reached yet is first closed through the day before the movement
(`catch_up`), day by day, by the same `close.close_day` end of day runs.

Interest of a 随借随还 drawing accrues by the day and is settled on the settlement days
(the 20th), due the next day; a repayment on another day pays principal and what is already
due — not interest that is not due yet, unless the product is 利随本清
(`interest_with_principal`). Scheduled drawings (按月付息到期还本, 等额本息, 等额本金) pay their
instalments; principal not yet due is repaid by a prepayment (`prepay`), which re-computes
the schedule (`ledger.schedule.reschedule_after_prepayment`).

Idempotency keys are the caller's, scoped to the line: stored as `c:{line}:{key}`; the
system's own entries use the `sys:` namespace, which no caller key can reach.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import Connection, Row, and_, bindparam, case, exists, func, insert, select, true
from sqlalchemy.orm import Session, make_transient_to_detached

from sandu.domain.dates import add_months
from sandu.domain.enums import DrawingStatus, LineStatus
from sandu.domain.errors import Conflict, InvalidInput, NotFound, show
from sandu.domain.keys import MAX_ROW_ID, is_row_id
from sandu.domain.money import MAX_AMOUNT_FEN, require_fen
from sandu.ledger import journal as jl
from sandu.ledger.allocation import allocate
from sandu.ledger.interest import interest_on_fen_days, penalty_rate
from sandu.ledger.overdue import RiskClass, rule_class, worst
from sandu.ledger.schedule import REVOLVING, build_schedule, prepayment_interest_fen, reschedule_after_prepayment
from sandu.ledger.schedule import Instalment as ScheduleItem
from sandu.origination import workflow
from sandu.origination.service import committed_limit_fen, lock_enterprise
from sandu.servicing.calendar import business_day, calendar_row, require_value_date
from sandu.servicing.close import ClassRules, close_day, owner, record_oldest_due, refresh_line_class
from sandu.servicing.states import LineAction, next_state
from sandu.servicing.views import (
    Balances,
    DrawingView,
    DueView,
    EntryView,
    InstalmentView,
    JournalPage,
    LineView,
    PostingView,
)
from sandu.servicing.writes import DRAWING_WRITES, ENTRIES_KEY, next_drawing_id, write_entry, write_movement
from sandu.store import models as m
from sandu.store.db import keyset_page

__all__ = ["ENTRIES_KEY"]

MAX_KEY_LENGTH = 120
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]+")
MAX_CATCH_UP_DAYS = 3660  # a line is brought up to date over at most ten years in one movement
MAX_OPEN_DRAWINGS = 1000  # open drawings on one line; a draw beyond it is refused
BUCKET_COLUMNS: dict[str, str] = {  # receivable bucket → the Drawing column that keeps its balance
    "penalty": "penalty_fen", "compound": "compound_fen", "overdue_interest": "overdue_interest_fen",
    "overdue_principal": "overdue_principal_fen", "interest": "interest_fen", "principal": "principal_fen",
}
ARREARS_BUCKETS = ("overdue_principal", "overdue_interest", "penalty", "compound")  # while any is owed, drawing is blocked


def _request_sha256(**fields: object) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _client_key(line_id: int, key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(key):
        raise InvalidInput("idempotency_key", f"got {show(key)}", f"1..{MAX_KEY_LENGTH} characters of A-Z a-z 0-9 _ . : -")
    return f"c:{line_id}:{key}"


def get_line(session: Session, line_id: int, *, lock: bool = False) -> m.CreditLine:
    """The line, re-read from the database; `lock` takes its row lock for a write."""
    if not is_row_id(line_id):
        raise InvalidInput("line_id", f"must be a line number, got {show(line_id)}", f"1..{MAX_ROW_ID}")
    line = session.scalar(_LINE_FOR_UPDATE if lock else _LINE, {"id": line_id})
    if line is None:
        raise NotFound("credit line", line_id, field="line_id")
    return line


_LINE = select(m.CreditLine).where(m.CreditLine.id == bindparam("id")).execution_options(populate_existing=True)
_LINE_FOR_UPDATE = _LINE.with_for_update()


def lock_line(session: Session, line_id: int) -> m.CreditLine:
    return get_line(session, line_id, lock=True)


def get_drawing(session: Session, drawing_id: int, *, line_id: int | None = None) -> m.Drawing:
    """The drawing, re-read; NotFound also when it is not a drawing of `line_id` (when given)."""
    if not is_row_id(drawing_id):
        raise InvalidInput("drawing_id", f"must be a drawing number, got {show(drawing_id)}", f"1..{MAX_ROW_ID}")
    drawing = session.scalar(select(m.Drawing).where(m.Drawing.id == drawing_id).execution_options(populate_existing=True))
    if drawing is None or (line_id is not None and drawing.line_id != line_id):
        raise NotFound("drawing", drawing_id, field="drawing_id")
    return drawing


_ENTRY_BY_KEY = select(m.JournalEntryRow.id, m.JournalEntryRow.request_sha256).where(m.JournalEntryRow.idempotency_key == bindparam("key"))


def _existing(session: Session, key: str, request_sha256: str, shown_key: str) -> int | None:
    """The id of the entry an earlier request with this key wrote (the same request: a replay), or None."""
    row = session.execute(_ENTRY_BY_KEY, {"key": key}).one_or_none()
    return None if row is None else _check_prior(row.id, row.request_sha256, request_sha256, shown_key)


def sum_columns(model, columns):
    """model.c1 + model.c2 + … (SQL) over the named columns."""
    names = list(columns)
    expr = getattr(model, names[0])
    for name in names[1:]:
        expr = expr + getattr(model, name)
    return expr


# --- what a movement reads: Core statements on the session's connection --------------------------
#
# A draw or a repayment reads with a few statements compiled once, executed on the session's connection (no ORM
# loading): the line and its open drawings as rows. A repayment copies its drawings into plain records with the
# Drawing's attributes (`SimpleNamespace`; the helpers below take either), changes them in memory and writes back
# those that changed with the movement's entry (`servicing.writes.write_movement`).

_LINES, _DRAWINGS, _ENTRIES = m.CreditLine.__table__, m.Drawing.__table__, m.JournalEntryRow.__table__
_ENTERPRISES, _DECISIONS, _CALENDAR = m.Enterprise.__table__, m.Decision.__table__, m.BusinessCalendar.__table__
_OTHER = _LINES.alias("other")
_OPEN = and_(_DRAWINGS.c.line_id == bindparam("id"), _DRAWINGS.c.status == DrawingStatus.OPEN.value)
_PRIOR = _ENTRIES.c.idempotency_key == bindparam("key")  # an earlier request's entry with the same key, if any
# what a movement reads of its line, and of the drawings a repayment pays (only these: every column is work per read)
_LINE_READ = tuple(_LINES.c[c] for c in ("id", "status", "opened_on", "expires_on", "accrued_through", "limit_fen", "drawn_principal_fen",
                                          "risk_class", "revolving", "repayment_method", "rate_annual", "penalty_uplift", "basis_days",
                                          "settlement_frequency", "max_drawing_months", "term_within_validity", "interest_with_principal",
                                          "allocation_order"))
_DRAWING_READ = ("id", "daily_interest", "rate_annual", "basis_days", "risk_class", *DRAWING_WRITES)

# The calendar needs no lock: end of day closes a date for a line under the line's lock, and a movement is dated after
# the date closed for its line.
_LAST_CLOSED_ON = select(_CALENDAR.c.last_closed_on).where(_CALENDAR.c.id == 1).scalar_subquery().label("last_closed_on")
_LOCK_LINE = select(*_LINE_READ, _LAST_CLOSED_ON).where(_LINES.c.id == bindparam("id")).with_for_update(of=_LINES)

# A draw locks the enterprise before the line, always (as every change of what an enterprise may borrow does): both in
# one statement, the enterprise first (PostgreSQL takes the row locks of FOR UPDATE OF in the order named). What the
# draw checks is read by the next statement, whose snapshot is taken once both locks are held — so it sees whatever
# a transaction that held either lock committed, also when this one waited for it.
_LOCK_ENTERPRISE_AND_LINE = (select(_LINES.c.id).join(_ENTERPRISES, _ENTERPRISES.c.id == _LINES.c.enterprise_id)
                             .where(_LINES.c.id == bindparam("id")).with_for_update(of=[_ENTERPRISES, _LINES]))
_OPEN_TOTALS = (select(func.count().label("open_count"),
                       func.coalesce(func.sum(_DRAWINGS.c.principal_fen + _DRAWINGS.c.overdue_principal_fen), 0).label("open_principal_fen"),
                       func.coalesce(func.sum(sum_columns(_DRAWINGS.c, (BUCKET_COLUMNS[b] for b in ARREARS_BUCKETS))), 0).label("open_arrears_fen"))
                .where(_OPEN).subquery("open_totals"))


def _draw_read(dialect: str):
    """What a draw checks, in one statement: the line, the last date closed, the enterprise's comprehensive limit (of
    its decision in force) and what all its lines have drawn, an earlier request with the key, the totals of the
    line's open drawings — and the id the drawing will take (`writes.next_drawing_id`), and the line's application
    when this drawing is its first (`workflow.activation_column`: it then moves to active)."""
    return (
        select(*_LINE_READ, _LAST_CLOSED_ON,
               select(_DECISIONS.c.comprehensive_limit_fen).join(_ENTERPRISES, _ENTERPRISES.c.live_decision_id == _DECISIONS.c.id)
               .where(_ENTERPRISES.c.id == _LINES.c.enterprise_id).scalar_subquery().label("comprehensive_limit_fen"),
               select(func.coalesce(func.sum(_OTHER.c.drawn_principal_fen), 0)).where(_OTHER.c.enterprise_id == _LINES.c.enterprise_id)
               .scalar_subquery().label("enterprise_drawn_fen"),
               _ENTRIES.c.id.label("prior_id"), _ENTRIES.c.request_sha256.label("prior_sha256"),
               _OPEN_TOTALS.c.open_count, _OPEN_TOTALS.c.open_principal_fen, _OPEN_TOTALS.c.open_arrears_fen,
               next_drawing_id(dialect).label("next_drawing_id"), workflow.activation_column(_LINES.c.application_id))
        .select_from(_LINES.join(_OPEN_TOTALS, true()).outerjoin(_ENTRIES, _PRIOR))
        .where(_LINES.c.id == bindparam("id")))


_DRAW_READS = {dialect: _draw_read(dialect) for dialect in ("sqlite", "postgresql")}
_PRIOR_AND_OPEN = (
    select(_ENTRIES.c.id.label("prior_id"), _ENTRIES.c.request_sha256.label("prior_sha256"), *(_DRAWINGS.c[c] for c in _DRAWING_READ))
    .select_from(_LINES.outerjoin(_ENTRIES, _PRIOR).outerjoin(_DRAWINGS, and_(_DRAWINGS.c.line_id == _LINES.c.id,
                                                                                _DRAWINGS.c.status == DrawingStatus.OPEN.value)))
    .where(_LINES.c.id == bindparam("id"))
    .order_by(_DRAWINGS.c.drawn_on, _DRAWINGS.c.id).limit(MAX_OPEN_DRAWINGS + 1))


def _connection(session: Session) -> Connection:
    """The session's connection, after flushing whatever the session holds (as an ORM read would autoflush)."""
    session.flush()
    return session.connection()


def _require_line_id(line_id: object) -> None:
    if not is_row_id(line_id):
        raise InvalidInput("line_id", f"must be a line number, got {show(line_id)}", f"1..{MAX_ROW_ID}")


def _lock_line_row(conn: Connection, line_id: int) -> Row:
    """The line as a row, locked, with the last date end of day closed (`last_closed_on`), in one statement."""
    _require_line_id(line_id)
    row = conn.execute(_LOCK_LINE, {"id": line_id}).one_or_none()
    if row is None:
        raise NotFound("credit line", line_id, field="line_id")
    return row


def _check_prior(prior_id: int | None, prior_sha256: str | None, request_sha256: str, shown_key: str) -> int | None:
    """The id of the entry an earlier request with this key wrote (the same request: a replay), or None."""
    if prior_id is not None and prior_sha256 != request_sha256:
        raise Conflict("idempotency_key", f"{shown_key!r} was already used for a different request", "a new key for a new request")
    return prior_id


def _prior_and_open(conn: Connection, line_id: int, key: str, request_sha256: str, shown_key: str) -> tuple[int | None, list[SimpleNamespace]]:
    """`_existing` and the line's open drawings, oldest first (the order a repayment pays them in), in one statement
    run after the line's lock (so it sees whatever an earlier request with the key committed while this one waited).
    The drawings are plain records, changed in memory and written back with the movement's entry."""
    rows = conn.execute(_PRIOR_AND_OPEN, {"id": line_id, "key": key}).all()
    prior = _check_prior(rows[0].prior_id, rows[0].prior_sha256, request_sha256, shown_key)
    return prior, [SimpleNamespace(**{c: r._mapping[c] for c in _DRAWING_READ}) for r in rows if r.id is not None]


def _written(d: object) -> dict:
    """What a movement may have changed on a drawing (`writes.DRAWING_WRITES`), with its id."""
    return {"id": d.id, **{c: getattr(d, c) for c in DRAWING_WRITES}}


def _value_day(line: m.CreditLine | Row, on_date: object, now: datetime, last_closed_on: date | None) -> date:
    """The movement's value date: `on_date` (default: the business date), after the last date closed for the line.
    While end of day is closing date D, a line it has already closed takes movements on D + 1, as after the run."""
    today = max(business_day(now, last_closed_on), line.accrued_through + timedelta(days=1))
    day = today if on_date is None else require_value_date(on_date, today)
    if day <= line.accrued_through:
        first = line.accrued_through + timedelta(days=1)
        raise Conflict("on_date", f"end of day has closed {line.accrued_through.isoformat()} for line {line.id}",
                       f"{first.isoformat()}..{today.isoformat()}" if first <= today else "the next business date")
    return day


def catch_up(session: Session, line: m.CreditLine | Row, through: date, now: datetime, rules: ClassRules) -> bool:
    """Close each day after the line's last closed date through `through` for this line alone (the line is locked
    by the caller); returns whether any day was closed (the caller then reads the line and its drawings again)."""
    gap = (through - line.accrued_through).days
    if gap <= 0:
        return False
    if gap > MAX_CATCH_UP_DAYS:
        raise Conflict("on_date", f"line {line.id} was last closed on {line.accrued_through}, {gap} days before", "run end of day first")
    for k in range(1, gap + 1):
        close_day(session, day=line.accrued_through + timedelta(days=k), line_ids=[line.id], now=now, rules=rules)
    return True


def _open_drawings(session: Session, line_id: int) -> list[m.Drawing]:
    """The line's open drawings, oldest first (the order a repayment pays them in)."""
    return list(session.scalars(_OPEN_DRAWINGS, {"line_id": line_id}))


_OPEN_DRAWINGS = (select(m.Drawing).where(m.Drawing.line_id == bindparam("line_id"), m.Drawing.status == DrawingStatus.OPEN)
                  .order_by(m.Drawing.drawn_on, m.Drawing.id).limit(MAX_OPEN_DRAWINGS + 1).execution_options(populate_existing=True))


def _assert_line(line_id: int, limit_fen: int, drawn_principal_fen: int, drawings: list) -> None:
    """What the line's row keeps (or is about to be written) equals its drawings' rows."""
    principal = sum(d.principal_fen + d.overdue_principal_fen for d in drawings)
    assert principal == drawn_principal_fen, f"line {line_id}: drawings hold {principal} fen of principal, the line {drawn_principal_fen}"
    assert 0 <= drawn_principal_fen <= limit_fen, f"line {line_id}: drawn outside 0..limit"


# --- draw --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawResult:
    drawing: m.Drawing
    replayed: bool


def _drawn_ever_fen(session: Session, line: m.CreditLine) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(m.Drawing.amount_fen), 0)).where(m.Drawing.line_id == line.id)) or 0)


def available_fen(session: Session, line: m.CreditLine, on: date) -> int:
    """What may be drawn on `on`: nothing outside the line's validity or unless it is active; else,
    revolving: limit − principal outstanding; non-revolving: limit − everything ever drawn."""
    if line.status != LineStatus.ACTIVE or not line.opened_on <= on < line.expires_on:
        return 0
    used = line.drawn_principal_fen if line.revolving else _drawn_ever_fen(session, line)
    return max(0, line.limit_fen - used)


def arrears_fen(drawings: list[m.Drawing]) -> int:
    """Overdue principal and interest, penalty and compound interest on the drawings (`ARREARS_BUCKETS`)."""
    return sum(getattr(d, BUCKET_COLUMNS[b]) for d in drawings for b in ARREARS_BUCKETS)


def maturity_of(line: m.CreditLine, drawn_on: date) -> date:
    """A drawing's maturity: the product's drawing term (a project loan's: the project's tenor), never after the
    line expires unless the product allows it."""
    maturity = add_months(drawn_on, line.max_drawing_months)
    return min(maturity, line.expires_on) if line.term_within_validity else maturity


def draw(
    session: Session, *, line_id: int, amount_fen: int, on_date: date | None, idempotency_key: str, now: datetime, rules: ClassRules,
    drawn_by: int | None = None,
) -> DrawResult:
    """Borrow: a drawing (借据) of `amount_fen` from the line's available limit, with its own term, rate and method.
    Statements: the enterprise and the line locked; what the draw checks read; the entry, the drawing and the line
    written (one statement on PostgreSQL, `servicing.writes`); and on the first drawing of an application only, its
    move to active with its transition (one more on PostgreSQL, two on SQLite: `workflow.first_draw`)."""
    require_fen(amount_fen, field="amount_fen", max_fen=MAX_AMOUNT_FEN)
    key = _client_key(line_id, idempotency_key)
    _require_line_id(line_id)
    digest = _request_sha256(op="draw", line=line_id, amount=amount_fen, on=on_date)  # hashed as sent
    conn = _connection(session)
    if conn.execute(_LOCK_ENTERPRISE_AND_LINE, {"id": line_id}).first() is None:
        raise NotFound("credit line", line_id, field="line_id")
    read = _DRAW_READS[conn.dialect.name]
    line = conn.execute(read, {"id": line_id, "key": key}).one()
    prior = _check_prior(line.prior_id, line.prior_sha256, digest, idempotency_key)
    if prior is not None:
        drawing = session.scalar(select(m.Drawing).where(m.Drawing.entry_id == prior))
        assert drawing is not None, "a draw's entry has its drawing"
        return DrawResult(drawing, replayed=True)
    next_state(line.status, LineAction.DRAW, line.id)
    day = _value_day(line, on_date, now, line.last_closed_on)
    if not line.opened_on <= day < line.expires_on:
        raise Conflict("on_date", f"line {line.id} is valid from {line.opened_on} until {line.expires_on}",
                       f"{line.opened_on}..{line.expires_on - timedelta(days=1)}")
    if catch_up(session, line, day - timedelta(days=1), now, rules):
        line = conn.execute(read, {"id": line_id, "key": key}).one()  # the line and its drawings as end of day left them
    assert line.open_principal_fen == line.drawn_principal_fen, \
        f"line {line.id}: drawings hold {line.open_principal_fen} fen, the line {line.drawn_principal_fen}"
    if line.open_count >= MAX_OPEN_DRAWINGS:
        raise Conflict("line_id", f"line {line.id} has {line.open_count} open drawings", f"at most {MAX_OPEN_DRAWINGS}: repay one first")
    arrears = int(line.open_arrears_fen)
    if arrears > 0:
        raise Conflict("line_id", f"{arrears} fen is overdue on line {line.id} (principal, interest, penalty and compound interest); "
                       "drawing is blocked until it is paid", "repay what is overdue first")
    available = available_fen(session, line, day)
    if amount_fen > available:
        raise Conflict("amount_fen", f"draw of {amount_fen} fen exceeds the available limit of {available} fen", f"1..{available} fen")
    # what the enterprise may still draw under the comprehensive limit of its decision in force (none without one): read
    # under the enterprise's lock, which every draw and every change of the decision takes first
    if line.comprehensive_limit_fen is not None:
        headroom = max(0, line.comprehensive_limit_fen - int(line.enterprise_drawn_fen))
        if amount_fen > headroom:
            raise Conflict("amount_fen", f"draw of {amount_fen} fen would take the enterprise above its comprehensive limit: {headroom} fen left",
                           f"1..{headroom} fen")
    maturity = maturity_of(line, day)
    scheduled = line.repayment_method != REVOLVING
    schedule = build_schedule(line.repayment_method, amount_fen, line.rate_annual, day, maturity, basis_days=line.basis_days) if scheduled else ()
    values = dict(
        id=line.next_drawing_id, line_id=line.id, amount_fen=amount_fen, drawn_on=day, maturity_on=maturity, drawn_at=now, drawn_by=drawn_by,
        repayment_method=line.repayment_method, rate_annual=line.rate_annual, penalty_rate_annual=penalty_rate(line.rate_annual, line.penalty_uplift),
        basis_days=line.basis_days, settlement_frequency=line.settlement_frequency, daily_interest=not scheduled,
        schedule_version=1 if scheduled else 0, status=DrawingStatus.OPEN.value, repaid_on=None,
        principal_fen=amount_fen, due_principal_fen=0, overdue_principal_fen=0, interest_fen=0, overdue_interest_fen=0, penalty_fen=0,
        compound_fen=0, interest_fen_days=0, penalty_fen_days=0, compound_fen_days=0, oldest_due_on=None, dpd=0, days_current=0,
        risk_class=RiskClass.NORMAL.value, officer_class=None,
    )
    drawn = line.drawn_principal_fen + amount_fen
    assert 0 < drawn <= line.limit_fen, f"line {line.id}: drawn outside 0..limit"
    # the entry names the drawing's accounts by its id, taken by the read; the drawing is written under the entry
    entry = jl.draw_entry(owner(line.id, values["id"]), amount_fen, day, key)
    values["entry_id"] = write_movement(session, entry, line_id=line.id, now=now, request_sha256=digest, new_drawing=values,
                                        line={"id": line.id, "drawn_principal_fen": drawn, "risk_class": line.risk_class})
    if schedule:
        conn.execute(_INSERT_INSTALMENTS, [_instalment_row(values["id"], 1, item) for item in schedule])
    if line.activate_application_id is not None:  # the first drawing of its application: accepted → active (one statement on PostgreSQL)
        workflow.first_draw(conn, application_id=line.activate_application_id, line_id=line.id, drawing_id=values["id"], user_id=drawn_by, now=now)
    drawing = m.Drawing(**values)
    make_transient_to_detached(drawing)
    session.add(drawing)
    return DrawResult(drawing, replayed=False)


_INSERT_INSTALMENTS = insert(m.Instalment.__table__)


def _instalment_row(drawing_id: int, version: int, item: ScheduleItem) -> dict:
    return {"drawing_id": drawing_id, "version": version, "seq": item.seq, "start_on": item.start_on, "due_on": item.due_on,
            "full_month": item.full_month, "opening_principal_fen": item.opening_principal_fen, "principal_fen": item.principal_fen,
            "interest_fen": item.interest_fen}


def schedule_of(session: Session, drawing: m.Drawing) -> tuple[ScheduleItem, ...]:
    """The drawing's schedule in force (its latest version)."""
    rows = session.scalars(select(m.Instalment).where(m.Instalment.drawing_id == drawing.id, m.Instalment.version == drawing.schedule_version)
                           .order_by(m.Instalment.seq))
    return tuple(ScheduleItem(seq=r.seq, due_on=r.due_on, principal_fen=r.principal_fen, interest_fen=r.interest_fen,
                              opening_principal_fen=r.opening_principal_fen, start_on=r.start_on, full_month=r.full_month) for r in rows)


# --- repay and prepay --------------------------------------------------------------------------


@dataclass(frozen=True)
class RepayResult:
    allocations: dict[str, int]  # bucket → fen, over all drawings
    by_drawing: dict[int, dict[str, int]]
    interest_settled_fen: int  # 利随本清: interest accrued to the day before, settled with the repayment
    replayed: bool


def _owed(d: m.Drawing) -> dict[str, int]:
    """What a repayment may pay on a drawing now, by bucket: everything due, and the principal of a
    随借随还 drawing (repayable any time); a scheduled drawing's principal not yet due is prepaid instead."""
    owed = {bucket: getattr(d, column) for bucket, column in BUCKET_COLUMNS.items()}
    if not d.daily_interest:
        owed["principal"] = d.due_principal_fen
    return owed


def _entry_allocations(session: Session, entry_id: int) -> tuple[dict[str, int], dict[int, dict[str, int]]]:
    """A repayment entry's credits by bucket and by drawing (accounts loan:{line}-{drawing}:{bucket})."""
    totals: dict[str, int] = defaultdict(int)
    by_drawing: dict[int, dict[str, int]] = defaultdict(dict)
    for p in session.scalars(select(m.PostingRow).where(m.PostingRow.entry_id == entry_id, m.PostingRow.amount_fen < 0)):
        _, loan, bucket = p.account.split(":")
        drawing_id = int(loan.split("-")[1])
        totals[bucket] += -p.amount_fen
        by_drawing[drawing_id][bucket] = by_drawing[drawing_id].get(bucket, 0) - p.amount_fen
    return dict(totals), dict(by_drawing)


def _settled_fen(session: Session, key: str) -> int:
    row = session.scalar(select(m.JournalEntryRow.id).where(m.JournalEntryRow.idempotency_key == key))
    if row is None:
        return 0
    return int(session.scalar(select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0))
                              .where(m.PostingRow.entry_id == row, m.PostingRow.amount_fen > 0)) or 0)


def _settle_with_principal(session: Session, line: m.CreditLine, drawings: list[m.Drawing], day: date, key: str, now: datetime) -> int:
    """利随本清: charge the interest each 随借随还 drawing accrued through the day before; due on `day`."""
    charged: dict[str, int] = {}
    dues = []
    for d in drawings:
        if not d.daily_interest or d.interest_fen_days == 0:
            continue
        fen = interest_on_fen_days(d.interest_fen_days, d.rate_annual, d.basis_days)
        d.interest_fen_days = 0
        if fen:
            d.interest_fen += fen
            d.oldest_due_on = day if d.oldest_due_on is None else min(d.oldest_due_on, day)
            charged[owner(line.id, d.id)] = fen
            dues.append({"drawing_id": d.id, "due_on": day, "kind": "repayment", "raised_principal_fen": 0, "raised_interest_fen": fen,
                         "principal_fen": 0, "interest_fen": fen, "overdue": False, "grace_principal_fen_days": 0, "grace_interest_fen_days": 0})
    if charged:
        write_entry(session, jl.charge_entry("interest", charged, day, key), line_id=line.id, now=now)
        session.execute(insert(m.Due), dues)
    session.flush()
    return sum(charged.values())


def _pay_dues(session: Session, d: m.Drawing, paid: dict[str, int]) -> None:
    """Reduce what is unpaid on the drawing's dues, oldest first, by what `paid` put into each bucket; keep
    `oldest_due_on` the oldest due date with anything unpaid."""
    dues = list(session.scalars(select(m.Due).where(m.Due.drawing_id == d.id, (m.Due.principal_fen + m.Due.interest_fen) > 0)
                                .order_by(m.Due.due_on, m.Due.id).limit(10_000)))
    left = {
        (True, "principal_fen"): paid.get("overdue_principal", 0), (True, "interest_fen"): paid.get("overdue_interest", 0),
        # principal of a 随借随还 drawing not yet due is paid after what is due
        (False, "principal_fen"): min(paid.get("principal", 0), sum(x.principal_fen for x in dues if not x.overdue)),
        (False, "interest_fen"): paid.get("interest", 0),
    }
    for due in dues:
        for column in ("principal_fen", "interest_fen"):
            take = min(left[(due.overdue, column)], getattr(due, column))
            setattr(due, column, getattr(due, column) - take)
            left[(due.overdue, column)] -= take
    assert not any(left.values()), f"drawing {d.id}: a payment to a due bucket matches no unpaid due ({left})"
    unpaid = [x.due_on for x in dues if x.principal_fen + x.interest_fen > 0]
    d.oldest_due_on = min(unpaid) if unpaid else None


def _apply(d: m.Drawing, paid: dict[str, int]) -> None:
    for bucket, fen in paid.items():
        column = BUCKET_COLUMNS[bucket]
        setattr(d, column, getattr(d, column) - fen)
    if paid.get("principal"):
        d.due_principal_fen -= min(d.due_principal_fen, paid["principal"])  # due principal is paid first
    d.due_principal_fen = min(d.due_principal_fen, d.principal_fen)


def _finish_drawings(drawings: list, day: date) -> str:
    """Drawings on which nothing is owed or accruing are repaid; returns the class the line takes: the worst of those
    still open (`drawings` are all its open drawings)."""
    for d in drawings:
        if all(getattr(d, c) == 0 for c in (*BUCKET_COLUMNS.values(), "interest_fen_days", "penalty_fen_days", "compound_fen_days")):
            d.status, d.repaid_on, d.oldest_due_on = DrawingStatus.REPAID.value, day, None
    return worst([RiskClass.NORMAL, *(RiskClass(d.risk_class) for d in drawings if d.status == DrawingStatus.OPEN)]).value


def repay(session: Session, *, line_id: int, amount_fen: int, on_date: date | None, idempotency_key: str, now: datetime,
          rules: ClassRules) -> RepayResult:
    """Repay on a line: what is due across its drawings in the product's allocation order (penalty and compound →
    overdue interest → overdue principal → interest due → principal), oldest drawing first within each bucket.
    Statements: the line locked and read; its open drawings read; the entry, the drawings changed and the line written
    (one statement on PostgreSQL, `servicing.writes`)."""
    require_fen(amount_fen, field="amount_fen", max_fen=MAX_AMOUNT_FEN)
    key = _client_key(line_id, idempotency_key)
    digest = _request_sha256(op="repay", line=line_id, amount=amount_fen, on=on_date)
    conn = _connection(session)
    line = _lock_line_row(conn, line_id)
    prior, drawings = _prior_and_open(conn, line.id, key, digest, idempotency_key)
    if prior is not None:
        totals, by_drawing = _entry_allocations(session, prior)
        return RepayResult(totals, by_drawing, _settled_fen(session, f"{key}#interest"), replayed=True)
    next_state(line.status, LineAction.REPAY, line.id)
    day = _value_day(line, on_date, now, line.last_closed_on)
    if catch_up(session, line, day - timedelta(days=1), now, rules):
        line = _lock_line_row(conn, line.id)  # the line and its drawings as end of day left them
        _, drawings = _prior_and_open(conn, line.id, key, digest, idempotency_key)
    _assert_line(line.id, line.limit_fen, line.drawn_principal_fen, drawings)
    before = {d.id: _written(d) for d in drawings}
    settled = _settle_with_principal(session, line, drawings, day, f"{key}#interest", now) if line.interest_with_principal else 0
    order = line.allocation_order.split(",")
    outstanding = {f"{d.id}:{bucket}": _owed(d)[bucket] for bucket in order for d in drawings}
    owed = sum(outstanding.values())
    if amount_fen > owed:
        not_due = sum(d.principal_fen - d.due_principal_fen for d in drawings if not d.daily_interest)
        hint = f"; {not_due} fen of scheduled principal is not due yet: prepay it on its drawing" if not_due else ""
        raise Conflict("amount_fen", f"repayment of {amount_fen} fen exceeds the {owed} fen owed now{hint}",
                       f"1..{owed} fen" if owed else "nothing is owed now")
    allocations = allocate(amount_fen, outstanding, [f"{d.id}:{bucket}" for bucket in order for d in drawings])
    by_drawing: dict[int, dict[str, int]] = defaultdict(dict)
    for composite, fen in allocations.items():
        drawing_id, bucket = composite.split(":")
        by_drawing[int(drawing_id)][bucket] = fen
    index = {d.id: d for d in drawings}
    drawn = line.drawn_principal_fen
    for d_id, paid in by_drawing.items():
        d = index[d_id]
        due_principal = d.due_principal_fen  # principal fallen due: paid first, and kept on its dues
        _apply(d, paid)
        if any(paid.get(b) for b in ("overdue_principal", "overdue_interest", "interest")) or (paid.get("principal") and due_principal):
            _pay_dues(session, d, paid)
        drawn -= paid.get("principal", 0) + paid.get("overdue_principal", 0)
    risk_class = _finish_drawings(drawings, day)
    _assert_line(line.id, line.limit_fen, drawn, drawings)
    entry = jl.repayments_entry({owner(line.id, d_id): paid for d_id, paid in by_drawing.items()}, day, key)
    changed = [after for d in drawings if (after := _written(d)) != before[d.id]]
    written = None if (drawn, risk_class) == (line.drawn_principal_fen, line.risk_class) else \
        {"id": line.id, "drawn_principal_fen": drawn, "risk_class": risk_class}
    write_movement(session, entry, line_id=line.id, now=now, request_sha256=digest, drawings=changed, line=written)
    record_oldest_due(session, day, {d["id"]: d["oldest_due_on"] for d in changed if d["oldest_due_on"] != before[d["id"]]["oldest_due_on"]})
    totals: dict[str, int] = defaultdict(int)
    for paid in by_drawing.values():
        for bucket, fen in paid.items():
            totals[bucket] += fen
    return RepayResult(dict(totals), dict(by_drawing), settled, replayed=False)


@dataclass(frozen=True)
class PrepayResult:
    drawing: m.Drawing
    principal_fen: int
    interest_fen: int  # the prepaid principal's interest from the start of the current period
    schedule_version: int
    replayed: bool


def prepay(session: Session, *, drawing_id: int, principal_fen: int, on_date: date | None, idempotency_key: str, now: datetime,
           rules: ClassRules) -> PrepayResult:
    """Prepay principal of a scheduled drawing not yet due (提前还本), partly or wholly: the prepaid principal's interest
    for the current period is paid with it, and the instalments not yet due are re-computed on what is left, keeping
    their due dates (`ledger.schedule.reschedule_after_prepayment`), as the drawing's next schedule version."""
    require_fen(principal_fen, field="principal_fen", max_fen=MAX_AMOUNT_FEN)
    d0 = get_drawing(session, drawing_id)
    key = _client_key(d0.line_id, idempotency_key)
    conn = _connection(session)
    line = _lock_line_row(conn, d0.line_id)
    digest = _request_sha256(op="prepay", drawing=drawing_id, amount=principal_fen, on=on_date)
    prior = _existing(session, key, digest, idempotency_key)
    d = get_drawing(session, drawing_id)
    if prior is not None:
        _, by_drawing = _entry_allocations(session, prior)
        paid = by_drawing.get(d.id, {})
        return PrepayResult(d, paid.get("principal", 0), paid.get("interest", 0), d.schedule_version, replayed=True)
    if d.daily_interest:
        raise InvalidInput("drawing_id", f"drawing {d.id} is 随借随还: it has no schedule, and its principal is repaid any time by a repayment",
                           "a drawing repaid by 按月付息到期还本, 等额本息 or 等额本金")
    next_state(line.status, LineAction.REPAY, line.id)
    day = _value_day(line, on_date, now, line.last_closed_on)
    if catch_up(session, line, day - timedelta(days=1), now, rules):
        line = _lock_line_row(conn, line.id)
    d = get_drawing(session, drawing_id)
    if d.status != DrawingStatus.OPEN:
        raise Conflict("drawing_id", f"drawing {d.id} is {d.status}", "an open drawing")
    due = d.due_principal_fen + d.interest_fen + arrears_fen([d])
    if due:
        raise Conflict("drawing_id", f"{due} fen is due on drawing {d.id}", "repay what is due first, then prepay")
    not_due = d.principal_fen - d.due_principal_fen
    if principal_fen > not_due:
        raise Conflict("principal_fen", f"prepayment of {principal_fen} fen exceeds the {not_due} fen not yet due",
                       f"1..{not_due} fen" if not_due else "nothing is left to prepay")
    schedule = schedule_of(session, d)
    assert sum(i.principal_fen for i in schedule if i.due_on > day) == not_due, f"drawing {d.id}: schedule and balance agree"
    interest = prepayment_interest_fen(schedule, paid_on=day, prepaid_principal_fen=principal_fen, rate_annual=d.rate_annual,
                                       basis_days=d.basis_days)
    rescheduled = reschedule_after_prepayment(schedule, paid_on=day, prepaid_principal_fen=principal_fen, method=d.repayment_method,
                                              rate_annual=d.rate_annual, basis_days=d.basis_days)
    d.principal_fen -= principal_fen
    d.schedule_version += 1
    drawn = line.drawn_principal_fen - principal_fen
    others = [x for x in _open_drawings(session, line.id) if x.id != d.id]
    oldest_before = {x.id: x.oldest_due_on for x in [*others, d]}
    risk_class = _finish_drawings([*others, d], day)
    record_oldest_due(session, day, {x.id: x.oldest_due_on for x in [*others, d] if x.oldest_due_on != oldest_before[x.id]})
    _assert_line(line.id, line.limit_fen, drawn, [*others, d])
    name = owner(line.id, d.id)
    if interest:
        write_entry(session, jl.charge_entry("interest", {name: interest}, day, f"{key}#interest"), line_id=line.id, now=now)
    paid = {"interest": interest, "principal": principal_fen} if interest else {"principal": principal_fen}
    write_movement(session, jl.repayments_entry({name: paid}, day, key), line_id=line.id, now=now, request_sha256=digest,
                   line={"id": line.id, "drawn_principal_fen": drawn, "risk_class": risk_class})
    if rescheduled:  # empty when everything is prepaid before the first instalment falls due
        session.execute(insert(m.Instalment), [_instalment_row(d.id, d.schedule_version, item) for item in rescheduled])
    return PrepayResult(d, principal_fen, interest, d.schedule_version, replayed=False)


# --- the five categories: an officer's classification ------------------------------------------


def classify(session: Session, *, drawing_id: int, risk_class: object, note: object, on: date, by_user: int | None,
             rules: ClassRules) -> m.Drawing:
    """An officer classifies a drawing: worse than the rules say, or back to what they say — never better. The class
    stays a floor (end of day never classifies better) until an officer sets another; the change is kept in the history."""
    if not isinstance(risk_class, str) or risk_class not in {c.value for c in RiskClass}:
        raise InvalidInput("risk_class", f"got {show(risk_class)}", ", ".join(f"{c.value} ({c.label_zh})" for c in RiskClass))
    if not isinstance(note, str) or not 1 <= len(note.strip()) <= 500:
        raise InvalidInput("note", "an officer's classification needs its reason", "1..500 characters")
    d = get_drawing(session, drawing_id)
    line = lock_line(session, d.line_id)
    d = get_drawing(session, drawing_id)
    if d.status != DrawingStatus.OPEN:
        raise Conflict("drawing_id", f"drawing {d.id} is {d.status}", "an open drawing")
    wanted = RiskClass(risk_class)
    by_rule = rule_class(d.dpd, rules.policy(line))
    if wanted < by_rule:
        raise Conflict("risk_class", f"at {d.dpd} days past due the rules classify drawing {d.id} at least {by_rule.value} ({by_rule.label_zh})",
                       ", ".join(c.value for c in RiskClass if c >= by_rule))
    before = d.risk_class
    d.officer_class, d.risk_class = wanted.value, wanted.value
    session.add(m.ClassificationChange(drawing_id=d.id, on_date=on, from_class=before, to_class=wanted.value, officer_class=wanted.value,
                                       dpd=d.dpd, cause="officer", by_user=by_user, note=note.strip()))
    session.flush()
    refresh_line_class(session, [line.id])
    return d


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
    """Close a line on which nothing is owed: every drawing repaid, nothing accruing."""
    line = _locked_for_change(session, line_id)
    next_state(line.status, LineAction.CLOSE, line.id)
    drawings = _open_drawings(session, line.id)
    if drawings:
        principal = sum(d.principal_fen + d.overdue_principal_fen for d in drawings)
        interest = sum(d.interest_fen + d.overdue_interest_fen + d.penalty_fen + d.compound_fen for d in drawings)
        raise Conflict("line_id", f"{principal} fen of principal and {interest} fen of interest are owed on {len(drawings)} open drawing(s), "
                       "and interest accrued is not yet settled", "a line whose drawings are all repaid")
    line.status = LineStatus.CLOSED
    return line


# --- what is shown ------------------------------------------------------------------------------


def balances_of(drawings: list[m.Drawing]) -> Balances:
    """Balances summed over drawings; accruals rounded per drawing, as end of day would charge them."""
    total = {c: sum(getattr(d, c) for d in drawings) for c in ("principal_fen", "due_principal_fen", "overdue_principal_fen", "interest_fen",
                                                                 "overdue_interest_fen", "penalty_fen", "compound_fen")}
    return Balances(
        **total,
        interest_accrued_fen=sum(interest_on_fen_days(d.interest_fen_days, d.rate_annual, d.basis_days) for d in drawings),
        penalty_accrued_fen=sum(interest_on_fen_days(d.penalty_fen_days, d.penalty_rate_annual, d.basis_days) for d in drawings),
        compound_accrued_fen=sum(interest_on_fen_days(d.compound_fen_days, d.penalty_rate_annual, d.basis_days) for d in drawings),
    )


_LINE_COLUMNS = ("id", "product", "limit_fen", "drawn_principal_fen", "basis_days", "repayment_method", "revolving", "settlement_frequency",
                 "interest_with_principal", "grace_days", "opened_on", "expires_on", "status", "accrued_through", "risk_class")


def line_view(session: Session, line_id: int, today: date) -> LineView:
    """A line as its owner sees it on `today`: balances over its open drawings, availability, class."""
    line = get_line(session, line_id)
    drawings = _open_drawings(session, line.id)
    _assert_line(line.id, line.limit_fen, line.drawn_principal_fen, drawings)
    return LineView(
        **{c: getattr(line, c) for c in _LINE_COLUMNS},
        rate_annual=str(line.rate_annual),
        annualized_rate=None if line.annualized_rate is None else str(line.annualized_rate),
        inclusive_small_micro=line.inclusive_small_micro,
        application_id=line.application_id,
        penalty_uplift=str(line.penalty_uplift),
        allocation_order=line.allocation_order.split(","),
        available_fen=available_fen(session, line, today),
        balances=balances_of(drawings),
        open_drawings=len(drawings),
    )


def drawing_view(session: Session, drawing_id: int) -> DrawingView:
    d = get_drawing(session, drawing_id)
    dues = session.scalars(select(m.Due).where(m.Due.drawing_id == d.id, (m.Due.principal_fen + m.Due.interest_fen) > 0)
                           .order_by(m.Due.due_on, m.Due.id).limit(1000))
    return DrawingView(
        id=d.id, line_id=d.line_id, amount_fen=d.amount_fen, drawn_on=d.drawn_on, maturity_on=d.maturity_on, repayment_method=d.repayment_method,
        rate_annual=str(d.rate_annual), penalty_rate_annual=str(d.penalty_rate_annual), status=d.status, repaid_on=d.repaid_on,
        balances=balances_of([d]), days_past_due=d.dpd, risk_class=d.risk_class, officer_class=d.officer_class, schedule_version=d.schedule_version,
        schedule=[InstalmentView(seq=i.seq, start_on=i.start_on, due_on=i.due_on, principal_fen=i.principal_fen, interest_fen=i.interest_fen,
                                 opening_principal_fen=i.opening_principal_fen) for i in schedule_of(session, d)],
        unpaid_dues=[DueView(due_on=x.due_on, kind=x.kind, raised_principal_fen=x.raised_principal_fen, raised_interest_fen=x.raised_interest_fen,
                             unpaid_principal_fen=x.principal_fen, unpaid_interest_fen=x.interest_fen, overdue=x.overdue) for x in dues],
    )


def drawings_of(session: Session, line_id: int, after_id: int = 0, limit: int = 100) -> tuple[list[DrawingView], int | None]:
    get_line(session, line_id)
    page, next_after = keyset_page(session, select(m.Drawing).where(m.Drawing.line_id == line_id), m.Drawing.id, after=after_id, limit=limit,
                                   max_limit=MAX_JOURNAL_PAGE)
    return [drawing_view(session, d.id) for d in page], next_after


MAX_JOURNAL_PAGE = 500


def _line_entries(line_id: int):
    """The entries of a line: its own, and end of day's batch entries that post to its drawings."""
    prefix = f"loan:{line_id}-"
    batch = select(m.PostingRow.entry_id).where(m.PostingRow.account.like(prefix + "%"))
    return select(m.JournalEntryRow).where((m.JournalEntryRow.line_id == line_id)
                                           | (m.JournalEntryRow.line_id.is_(None) & m.JournalEntryRow.id.in_(batch)))


def _postings_of(session: Session, entry_ids: list[int], line_id: int) -> dict[int, list[m.PostingRow]]:
    """The postings of each entry; of a batch entry only the line's own (a batch balances as a whole)."""
    out: dict[int, list[m.PostingRow]] = {i: [] for i in entry_ids}
    for p in session.scalars(select(m.PostingRow).where(m.PostingRow.entry_id.in_(entry_ids)).order_by(m.PostingRow.id)):
        out[p.entry_id].append(p)
    return out


def journal_page(session: Session, line_id: int, after_id: int = 0, limit: int = 100) -> JournalPage:
    """One page of a line's journal as shown to its owner, oldest first: each entry with its postings — of end of
    day's batch entries (shared by many lines) only those to this line's drawings (404 for an unknown line)."""
    get_line(session, line_id)
    page, next_after = keyset_page(session, _line_entries(line_id), m.JournalEntryRow.id, after=after_id, limit=limit, max_limit=MAX_JOURNAL_PAGE)
    postings = _postings_of(session, [e.id for e in page], line_id)
    entries = []
    prefix = f"loan:{line_id}-"
    for e in page:
        ps = postings[e.id]
        if e.line_id is None:
            ps = [p for p in ps if p.account.startswith(prefix)]
        else:
            assert sum(p.amount_fen for p in ps) == 0, f"entry {e.id} does not balance"
        entries.append(EntryView(id=e.id, kind=e.kind, effective_date=e.effective_date, idempotency_key=e.idempotency_key,
                                 postings=[PostingView(account=p.account, amount_fen=p.amount_fen) for p in ps]))
    return JournalPage(entries=entries, next_after_id=next_after)


# --- the ledger checked against the rows that keep its balances ----------------------------------


@dataclass
class LedgerCheck:
    entries: int = 0
    postings: int = 0
    drawings: int = 0
    lines: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


MAX_PROBLEMS = 100


def ledger_check(session: Session) -> LedgerCheck:
    """Prove the balances kept on rows equal the journal: every entry balances; each drawing's bucket columns equal
    its accounts; its unpaid dues add up to its due and overdue balances; each line's drawn principal is its drawings';
    no open line is closed through a date before the calendar's last closed date. Set-based: a few statements."""
    out = LedgerCheck()

    def problem(text: str) -> None:
        if len(out.problems) < MAX_PROBLEMS:
            out.problems.append(text)

    out.entries = int(session.scalar(select(func.count()).select_from(m.JournalEntryRow)) or 0)
    out.postings = int(session.scalar(select(func.count()).select_from(m.PostingRow)) or 0)
    for entry_id, total in session.execute(select(m.PostingRow.entry_id, func.sum(m.PostingRow.amount_fen)).group_by(m.PostingRow.entry_id)
                                           .having(func.sum(m.PostingRow.amount_fen) != 0).limit(MAX_PROBLEMS)):
        problem(f"entry {entry_id} does not balance: {total} fen")
    empty = session.scalar(select(func.count()).select_from(m.JournalEntryRow)
                           .where(~exists().where(m.PostingRow.entry_id == m.JournalEntryRow.id)))  # an anti-join, not NOT IN
    if empty:
        problem(f"{empty} journal entries have no postings")
    journal: dict[tuple[str, str], int] = {}
    for account, total in session.execute(select(m.PostingRow.account, func.sum(m.PostingRow.amount_fen))
                                          .where(m.PostingRow.account.like("loan:%")).group_by(m.PostingRow.account)):
        _, loan, bucket = account.split(":")
        journal[(loan, bucket)] = int(total)
    seen: set[tuple[str, str]] = set()
    d = m.Drawing
    for row in session.execute(select(d.id, d.line_id, *(getattr(d, c) for c in BUCKET_COLUMNS.values()))).mappings():
        out.drawings += 1
        for bucket, column in BUCKET_COLUMNS.items():
            key = (owner(row["line_id"], row["id"]), bucket)
            seen.add(key)
            if journal.get(key, 0) != row[column]:
                problem(f"drawing {row['id']}: {column} is {row[column]} fen, the journal's loan:{key[0]}:{bucket} {journal.get(key, 0)} fen")
    for key, total in journal.items():
        if key not in seen and total != 0:
            problem(f"account loan:{key[0]}:{key[1]} holds {total} fen and belongs to no drawing")
    due = m.Due
    sums = {r.drawing_id: r for r in session.execute(
        select(due.drawing_id,
               func.sum(sql_case(due.overdue, due.principal_fen)).label("overdue_p"), func.sum(sql_case(due.overdue, due.interest_fen)).label("overdue_i"),
               func.sum(sql_case(~due.overdue, due.principal_fen)).label("due_p"), func.sum(sql_case(~due.overdue, due.interest_fen)).label("due_i"))
        .group_by(due.drawing_id))}
    for row in session.execute(select(d.id, d.due_principal_fen, d.overdue_principal_fen, d.interest_fen, d.overdue_interest_fen)):
        s = sums.get(row.id)
        got = (int(s.due_p or 0), int(s.overdue_p or 0), int(s.due_i or 0), int(s.overdue_i or 0)) if s else (0, 0, 0, 0)
        want = (row.due_principal_fen, row.overdue_principal_fen, row.interest_fen, row.overdue_interest_fen)
        if got != want:
            problem(f"drawing {row.id}: unpaid dues (due principal, overdue principal, due interest, overdue interest) {got} ≠ balances {want}")
    drawn = dict(session.execute(select(d.line_id, func.sum(d.principal_fen + d.overdue_principal_fen)).group_by(d.line_id)).all())
    closed = calendar_row(session).last_closed_on
    for line in session.execute(select(m.CreditLine.id, m.CreditLine.drawn_principal_fen, m.CreditLine.limit_fen, m.CreditLine.status,
                                       m.CreditLine.accrued_through)):
        out.lines += 1
        if int(drawn.get(line.id) or 0) != line.drawn_principal_fen:
            problem(f"line {line.id}: drawn {line.drawn_principal_fen} fen, its drawings {int(drawn.get(line.id) or 0)} fen")
        if closed is not None and line.status != LineStatus.CLOSED and line.accrued_through < closed:
            problem(f"line {line.id} is closed through {line.accrued_through}, before the calendar's {closed}")
    return out


def sql_case(condition, value):
    return case((condition, value), else_=0)
