"""Statements (对账单) of a line or one of its drawings for a period: the opening balance of each
receivable bucket, every movement, the interest charged by kind, the closing balance, and what
falls due next. Read from the journal (a statement is a read, bounded by its period and
`MAX_MOVEMENTS`), so it is the ledger's own account of the period; the renderers
(`servicing.statement_files`) turn it into a table, CSV, XLSX or JSON.

Nothing is value-dated on or before the last date closed for a line, so a period ending by then
(`Statement.final`) reads the same whenever it is asked for. What accrued and is not yet charged,
and what is unpaid of each due, are kept as they are now (`closed_through`), not per day: those
two parts say how things stand when the statement is made.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandu.domain.enums import DrawingStatus
from sandu.domain.errors import Conflict, InvalidInput, NotFound, show
from sandu.ledger.interest import interest_on_fen_days
from sandu.ledger.journal import CHARGE_KINDS, LOAN_BUCKETS
from sandu.servicing.close import owner
from sandu.servicing.service import get_drawing, get_line, schedule_of
from sandu.store import models as m

MAX_PERIOD_DAYS = 3660
MAX_MOVEMENTS = 10_000
BUCKETS: tuple[str, ...] = tuple(reversed(LOAN_BUCKETS))  # principal first, as a statement reads


class Movement(BaseModel):
    entry_id: int
    on_date: date
    kind: str = Field(description="draw, repayment, interest, penalty, compound, overdue, migrate")
    reference: str = Field(description="the entry's idempotency key")
    drawing_id: int
    amounts_fen: dict[str, int] = Field(description="change of each bucket (+ owed more, − paid or moved)")
    paid_fen: int = Field(description="what the borrower paid (repayments), or 0")
    drawn_fen: int = Field(description="what was disbursed (draws), or 0")


class NextDue(BaseModel):
    drawing_id: int
    due_on: date
    kind: str = Field(description="unpaid: fell due on or before the period's last day and is still owed; settlement (interest settled on "
                                  "the 20th), instalment, maturity: the next of each falling due after the period, what is still owed of it")
    principal_fen: int
    interest_fen: int


class Statement(BaseModel):
    line_id: int
    drawing_id: int | None
    product: str
    enterprise_name: str
    uscc: str
    limit_fen: int
    rate_annual: str
    period_from: date
    period_to: date
    closed_through: date = Field(description="the last business date end of day has closed for the line when the statement was made; "
                                             "a period ending on or before it is final (nothing can be value-dated into it any more)")
    final: bool = Field(description="period_to is on or before closed_through: the movements, charges and balances will not change")
    opening_fen: dict[str, int]
    movements: list[Movement]
    interest_charged_fen: dict[str, int] = Field(description="interest, penalty (罚息) and compound (复利) interest charged in the period")
    paid_fen: int
    drawn_fen: int
    closing_fen: dict[str, int]
    accrued_fen: dict[str, int] = Field(description="interest, penalty and compound interest accrued through closed_through and not yet "
                                                    "charged (rounded once, as they would be charged now), over the open drawings")
    next_due: list[NextDue] = Field(description="as of closed_through: what fell due by the period's end and is unpaid, then what falls due next")

    @property
    def opening_total_fen(self) -> int:
        return sum(self.opening_fen.values())

    @property
    def closing_total_fen(self) -> int:
        return sum(self.closing_fen.values())


def _accounts(line_id: int, drawing_id: int | None):
    prefix = f"loan:{owner(line_id, drawing_id)}:" if drawing_id is not None else f"loan:{line_id}-"
    return m.PostingRow.account.like(prefix + "%")


def _split(account: str) -> tuple[int, str]:
    _, loan, bucket = account.split(":")
    return int(loan.split("-")[1]), bucket


def statement(session: Session, *, line_id: int, start: object, end: object, drawing_id: int | None = None) -> Statement:
    """The statement of the line (or of its drawing `drawing_id`) from `start` to `end`, both included."""
    for name, value in (("from", start), ("to", end)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise InvalidInput(name, f"must be a calendar date, got {show(value)}", "YYYY-MM-DD")
    assert isinstance(start, date) and isinstance(end, date)
    if end < start:
        raise InvalidInput("to", f"{end} is before {start}", f"{start} or later")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput("to", f"a period of {(end - start).days + 1} days", f"at most {MAX_PERIOD_DAYS} days: {start + timedelta(days=MAX_PERIOD_DAYS - 1)} or earlier")
    line = get_line(session, line_id)
    if drawing_id is not None and get_drawing(session, drawing_id).line_id != line.id:
        raise NotFound("drawing", drawing_id, field="drawing_id")
    accounts = _accounts(line.id, drawing_id)
    j, p = m.JournalEntryRow, m.PostingRow
    opening = dict.fromkeys(BUCKETS, 0)
    for account, total in session.execute(select(p.account, func.sum(p.amount_fen)).join(j, j.id == p.entry_id)
                                          .where(accounts, j.effective_date < start).group_by(p.account)):
        opening[_split(account)[1]] += int(total)
    rows = session.execute(select(j.id, j.effective_date, j.kind, j.idempotency_key, p.account, p.amount_fen).join(p, p.entry_id == j.id)
                           .where(accounts, j.effective_date >= start, j.effective_date <= end)
                           .order_by(j.effective_date, j.id, p.id).limit(MAX_MOVEMENTS * 6 + 1)).all()
    movements: dict[tuple[int, int], Movement] = {}
    for r in rows:
        d_id, bucket = _split(r.account)
        mv = movements.get((r.id, d_id))
        if mv is None:
            if len(movements) >= MAX_MOVEMENTS:
                raise Conflict("to", f"the period holds more than {MAX_MOVEMENTS} movements", "a shorter period")
            mv = movements[(r.id, d_id)] = Movement(entry_id=r.id, on_date=r.effective_date, kind=r.kind, reference=r.idempotency_key,
                                                    drawing_id=d_id, amounts_fen={}, paid_fen=0, drawn_fen=0)
        mv.amounts_fen[bucket] = mv.amounts_fen.get(bucket, 0) + r.amount_fen
    charged = dict.fromkeys(CHARGE_KINDS, 0)
    closing = dict(opening)
    for mv in movements.values():
        for bucket, fen in mv.amounts_fen.items():
            closing[bucket] += fen
        if mv.kind == "repayment":
            mv.paid_fen = -sum(mv.amounts_fen.values())
        elif mv.kind == "draw":
            mv.drawn_fen = mv.amounts_fen.get("principal", 0)
        elif mv.kind in charged:
            charged[mv.kind] += sum(mv.amounts_fen.values())
    ordered = sorted(movements.values(), key=lambda x: (x.on_date, x.entry_id, x.drawing_id))
    enterprise = session.get(m.Enterprise, line.enterprise_id)
    assert enterprise is not None, "a line belongs to an enterprise"
    drawings = _open_drawings(session, line.id, drawing_id)
    return Statement(
        line_id=line.id, drawing_id=drawing_id, product=line.product, enterprise_name=enterprise.name, uscc=enterprise.uscc, limit_fen=line.limit_fen,
        rate_annual=str(line.rate_annual), period_from=start, period_to=end, closed_through=line.accrued_through, final=end <= line.accrued_through,
        opening_fen=opening, movements=ordered, interest_charged_fen=charged, paid_fen=sum(x.paid_fen for x in ordered),
        drawn_fen=sum(x.drawn_fen for x in ordered), closing_fen=closing, accrued_fen=_accrued(drawings),
        next_due=[x for d in drawings for x in _next_due(session, d, end)],
    )


def _open_drawings(session: Session, line_id: int, drawing_id: int | None) -> list[m.Drawing]:
    q = select(m.Drawing).where(m.Drawing.line_id == line_id, m.Drawing.status == DrawingStatus.OPEN)
    if drawing_id is not None:
        q = q.where(m.Drawing.id == drawing_id)
    return list(session.scalars(q.order_by(m.Drawing.id).limit(1000)))


def _accrued(drawings: list[m.Drawing]) -> dict[str, int]:
    """Each kind of interest accrued and not yet charged, rounded per drawing as end of day would charge it."""
    rates = {"interest": lambda d: d.rate_annual, "penalty": lambda d: d.penalty_rate_annual, "compound": lambda d: d.penalty_rate_annual}
    return {kind: sum(interest_on_fen_days(getattr(d, f"{kind}_fen_days"), rates[kind](d), d.basis_days) for d in drawings) for kind in CHARGE_KINDS}


def _next_due(session: Session, d: m.Drawing, end: date) -> list[NextDue]:
    """What of the drawing fell due on or before `end` and is unpaid (as of now); then the next settlement, instalment and
    maturity falling due after `end`, each with what is still owed of it: as raised (a due) if it has been, else as scheduled
    (an instalment) or outstanding (the principal maturing). A raised amount paid in full is not listed."""
    dues = list(session.scalars(select(m.Due).where(m.Due.drawing_id == d.id).order_by(m.Due.due_on, m.Due.id).limit(10_000)))
    out = [NextDue(drawing_id=d.id, due_on=x.due_on, kind="unpaid", principal_fen=x.principal_fen, interest_fen=x.interest_fen)
           for x in dues if x.due_on <= end and x.principal_fen + x.interest_fen > 0]
    later = [x for x in dues if x.due_on > end]
    raised = {(x.kind, x.due_on) for x in dues}
    for kind in ("settlement", "repayment"):
        owed = [x for x in later if x.kind == kind and x.principal_fen + x.interest_fen > 0]
        if owed:
            out.append(NextDue(drawing_id=d.id, due_on=owed[0].due_on, kind=kind, principal_fen=owed[0].principal_fen, interest_fen=owed[0].interest_fen))
    for item in schedule_of(session, d):
        if item.due_on <= end:
            continue
        if ("instalment", item.due_on) in raised:
            due = next(x for x in later if (x.kind, x.due_on) == ("instalment", item.due_on))
            if due.principal_fen + due.interest_fen == 0:
                continue  # paid in full: the next one is next
            out.append(NextDue(drawing_id=d.id, due_on=due.due_on, kind="instalment", principal_fen=due.principal_fen, interest_fen=due.interest_fen))
        else:
            out.append(NextDue(drawing_id=d.id, due_on=item.due_on, kind="instalment", principal_fen=item.principal_fen, interest_fen=item.interest_fen))
        break
    if d.daily_interest and d.maturity_on > end:
        matured = [x for x in later if x.kind == "maturity"]
        if matured:
            if matured[0].principal_fen:
                out.append(NextDue(drawing_id=d.id, due_on=d.maturity_on, kind="maturity", principal_fen=matured[0].principal_fen, interest_fen=0))
        elif d.principal_fen > d.due_principal_fen:
            out.append(NextDue(drawing_id=d.id, due_on=d.maturity_on, kind="maturity", principal_fen=d.principal_fen - d.due_principal_fen,
                               interest_fen=0))
    return sorted(out, key=lambda x: (x.kind != "unpaid", x.due_on))
