"""Closing one business date for a set of lines: what end of day does, set-based.

`close_day` closes date D for lines the caller has locked, all of them closed through D − 1
(`CreditLine.accrued_through`), in a few statements whatever the number of drawings:

1. **accrue** — each open drawing adds the day's closing balances to its fen-day
   accumulators, so that principal bears interest on every day it is outstanding at the
   close: contract interest on principal not overdue (a 随借随还 drawing's whole principal; a
   scheduled drawing's instalments carry their interest, so only its principal fallen due and
   unpaid — on the due date and in grace), penalty interest (罚息) on overdue principal from
   the day after its due date, compound interest (复利) on overdue interest. Amounts due but
   still in their grace period collect their own fen-days: if the grace is lost, penalty and
   compound interest run from the day after the due date, in place of the contract interest.
2. **settle** — on a settlement day (the 20th of the line's settlement months) each
   drawing's accumulators are charged, each rounded half-up once
   (`ledger.interest.interest_on_fen_days`); the contract interest falls due the next day
   (付息日), penalty and compound interest are owed at once.
3. **age** — whatever fell due on or before D − grace and is unpaid becomes overdue
   (moved to the overdue accounts) from the day after its due date.
4. **raise** — what falls due on D + 1 is raised: scheduled instalments (their interest is
   charged), the principal of a 随借随还 drawing maturing on D + 1.
5. **classify** — days past due and the five categories (`ledger.overdue.next_class`) for
   every drawing with something due, a class worse than 正常 or an officer's floor; every
   change is kept in `classification_changes`; a line takes its worst drawing's class.
6. **finish** — drawings with nothing owed and nothing accruing are repaid; lines past their
   last valid day expire; the lines are closed through D.

Every journal entry of a batch carries one posting per drawing and a total, at most
`BATCH_POSTINGS` drawings per entry; keys are ``sys:eod:{D}:{kind}:{first}-{last}:{n}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from sandu.domain.enums import DrawingStatus, LineStatus, Settlement
from sandu.ledger import journal as jl
from sandu.ledger.interest import fen_days_charge, settlement_dates
from sandu.ledger.overdue import OverduePolicy, RiskClass, days_past_due, next_class
from sandu.servicing.states import LineAction, next_state
from sandu.servicing.writes import write_entry
from sandu.store import models as m

BATCH_POSTINGS = 1000  # postings per journal entry of a batch, its total aside (jl.MAX_POSTINGS)
_RANKS = {c.value: c.rank for c in RiskClass}


@dataclass(frozen=True)
class ClassRules:
    """The bundle's five-category thresholds (DPD above which 关注, 次级, 可疑, 损失) and upgrade window."""

    thresholds_dpd: tuple[int, int, int, int]
    upgrade_after_days: int

    def policy(self, line: LineTerms | m.CreditLine) -> OverduePolicy:
        """The overdue rules of a line (its penalty uplift and grace period) with these thresholds."""
        return OverduePolicy(penalty_uplift=line.penalty_uplift, grace_days=line.grace_days, thresholds=self.thresholds_dpd,
                             upgrade_after_days=self.upgrade_after_days)


def class_rules(classification) -> ClassRules:
    """The rules of a policy bundle's `[classification]` table."""
    return ClassRules(tuple(classification.thresholds_dpd), classification.upgrade_after_days)


@dataclass(frozen=True)
class LineTerms:
    penalty_uplift: Decimal
    grace_days: int


