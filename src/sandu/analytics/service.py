"""What a portfolio report reads, on a session: the lines as signed, and each drawing's balances summed from the
journal through a day — never the balances kept on rows (the report reconciles to the journal by construction)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from sandu.analytics.book import Book
from sandu.analytics.ecl import DrawingRisk, LineRisk
from sandu.analytics.portfolio import DrawingBalance, LineFacts
from sandu.domain.enums import LineStatus
from sandu.ledger.overdue import NO_DUE, RiskClass
from sandu.store import models as m

MAX_LINES = 2_000_000  # one report; the bank's whole book fits many times over
PAGE = 10_000


def line_facts(session: Session, branch: str | None = None) -> list[LineFacts]:
    """Every credit line with the attributes a report groups by (of one sub-branch, or all)."""
    result = m.Decision.result  # only the fields a report reads, extracted by the database (not the whole JSON per line)
    stmt = (select(m.CreditLine.id, m.CreditLine.enterprise_id, m.Enterprise.branch, m.Enterprise.industry, m.CreditLine.product,
                   m.CreditLine.limit_fen, m.CreditLine.opened_on, m.CreditLine.inclusive_small_micro,
                   result["tech_grade"].as_string().label("tech_grade"), result["risk_grade"].as_string().label("risk_grade"),
                   result[("scores", "tech", "most_pass")].as_boolean().label("most_pass"),
                   result[("scores", "tech", "innovative", "passed")].as_boolean().label("innovative"))
            .join(m.Enterprise, m.Enterprise.id == m.CreditLine.enterprise_id)
            .join(m.Offer, m.Offer.id == m.CreditLine.offer_id)
            .join(m.Decision, m.Decision.id == m.Offer.decision_id)
            .order_by(m.CreditLine.id).limit(MAX_LINES))
    if branch is not None:
        stmt = stmt.where(m.Enterprise.branch == branch)
    out = []
    for r in session.execute(stmt.execution_options(yield_per=PAGE)):
        out.append(LineFacts(r.id, r.enterprise_id, r.branch, r.industry or "未知", r.product, r.limit_fen, r.opened_on, r.tech_grade or "?",
                             r.risk_grade or "?", bool(r.most_pass) or bool(r.innovative), bool(r.inclusive_small_micro)))
    return out


APPROVALS_DAYS = 30  # the decisions a report counts: those of the last 30 days through its day


def decisions_by_outcome(session: Session, as_of: date, branch: str | None = None) -> dict[str, int]:
    """Decisions made in the `APPROVALS_DAYS` days through `as_of`, by outcome (of one sub-branch's enterprises, or all)."""
    stmt = (select(m.Decision.outcome, func.count()).join(m.Enterprise, m.Enterprise.id == m.Decision.enterprise_id)
            .where(m.Decision.as_of <= as_of, m.Decision.as_of > as_of - timedelta(days=APPROVALS_DAYS)).group_by(m.Decision.outcome))
    if branch is not None:
        stmt = stmt.where(m.Enterprise.branch == branch)
    return {outcome: int(n) for outcome, n in session.execute(stmt)}


MAX_DAYS_READ = 32  # days one pass over the journal sums through (its array holds drawings × buckets × days of int64)


def _ordinal(value: date | None) -> int:
    return NO_DUE if value is None else value.toordinal()


def book_through(session: Session, days: Iterable[date]) -> Book:
    """The loan book through each of `days` in one pass over the journal's loan postings (summed by account and by
    period between the days, the draw entries apart), with the ageing and classification histories read once."""
    cuts = tuple(sorted(set(days)))
    assert 1 <= len(cuts) <= MAX_DAYS_READ, f"1..{MAX_DAYS_READ} days in one pass"
    e, p = m.JournalEntryRow, m.PostingRow
    moves = (select(p.account, case((e.kind == "draw", 1), else_=0).label("draw"),
                    case(*((e.effective_date <= c, k) for k, c in enumerate(cuts))).label("k"), p.amount_fen)
             .join(e, e.id == p.entry_id).where(e.effective_date <= cuts[-1], p.account.like("loan:%")).subquery())
    rows = session.execute(select(moves.c.account, moves.c.draw, moves.c.k, func.sum(moves.c.amount_fen))
                           .group_by(moves.c.account, moves.c.draw, moves.c.k)).all()
    accounts: dict[str, tuple[int, int, str]] = {}
    for account, _, _, _ in rows:
        if account not in accounts:
            _, owner, bucket = account.split(":")
            line_id, drawing_id = owner.split("-")
            accounts[account] = (int(line_id), int(drawing_id), bucket)
    owners = sorted({(line_id, drawing_id) for line_id, drawing_id, _ in accounts.values()})
    index = {drawing_id: i for i, (_, drawing_id) in enumerate(owners)}
    buckets = tuple(sorted({bucket for _, _, bucket in accounts.values()}))
    where = {b: i for i, b in enumerate(buckets)}
    n = len(rows)
    d_at = np.fromiter((index[accounts[r[0]][1]] for r in rows), dtype=np.int64, count=n)
    b_at = np.fromiter((where[accounts[r[0]][2]] for r in rows), dtype=np.int64, count=n)
    k_at = np.fromiter((r[2] for r in rows), dtype=np.int64, count=n)
    fen = np.fromiter((int(r[3]) for r in rows), dtype=np.int64, count=n)
    sums = np.zeros((len(owners), len(buckets), len(cuts)), dtype=np.int64)
    np.add.at(sums, (d_at, b_at, k_at), fen)
    drawn = np.zeros((len(owners), len(cuts)), dtype=np.int64)
    draws = np.fromiter((r[1] == 1 and accounts[r[0]][2] == "principal" for r in rows), dtype=bool, count=n)
    np.add.at(drawn, (d_at[draws], k_at[draws]), fen[draws])
    grace = dict(session.execute(select(m.Drawing.id, m.CreditLine.grace_days).join(m.CreditLine, m.CreditLine.id == m.Drawing.line_id)
                                 .execution_options(yield_per=PAGE)).all()) if index else {}
    h, c = m.DelinquencyChange, m.ClassificationChange
    ageing = [(index[d], on.toordinal(), _ordinal(oldest)) for d, on, oldest in session.execute(
        select(h.drawing_id, h.on_date, h.oldest_due_on).where(h.on_date <= cuts[-1]).order_by(h.drawing_id, h.on_date, h.id)) if d in index]
    ranks = {r.value: i for i, r in enumerate(RiskClass)}
    classes = [(index[d], on.toordinal(), ranks[to]) for d, on, to in session.execute(
        select(c.drawing_id, c.on_date, c.to_class).where(c.on_date <= cuts[-1]).order_by(c.drawing_id, c.on_date, c.id)) if d in index]

    def columns(history: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = np.array(history, dtype=np.int64).reshape(-1, 3)
        order = np.lexsort((np.arange(len(a)), a[:, 1], a[:, 0]))  # stable: by drawing, then day, then as written
        return a[order, 0], a[order, 1], a[order, 2]

    return Book(cuts, np.array([o[0] for o in owners], dtype=np.int64), np.array([o[1] for o in owners], dtype=np.int64),
                np.array([grace[o[1]] for o in owners], dtype=np.int64), buckets, np.cumsum(sums, axis=2), np.cumsum(drawn, axis=1),
                columns(ageing), columns(classes))


def days_past_due_as_of(session: Session, as_of: date) -> dict[int, int]:
    """The drawings past due at the end of `as_of`, with their days past due: each one's oldest unpaid due date as of
    that day (the last row of its ageing history on or before it) aged by its line's grace period — what end of day
    computed that day."""
    book = book_through(session, [as_of])
    dpd = book.dpd(as_of)
    return {int(i): int(v) for i, v in zip(book.drawing_ids.tolist(), dpd.tolist(), strict=True) if v}


def drawing_balances(session: Session, as_of: date) -> list[DrawingBalance]:
    """Each drawing's receivable buckets through `as_of`, summed from the postings (accounts loan:{line}-{drawing}:{bucket}),
    with its 五级分类 (the last change on or before it; normal before any) and days past due as of that day."""
    return book_through(session, [as_of]).balances(as_of)


def credit_risk(session: Session, kinds: dict[str, str], as_of: date, balances: list[DrawingBalance],
                branch: str | None = None) -> tuple[list[LineRisk], list[DrawingRisk]]:
    """As of the end of `as_of`: every line opened by then (of one sub-branch, or all) with its origination risk grade and
    its current one and 12-month PD (the borrower's latest decision made as of a day on or before `as_of`), and every
    drawing owing anything (`balances`, from the journal through the day) with what it owes, its DPD, 五级分类 and
    maturity. A line's undrawn limit counts as drawable while it is active as of the day: revolving, opened, not yet
    expired by then (end of day expires a line the day before it ends), and not frozen or closed now — a line's
    freezes keep no history, so a line frozen or closed now adds no undrawn exposure on earlier days either."""
    origination, current = m.Decision.__table__.alias("origination"), m.Decision.__table__.alias("current")
    newest = func.row_number().over(partition_by=m.Decision.enterprise_id, order_by=(m.Decision.decided_at.desc(), m.Decision.id.desc()))
    ranked = select(m.Decision.enterprise_id, m.Decision.id, newest.label("n")).where(m.Decision.as_of <= as_of).subquery()
    latest = select(ranked.c.enterprise_id, ranked.c.id).where(ranked.c.n == 1).subquery()  # one decision per enterprise
    stmt = (select(m.CreditLine.id, m.CreditLine.product, m.Enterprise.branch, m.CreditLine.limit_fen, m.CreditLine.revolving,
                   m.CreditLine.status, m.CreditLine.expires_on, origination.c.result["risk_grade"].as_string().label("grade_then"),
                   current.c.result["risk_grade"].as_string().label("grade_now"),
                   current.c.result[("scores", "risk", "pd")].as_float().label("pd_now"),
                   origination.c.result[("scores", "risk", "pd")].as_float().label("pd_then"))
            .join(m.Enterprise, m.Enterprise.id == m.CreditLine.enterprise_id)
            .join(m.Offer, m.Offer.id == m.CreditLine.offer_id)
            .join(origination, origination.c.id == m.Offer.decision_id)
            .outerjoin(latest, latest.c.enterprise_id == m.Enterprise.id)
            .outerjoin(current, current.c.id == latest.c.id)
            .where(m.CreditLine.opened_on <= as_of)
            .order_by(m.CreditLine.id).limit(MAX_LINES))
    if branch is not None:
        stmt = stmt.where(m.Enterprise.branch == branch)
    drawn: dict[int, int] = defaultdict(int)
    for b in balances:
        drawn[b.line_id] += b.principal_fen
    lines, seen = [], set()
    for r in session.execute(stmt.execution_options(yield_per=PAGE)):
        assert r.id not in seen, f"line {r.id} is read once"
        seen.add(r.id)
        pd = r.pd_now if r.pd_now is not None else r.pd_then
        active = bool(r.revolving) and (r.status == LineStatus.ACTIVE.value or (r.status == LineStatus.EXPIRED.value
                                                                                and as_of + timedelta(days=1) < r.expires_on))
        lines.append(LineRisk(r.id, r.product, kinds.get(r.product, "credit"), r.branch, r.limit_fen, drawn.get(r.id, 0), active,
                              r.grade_then or "?", r.grade_now or r.grade_then or "?",
                              Decimal(repr(pd)) if pd is not None else Decimal(1)))  # no PD recorded: counted as certain loss, never as none
    owing = [b for b in balances if b.line_id in seen]
    maturity = {}
    for part in range(0, len(owing), PAGE):
        ids = [b.drawing_id for b in owing[part:part + PAGE]]
        maturity.update(session.execute(select(m.Drawing.id, m.Drawing.maturity_on).where(m.Drawing.id.in_(ids))).all())
    drawings = [DrawingRisk(b.line_id, b.drawing_id, b.receivable_fen, b.dpd, b.risk_class, maturity[b.drawing_id]) for b in owing]
    return lines, drawings


MAX_MONITORED = 200_000  # applications one monitoring run reads


def scored_applications(session: Session, since: date, until: date, features: tuple[str, ...]) -> tuple[list[dict[str, object]], list[date]]:
    """The features the scorecard reads of every decision made on a day in since..until (oldest first), each from
    its stored profile (checked against its hash), with the day it was decided."""
    from sandu.sources.profile import profile_from_json

    stmt = (select(m.Decision.profile_sha256, m.Decision.as_of, m.Profile.snapshot)
            .join(m.Profile, m.Profile.sha256 == m.Decision.profile_sha256)
            .where(m.Decision.as_of >= since, m.Decision.as_of <= until).order_by(m.Decision.as_of, m.Decision.id).limit(MAX_MONITORED))
    rows, days = [], []
    for sha, day, snapshot in session.execute(stmt.execution_options(yield_per=PAGE)):
        profile = profile_from_json(snapshot, sha)
        rows.append({name: profile.features.get(name) for name in features})
        days.append(day)
    return rows, days


def line_sums_through(session: Session, day: date) -> tuple[dict[int, int], dict[int, int]]:
    """Per line, through `day`, from the journal: what was drawn (the draw entries' principal) and what is overdue
    (overdue principal and interest, penalty and compound interest owed)."""
    return book_through(session, [day]).line_sums(day)
