"""What a portfolio report reads, on a session: the lines as signed, and each drawing's balances summed from the
journal through a day — never the balances kept on rows (the report reconciles to the journal by construction)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from sandu.analytics.ecl import DrawingRisk, LineRisk
from sandu.analytics.portfolio import DrawingBalance, LineFacts
from sandu.domain.enums import LineStatus
from sandu.ledger.overdue import RiskClass, days_past_due
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


def days_past_due_as_of(session: Session, as_of: date) -> dict[int, int]:
    """The drawings past due at the end of `as_of`, with their days past due: each one's oldest unpaid due date as of
    that day (the last row of its ageing history on or before it) aged by its line's grace period — what end of day
    computed that day."""
    h = m.DelinquencyChange
    latest = select(func.max(h.id).label("last")).where(h.on_date <= as_of).group_by(h.drawing_id).subquery()
    rows = session.execute(select(h.drawing_id, h.oldest_due_on, m.CreditLine.grace_days).join(latest, latest.c.last == h.id)
                           .join(m.Drawing, m.Drawing.id == h.drawing_id).join(m.CreditLine, m.CreditLine.id == m.Drawing.line_id)
                           .where(h.oldest_due_on.is_not(None), h.oldest_due_on < as_of))
    return {drawing_id: dpd for drawing_id, oldest, grace in rows if (dpd := days_past_due(oldest, as_of, grace))}


def drawing_balances(session: Session, as_of: date) -> list[DrawingBalance]:
    """Each drawing's receivable buckets through `as_of`, summed from the postings (accounts loan:{line}-{drawing}:{bucket}),
    with its 五级分类 (the last change on or before it; normal before any) and days past due as of that day."""
    sums = (select(m.PostingRow.account, func.sum(m.PostingRow.amount_fen))
            .join(m.JournalEntryRow, m.JournalEntryRow.id == m.PostingRow.entry_id)
            .where(m.JournalEntryRow.effective_date <= as_of, m.PostingRow.account.like("loan:%"))
            .group_by(m.PostingRow.account))
    buckets: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    for account, total in session.execute(sums):
        _, owner, bucket = account.split(":")
        line_id, drawing_id = (int(x) for x in owner.split("-"))
        if total:
            buckets[(line_id, drawing_id)][bucket] = int(total)
    latest = (select(m.ClassificationChange.drawing_id, func.max(m.ClassificationChange.id).label("last"))
              .where(m.ClassificationChange.on_date <= as_of).group_by(m.ClassificationChange.drawing_id).subquery())
    classes = dict(session.execute(select(m.ClassificationChange.drawing_id, m.ClassificationChange.to_class)
                                   .join(latest, latest.c.last == m.ClassificationChange.id)).all())
    dpd = days_past_due_as_of(session, as_of)
    return [DrawingBalance(line_id, drawing_id, b, classes.get(drawing_id, RiskClass.NORMAL.value), dpd.get(drawing_id, 0))
            for (line_id, drawing_id), b in sorted(buckets.items())]


def credit_risk(session: Session, kinds: dict[str, str], as_of: date, balances: list[DrawingBalance],
                branch: str | None = None) -> tuple[list[LineRisk], list[DrawingRisk]]:
    """As of the end of `as_of`: every line opened by then (of one sub-branch, or all) with its origination risk grade and
    its current one and 12-month PD (the borrower's latest decision made as of a day on or before `as_of`), and every
    drawing owing anything (`balances`, from the journal through the day) with what it owes, its DPD, 五级分类 and
    maturity. A line's undrawn limit counts as drawable while it is active as of the day: revolving, opened, not yet
    expired by then (end of day expires a line the day before it ends), and not frozen or closed now — a line's
    freezes keep no history, so a line frozen or closed now adds no undrawn exposure on earlier days either."""
    origination, current = m.Decision.__table__.alias("origination"), m.Decision.__table__.alias("current")
    latest = (select(m.Decision.enterprise_id, func.max(m.Decision.decided_at).label("at")).where(m.Decision.as_of <= as_of)
              .group_by(m.Decision.enterprise_id).subquery())
    stmt = (select(m.CreditLine.id, m.CreditLine.product, m.Enterprise.branch, m.CreditLine.limit_fen, m.CreditLine.revolving,
                   m.CreditLine.status, m.CreditLine.expires_on, origination.c.result["risk_grade"].as_string().label("grade_then"),
                   current.c.result["risk_grade"].as_string().label("grade_now"),
                   current.c.result[("scores", "risk", "pd")].as_float().label("pd_now"),
                   origination.c.result[("scores", "risk", "pd")].as_float().label("pd_then"))
            .join(m.Enterprise, m.Enterprise.id == m.CreditLine.enterprise_id)
            .join(m.Offer, m.Offer.id == m.CreditLine.offer_id)
            .join(origination, origination.c.id == m.Offer.decision_id)
            .outerjoin(latest, latest.c.enterprise_id == m.Enterprise.id)
            .outerjoin(current, and_(current.c.enterprise_id == m.Enterprise.id, current.c.decided_at == latest.c.at,
                                     current.c.as_of <= as_of))
            .where(m.CreditLine.opened_on <= as_of)
            .order_by(m.CreditLine.id).limit(MAX_LINES))
    if branch is not None:
        stmt = stmt.where(m.Enterprise.branch == branch)
    drawn: dict[int, int] = defaultdict(int)
    for b in balances:
        drawn[b.line_id] += b.principal_fen
    lines, seen = [], set()
    for r in session.execute(stmt.execution_options(yield_per=PAGE)):
        if r.id in seen:  # two decisions of one enterprise at the same moment: the first
            continue
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


OVERDUE_ACCOUNT_BUCKETS = ("overdue_principal", "overdue_interest", "penalty", "compound")


def line_sums_through(session: Session, day: date) -> tuple[dict[int, int], dict[int, int]]:
    """Per line, through `day`, from the journal: what was drawn (the draw entries' principal) and what is overdue
    (overdue principal and interest, penalty and compound interest owed)."""
    drawn: dict[int, int] = defaultdict(int)
    overdue: dict[int, int] = defaultdict(int)
    stmt = (select(m.JournalEntryRow.kind, m.PostingRow.account, func.sum(m.PostingRow.amount_fen))
            .join(m.JournalEntryRow, m.JournalEntryRow.id == m.PostingRow.entry_id)
            .where(m.JournalEntryRow.effective_date <= day, m.PostingRow.account.like("loan:%"))
            .group_by(m.JournalEntryRow.kind, m.PostingRow.account))
    for kind, account, total in session.execute(stmt):
        _, owner, bucket = account.split(":")
        line_id = int(owner.split("-")[0])
        if kind == "draw" and bucket == "principal":
            drawn[line_id] += int(total)
        if bucket in OVERDUE_ACCOUNT_BUCKETS:
            overdue[line_id] += int(total)
    return dict(drawn), dict(overdue)