@dataclass
class CloseStats:
    lines: int = 0
    drawings_accrued: int = 0
    charged_fen: dict[str, int] = field(default_factory=lambda: {k: 0 for k in jl.CHARGE_KINDS})
    overdue_fen: int = 0
    raised_fen: int = 0
    reclassified: int = 0
    repaid: int = 0
    expired: int = 0

    def add(self, other: CloseStats) -> None:
        for name in ("lines", "drawings_accrued", "overdue_fen", "raised_fen", "reclassified", "repaid", "expired"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, fen in other.charged_fen.items():
            self.charged_fen[kind] += fen


def owner(line_id: int, drawing_id: int) -> str:
    """A drawing's name in the journal: its accounts are ``loan:{line}-{drawing}:{bucket}``."""
    return f"{line_id}-{drawing_id}"


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _write_batch(session: Session, build, amounts: dict[str, object], day: date, key: str, now: datetime, per_owner: int = 1) -> None:
    """One entry per `BATCH_POSTINGS` postings of a batch: `per_owner` postings per drawing (at most)."""
    owners = list(amounts)
    for n, part in enumerate(_chunks(owners, BATCH_POSTINGS // per_owner)):
        write_entry(session, build({o: amounts[o] for o in part}, day, f"{key}:{n}"), line_id=None, now=now)


_BALANCES = (m.Drawing.id, m.Drawing.line_id, m.Drawing.principal_fen, m.Drawing.due_principal_fen, m.Drawing.overdue_principal_fen,
             m.Drawing.interest_fen, m.Drawing.overdue_interest_fen, m.Drawing.penalty_fen, m.Drawing.compound_fen,
             m.Drawing.interest_fen_days, m.Drawing.penalty_fen_days, m.Drawing.compound_fen_days, m.Drawing.oldest_due_on)


_SAVED = tuple(c.key for c in _BALANCES if c.key not in ("id", "line_id"))
_DRAWINGS = m.Drawing.__table__
_SAVE = _DRAWINGS.update().where(_DRAWINGS.c.id == bindparam("b_id")).values({c: bindparam(c) for c in _SAVED})


class _Changes:
    """Drawing rows read once, changed in memory, written back in one statement."""

    def __init__(self, session: Session, day: date):
        self.session = session
        self.day = day
        self.rows: dict[int, dict] = {}
        self.oldest_before: dict[int, date | None] = {}

    def load(self, ids: Iterable[int]) -> None:
        missing = sorted({i for i in ids if i not in self.rows})
        for part in _chunks(missing, 5000):
            for r in self.session.execute(select(*_BALANCES).where(m.Drawing.id.in_(part))).mappings():
                self.rows[r["id"]] = dict(r)
                self.oldest_before[r["id"]] = r["oldest_due_on"]

    def __getitem__(self, drawing_id: int) -> dict:
        return self.rows[drawing_id]

    def save(self) -> None:
        if self.rows:
            rows = [{**{c: r[c] for c in _SAVED}, "b_id": r["id"]} for _, r in sorted(self.rows.items())]
            self.session.execute(_SAVE, rows)  # one executemany, by primary key, in id order
            record_oldest_due(self.session, self.day, {i: r["oldest_due_on"] for i, r in self.rows.items()
                                                       if r["oldest_due_on"] != self.oldest_before[i]})
            self.rows.clear()
            self.oldest_before.clear()


_HISTORY = insert(m.DelinquencyChange.__table__)


def record_oldest_due(session: Session, day: date, changed: dict[int, date | None]) -> None:
    """Keep the ageing history (`delinquency_history`): the drawings whose oldest unpaid due date changed on `day`,
    with the new date (None: nothing unpaid). Called in the transaction that changes them."""
    if changed:
        session.execute(_HISTORY, [{"drawing_id": i, "on_date": day, "oldest_due_on": on} for i, on in sorted(changed.items())])


def _owes_due(row: dict, due_on: date) -> None:
    row["oldest_due_on"] = due_on if row["oldest_due_on"] is None else min(row["oldest_due_on"], due_on)


def _due_row(drawing_id: int, due_on: date, kind: str, principal: int, interest: int) -> dict:
    return {"drawing_id": drawing_id, "due_on": due_on, "kind": kind, "raised_principal_fen": principal, "raised_interest_fen": interest,
            "principal_fen": principal, "interest_fen": interest, "overdue": False, "grace_principal_fen_days": 0, "grace_interest_fen_days": 0}


def close_day(session: Session, *, day: date, line_ids: Sequence[int], now: datetime, rules: ClassRules) -> CloseStats:
    """Close `day` for `line_ids` (locked by the caller, each closed through `day` − 1)."""
    stats = CloseStats(lines=len(line_ids))
    if not line_ids:
        return stats
    assert len(line_ids) <= 100_000, "a batch of lines is bounded"
    lines = {r.id: r for r in session.execute(
        select(m.CreditLine.id, m.CreditLine.accrued_through, m.CreditLine.grace_days, m.CreditLine.penalty_uplift, m.CreditLine.status,
               m.CreditLine.expires_on).where(m.CreditLine.id.in_(line_ids)))}
    assert len(lines) == len(set(line_ids)), "every line to close exists"
    assert all(r.accrued_through == day - timedelta(days=1) for r in lines.values()), f"lines to close {day} are closed through the day before"
    tag = f"{day.isoformat()}:{{kind}}:{min(line_ids)}-{max(line_ids)}"
    in_lines = m.Drawing.line_id.in_(line_ids)
    open_drawing = and_(in_lines, m.Drawing.status == DrawingStatus.OPEN)
    changes = _Changes(session, day)

    # 1. accrue the day's closing balances
    not_due = m.Drawing.principal_fen - m.Drawing.due_principal_fen
    # contract interest on every fen of principal not overdue: a 随借随还 drawing's whole principal; a scheduled
    # drawing's instalments carry their own interest, so only principal fallen due and unpaid (on its due date, in grace)
    contract = case((m.Drawing.daily_interest, m.Drawing.principal_fen), else_=m.Drawing.due_principal_fen)
    accrued = session.execute(
        update(m.Drawing)
        .where(open_drawing, or_(contract > 0, m.Drawing.overdue_principal_fen > 0, m.Drawing.overdue_interest_fen > 0))
        .values(interest_fen_days=m.Drawing.interest_fen_days + contract,
                penalty_fen_days=m.Drawing.penalty_fen_days + m.Drawing.overdue_principal_fen,
                compound_fen_days=m.Drawing.compound_fen_days + m.Drawing.overdue_interest_fen)
        .execution_options(synchronize_session=False))
    stats.drawings_accrued = accrued.rowcount
    open_ids = select(m.Drawing.id).where(open_drawing)
    session.execute(
        update(m.Due)
        .where(m.Due.drawing_id.in_(open_ids), m.Due.overdue.is_(False), m.Due.due_on < day, m.Due.principal_fen + m.Due.interest_fen > 0)
        .values(grace_principal_fen_days=m.Due.grace_principal_fen_days + m.Due.principal_fen,
                grace_interest_fen_days=m.Due.grace_interest_fen_days + m.Due.interest_fen)
        .execution_options(synchronize_session=False))

    # 2. settle on settlement days
    frequencies = [f.value for f in Settlement if settlement_dates(day, day, f.value)]
    next_day = day + timedelta(days=1)
    dues: list[dict] = []
    if frequencies:
        to_settle = session.execute(
            select(m.Drawing.id, m.Drawing.line_id, m.Drawing.rate_annual, m.Drawing.penalty_rate_annual, m.Drawing.basis_days)
            .where(open_drawing, m.Drawing.settlement_frequency.in_(frequencies),
                   or_(m.Drawing.interest_fen_days > 0, m.Drawing.penalty_fen_days > 0, m.Drawing.compound_fen_days > 0))
            .order_by(m.Drawing.id)).all()
        changes.load(r.id for r in to_settle)
        charged: dict[str, dict[str, int]] = {k: {} for k in jl.CHARGE_KINDS}
        charges: dict[tuple[Decimal, int], Callable[[int], int]] = {}  # one checked charge per rate and basis
        for r in to_settle:
            row = changes[r.id]
            for kind, rate in (("interest", r.rate_annual), ("penalty", r.penalty_rate_annual), ("compound", r.penalty_rate_annual)):
                fen_days = row[f"{kind}_fen_days"]
                if not fen_days:
                    continue
                charge = charges.get((rate, r.basis_days))
                if charge is None:
                    charge = charges[(rate, r.basis_days)] = fen_days_charge(rate, r.basis_days)
                fen = charge(fen_days)
                row[f"{kind}_fen_days"] = 0
                if fen:
                    charged[kind][owner(r.line_id, r.id)] = fen
                    row[f"{kind}_fen"] += fen
                    stats.charged_fen[kind] += fen
            interest = charged["interest"].get(owner(r.line_id, r.id), 0)
            if interest:
                dues.append(_due_row(r.id, next_day, "settlement", 0, interest))  # 结息日 D, 付息日 D + 1
                _owes_due(row, next_day)
        for kind, amounts in charged.items():
            if amounts:
                _write_batch(session, lambda a, d, k, kind=kind: jl.charge_entry(kind, a, d, k), amounts, day, f"sys:eod:{tag.format(kind=kind)}", now)

    # 3. age what fell due and is unpaid beyond its grace
    aging = [r for r in session.execute(
        select(m.Due.id, m.Due.drawing_id, m.Due.due_on, m.Due.principal_fen, m.Due.interest_fen, m.Due.grace_principal_fen_days,
               m.Due.grace_interest_fen_days, m.Drawing.line_id)
        .join(m.Drawing, m.Drawing.id == m.Due.drawing_id)
        .where(open_drawing, m.Due.overdue.is_(False), m.Due.due_on <= day, m.Due.principal_fen + m.Due.interest_fen > 0)
        .order_by(m.Due.id)).all()
        if r.due_on + timedelta(days=lines[r.line_id].grace_days) <= day]
    if aging:
        changes.load(r.drawing_id for r in aging)
        moves: dict[str, tuple[int, int]] = {}
        for r in aging:
            row = changes[r.drawing_id]
            row["due_principal_fen"] -= r.principal_fen
            row["principal_fen"] -= r.principal_fen
            row["overdue_principal_fen"] += r.principal_fen
            row["interest_fen"] -= r.interest_fen
            row["overdue_interest_fen"] += r.interest_fen
            # a lost grace: penalty from the day after the due date, instead of the contract interest accrued for those days
            # (if a settlement charged that interest meanwhile, it stays charged: the uncharged part is moved)
            row["penalty_fen_days"] += r.grace_principal_fen_days
            row["interest_fen_days"] -= min(row["interest_fen_days"], r.grace_principal_fen_days)
            row["compound_fen_days"] += r.grace_interest_fen_days
            p, i = moves.get(owner(r.line_id, r.drawing_id), (0, 0))
            moves[owner(r.line_id, r.drawing_id)] = (p + r.principal_fen, i + r.interest_fen)
            stats.overdue_fen += r.principal_fen + r.interest_fen
        session.execute(update(m.Due).where(m.Due.id.in_([r.id for r in aging])).values(overdue=True).execution_options(synchronize_session=False))
        _write_batch(session, jl.overdue_entry, moves, day, f"sys:eod:{tag.format(kind='overdue')}", now, per_owner=4)

    # 4. raise what falls due tomorrow
    instalments = session.execute(
        select(m.Instalment.drawing_id, m.Instalment.principal_fen, m.Instalment.interest_fen, m.Drawing.line_id)
        .join(m.Drawing, and_(m.Drawing.id == m.Instalment.drawing_id, m.Drawing.schedule_version == m.Instalment.version))
        .where(open_drawing, m.Instalment.due_on == next_day).order_by(m.Instalment.drawing_id)).all()
    maturing = session.execute(
        select(m.Drawing.id, m.Drawing.line_id)
        .where(open_drawing, m.Drawing.daily_interest, m.Drawing.maturity_on == next_day, not_due > 0).order_by(m.Drawing.id)).all()
    changes.load([r.drawing_id for r in instalments] + [r.id for r in maturing])
    instalment_interest: dict[str, int] = {}
    for r in instalments:
        row = changes[r.drawing_id]
        row["due_principal_fen"] += r.principal_fen
        row["interest_fen"] += r.interest_fen
        if r.principal_fen or r.interest_fen:
            dues.append(_due_row(r.drawing_id, next_day, "instalment", r.principal_fen, r.interest_fen))
            _owes_due(row, next_day)
            stats.raised_fen += r.principal_fen + r.interest_fen
        if r.interest_fen:
            instalment_interest[owner(r.line_id, r.drawing_id)] = r.interest_fen
            stats.charged_fen["interest"] += r.interest_fen
    for r in maturing:
        row = changes[r.id]
        principal = row["principal_fen"] - row["due_principal_fen"]
        row["due_principal_fen"] = row["principal_fen"]
        dues.append(_due_row(r.id, next_day, "maturity", principal, 0))
        _owes_due(row, next_day)
        stats.raised_fen += principal
    if instalment_interest:
        _write_batch(session, lambda a, d, k: jl.charge_entry("interest", a, d, k), instalment_interest, day,
                     f"sys:eod:{tag.format(kind='instalment')}", now)
    if dues:
        session.execute(insert(m.Due.__table__), dues)
    changes.save()

    # 5. classify
    stats.reclassified = _classify(session, day, lines, open_drawing, rules)

    # 6. finish: repaid drawings, expired lines, the lines closed through the day
    stats.repaid = session.execute(
        update(m.Drawing).where(open_drawing, *nothing_owed()).values(status=DrawingStatus.REPAID, repaid_on=day)
        .execution_options(synchronize_session=False)).rowcount
    for status in (LineStatus.ACTIVE, LineStatus.FROZEN):
        expired = next_state(status, LineAction.EXPIRE, 0)
        stats.expired += session.execute(
            update(m.CreditLine).where(m.CreditLine.id.in_(line_ids), m.CreditLine.status == status, m.CreditLine.expires_on <= next_day)
            .values(status=expired).execution_options(synchronize_session=False)).rowcount
    if stats.reclassified or stats.repaid:
        refresh_line_class(session, line_ids)
    session.execute(update(m.CreditLine).where(m.CreditLine.id.in_(line_ids)).values(accrued_through=day).execution_options(synchronize_session=False))
    return stats


def nothing_owed() -> tuple:
    """The conditions of a drawing on which nothing is owed or accruing."""
    d = m.Drawing
    return (d.principal_fen == 0, d.overdue_principal_fen == 0, d.interest_fen == 0, d.overdue_interest_fen == 0, d.penalty_fen == 0,
            d.compound_fen == 0, d.interest_fen_days == 0, d.penalty_fen_days == 0, d.compound_fen_days == 0)


_CLASSIFY = _DRAWINGS.update().where(_DRAWINGS.c.id == bindparam("b_id")).values(
    dpd=bindparam("dpd"), days_current=bindparam("days_current"), risk_class=bindparam("risk_class"))


def _classify(session: Session, day: date, lines: dict, open_drawing, rules: ClassRules) -> int:
    """DPD and the five categories for the drawings that can change: something fallen due before today, days past
    due, a class worse than 正常 or an officer's floor. Returns how many changed class. A drawing at 正常 keeps
    days_current at 0: the count of days at DPD 0 only earns an improvement from a worse class."""
    d = m.Drawing
    watched = session.execute(
        select(d.id, d.line_id, d.oldest_due_on, d.dpd, d.days_current, d.risk_class, d.officer_class)
        .where(open_drawing, or_(and_(d.oldest_due_on.is_not(None), d.oldest_due_on < day), d.dpd > 0,
                                 d.risk_class != RiskClass.NORMAL.value, d.officer_class.is_not(None)))
        .order_by(d.id)).all()
    updates, history = [], []
    policies: dict[tuple[Decimal, int], OverduePolicy] = {}
    for r in watched:
        line = lines[r.line_id]
        policy = policies.get((line.penalty_uplift, line.grace_days))
        if policy is None:
            policy = policies[(line.penalty_uplift, line.grace_days)] = rules.policy(LineTerms(line.penalty_uplift, line.grace_days))
        dpd = days_past_due(r.oldest_due_on, day, line.grace_days)
        days_current = 0 if dpd else r.days_current + 1
        officer = RiskClass(r.officer_class) if r.officer_class else None
        new = next_class(RiskClass(r.risk_class), dpd, days_current, officer, policy)
        if new == RiskClass.NORMAL:
            days_current = 0
        if (dpd, days_current, new.value) != (r.dpd, r.days_current, r.risk_class):
            updates.append({"b_id": r.id, "dpd": dpd, "days_current": days_current, "risk_class": new.value})
        if new.value != r.risk_class:
            history.append({"drawing_id": r.id, "on_date": day, "from_class": r.risk_class, "to_class": new.value, "officer_class": r.officer_class,
                            "dpd": dpd, "cause": "rule", "by_user": None, "note": f"{dpd} days past due"})
    if updates:
        session.execute(_CLASSIFY, updates)
    if history:
        session.execute(insert(m.ClassificationChange.__table__), history)
    return len(history)


def refresh_line_class(session: Session, line_ids: Sequence[int]) -> None:
    """A line takes the worst class of its open drawings (正常 without any)."""
    d = m.Drawing
    rank = case(*((d.risk_class == c.value, c.rank) for c in RiskClass), else_=0)
    worst = {line_id: r for line_id, r in session.execute(
        select(d.line_id, func.max(rank)).where(d.line_id.in_(line_ids), d.status == DrawingStatus.OPEN).group_by(d.line_id))}
    by_rank = {c.rank: c.value for c in RiskClass}
    lines = m.CreditLine.__table__
    rows = [{"b_id": line_id, "risk_class": by_rank[worst.get(line_id) or 0]} for line_id in sorted(line_ids)]
    session.execute(lines.update().where(lines.c.id == bindparam("b_id")).values(risk_class=bindparam("risk_class")), rows)
