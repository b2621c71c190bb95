"""Helpers shared by the servicing tests: a story enterprise's line, movements made "now" (after every value date
the tests use), end of day, the ledger's invariants and a byte-for-byte dump of the servicing tables."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from conftest import BUSINESS_DATE, FIXED_NOW, PII_KEY, actor
from sqlalchemy import select

from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.origination import service as orig
from sandu.security.actor import Actor
from sandu.servicing import actions
from sandu.servicing import service as svc
from sandu.servicing.close import class_rules
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m

S2 = STORY_ROWS[1]
LIMIT = 416 * WAN
D0 = BUSINESS_DATE  # 2026-11-29: line opened, first drawing
# Servicing calls happen "now", after every value date the tests use (the ledger refuses future dates).
SERVICE_NOW = datetime(2028, 6, 30, 12, 0, tzinfo=timezone.utc)
LEDGER_TABLES = (m.CreditLine, m.JournalEntryRow, m.PostingRow, m.Drawing, m.Instalment, m.Due, m.ClassificationChange, m.BusinessCalendar,
                 m.EodRun)


def rules(rt):
    return class_rules(rt.bundle.classification)


def open_line(rt, row: dict[str, Any] | None = None, product: str = "jingying_kuaidai", *, project=None, as_of: date = D0,
              approve: bool = False) -> int:
    """A story enterprise's line opened on `as_of` by its legal representative: by default S2's auto-approved 经营快贷
    line (416万 at 3.80 %, 360-day basis, 随借随还); one line per enterprise (its comprehensive limit is taken by it).
    `approve`: an officer reviews and an approver approves a referred offer first."""
    row = row or S2
    rep = actor(rt, f"rep-{row['story'].lower()}")
    with rt.uow.write() as s:
        if s.scalar(select(m.Enterprise.id).where(m.Enterprise.uscc == row["uscc"])) is None:
            orig.register_enterprise(s, uscc=row["uscc"], name=row["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(s, uscc=row["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement", signer=rep, valid_days=30, now=FIXED_NOW)
        d = orig.measure(s, uscc=row["uscc"], consent_id=c.id, as_of=as_of, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech, project=project)
        decision_id = d.id
    if approve:
        from sandu.demo import users
        from sandu.origination import actions as orig_actions

        ent_branch = None
        with rt.uow.read() as s:
            ent_branch = s.scalar(select(m.Enterprise.branch).where(m.Enterprise.uscc == row["uscc"]))
        orig_actions.review_offer(rt, actor(rt, users.officer_of(ent_branch)), decision_id=decision_id, product=product, opinion="同意")
        orig_actions.approve_offer(rt, actor(rt, users.approver_of(ent_branch)), decision_id=decision_id, product=product)
    with rt.uow.write() as s:
        line = orig.accept_offer(s, decision_id=decision_id, product=product, signer=rep, as_of=as_of, now=FIXED_NOW)
        if row is S2 and product == "jingying_kuaidai":
            assert (line.limit_fen, line.rate_annual, line.basis_days) == (LIMIT, Decimal("0.0380"), 360)
        return line.id


def _key(op: str, line_id: int, amount: Any, on: date | None) -> str:
    return f"{op}:{line_id}:{amount}:{on}:{time.perf_counter_ns()}"


def draw(rt, line_id: int, amount: Any, on: date | None = D0, key: str | None = None, now: datetime = SERVICE_NOW) -> svc.DrawResult:
    with rt.uow.write() as s:
        return svc.draw(s, line_id=line_id, amount_fen=amount, on_date=on, idempotency_key=key or _key("draw", line_id, amount, on), now=now,
                        rules=rules(rt))


def repay(rt, line_id: int, amount: Any, on: date | None, key: str | None = None, now: datetime = SERVICE_NOW) -> svc.RepayResult:
    with rt.uow.write() as s:
        return svc.repay(s, line_id=line_id, amount_fen=amount, on_date=on, idempotency_key=key or _key("repay", line_id, amount, on), now=now,
                         rules=rules(rt))


def prepay(rt, drawing_id: int, amount: Any, on: date | None, key: str | None = None, now: datetime = SERVICE_NOW) -> svc.PrepayResult:
    with rt.uow.write() as s:
        return svc.prepay(s, drawing_id=drawing_id, principal_fen=amount, on_date=on, idempotency_key=key or _key("prepay", drawing_id, amount, on),
                          now=now, rules=rules(rt))


def eod(rt, day: date, now: datetime = SERVICE_NOW):
    """End of day through `day` (every date after the last one closed), acting at `now`."""
    before = rt.clock.value
    rt.clock.value = now
    try:
        return actions.end_of_day(rt, Actor.system("eod"), day)
    finally:
        rt.clock.value = before


def drawing(rt, drawing_id: int) -> m.Drawing:
    with rt.uow.read() as s:
        d = svc.get_drawing(s, drawing_id)
        s.expunge(d)
        return d


def line(rt, line_id: int) -> m.CreditLine:
    with rt.uow.read() as s:
        row = svc.get_line(s, line_id)
        s.expunge(row)
        return row


def check_ledger(rt) -> None:
    """The invariants that must hold after any sequence of operations: every entry balances, every balance kept on a
    row equals the journal, 0 ≤ drawn ≤ limit."""
    with rt.uow.read() as s:
        result = svc.ledger_check(s)
        assert result.ok, result.problems
        for row in s.scalars(select(m.CreditLine)):
            assert 0 <= row.drawn_principal_fen <= row.limit_fen


def ledger_dump(rt) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the servicing tables, byte for byte (as stored)."""
    out = {}
    with rt.uow.read() as s:
        for model in LEDGER_TABLES:
            table = model.__table__
            out[table.name] = sorted((tuple(r) for r in s.execute(table.select()).all()), key=repr)
    return out
